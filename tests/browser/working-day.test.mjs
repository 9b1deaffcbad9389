// The agent dashboard through a working day, in real Chromium against the real hub: a chosen
// status that survives reloads and restarts, busy during a call and offered nothing, declining
// an offer, an incoming call that rings, flashes the title and notifies, mute and the timer,
// signing out mid-call, and the call history after a reload.

import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { SHOTS, TestHub, callUs, callsConnected, postTwilio, waitFor } from './hub.mjs';

const hub = new TestHub();

before(() => hub.start([['ann@acme.test', 'Ann Agent'], ['bob@acme.test', 'Bob Agent']]));
after(() => hub.stop());

const teammate = (p, name, status) => p.locator(`#team li.person.${status}`, { hasText: name });

/** Ann takes the visitor's call and both ends' audio connects. */
async function acceptAndConnect(agent, visitor, caller) {
  await agent.getByRole('button', { name: `Accept call from ${caller}` }).click();
  await agent.locator('#in-call', { hasText: caller }).waitFor();
  await callsConnected(visitor, agent);
}

test('an agent’s chosen status survives a reload and a hub restart, and the team sees it', async () => {
  const ann = await hub.signIn('ann@acme.test');
  const bob = await hub.signIn('bob@acme.test');
  await ann.getByLabel('My status').selectOption('away');
  await teammate(bob, 'Ann Agent', 'away').waitFor();

  await ann.reload();
  await ann.locator('#connection', { hasText: 'online' }).waitFor();
  await waitFor(async () => (await ann.getByLabel('My status').inputValue()) === 'away', 'the picker to show away after a reload');

  await hub.stopHub();
  await ann.locator('#connection', { hasText: /reconnecting/ }).waitFor();
  await hub.serve(new URL(hub.base).host);
  await ann.locator('#connection', { hasText: 'online' }).waitFor({ timeout: 40_000 });
  await bob.locator('#connection', { hasText: 'online' }).waitFor({ timeout: 40_000 });
  await teammate(bob, 'Ann Agent', 'away').waitFor();
  assert.equal(await ann.getByLabel('My status').inputValue(), 'away', 'still away after the restart');

  // An away agent is offered nothing.
  const visitor = await hub.visitor();
  await callUs(visitor, { name: 'Vera' });
  await bob.locator('#incoming li', { hasText: 'Vera' }).waitFor();
  assert.equal(await ann.locator('#incoming li').count(), 0, 'nothing offered to an away agent');
  await visitor.getByRole('button', { name: 'Stop waiting' }).click();
  await bob.locator('#incoming-empty').waitFor();

  await ann.getByLabel('My status').selectOption('available');
  await teammate(bob, 'Ann Agent', 'available').waitFor();
  await Promise.all([ann, bob, visitor].map((p) => p.context().close()));
});

test('an agent in a call is busy and offered nothing; mute and the timer work; a declined offer goes; the chosen status returns after', async () => {
  const ann = await hub.signIn('ann@acme.test');
  const bob = await hub.signIn('bob@acme.test');
  const first = await hub.visitor();
  await callUs(first, { name: 'Fay' });
  await acceptAndConnect(ann, first, 'Fay');
  await teammate(bob, 'Ann Agent', 'busy').waitFor();

  await ann.locator('#call-timer', { hasText: /^0:0[1-9]$/ }).waitFor();
  await ann.getByRole('button', { name: 'Mute' }).click();
  assert.equal(await ann.getByRole('button', { name: 'Unmute' }).getAttribute('aria-pressed'), 'true');
  assert.equal(await ann.evaluate(() => window.switchboardCall.stream.getAudioTracks().every((t) => !t.enabled)), true, 'the microphone track is off');
  await ann.getByRole('button', { name: 'Unmute' }).click();
  assert.equal(await ann.evaluate(() => window.switchboardCall.stream.getAudioTracks().every((t) => t.enabled)), true, 'and on again');

  // A second visitor: only Bob is offered the call; he declines it, and it leaves his list.
  const second = await hub.visitor();
  await callUs(second, { name: 'Gus' });
  await second.locator('#queue', { hasText: '1 of our team is free' }).waitFor();
  await bob.locator('#incoming li', { hasText: 'Gus' }).waitFor();
  assert.equal(await ann.locator('#incoming li').count(), 0, 'no offer during a call');
  await bob.getByRole('button', { name: 'Decline call from Gus' }).click();
  await bob.locator('#incoming-empty').waitFor();
  await new Promise((r) => setTimeout(r, 500));
  assert.equal(await bob.locator('#incoming li').count(), 0, 'a declined call is not offered again');
  assert.equal(await ann.locator('#incoming li').count(), 0);
  await second.getByRole('button', { name: 'Stop waiting' }).click();
  await second.locator('#status', { hasText: 'You stopped waiting' }).waitFor();

  await ann.getByRole('button', { name: 'Hang up' }).click();
  await first.locator('#status', { hasText: 'The agent ended the call' }).waitFor();
  await teammate(bob, 'Ann Agent', 'available').waitFor();
  assert.equal(await ann.getByLabel('My status').inputValue(), 'available');
  await Promise.all([ann, bob, first, second].map((p) => p.context().close()));
});

