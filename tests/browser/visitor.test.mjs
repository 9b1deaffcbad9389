// The landing page beyond the happy path, in real Chromium against the real hub: the place in
// line as it moves while the team is busy, stopping the wait, the offer to write instead; on a
// phone (390×844, touch); and both pages by keyboard alone.

import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { PASSWORD, SHOTS, TestHub, callUs, callsConnected, waitFor } from './hub.mjs';

const hub = new TestHub();

before(() => hub.start([['ann@acme.test', 'Ann Agent'], ['bob@acme.test', 'Bob Agent']]));
after(() => hub.stop());

const queue = (p, text) => p.locator('#queue', { hasText: text }).waitFor();

test('with both agents busy, a waiting visitor sees the place in line move, is told honestly nobody is free, may write instead, and can stop waiting', async () => {
  const ann = await hub.signIn('ann@acme.test');
  const bob = await hub.signIn('bob@acme.test');
  // Ann is in a call; Bob chose busy.
  const first = await hub.visitor();
  await callUs(first, { name: 'Lea' });
  await ann.getByRole('button', { name: 'Accept call from Lea' }).click();
  await ann.locator('#in-call', { hasText: 'Lea' }).waitFor();
  await bob.getByLabel('My status').selectOption('busy');
  await ann.locator('#team li.person.busy', { hasText: 'Bob Agent' }).waitFor();

  const second = await hub.visitor();
  await callUs(second, { name: 'Max' });
  await queue(second, 'You are next in line. Everyone on our team is busy right now');
  const third = await hub.visitor();
  await callUs(third, { name: 'Nia' });
  await queue(third, '1 person is ahead of you. Everyone on our team is busy right now');
  assert.equal(await third.locator('#write-instead').isVisible(), true, 'offered to write instead');
  assert.equal(await bob.locator('#incoming li').count(), 0, 'nothing offered to a busy agent');
  await third.screenshot({ path: join(SHOTS, 'customer-waiting.png') });

  // The one ahead stops waiting: the third moves up, live.
  await second.getByRole('button', { name: 'Stop waiting' }).click();
  await second.locator('#status', { hasText: 'You stopped waiting' }).waitFor();
  assert.equal(await second.getByRole('button', { name: 'Call us' }).isEnabled(), true, 'ready to call again');
  await queue(third, 'You are next in line. Everyone on our team is busy right now');

  // Ann's call ends: she is free again, the waiting visitor hears so, and she is offered it.
  await first.getByRole('button', { name: 'Hang up' }).click();
  await queue(third, 'You are next in line. 1 of our team is free');
  assert.equal(await third.locator('#write-instead').isHidden(), true);
  await ann.locator('#incoming li', { hasText: 'Nia' }).waitFor();
  await third.getByRole('button', { name: 'Stop waiting' }).click();
  await ann.locator('#incoming-empty').waitFor();

  await bob.getByLabel('My status').selectOption('available');
  await Promise.all([ann, bob, first, second, third].map((p) => p.context().close()));
});

