// What every browser test file shares: the real hub binary started on loopback with its own
// SQLite file, agents added with the real CLI, Chromium (Debian's) with fake media devices, a
// signed-in dashboard, polling for a condition, and axe-core run inside a page.
//
// Each test file starts its own hub and database, so what one file stores (an agent's chosen
// status, chat history) never leaks into another.

import assert from 'node:assert/strict';
import { spawn, execFileSync } from 'node:child_process';
import { mkdtempSync, mkdirSync } from 'node:fs';
import { createHmac } from 'node:crypto';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { chromium } from 'playwright-core';

export const ROOT = resolve(import.meta.dirname, '../..');
export const SHOTS = join(ROOT, 'docs/screenshots');
export const TWILIO_TOKEN = 'browser-test-twilio-token';
export const PASSWORD = 'correct horse battery';
const BIN = process.env.SWITCHBOARD_BIN || join(ROOT, 'target/debug/switchboard');
const AXE = createRequire(import.meta.url).resolve('axe-core/axe.min.js');
const CHROMIUM_FLAGS = [
  '--no-sandbox', '--disable-gpu', '--disable-background-networking', '--disable-component-update',
  '--disable-sync', '--use-fake-ui-for-media-stream', '--use-fake-device-for-media-stream',
  '--allow-loopback-in-peer-connection',
];

/** A hub of our own for one test file: its database, its process, its address, a browser. */
export class TestHub {
  constructor() {
    mkdirSync(SHOTS, { recursive: true });
    this.db = `sqlite://${join(mkdtempSync(join(tmpdir(), 'sb-browser-')), 'hub.db')}`;
  }

  /** Adds agents (with the CLI), starts the hub and Chromium. */
  async start(agents) {
    for (const [email, name] of agents) this.addAgent(email, name);
    await this.serve('127.0.0.1:0');
    this.browser = await chromium.launch({ executablePath: process.env.CHROMIUM_BIN || '/usr/bin/chromium', headless: true, args: CHROMIUM_FLAGS });
  }

  addAgent(email, name) {
    execFileSync(BIN, ['user', 'add', '--email', email, '--name', name, '--role', 'agent', '--company', 'acme', '--database-url', this.db], {
      env: { ...process.env, SWITCHBOARD_PASSWORD: PASSWORD, RUST_LOG: 'warn' },
    });
  }

  /** Starts `switchboard serve` on `bind`; resolves once it logs its address. */
  serve(bind) {
    const args = ['serve', '--bind', bind, '--database-url', this.db, '--twilio-auth-token', TWILIO_TOKEN, '--default-company', 'acme'];
    const child = spawn(BIN, args, { env: { ...process.env, RUST_LOG: 'info' }, stdio: ['ignore', 'ignore', 'pipe'] });
    this.child = child;
    return new Promise((resolveAddress, reject) => {
      let log = '';
      child.stderr.on('data', (chunk) => {
        log += chunk;
        const found = log.match(/listening on (http:\/\/\S+)/);
        if (found) {
          this.base = found[1];
          resolveAddress(this.base);
        }
      });
      child.on('exit', (code) => reject(new Error(`hub exited (${code}):\n${log}`)));
    });
  }

  /** Stops the hub (SIGTERM) and waits for it to exit. */
  stopHub() {
    const child = this.child;
    this.child = null;
    if (!child) return Promise.resolve();
    return new Promise((done) => {
      child.on('exit', done);
      child.kill('SIGTERM');
    });
  }

  async stop() {
    if (this.browser) await this.browser.close();
    await this.stopHub();
  }

  /** A fresh browser context (its own storage) and a page in it. */
  async page(options = {}) {
    const context = await this.browser.newContext({ viewport: { width: 1180, height: 820 }, ...options });
    const p = await context.newPage();
    p.errors = [];
    p.on('console', (message) => message.type() === 'error' && p.errors.push(message.text()));
    p.on('pageerror', (error) => p.errors.push(error.message));
    return p;
  }

