// The customer landing page: a guest token for the company (from ?company=, else the hub's
// default) carrying the name the visitor gives, a "Call us" button, the place in line, the call
// with live audio, and a clear word on every way it can end.
//
// A new visitor connects on their first action (a call or a message), not on page load, so the
// name they type first is the name on their token; a visitor who already has a guest session in
// this tab (a reload) connects at once and keeps it.

import { SwitchboardClient, api, text } from './switchboard.js';
import { AudioCall } from './call.js';
import { Chat, renderConversation, supportOf } from './chat.js';

const $ = (id) => document.getElementById(id);
const company = new URLSearchParams(location.search).get('company') || undefined;
const ui = {
  form: $('request-form'),
  button: $('call-button'),
  note: $('note'),
  who: $('who'),
  name: $('visitor-name'),
  talkingAs: $('talking-as'),
  inCall: $('in-call'),
  waiting: $('waiting'),
  queue: $('queue'),
  cancel: $('cancel-call'),
  writeInstead: $('write-instead'),
  agentName: $('agent-name'),
  audioState: $('audio-state'),
  hangUp: $('hang-up'),
  status: $('status'),
  audio: $('remote-audio'),
};

let callId = null;
let call = null;

function say(message) {
  text(ui.status, message);
}

/** Idle: ready to call again. */
function idle(message) {
  if (call) call.close();
  call = null;
  callId = null;
  ui.inCall.hidden = true;
  ui.waiting.hidden = true;
  ui.form.hidden = false;
  ui.button.disabled = !usable();
  if (message) say(message);
}

/** Whether an action can start now: connected, or not yet started (it connects first). */
function usable() {
  return client.state === 'connected' || client.state === 'idle' || client.state === 'signed-out';
}

/** Resolves once connected, connecting first if this visitor has not started yet. */
function started() {
  if (client.state === 'connected') return Promise.resolve();
  return new Promise((resolve, reject) => {
    const stop = client.on('state', (state) => {
      if (state === 'connected') resolve();
      else if (state === 'signed-out') reject({ code: 'signed_out' });
      else return;
      stop();
    });
    if (client.state === 'idle' || client.state === 'signed-out') client.connect();
  });
}

const GUEST_KEY = `switchboard.guest.${company || ''}`;

const client = new SwitchboardClient({
  // A visitor keeps one guest identity for the tab's life (so the chat history survives a
  // reload): the stored token, refreshed when it expires, else a fresh guest token.
  getToken: async ({ expired, refused }) => {
    const stored = sessionStorage.getItem(GUEST_KEY);
    if (stored && !refused) {
      if (!expired) return stored;
      const fresh = await api('/api/v1/auth/refresh', { method: 'POST', token: stored }).catch(() => null);
      if (fresh) {
        sessionStorage.setItem(GUEST_KEY, fresh.token);
        return fresh.token;
      }
    }
    const name = ui.name.value.trim() || undefined;
    const guest = await api('/api/v1/auth/guest', { method: 'POST', body: { company, name } });
    sessionStorage.setItem(GUEST_KEY, guest.token);
    return guest.token;
  },
});

client.on('state', (state) => {
  if (state === 'connected') {
    ui.button.disabled = callId !== null;
    if (!callId) say('We are here. Press “Call us” to talk to someone.');
  } else if (state === 'reconnecting') {
    ui.button.disabled = true;
    say(callId ? 'Connection lost — reconnecting to keep your call…' : 'Connection lost — reconnecting…');
  }
});
client.on('auth_failed', (error) => {
  say(error && error.status === 404 ? 'This page does not belong to a known company.' : 'We cannot take calls right now. Please try again later.');
});

ui.form.addEventListener('submit', async (event) => {
  event.preventDefault();
  ui.button.disabled = true;
  say('Calling…');
  try {
    await started();
    const queued = await client.request({ type: 'call_request', note: ui.note.value.trim() || undefined });
    callId = queued.call_id;
    ui.form.hidden = true;
    ui.waiting.hidden = false;
    showQueue(queued);
    say('');
    ui.cancel.focus();
  } catch (error) {
    if (error.code === 'signed_out') return idle();
    idle(error.code === 'queue_full' ? 'All our people are busy right now. Please try again in a few minutes.' : 'That did not work. Please try again.');
  }
});

