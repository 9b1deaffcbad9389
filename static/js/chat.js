// Chat for the pages (docs/protocol.md §8), on top of a SwitchboardClient: the conversations a
// page shows, their messages by seq, typing and read marks. Nothing said is lost: every send
// carries a client_id (a retry is stored once), and after every reconnect each shown
// conversation asks for what came after the last seq it saw.

import { api, el, text } from './switchboard.js';

/** How long a `typing` notice holds before it is taken as stopped. */
export const TYPING_LAPSES_MS = 6_000;
/** How often a page says it is still typing. */
const TYPING_REPEAT_MS = 2_000;

export class Chat {
  /** @param {import('./switchboard.js').SwitchboardClient} client */
  constructor(client) {
    this.client = client;
    /** id → {messages: Map<seq, message>, lastSeq, oldest, hasOlder, readBy: Map<userId, seq>, typing: Map<userId, {user, until}>} */
    this.conversations = new Map();
    this.listeners = new Set();
    this.typingSent = new Map();
    client.on('message', (frame) => this.add(frame.message));
    client.on('message_sent', (frame) => this.add(frame.message));
    client.on('typing', (frame) => this.typed(frame));
    client.on('conversation_read', (frame) => this.read(frame.conversation, frame.user.id, frame.seq));
    let connectedBefore = false;
    client.on('connected', () => {
      if (connectedBefore) this.catchUp();
      connectedBefore = true;
    });
  }

