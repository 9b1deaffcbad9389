// The agent dashboard: sign in, then live: the connection, my status, the team, incoming calls
// (first to accept wins), the call itself with audio, the phone-call feed, and what the voice
// assistant did with my calendar. Everything from other people is inserted as text.

import { SwitchboardClient, api, el, text } from './switchboard.js';
import { AudioCall } from './call.js';
import { Chat, renderConversation } from './chat.js';
import { PhoneCalls } from './phone-calls.js';
import { enableNotifications, flashTitle, notificationsAllowed, notify, ring } from './alerts.js';

const $ = (id) => document.getElementById(id);
const TOKEN_KEY = 'switchboard.agent.token';
const session = { token: sessionStorage.getItem(TOKEN_KEY), user: null };
let client = null;
let current = null; // {callId, call, since, timer}
// While a call is being accepted or under way, the hub shows me `busy`; the picker keeps what I
// chose, which is what the hub restores after the call.
let accepting = false;
const inCall = () => accepting || current !== null;
const team = new Map();
const phoneCalls = new PhoneCalls(
  { body: $('calls'), filter: $('calls-filter'), more: $('calls-more') },
  () => client.token,
  (id) => (team.has(id) ? team.get(id).name : undefined),
);

function notice(message) {
  text($('notice'), message);
}

async function signIn(email, password) {
  const answer = await api('/api/v1/auth/login', { method: 'POST', body: { email, password } });
  session.token = answer.token;
  sessionStorage.setItem(TOKEN_KEY, answer.token);
  return answer.token;
}

function showLogin(message) {
  $('dashboard').hidden = true;
  $('login').hidden = false;
  text($('login-error'), message || '');
  $('email').focus();
}

$('login-form').addEventListener('submit', async (event) => {
  event.preventDefault();
  try {
    await signIn($('email').value, $('password').value);
    start();
  } catch (error) {
    text($('login-error'), error.status === 429 ? 'Too many attempts, wait a minute.' : 'Wrong email or password.');
  }
});

// Signing out (or closing the tab) mid-call ends the call for the visitor at once, instead of
// leaving them on silence for the grace period.
function hangUpOnLeave() {
  if (current) client.send({ type: 'call_end', call_id: current.callId, reason: 'agent-left' });
}
window.addEventListener('pagehide', hangUpOnLeave);

$('sign-out').addEventListener('click', () => {
  hangUpOnLeave();
  endCurrent('');
  sessionStorage.removeItem(TOKEN_KEY);
  session.token = null;
  if (client) client.close();
  showLogin();
});

function renderTeam() {
  const list = $('team');
  list.replaceChildren();
  const people = [...team.values()].filter((u) => u.role !== 'customer').sort((a, b) => a.name.localeCompare(b.name));
  for (const user of people) {
    const item = el('li', `person ${user.status || 'available'}`);
    item.append(el('span', 'dot'), el('span', 'name', user.name), el('span', 'muted', user.status || ''));
    if (session.user && user.id !== session.user.id) {
      const write = el('button', 'small', 'Message');
      write.type = 'button';
      write.setAttribute('aria-label', `Message ${user.name}`);
      write.addEventListener('click', () => openConversation(directWith(user.id), user.name));
      item.append(write);
    }
    list.append(item);
  }
}

// ---- chat: the inbox, one open conversation, direct chat with a teammate ----

let chat = null;
let open = null; // {id, name}
let inboxTimer = null;

/** The direct conversation with a teammate: both ids, in byte order. */
function directWith(other) {
  const [a, b] = [session.user.id, other].sort((x, y) => (x < y ? -1 : x > y ? 1 : 0));
  return `direct:${a}:${b}`;
}

/** Reloads the inbox soon (changes come in bursts). */
function refreshInbox() {
  clearTimeout(inboxTimer);
  inboxTimer = setTimeout(loadInbox, 150);
}

