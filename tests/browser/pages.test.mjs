// The two pages in real Chromium (Debian's), driven by playwright-core, against the real hub
// binary: the happy paths (a call with audio, the Twilio feed, a hub restart, chat). Run inside
// a network namespace that has only loopback (see .ci/run), so nothing leaves 127.0.0.1.
// Screenshots of both pages land in docs/screenshots/.

import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { SHOTS, TestHub, callUs, callsConnected, postTwilio, waitFor } from './hub.mjs';

const hub = new TestHub();
const signIn = (email) => hub.signIn(email);

before(() => hub.start([['ann@acme.test', 'Ann Agent'], ['bob@acme.test', 'Bob Agent']]));
after(() => hub.stop());

test('a customer calls, one of two agents takes it, audio connects, hang-up ends it on both pages', async () => {
  const ann = await signIn('ann@acme.test');
  const bob = await signIn('bob@acme.test');
  await ann.locator('#team', { hasText: 'Bob Agent' }).waitFor();

  const customer = await hub.visitor();
  await callUs(customer, { name: 'Carla <Customer>', note: '<b>my order</b>' });
  await customer.locator('#queue', { hasText: 'You are next in line. 2 of our team are free' }).waitFor();
  await customer.locator('#talking-as', { hasText: 'You are talking to us as Carla <Customer>.' }).waitFor();

  const annOffer = ann.locator('#incoming li');
  const bobOffer = bob.locator('#incoming li');
  await annOffer.waitFor();
  await bobOffer.waitFor();
  assert.equal(await annOffer.locator('.who').textContent(), 'Carla <Customer> — <b>my order</b>', 'customer text is shown as text');

  await ann.getByRole('button', { name: /Accept call from Carla/ }).click();
  await bob.locator('#notice', { hasText: 'Ann Agent took a call' }).waitFor();
  assert.equal(await bobOffer.count(), 0, 'the call is gone from the other agent');
  await customer.locator('#in-call', { hasText: 'Ann Agent' }).waitFor();

  await callsConnected(customer, ann);
  await customer.locator('#audio-state', { hasText: 'connected' }).waitFor();
  await customer.screenshot({ path: join(SHOTS, 'customer-in-call.png') });
  await ann.screenshot({ path: join(SHOTS, 'agent-in-call.png') });

  await customer.getByRole('button', { name: 'Hang up' }).click();
  await customer.locator('#status', { hasText: 'You hung up' }).waitFor();
  await ann.locator('#notice', { hasText: 'The caller hung up' }).waitFor();
  assert.equal(await ann.locator('#in-call').isHidden(), true);
  assert.equal(await customer.getByRole('button', { name: 'Call us' }).isEnabled(), true, 'ready to call again');
  await Promise.all([ann, bob, customer].map((p) => p.context().close()));
});

test('a signed telephony webhook shows up on the dashboard', async () => {
  const ann = await signIn('ann@acme.test');
  const params = { CallSid: 'CA0000000000000000000000000000BROW', CallStatus: 'no-answer', Direction: 'inbound', From: '+15017122661', To: '+15558675310', SequenceNumber: '3' };
  assert.equal(await postTwilio(hub.base, params), 204);

  const row = ann.locator('#calls tr', { hasText: '+15017122661' });
  await row.waitFor();
  assert.match(await row.textContent(), /ended.*no-answer/);
  await ann.context().close();
});

test('after the hub restarts, the dashboard reconnects by itself and shows the team again', async () => {
  const ann = await signIn('ann@acme.test');
  const bob = await signIn('bob@acme.test');
  await ann.locator('#team', { hasText: 'Bob Agent' }).waitFor();

  await hub.stopHub();
  await ann.locator('#connection', { hasText: /reconnecting/ }).waitFor();
  await hub.serve(new URL(hub.base).host);

  await ann.locator('#connection', { hasText: 'online' }).waitFor({ timeout: 40_000 });
  await bob.locator('#connection', { hasText: 'online' }).waitFor({ timeout: 40_000 });
  await ann.locator('#team', { hasText: 'Bob Agent' }).waitFor();
  await ann.locator('#team', { hasText: 'Ann Agent' }).waitFor();
  await Promise.all([ann, bob].map((p) => p.context().close()));
});