  /** Calls `listener(conversationId, what)` on every change (`what`: message, typing, read). */
  onChange(listener) {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  changed(id, what) {
    for (const listener of this.listeners) listener(id, what);
  }

  entry(id) {
    if (!this.conversations.has(id)) {
      this.conversations.set(id, { messages: new Map(), lastSeq: 0, oldest: null, hasOlder: false, readBy: new Map(), typing: new Map(), shown: false });
    }
    return this.conversations.get(id);
  }

  /** Messages of a conversation in seq order. */
  messages(id) {
    return [...this.entry(id).messages.values()].sort((a, b) => a.seq - b.seq);
  }

  add(message) {
    const entry = this.entry(message.conversation);
    entry.messages.set(message.seq, message);
    entry.lastSeq = Math.max(entry.lastSeq, message.seq);
    if (entry.oldest === null || message.seq < entry.oldest) entry.oldest = message.seq;
    entry.typing.delete(message.from.id);
    this.changed(message.conversation, 'message');
  }

  typed(frame) {
    const entry = this.entry(frame.conversation);
    if (frame.active) entry.typing.set(frame.user.id, { user: frame.user, until: Date.now() + TYPING_LAPSES_MS });
    else entry.typing.delete(frame.user.id);
    this.changed(frame.conversation, 'typing');
    setTimeout(() => this.changed(frame.conversation, 'typing'), TYPING_LAPSES_MS + 50);
  }

  /** Who is typing in a conversation now. */
  typing(id) {
    const now = Date.now();
    return [...this.entry(id).typing.values()].filter((t) => t.until > now).map((t) => t.user);
  }

  read(id, userId, seq) {
    const entry = this.entry(id);
    entry.readBy.set(userId, Math.max(entry.readBy.get(userId) || 0, seq));
    this.changed(id, 'read');
  }

  /** Whether someone other than `me` has read up to `seq`. */
  seenBy(id, me, seq) {
    return [...this.entry(id).readBy.entries()].some(([user, upTo]) => user !== me && upTo >= seq);
  }

  history(id, query) {
    return api(`/api/v1/conversations/${encodeURIComponent(id)}/messages?${query}`, { token: this.client.token });
  }

  /** Starts showing a conversation: its newest page of history. */
  async show(id) {
    const entry = this.entry(id);
    entry.shown = true;
    const page = await this.history(id, 'limit=50');
    for (const message of page.messages) this.add(message);
    entry.hasOlder = page.has_more;
    this.changed(id, 'message');
  }

  /** The page before the oldest message shown (scrolling back); false when there is none. */
  async older(id) {
    const entry = this.entry(id);
    if (!entry.hasOlder || entry.oldest === null) return false;
    const page = await this.history(id, `limit=50&before=${entry.oldest}`);
    for (const message of page.messages) this.add(message);
    entry.hasOlder = page.has_more;
    return page.messages.length > 0;
  }

  /** What the shown conversations missed while the connection was down. */
  async catchUp() {
    for (const [id, entry] of this.conversations) {
      if (!entry.shown) continue;
      let more = true;
      while (more) {
        const page = await this.history(id, `limit=200&after=${entry.lastSeq}`).catch(() => ({ messages: [], has_more: false }));
        for (const message of page.messages) this.add(message);
        more = page.has_more && page.messages.length > 0;
      }
    }
    this.changed(null, 'caught-up');
  }

  /**
   * Sends a message (to a conversation, or `{to}` a user, or neither for a visitor); retried on
   * a dropped connection with the same client_id, so it is stored once.
   */
  async send(target, textValue, meta) {
    const frame = { type: 'send_message', text: textValue, client_id: crypto.randomUUID() };
    if (typeof target === 'string') frame.conversation = target;
    else if (target && target.to) frame.to = target.to;
    if (meta) frame.meta = meta;
    for (let attempt = 0; ; attempt += 1) {
      try {
        const sent = await this.client.request(frame);
        this.typingSent.delete(sent.message.conversation);
        return sent.message;
      } catch (error) {
        const retry = (error.code === 'disconnected' || error.code === 'timeout') && attempt < 5;
        if (!retry) throw error;
        await new Promise((resolve) => setTimeout(resolve, 1000 * (attempt + 1)));
      }
    }
  }

  /** Says this page is typing (at most once per 2 s), or stopped. */
  setTyping(id, active) {
    const last = this.typingSent.get(id);
    if (active && last && Date.now() - last < TYPING_REPEAT_MS) return;
    if (!active && !last) return;
    this.client.send({ type: 'typing', conversation: id, active });
    if (active) this.typingSent.set(id, Date.now());
    else this.typingSent.delete(id);
  }

  /** Marks a conversation read up to its newest message. */
  async markRead(id) {
    const entry = this.entry(id);
    if (!entry.lastSeq) return null;
    const marked = await this.client.request({ type: 'mark_read', conversation: id, seq: entry.lastSeq }).catch(() => null);
    return marked;
  }
}

/**
 * Shows a conversation in a list element and its typing line: every message as text (never
 * HTML), "Seen" under the viewer's last message once someone else read it. Older history
 * loaded above keeps what was on screen in place (`keepPosition`); anything new scrolls to
 * the end.
 */
export function renderConversation(chat, id, me, { list, typing }, keepPosition = false) {
  const messages = chat.messages(id);
  const fromBottom = list.scrollHeight - list.scrollTop;
  list.replaceChildren();
  const mine = messages.filter((m) => m.from.id === me);
  const lastMine = mine.length ? mine[mine.length - 1].seq : 0;
  for (const message of messages) {
    const ours = message.from.id === me;
    const item = el('li', ours ? 'message mine' : 'message theirs');
    item.append(el('span', 'who', ours ? 'You' : message.from.name), el('span', 'text', message.text));
    if (ours && message.seq === lastMine && chat.seenBy(id, me, message.seq)) item.append(el('span', 'seen muted', 'Seen'));
    list.append(item);
  }
  const typers = chat.typing(id);
  text(typing, typers.length ? `${typers[0].name} is typing…` : '');
  list.scrollTop = keepPosition ? list.scrollHeight - fromBottom : list.scrollHeight;
}

/** `support:<id>`, `direct:<a>:<b>`: the id of a visitor's own conversation. */
export function supportOf(userId) {
  return `support:${userId}`;
}
