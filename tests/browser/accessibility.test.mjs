// Both pages checked with axe-core (WCAG 2.0/2.1 A and AA, and best practices) in every state
// a person sees them in: zero serious or critical violations allowed. Also: no console errors
// anywhere along the way (a missing icon or a failed script shows up here).

import { test, before, after } from 'node:test';
import { TestHub, assertAccessible, assertNoConsoleErrors, callUs, callsConnected } from './hub.mjs';

const hub = new TestHub();
// axe is injected as a script, which the pages' Content-Security-Policy rightly refuses.
const AXE_CONTEXT = { bypassCSP: true };

before(() => hub.start([['ann@acme.test', 'Ann Agent'], ['bob@acme.test', 'Bob Agent']]));
after(() => hub.stop());

test('the landing page and the dashboard pass axe-core in every state, without console errors', async () => {
  const login = await hub.page(AXE_CONTEXT);
  await login.goto(`${hub.base}/agent`);
  await assertAccessible(login, 'the sign-in form');
  await login.getByLabel('Email').fill('ann@acme.test');
  await login.getByLabel('Password').fill('wrong password');
  await login.getByRole('button', { name: 'Sign in' }).click();
  await login.locator('#login-error', { hasText: 'Wrong email or password' }).waitFor();
  await assertAccessible(login, 'the sign-in form with an error');

  const ann = await hub.signIn('ann@acme.test', AXE_CONTEXT);
  const bob = await hub.signIn('bob@acme.test', AXE_CONTEXT);
  await ann.locator('#team', { hasText: 'Bob Agent' }).waitFor();
  await assertAccessible(ann, 'the dashboard, nobody waiting');

  const visitor = await hub.visitor(AXE_CONTEXT);
  await assertAccessible(visitor, 'the landing page');
  await callUs(visitor, { name: 'Quinn', note: 'a refund' });
  await assertAccessible(visitor, 'the landing page, waiting');
  await ann.locator('#incoming li', { hasText: 'Quinn' }).waitFor();
  await assertAccessible(ann, 'the dashboard with an incoming call');

  await ann.getByRole('button', { name: 'Accept call from Quinn' }).click();
  await callsConnected(visitor, ann);
  await assertAccessible(ann, 'the dashboard in a call');
  await assertAccessible(visitor, 'the landing page in a call');

  await visitor.getByLabel('Your message').fill('Can you hear me?');
  await visitor.getByRole('button', { name: 'Send' }).click();
  await ann.locator('#inbox .conversation-item', { hasText: 'Can you hear me?' }).click();
  await ann.locator('#conversation-messages .message', { hasText: 'Can you hear me?' }).waitFor();
  await ann.getByLabel('Your reply').fill('Yes, loud and clear.');
  await ann.getByRole('button', { name: 'Send' }).click();
  await visitor.locator('#messages .message.theirs', { hasText: 'loud and clear' }).waitFor();
  await assertAccessible(ann, 'the dashboard with a conversation open');
  await assertAccessible(visitor, 'the landing page with a conversation');

  await ann.getByRole('button', { name: 'Hang up' }).click();
  await visitor.locator('#status', { hasText: 'The agent ended the call' }).waitFor();
  await ann.locator('#calls tr', { hasText: 'Ann Agent' }).waitFor();
  await assertAccessible(ann, 'the dashboard with the call history');
  await assertAccessible(visitor, 'the landing page after a call');

  const phone = await hub.visitor({ ...AXE_CONTEXT, viewport: { width: 390, height: 844 }, isMobile: true, hasTouch: true });
  await assertAccessible(phone, 'the landing page on a phone');

  for (const [p, where] of [[login, 'the sign-in page'], [ann, 'Ann’s dashboard'], [bob, 'Bob’s dashboard'], [visitor, 'the landing page'], [phone, 'the phone']]) {
    // The failed sign-in's 401 is the one error a browser logs on purpose.
    p.errors = p.errors.filter((e) => !(p === login && /401/.test(e)));
    assertNoConsoleErrors(p, where);
  }
  await Promise.all([login, ann, bob, visitor, phone].map((p) => p.context().close()));
});