  /** A dashboard signed in as `email`, online. */
  async signIn(email, options = {}) {
    return this.signInOn(await this.page(options), email);
  }

  /** Signs in as `email` on a page of one's own (prepared before it loads the dashboard). */
  async signInOn(p, email) {
    await p.goto(`${this.base}/agent`);
    await p.getByLabel('Email').fill(email);
    await p.getByLabel('Password').fill(PASSWORD);
    await p.getByRole('button', { name: 'Sign in' }).click();
    await p.locator('#connection', { hasText: 'online' }).waitFor();
    return p;
  }

  /** The landing page of company acme. */
  async visitor(options = {}) {
    const p = await this.page(options);
    await p.goto(`${this.base}/?company=acme`);
    return p;
  }
}

/**
 * Posts a Twilio status callback for company acme, signed as Twilio signs it (HMAC-SHA1 of the
 * URL and the sorted parameters); resolves with the HTTP status.
 */
export async function postTwilio(base, params) {
  const url = `${base}/api/v1/webhooks/twilio?company=acme`;
  const signed = Object.keys(params).sort().reduce((acc, key) => acc + key + params[key], url);
  const signature = createHmac('sha1', TWILIO_TOKEN).update(signed).digest('base64');
  const headers = { 'X-Twilio-Signature': signature, 'Content-Type': 'application/x-www-form-urlencoded' };
  const response = await fetch(url, { method: 'POST', headers, body: new URLSearchParams(params) });
  return response.status;
}

/** The visitor presses "Call us" (with a name and a note, when given). */
export async function callUs(visitor, { name, note } = {}) {
  if (name) await visitor.getByLabel(/Your name/).fill(name);
  if (note) await visitor.getByLabel(/What is it about/).fill(note);
  await visitor.getByRole('button', { name: 'Call us' }).click();
  const queued = visitor.locator('#queue', { hasText: /ahead|next in line/ });
  await waitFor(() => queued.isVisible(), 'the call to be queued', 10_000).catch(async (error) => {
    error.message += ` (the page says: “${await visitor.locator("#status").textContent()}” “${await visitor.locator("#queue").textContent()}”)`;
    throw error;
  });
}

/** The RTCPeerConnection state of the page's current call. */
export function callState(p) {
  return p.evaluate(() => (window.switchboardCall ? window.switchboardCall.state : 'none'));
}

/** Waits until every page's RTCPeerConnection is connected. */
export async function callsConnected(...pages) {
  const connected = async () => (await Promise.all(pages.map(callState))).every((s) => s === 'connected');
  await waitFor(connected, 'the RTCPeerConnections to connect');
}

export async function waitFor(check, what, ms = 15_000) {
  const deadline = Date.now() + ms;
  while (Date.now() < deadline) {
    if (await check()) return;
    await new Promise((r) => setTimeout(r, 100));
  }
  assert.fail(`timed out waiting for ${what}`);
}

/** Fails on any console error or uncaught exception the page logged. */
export function assertNoConsoleErrors(p, where) {
  assert.deepEqual(p.errors, [], `console errors on ${where}`);
}

/**
 * Runs axe-core (WCAG 2 A and AA rules) in the page as it is now; fails on any serious or
 * critical violation, naming each with the elements it found. The context must be made with
 * `bypassCSP: true`: the pages' policy rightly refuses injected scripts.
 */
export async function assertAccessible(p, where) {
  await p.addScriptTag({ path: AXE });
  const violations = await p.evaluate(async () => {
    const result = await window.axe.run(document, { runOnly: { type: 'tag', values: ['wcag2a', 'wcag2aa', 'wcag21a', 'wcag21aa', 'best-practice'] } });
    return result.violations
      .filter((v) => v.impact === 'serious' || v.impact === 'critical')
      .map((v) => `${v.impact} ${v.id}: ${v.help} — ${v.nodes.map((n) => n.target.join(' ')).join(', ')}`);
  });
  assert.deepEqual(violations, [], `accessibility of ${where}`);
}
