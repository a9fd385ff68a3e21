// The signed-in user's event socket (/api/v1/events): presence of contacts, incoming calls
// (`ring`), `contacts_changed`. Reconnects with exponential backoff when it drops; listeners
// stay registered across reconnections.

import { socketUrl } from './api.js';

const MIN_DELAY_MS = 1000;
const MAX_DELAY_MS = 30000;
const STABLE_MS = 10000; // a connection that lived this long resets the backoff

export class Events {
  constructor() {
    this.listeners = new Map(); // type -> Set of handlers; "open" and "drop" are local events
    this.presence = new Map();  // user id -> "offline" | "online" | "in_meeting"
    this.state = 'closed';      // connecting | open | reconnecting | closed
    this.reconnects = 0;
    this.ws = null;
    this.attempt = 0;
    this.timer = 0;
  }

  /** Calls `fn(message)` for each message of `type`; returns a function that stops it. */
  on(type, fn) {
    if (!this.listeners.has(type)) this.listeners.set(type, new Set());
    this.listeners.get(type).add(fn);
    return () => this.listeners.get(type).delete(fn);
  }

  emit(type, msg) {
    for (const fn of this.listeners.get(type) || []) {
      try { fn(msg); } catch (err) { console.error('stoa: event handler failed', err); }
    }
  }

  start() {
    if (this.ws) return;
    this.state = 'connecting';
    this.connect();
  }

  connect() {
    const ws = new WebSocket(socketUrl('/api/v1/events'));
    this.ws = ws;
    let openedAt = 0;
    ws.onopen = () => {
      openedAt = Date.now();
      this.state = 'open';
      this.emit('open', {});
    };
    ws.onmessage = (ev) => {
      let msg;
      try { msg = JSON.parse(ev.data); } catch { return; }
      if (msg.type === 'presence') this.presence.set(msg.user_id, msg.presence);
      this.emit(msg.type, msg);
    };
    ws.onclose = () => {
      if (this.ws !== ws) return;
      if (openedAt && Date.now() - openedAt > STABLE_MS) this.attempt = 0;
      const delay = Math.min(MIN_DELAY_MS * 2 ** this.attempt, MAX_DELAY_MS) * (0.8 + Math.random() * 0.4);
      this.attempt++;
      this.reconnects++;
      this.state = 'reconnecting';
      this.emit('drop', { delay });
      this.timer = setTimeout(() => this.connect(), delay);
    };
  }

  /** Closes for good (log-out, leaving the app). */
  stop() {
    clearTimeout(this.timer);
    const ws = this.ws;
    this.ws = null;
    this.state = 'closed';
    ws?.close(1000);
  }
}