/** Where the visitor stands, honestly: how many are ahead, and whether anyone is free. */
function showQueue({ position, agents_available: free }) {
  const ahead = position - 1;
  const line = ahead === 0 ? 'You are next in line.' : `${ahead} ${ahead === 1 ? 'person is' : 'people are'} ahead of you.`;
  const team = free > 0 ? `${free} of our team ${free === 1 ? 'is' : 'are'} free — connecting you…` : 'Everyone on our team is busy right now; please hold on.';
  text(ui.queue, `${line} ${team}`);
  ui.writeInstead.hidden = free > 0;
}

client.on('queue_position', (frame) => {
  if (frame.call_id === callId && !ui.waiting.hidden) showQueue(frame);
});

ui.cancel.addEventListener('click', () => {
  if (callId) client.send({ type: 'call_end', call_id: callId, reason: 'canceled' });
});

client.on('call_accepted', async (frame) => {
  if (frame.call_id !== callId) return;
  text(ui.agentName, frame.agent.name);
  ui.form.hidden = true;
  ui.waiting.hidden = true;
  ui.inCall.hidden = false;
  say(`Connected to ${frame.agent.name}.`);
  call = new AudioCall({ client, callId, audio: ui.audio, onState: (state) => text(ui.audioState, state) }).attach();
  window.switchboardCall = call;
  try {
    await call.offer();
  } catch {
    say('We could not use your microphone. Please allow it and call again.');
    client.send({ type: 'call_end', call_id: callId, reason: 'no-microphone' });
  }
});

client.on('call_ended', (frame) => {
  if (frame.call_id !== callId) return;
  const why = {
    'no-answer': 'Nobody could answer right now, sorry. Please try again in a few minutes.',
    'connection-lost': 'The call dropped because the connection was lost.',
    canceled: 'You stopped waiting. Call again whenever you like.',
  }[frame.reason];
  const byUs = frame.by && frame.by.role === 'customer';
  idle(why || (byUs ? 'You hung up. Thanks for calling!' : 'The agent ended the call. Thanks for calling!'));
});

ui.hangUp.addEventListener('click', () => {
  if (callId) client.send({ type: 'call_end', call_id: callId, reason: 'hangup' });
});

// Chat with the team: before, during or after a call; kept for the life of the guest session.
const chat = new Chat(client);
const chatUi = { list: $('messages'), typing: $('typing'), form: $('chat-form'), input: $('chat-input'), send: $('chat-send') };
let me = null;

client.on('connected', (frame) => {
  chatUi.send.disabled = false;
  // The name is the token's from now on: show it instead of the field.
  ui.who.hidden = true;
  ui.talkingAs.hidden = false;
  text(ui.talkingAs, `You are talking to us as ${frame.user.name}.`);
  if (me === null || me !== frame.user.id) {
    me = frame.user.id;
    chat.show(supportOf(me)).catch(() => {});
  }
});
client.on('state', () => {
  chatUi.send.disabled = !usable();
});

function renderChat(id, keepPosition = false) {
  if (!me || (id && id !== supportOf(me))) return;
  renderConversation(chat, supportOf(me), me, { list: chatUi.list, typing: chatUi.typing }, keepPosition);
}

chat.onChange((id, what) => {
  renderChat(id);
  // What the team wrote is read once it is on screen.
  if (what === 'message' && me && document.visibilityState === 'visible') chat.markRead(supportOf(me));
});

// Older history as the visitor scrolls up.
chatUi.list.addEventListener('scroll', async () => {
  if (me && chatUi.list.scrollTop === 0 && (await chat.older(supportOf(me)))) renderChat(supportOf(me), true);
});

chatUi.input.addEventListener('input', () => {
  if (me) chat.setTyping(supportOf(me), chatUi.input.value.trim() !== '');
});

chatUi.form.addEventListener('submit', async (event) => {
  event.preventDefault();
  const value = chatUi.input.value.trim();
  if (!value) return;
  chatUi.input.value = '';
  try {
    await started();
    await chat.send(null, value);
  } catch (error) {
    chatUi.input.value = value;
    if (error.code === 'signed_out') return;
    say(error.code === 'rate_limited' ? 'Slow down a little, please.' : 'Your message could not be sent. Please try again.');
  }
});

if (sessionStorage.getItem(GUEST_KEY)) {
  client.connect();
} else {
  ui.button.disabled = false;
  chatUi.send.disabled = false;
  say('We are here. Press “Call us” to talk to someone, or write to us below.');
}
