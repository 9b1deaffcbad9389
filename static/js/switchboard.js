// Switchboard client: one WebSocket to the hub. It authenticates with an `auth` frame (no token
// in the URL), reconnects with exponential backoff and full jitter, asks for a fresh token
// before reconnecting when the old one has expired or was refused, refreshes it on the open
// connection before it expires, correlates requests with `ref` and a timeout, and dispatches
// frames to handlers by `type`. Plain ES module, no dependencies.

const BACKOFF_BASE_MS = 500;
const BACKOFF_CAP_MS = 30_000;
const REQUEST_TIMEOUT_MS = 10_000;
/// Refresh a token this long before it expires.
const REFRESH_EARLY_MS = 60_000;

/** Seconds-since-epoch `exp` of a JWT, or 0 when it cannot be read. */
export function tokenExpiry(token) {
  try {
    const payload = token.split('.')[1].replace(/-/g, '+').replace(/_/g, '/');
    return JSON.parse(atob(payload)).exp || 0;
  } catch {
    return 0;
  }
}

export class SwitchboardClient {
  /**
   * @param {object} options
   * @param {(why: {expired: boolean, refused: boolean}) => Promise<string>} options.getToken
   *        a token for the user; called again when the current one is expired or refused
   * @param {string} [options.url] the WebSocket URL; default: this page's host, path /ws
   */
  constructor({ getToken, url }) {
    this.getToken = getToken;
    this.url = url || `${location.protocol === 'https:' ? 'wss' : 'ws'}://${location.host}/ws`;
    this.handlers = new Map();
    this.pending = new Map();
    this.nextRef = 1;
    this.attempt = 0;
    this.state = 'idle';
    this.token = null;
    this.refused = false;
    this.stopped = false;
  }

  /** Calls `handler(frame)` for every frame of `type` (`*` for all; `state` for state changes). */
  on(type, handler) {
    if (!this.handlers.has(type)) this.handlers.set(type, new Set());
    this.handlers.get(type).add(handler);
    return () => this.handlers.get(type).delete(handler);
  }

  emit(type, value) {
    for (const handler of this.handlers.get(type) || []) {
      try {
        handler(value);
      } catch (error) {
        console.error(`handler for ${type} failed`, error);
      }
    }
  }

  setState(state) {
    this.state = state;
    this.emit('state', state);
  }

  async connect() {
    this.stopped = false;
    const expired = !this.token || tokenExpiry(this.token) * 1000 < Date.now() + REFRESH_EARLY_MS;
    if (expired || this.refused) {
      try {
        this.token = await this.getToken({ expired, refused: this.refused });
        this.refused = false;
      } catch (error) {
        this.setState('signed-out');
        this.emit('auth_failed', error);
        return;
      }
    }
    this.setState(this.attempt === 0 ? 'connecting' : 'reconnecting');
    const ws = new WebSocket(this.url);
    this.ws = ws;
    ws.onopen = () => ws.send(JSON.stringify({ type: 'auth', token: this.token }));
    ws.onmessage = (event) => this.receive(event.data);
    ws.onclose = (event) => this.closed(ws, event);
  }

  receive(text) {
    let frame;
    try {
      frame = JSON.parse(text);
    } catch {
      return;
    }
    if (frame.type === 'connected') {
      this.attempt = 0;
      this.setState('connected');
      this.scheduleRefresh();
    }
    if (frame.ref !== undefined && this.pending.has(frame.ref)) {
      const { resolve, reject, timer } = this.pending.get(frame.ref);
      this.pending.delete(frame.ref);
      clearTimeout(timer);
      if (frame.type === 'error' || frame.type === 'function_error') reject(frame);
      else resolve(frame);
    }
    this.emit(frame.type, frame);
    this.emit('*', frame);
  }

  closed(ws, event) {
    if (ws !== this.ws) return;
    clearTimeout(this.refreshTimer);
    for (const { reject, timer } of this.pending.values()) {
      clearTimeout(timer);
      reject({ type: 'error', code: 'disconnected', message: 'the connection closed' });
    }
    this.pending.clear();
    if (this.stopped) {
      this.setState('closed');
      return;
    }
    // 4001: the token was refused or expired; get a fresh one before trying again.
    if (event.code === 4001) this.refused = true;
    this.setState('reconnecting');
    const delay = Math.random() * Math.min(BACKOFF_CAP_MS, BACKOFF_BASE_MS * 2 ** this.attempt);
    this.attempt += 1;
    this.retryTimer = setTimeout(() => this.connect(), delay);
  }

  /** Sends a fresh token on the open connection a minute before the current one expires. */
  scheduleRefresh() {
    clearTimeout(this.refreshTimer);
    const wait = tokenExpiry(this.token) * 1000 - Date.now() - REFRESH_EARLY_MS;
    if (wait <= 0) return;
    this.refreshTimer = setTimeout(async () => {
      try {
        this.token = await this.getToken({ expired: true, refused: false });
        await this.request({ type: 'auth', token: this.token });
        this.scheduleRefresh();
      } catch {
        // The server closes with 4001 at expiry; reconnecting fetches a token then.
      }
    }, Math.min(wait, 2 ** 31 - 1));
  }

  /** Sends a frame without waiting for an answer. */
  send(frame) {
    if (this.ws && this.ws.readyState === WebSocket.OPEN) {
      this.ws.send(JSON.stringify(frame));
      return true;
    }
    return false;
  }

  /** Sends a frame with a fresh `ref`; resolves with the answer, rejects with an error frame. */
  request(frame, timeoutMs = REQUEST_TIMEOUT_MS) {
    const ref = this.nextRef++;
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        this.pending.delete(ref);
        reject({ type: 'error', code: 'timeout', message: 'no answer in time' });
      }, timeoutMs);
      this.pending.set(ref, { resolve, reject, timer });
      if (!this.send({ ...frame, ref })) {
        this.pending.delete(ref);
        clearTimeout(timer);
        reject({ type: 'error', code: 'disconnected', message: 'not connected' });
      }
    });
  }

  /** Closes for good (no reconnect). */
  close() {
    this.stopped = true;
    clearTimeout(this.retryTimer);
    clearTimeout(this.refreshTimer);
    if (this.ws) this.ws.close(1000);
  }
}

/** `fetch` for the hub's JSON API; throws `{status, error, message}` on failure. */
export async function api(path, { method = 'GET', token, body } = {}) {
  const headers = { Accept: 'application/json' };
  if (token) headers.Authorization = `Bearer ${token}`;
  if (body !== undefined) headers['Content-Type'] = 'application/json';
  const response = await fetch(path, { method, headers, body: body === undefined ? undefined : JSON.stringify(body) });
  const data = await response.json().catch(() => ({}));
  if (!response.ok) throw { status: response.status, error: data.error, message: data.message || response.statusText };
  return data;
}

/** A text node's worth of user-supplied text: never HTML. */
export function text(element, value) {
  element.textContent = value == null ? '' : String(value);
  return element;
}

/** Creates an element with a class and (text) content. */
export function el(tag, className, content) {
  const node = document.createElement(tag);
  if (className) node.className = className;
  if (content !== undefined) text(node, content);
  return node;
}
