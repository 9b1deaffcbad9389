// The dashboard's call table: history from GET /api/v1/calls on open (newest first, a page at
// a time, filtered by status), then live `call_status_changed` frames on top. Rows are keyed by
// call id, so a live change and the history never show one call twice. Owners by name: the
// history carries `owner_name`; a live frame's owner is looked up among the names seen.

import { api, el } from './switchboard.js';

const PAGE = 25;
const dateTime = new Intl.DateTimeFormat(undefined, { dateStyle: 'medium', timeStyle: 'short' });

export class PhoneCalls {
  /**
   * @param {object} ui
   * @param {HTMLElement} ui.body the table body
   * @param {HTMLSelectElement} ui.filter status filter ('' for all)
   * @param {HTMLButtonElement} ui.more loads the next page
   * @param {() => string} token the current token
   * @param {(id: string) => string|undefined} nameOf a user's name, if known now
   */
  constructor(ui, token, nameOf) {
    Object.assign(this, { ui, token, nameOf });
    this.rows = new Map(); // call id -> {row, call}
    this.ownerNames = new Map();
    this.cursor = null;
    ui.filter.addEventListener('change', () => this.reload());
    ui.more.addEventListener('click', () => this.load());
  }

  /** Starts over from the newest page (on open, after a reconnect, on a new filter). */
  async reload() {
    this.rows.clear();
    this.ui.body.replaceChildren();
    this.cursor = null;
    await this.load();
  }

  async load() {
    const query = new URLSearchParams({ limit: String(PAGE) });
    if (this.ui.filter.value) query.set('status', this.ui.filter.value);
    if (this.cursor) query.set('before', this.cursor);
    const page = await api(`/api/v1/calls?${query}`, { token: this.token() }).catch(() => null);
    if (!page) return;
    for (const call of page.calls) {
      if (call.owner_id && call.owner_name) this.ownerNames.set(call.owner_id, call.owner_name);
      if (!this.rows.has(call.id)) this.put(call, 'append');
    }
    this.cursor = page.next_cursor;
    this.ui.more.hidden = !this.cursor;
  }

  /** A live change: the row moves to the top (or appears, if the filter lets it in). */
  live(frame) {
    const filter = this.ui.filter.value;
    if (filter && filter !== frame.status) {
      const known = this.rows.get(frame.call_id);
      if (known) known.row.remove();
      this.rows.delete(frame.call_id);
      return;
    }
    const before = this.rows.get(frame.call_id);
    const call = {
      ...(before ? before.call : { created_at: frame.at }),
      id: frame.call_id,
      status: frame.status,
      from: frame.from,
      to: frame.to,
      owner_id: frame.owner_id,
      ended_reason: frame.ended_reason,
      updated_at: frame.at,
    };
    this.put(call, 'prepend');
  }

  ownerName(call) {
    if (!call.owner_id) return '—';
    return call.owner_name || this.nameOf(call.owner_id) || this.ownerNames.get(call.owner_id) || call.owner_id;
  }

  put(call, where) {
    const known = this.rows.get(call.id);
    const row = known ? known.row : el('tr');
    row.dataset.callId = call.id;
    row.className = `call ${call.status}`;
    const at = call.updated_at || call.created_at;
    const cells = [call.status, call.from || '—', call.to || '—', this.ownerName(call), call.ended_reason || '', at ? dateTime.format(new Date(at)) : ''];
    row.replaceChildren(...cells.map((v) => el('td', '', v)));
    this.rows.set(call.id, { row, call });
    if (where === 'prepend') this.ui.body.prepend(row);
    else this.ui.body.append(row);
  }
}