async function loadInbox() {
  if (!client) return;
  const inbox = await api('/api/v1/conversations?limit=50', { token: client.token }).catch(() => null);
  if (!inbox) return;
  const list = $('inbox');
  // Re-rendering must not take the keyboard focus away from a conversation.
  const focused = list.contains(document.activeElement) ? document.activeElement.dataset.conversation : null;
  list.replaceChildren();
  let unread = 0;
  for (const conversation of inbox.conversations) {
    unread += conversation.unread_count;
    const item = el('li');
    const button = el('button', `conversation-item${open && open.id === conversation.id ? ' active' : ''}`);
    button.type = 'button';
    button.dataset.conversation = conversation.id;
    const preview = conversation.last_message ? conversation.last_message.text : '';
    button.append(el('strong', 'name', conversation.with.name), el('span', 'preview', preview));
    if (conversation.unread_count > 0) {
      const badge = el('span', 'badge', String(conversation.unread_count));
      badge.setAttribute('aria-label', `${conversation.unread_count} unread`);
      button.append(badge);
    }
    button.addEventListener('click', () => openConversation(conversation.id, conversation.with.name));
    item.append(button);
    list.append(item);
    if (conversation.id === focused) button.focus();
  }
  $('inbox-empty').hidden = inbox.conversations.length > 0;
  const badge = $('inbox-unread');
  badge.hidden = unread === 0;
  text(badge, String(unread));
}

async function openConversation(id, name) {
  open = { id, name };
  text($('conversation-with'), name);
  $('conversation').hidden = false;
  showConversation();
  await chat.show(id).catch(() => {});
  showConversation();
  await chat.markRead(id);
  refreshInbox();
  $('reply-input').focus();
}

function showConversation(keepPosition = false) {
  if (!open) return;
  const ui = { list: $('conversation-messages'), typing: $('conversation-typing') };
  renderConversation(chat, open.id, session.user.id, ui, keepPosition);
  $('older').hidden = !chat.entry(open.id).hasOlder;
}

function startChat() {
  chat = new Chat(client);
  chat.onChange((id, what) => {
    if (open && (id === open.id || id === null)) {
      showConversation();
      if (what === 'message' && document.visibilityState === 'visible') chat.markRead(open.id).then(refreshInbox);
    }
    if (what === 'message' || what === 'caught-up') refreshInbox();
  });
  client.on('conversation_read', refreshInbox);
}

$('older').addEventListener('click', async () => {
  if (open) await chat.older(open.id);
  showConversation(true);
});
// Older history as the agent scrolls up, too.
$('conversation-messages').addEventListener('scroll', async () => {
  if (open && $('conversation-messages').scrollTop === 0 && (await chat.older(open.id))) showConversation(true);
});
$('reply-input').addEventListener('input', () => {
  if (open) chat.setTyping(open.id, $('reply-input').value.trim() !== '');
});
$('reply-form').addEventListener('submit', async (event) => {
  event.preventDefault();
  const value = $('reply-input').value.trim();
  if (!open || !value) return;
  $('reply-input').value = '';
  try {
    await chat.send(open.id, value);
  } catch (error) {
    $('reply-input').value = value;
    notice(error.code === 'rate_limited' ? 'Slow down a little.' : 'The message could not be sent.');
  }
});

function renderIncomingEmpty() {
  $('incoming-empty').hidden = $('incoming').children.length > 0;
}

function removeIncoming(callId) {
  const item = document.querySelector(`#incoming li[data-call-id="${CSS.escape(callId)}"]`);
  if (item) item.remove();
  renderIncomingEmpty();
}

const waitingCalls = () => $('incoming').children.length;