test('a visitor and an agent chat both ways with typing, read receipts and the inbox badge; a message sent while the dashboard was offline appears after it reconnects; teammates chat directly', async () => {
  const ann = await signIn('ann@acme.test');
  const bob = await signIn('bob@acme.test');
  await ann.locator('#team', { hasText: 'Bob Agent' }).waitFor();

  const visitor = await hub.visitor();
  const send = visitor.getByRole('button', { name: 'Send' });
  await waitFor(() => send.isEnabled(), 'the visitor chat to be ready');
  await visitor.getByLabel('Your message').fill('<i>Hello</i> there');
  await send.click();
  await visitor.locator('#messages .message.mine', { hasText: '<i>Hello</i> there' }).waitFor();

  // The inbox shows it at once, with an unread badge; opening it clears the badge, and the
  // visitor sees it was read.
  const item = ann.locator('#inbox .conversation-item', { hasText: '<i>Hello</i> there' });
  await item.waitFor();
  await ann.locator('#inbox-unread', { hasText: '1' }).waitFor();
  await item.click();
  await ann.locator('#conversation-messages .message', { hasText: '<i>Hello</i> there' }).waitFor();
  await waitFor(() => ann.locator('#inbox-unread').isHidden(), 'the inbox badge to clear');
  await visitor.locator('#messages .seen', { hasText: 'Seen' }).waitFor();

  // Typing, then the answer.
  await ann.getByLabel('Your reply').pressSequentially('Hi! How', { delay: 20 });
  await visitor.locator('#typing', { hasText: 'Ann Agent is typing' }).waitFor();
  await ann.getByLabel('Your reply').fill('Hi! How can I help?');
  await ann.getByRole('button', { name: 'Send' }).click();
  await visitor.locator('#messages .message.theirs', { hasText: 'Hi! How can I help?' }).waitFor();
  await visitor.screenshot({ path: join(SHOTS, 'customer-chat.png') });

  // The dashboard loses the hub: its connection drops and every new one hangs unanswered
  // (held here, never reaching the hub), so it stays "reconnecting" however fast it retries.
  // The visitor writes meanwhile; once the hub is reachable again, the dashboard catches up.
  let reachable = false;
  const held = [];
  await ann.context().routeWebSocket(/\/ws$/, (ws) => (reachable ? ws.connectToServer() : held.push(ws)));
  await ann.evaluate(() => window.switchboardClient.ws.close());
  await ann.locator('#connection', { hasText: /reconnecting/ }).waitFor();
  await visitor.getByLabel('Your message').fill('Are you still there?');
  await send.click();
  await visitor.locator('#messages .message.mine', { hasText: 'Are you still there?' }).waitFor();
  await new Promise((r) => setTimeout(r, 300));
  assert.equal(await ann.locator('#conversation-messages .message', { hasText: 'Are you still there?' }).count(), 0, 'the dashboard was cut off');
  reachable = true;
  await Promise.all(held.map((ws) => ws.close()));
  await ann.locator('#connection', { hasText: 'online' }).waitFor();
  await ann.locator('#conversation-messages .message', { hasText: 'Are you still there?' }).waitFor();
  await ann.screenshot({ path: join(SHOTS, 'agent-chat.png') });

  // A teammate, straight from the team list.
  await ann.getByRole('button', { name: 'Message Bob Agent' }).click();
  await ann.locator('#conversation-with', { hasText: 'Bob Agent' }).waitFor();
  await ann.getByLabel('Your reply').fill('Lunch at 12?');
  await ann.getByRole('button', { name: 'Send' }).click();
  const fromAnn = bob.locator('#inbox .conversation-item', { hasText: 'Lunch at 12?' });
  await fromAnn.waitFor();
  assert.match(await fromAnn.textContent(), /Ann Agent/);
  await fromAnn.click();
  await bob.locator('#conversation-messages .message', { hasText: 'Lunch at 12?' }).waitFor();
  assert.equal(await visitor.locator('#messages', { hasText: 'Lunch' }).count(), 0, 'the visitor never sees it');
  // The visitor's history lasts as long as their guest session: a reload keeps it.
  await visitor.reload();
  await visitor.locator('#messages .message.theirs', { hasText: 'Hi! How can I help?' }).waitFor();
  await Promise.all([ann, bob, visitor].map((p) => p.context().close()));
});