test('on a phone (390×844, touch) the landing page fits the screen, has thumb-sized controls, and a call works by taps', async () => {
  const ann = await hub.signIn('ann@acme.test');
  const phone = await hub.visitor({ viewport: { width: 390, height: 844 }, isMobile: true, hasTouch: true, deviceScaleFactor: 2 });
  const fits = () => phone.evaluate(() => document.documentElement.scrollWidth <= window.innerWidth);
  /** Every visible control at least 44×44 CSS pixels. */
  const smallTargets = () => phone.evaluate(() => [...document.querySelectorAll('button, input, select')]
    .filter((e) => e.offsetParent !== null)
    .filter((e) => { const r = e.getBoundingClientRect(); return r.width < 44 || r.height < 44; })
    .map((e) => e.id || e.outerHTML.slice(0, 40)));

  assert.equal(await fits(), true, 'no sideways scrolling');
  assert.deepEqual(await smallTargets(), [], 'tap targets of 44 px');

  await phone.getByLabel(/Your name/).fill('Ola');
  await phone.getByRole('button', { name: 'Call us' }).tap();
  await queue(phone, 'You are next in line. 1 of our team is free');
  assert.deepEqual(await smallTargets(), [], 'tap targets while waiting');
  await ann.getByRole('button', { name: 'Accept call from Ola' }).click();
  await callsConnected(phone);

  const hangUp = phone.getByRole('button', { name: 'Hang up' });
  const box = await hangUp.boundingBox();
  assert.ok(box.y >= 0 && box.y + box.height <= 844, `the hang-up button is on screen (${JSON.stringify(box)})`);
  assert.ok(box.width >= 300, 'and spans the width, for a thumb');
  assert.equal(await fits(), true, 'no sideways scrolling in a call');
  await phone.screenshot({ path: join(SHOTS, 'customer-phone-in-call.png') });
  await hangUp.tap();
  await ann.locator('#notice', { hasText: 'The caller hung up' }).waitFor();
  await Promise.all([ann, phone].map((p) => p.context().close()));
});

/** Presses Tab until the focused element matches `selector`; fails after `max` presses. */
async function tabTo(p, selector, max = 40) {
  for (let i = 0; i < max; i += 1) {
    if (await p.evaluate((s) => document.activeElement && document.activeElement.matches(s), selector)) return;
    await p.keyboard.press('Tab');
  }
  assert.fail(`Tab never reached ${selector}`);
}

test('both pages work by keyboard alone: sign in, call, accept, mute, hang up, write', async () => {
  const ann = await hub.page();
  await ann.goto(`${hub.base}/agent`);
  await ann.keyboard.type('ann@acme.test'); // the email field has the focus from the start
  await ann.keyboard.press('Tab');
  await ann.keyboard.type(PASSWORD);
  await ann.keyboard.press('Enter');
  await ann.locator('#connection', { hasText: 'online' }).waitFor();

  const visitor = await hub.visitor();
  await tabTo(visitor, '#visitor-name');
  await visitor.keyboard.type('Pia');
  await tabTo(visitor, '#call-button');
  await visitor.keyboard.press('Enter');
  await queue(visitor, 'You are next in line');
  assert.equal(await visitor.evaluate(() => document.activeElement.id), 'cancel-call', 'focus moves to “Stop waiting”');

  await ann.locator('#incoming li', { hasText: 'Pia' }).waitFor();
  await tabTo(ann, '#incoming button.primary');
  await ann.keyboard.press('Enter');
  await ann.locator('#in-call', { hasText: 'Pia' }).waitFor();
  assert.equal(await ann.evaluate(() => document.activeElement.id), 'hang-up', 'focus moves to “Hang up”');
  await ann.keyboard.press('Shift+Tab');
  await ann.keyboard.press('Space');
  assert.equal(await ann.locator('#mute').getAttribute('aria-pressed'), 'true', 'muted by keyboard');
  await ann.keyboard.press('Tab');
  await ann.keyboard.press('Enter');
  await visitor.locator('#status', { hasText: 'The agent ended the call' }).waitFor();

  await tabTo(visitor, '#chat-input');
  await visitor.keyboard.type('Thanks!');
  await visitor.keyboard.press('Enter');
  await visitor.locator('#messages .message.mine', { hasText: 'Thanks!' }).waitFor();
  await ann.locator('#inbox .conversation-item', { hasText: 'Thanks!' }).waitFor();
  await tabTo(ann, '#inbox .conversation-item');
  await ann.keyboard.press('Enter');
  await waitFor(async () => (await ann.evaluate(() => document.activeElement.id)) === 'reply-input', 'the focus in the reply field');
  await ann.keyboard.type('You are welcome.');
  await ann.keyboard.press('Enter');
  await visitor.locator('#messages .message.theirs', { hasText: 'You are welcome.' }).waitFor();
  await Promise.all([ann, visitor].map((p) => p.context().close()));
});