function addIncoming(frame) {
  const fresh = !document.querySelector(`#incoming li[data-call-id="${CSS.escape(frame.call_id)}"]`);
  removeIncoming(frame.call_id);
  const item = el('li', 'incoming');
  item.dataset.callId = frame.call_id;
  const who = el('div', 'who');
  who.append(el('strong', '', frame.customer.name), el('span', 'muted', frame.note ? ` — ${frame.note}` : ''));
  const accept = el('button', 'primary', 'Accept');
  accept.type = 'button';
  accept.setAttribute('aria-label', `Accept call from ${frame.customer.name}`);
  accept.addEventListener('click', () => acceptCall(frame, accept));
  const decline = el('button', '', 'Decline');
  decline.type = 'button';
  decline.setAttribute('aria-label', `Decline call from ${frame.customer.name}`);
  decline.addEventListener('click', () => {
    client.request({ type: 'call_decline', call_id: frame.call_id }).catch(() => {});
    removeIncoming(frame.call_id);
  });
  item.append(who, accept, decline);
  $('incoming').append(item);
  renderIncomingEmpty();
  if (fresh) {
    ring();
    flashTitle(waitingCalls);
    notify('Incoming call', `${frame.customer.name}${frame.note ? ` — ${frame.note}` : ''}`, frame.call_id);
  }
}

async function acceptCall(frame, button) {
  button.disabled = true;
  accepting = true;
  try {
    await client.request({ type: 'call_accept', call_id: frame.call_id });
    removeIncoming(frame.call_id);
    text($('caller-name'), frame.customer.name);
    $('in-call').hidden = false;
    const call = new AudioCall({ client, callId: frame.call_id, audio: $('remote-audio'), onState: (s) => text($('audio-state'), s) }).attach();
    current = { callId: frame.call_id, call, since: Date.now() };
    current.timer = setInterval(showDuration, 1000);
    showDuration();
    setMuteButton(false);
    window.switchboardCall = call;
    $('hang-up').focus();
  } catch (error) {
    removeIncoming(frame.call_id);
    notice(error.code === 'call_already_taken' ? 'Someone else took that call.' : 'Could not take the call.');
  } finally {
    accepting = false;
  }
}

function showDuration() {
  if (!current) return;
  const seconds = Math.floor((Date.now() - current.since) / 1000);
  text($('call-timer'), `${Math.floor(seconds / 60)}:${String(seconds % 60).padStart(2, '0')}`);
}

function setMuteButton(muted) {
  $('mute').setAttribute('aria-pressed', String(muted));
  text($('mute'), muted ? 'Unmute' : 'Mute');
}

$('mute').addEventListener('click', () => {
  if (!current) return;
  const muted = !current.call.muted;
  current.call.setMuted(muted);
  setMuteButton(muted);
});

function endCurrent(message) {
  if (!current) return;
  current.call.close();
  clearInterval(current.timer);
  current = null;
  $('in-call').hidden = true;
  notice(message);
}

$('hang-up').addEventListener('click', () => {
  if (current) client.send({ type: 'call_end', call_id: current.callId, reason: 'hangup' });
});

$('my-status').addEventListener('change', (event) => {
  client.send({ type: 'agent_status', status: event.target.value });
});

$('enable-notifications').addEventListener('click', async () => {
  $('enable-notifications').hidden = await enableNotifications();
});

function renderAction(frame) {
  const item = el('li', frame.ok ? 'action ok' : 'action failed');
  const summary = frame.ok ? JSON.stringify(frame.output) : frame.error;
  item.append(el('strong', '', frame.name), el('span', 'muted', ` ${new Date(frame.at).toLocaleTimeString()} `), el('code', '', summary));
  $('actions').prepend(item);
}

async function refreshCalendarState() {
  try {
    const state = await api('/api/v1/calendar', { token: session.token });
    text($('calendar-state'), state.connected ? `Calendar: ${state.calendar_id || 'connected'}` : 'Calendar: not connected');
    text($('connect-calendar'), state.connected ? 'Reconnect my calendar' : 'Connect my calendar');
  } catch {
    text($('calendar-state'), 'Calendar: unavailable');
  }
}