test('an incoming call rings, flashes the tab title and shows a notification while the dashboard is in the background', async () => {
  const ann = await hub.page({ permissions: ['notifications'] });
  // What the browser did, recorded around its real APIs; the page's visibility is switchable
  // (a headless tab is always "visible").
  await ann.context().addInitScript(() => {
    let hidden = false;
    window.setHiddenForTest = (value) => {
      hidden = value;
    };
    Object.defineProperty(Document.prototype, 'visibilityState', { configurable: true, get: () => (hidden ? 'hidden' : 'visible') });
    window.notificationsShown = [];
    const Real = window.Notification;
    window.Notification = class extends Real {
      constructor(title, options) {
        super(title, options);
        window.notificationsShown.push({ title, body: options.body });
      }
    };
    window.tonesPlayed = 0;
    const createOscillator = AudioContext.prototype.createOscillator;
    AudioContext.prototype.createOscillator = function () {
      window.tonesPlayed += 1;
      return createOscillator.call(this);
    };
  });
  await hub.signInOn(ann, 'ann@acme.test');
  assert.equal(await ann.locator('#enable-notifications').isHidden(), true, 'no button once allowed');
  await ann.evaluate(() => window.setHiddenForTest(true));

  const visitor = await hub.visitor();
  await callUs(visitor, { name: 'Hal', note: 'billing' });
  await ann.locator('#incoming li', { hasText: 'Hal' }).waitFor();
  await waitFor(async () => /^\(1\) Incoming call — /.test(await ann.title()), 'the title to flash');
  assert.deepEqual(await ann.evaluate(() => window.notificationsShown), [{ title: 'Incoming call', body: 'Hal — billing' }]);
  assert.equal(await ann.evaluate(() => window.tonesPlayed), 2, 'two tones');

  await visitor.getByRole('button', { name: 'Stop waiting' }).click();
  await waitFor(async () => (await ann.title()) === 'Switchboard — agent', 'the title to settle once nobody waits');
  await Promise.all([ann, visitor].map((p) => p.context().close()));
});

test('signing out mid-call ends the call for the visitor at once', async () => {
  const ann = await hub.signIn('ann@acme.test');
  const visitor = await hub.visitor();
  await callUs(visitor, { name: 'Ida' });
  await acceptAndConnect(ann, visitor, 'Ida');
  const signedOut = Date.now();
  await ann.getByRole('button', { name: 'Sign out' }).click();
  await visitor.locator('#status', { hasText: 'The agent ended the call' }).waitFor({ timeout: 5_000 });
  assert.ok(Date.now() - signedOut < 5_000, 'not after a grace period');
  await ann.getByLabel('Email').waitFor();
  await Promise.all([ann, visitor].map((p) => p.context().close()));
});

test('closing the dashboard’s tab mid-call ends the call for the visitor at once', async () => {
  const ann = await hub.signIn('ann@acme.test');
  const visitor = await hub.visitor();
  await callUs(visitor, { name: 'Jo' });
  await acceptAndConnect(ann, visitor, 'Jo');
  await ann.close({ runBeforeUnload: true });
  await visitor.locator('#status', { hasText: 'The agent ended the call' }).waitFor({ timeout: 5_000 });
  await Promise.all([ann, visitor].map((p) => p.context().close()));
});

test('the call history is there after a reload: dates, owners by name even once offline, a status filter and older pages', async () => {
  // Thirty ended phone calls from the feed, and one browser call that Bob took.
  for (let i = 0; i < 30; i += 1) {
    const sid = `CA${String(i).padStart(32, '0')}`;
    const params = { CallSid: sid, CallStatus: 'completed', Direction: 'inbound', From: `+1501712${String(i).padStart(4, '0')}`, To: '+15558675310', SequenceNumber: '1' };
    assert.equal(await postTwilio(hub.base, params), 204);
  }
  const bob = await hub.signIn('bob@acme.test');
  const visitor = await hub.visitor();
  await callUs(visitor, { name: 'Kim' });
  await acceptAndConnect(bob, visitor, 'Kim');
  await bob.getByRole('button', { name: 'Hang up' }).click();
  await visitor.locator('#status', { hasText: 'The agent ended the call' }).waitFor();
  await bob.getByRole('button', { name: 'Sign out' }).click();
  await bob.context().close();

  const ann = await hub.signIn('ann@acme.test');
  await ann.reload();
  await ann.locator('#connection', { hasText: 'online' }).waitFor();
  const bobsCall = ann.locator('#calls tr', { hasText: 'Bob Agent' });
  await bobsCall.waitFor();
  assert.match(await bobsCall.textContent(), /ended/);
  assert.match(await bobsCall.textContent(), new RegExp(String(new Date().getFullYear())), 'a date, not only a time');
  assert.equal(await ann.locator('#calls tr').count(), 25, 'one page at first');
  const oldest = ann.locator('#calls tr', { hasText: '+15017120000' });
  assert.equal(await oldest.count(), 0, 'the oldest call is on a later page');
  while (await ann.locator('#calls-more').isVisible()) {
    const shown = await ann.locator('#calls tr').count();
    await ann.getByRole('button', { name: 'Older calls' }).click();
    await waitFor(async () => (await ann.locator('#calls tr').count()) > shown, 'an older page');
  }
  await oldest.waitFor();
  const ids = await ann.locator('#calls tr').evaluateAll((rows) => rows.map((row) => row.dataset.callId));
  assert.ok(ids.length > 31, `every call of the day is listed (${ids.length})`);
  assert.equal(new Set(ids).size, ids.length, 'no call twice');

  await ann.getByLabel('Show').selectOption('in-progress');
  await waitFor(async () => (await ann.locator('#calls tr').count()) === 0, 'the filter to hide ended calls');
  await ann.getByLabel('Show').selectOption('ended');
  await waitFor(async () => (await ann.locator('#calls tr').count()) === 25, 'ended calls back');
  await ann.screenshot({ path: join(SHOTS, 'agent.png') });
  await Promise.all([ann, visitor].map((p) => p.context().close()));
});