$('connect-calendar').addEventListener('click', async () => {
  try {
    const { authorization_url: url } = await api('/api/v1/calendar/connect', { method: 'POST', token: session.token });
    location.href = url;
  } catch (error) {
    notice(error.error === 'provider_not_configured' ? 'Calendar connections are not set up on this hub.' : 'Could not start connecting the calendar.');
  }
});

function start() {
  $('login').hidden = true;
  $('dashboard').hidden = false;
  client = new SwitchboardClient({
    getToken: async ({ expired, refused }) => {
      if (session.token && !refused) {
        // Still valid: swap it for a fresh one; else the person signs in again.
        const fresh = await api('/api/v1/auth/refresh', { method: 'POST', token: session.token }).catch(() => null);
        if (fresh) {
          session.token = fresh.token;
          sessionStorage.setItem(TOKEN_KEY, fresh.token);
          return fresh.token;
        }
        if (!expired) return session.token;
      }
      throw new Error('sign in again');
    },
  });
  client.token = session.token;
  window.switchboardClient = client; // for the browser tests: to drop the connection on purpose
  startChat();
  client.on('state', (state) => {
    const label = { connected: 'online', connecting: 'connecting…', reconnecting: 'reconnecting…', closed: 'offline', 'signed-out': 'signed out' }[state] || state;
    const pill = $('connection');
    text(pill, label);
    pill.className = `pill ${state}`;
  });
  client.on('auth_failed', () => showLogin('Your session ended. Please sign in again.'));
  client.on('connected', async (frame) => {
    session.user = frame.user;
    text($('me'), `${frame.user.name} · ${frame.user.company}`);
    $('enable-notifications').hidden = !('Notification' in window) || notificationsAllowed();
    const online = await client.request({ type: 'get_online_users' }).catch(() => ({ users: [] }));
    team.clear();
    for (const user of online.users) team.set(user.id, user);
    // The hub remembers what I chose, also across its restarts.
    const me = team.get(frame.user.id);
    if (me && me.status && !inCall()) $('my-status').value = me.status;
    renderTeam();
    phoneCalls.reload();
    refreshCalendarState();
    loadInbox();
  });
  client.on('presence_changed', (frame) => {
    if (frame.online) team.set(frame.user.id, { ...frame.user, status: frame.status });
    else team.delete(frame.user.id);
    renderTeam();
  });
  // Visitors come and go in batches (at most one a second).
  client.on('presence_batch', (frame) => {
    for (const user of frame.online) team.set(user.id, { ...user, status: null });
    for (const user of frame.offline) team.delete(user.id);
    renderTeam();
  });
  client.on('agent_status_changed', (frame) => {
    const user = team.get(frame.user_id);
    if (user) user.status = frame.status;
    // My own status: shown in the picker, except the `busy` a call of mine brings.
    if (session.user && frame.user_id === session.user.id && !inCall()) $('my-status').value = frame.status;
    renderTeam();
  });
  client.on('incoming_call', addIncoming);
  client.on('call_withdrawn', (frame) => removeIncoming(frame.call_id));
  client.on('call_taken', (frame) => {
    removeIncoming(frame.call_id);
    notice(`${frame.by.name} took a call.`);
  });
  client.on('call_ended', (frame) => {
    removeIncoming(frame.call_id);
    if (current && current.callId === frame.call_id) {
      const by = frame.by && session.user && frame.by.id === session.user.id ? 'You hung up.' : 'The caller hung up.';
      endCurrent(frame.reason === 'connection-lost' ? 'The call dropped: the caller lost their connection.' : by);
    }
  });
  client.on('call_status_changed', (frame) => phoneCalls.live(frame));
  client.on('tool_call_executed', renderAction);
  client.connect();
  const calendar = new URLSearchParams(location.search).get('calendar');
  if (calendar === 'connected') notice('Your calendar is connected.');
  if (calendar === 'error') notice('Connecting your calendar did not work. Please try again.');
}

if (session.token) start();
else showLogin();
