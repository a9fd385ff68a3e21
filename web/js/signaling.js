// Signaling: one WebSocket to /ws speaking the JSON protocol of docs/signaling.md.
// Owns the socket, the join handshake, the 5 s keepalive and dead-socket detection.
// Knows nothing about WebRTC or the page.

import { sentence } from './api.js';

const PING_MS = 5000;
const SILENCE_MS = 15000; // the server drops a connection silent this long; so do we
const JOIN_TIMEOUT_MS = 10000;

/** Error codes after which reconnecting with a fresh token cannot help (or must not happen). */
const FINAL_CODES = new Set(['replaced', 'unauthorized', 'forbidden', 'denied', 'removed', 'not_admitted',
  'meeting_locked', 'meeting_cancelled', 'sign_in_required', 'ended']);

/** Participant ids are shown as "p7" (the msid form), whether the JSON carries 7 or "p7". */
export function pid(v) {
  if (typeof v === 'number' || /^\d+$/.test(String(v))) return `p${v}`;
  return String(v);
}

/** A server `error`, or a failure to join, as a JS Error. */
export class SignalError extends Error {
  constructor(code, message, fatal) {
    super(sentence(message || code));
    this.code = code;
    // `final`: do not reconnect. `closed` (server restart, room closed) is worth a retry.
    this.final = FINAL_CODES.has(code);
    this.fatal = fatal || this.final;
  }
}

export class Signaling {
  /**
   * @param {string} url
   * @param {{onClose?: (reason: string) => void}} opts onClose: the socket went away without
   *   `close()` being called (network loss, server restart, server-side close).
   */
  constructor(url, { onClose } = {}) {
    this.url = url;
    this.ws = null;
    this.onClose = onClose || (() => {});
    this.handler = null;
    this.backlog = [];
    this.lastHeard = 0;
    this.timer = 0;
    this.done = false;
    this.failJoin = null; // rejects a pending join()
  }

  /**
   * Opens the socket and sends `join`; resolves with the `joined` message. When the server
   * answers `lobby` instead (the host must admit us), `onLobby` is called and the wait for
   * `joined` has no time limit; pings keep the socket alive meanwhile.
   */
  join(token, { onLobby } = {}) {
    return new Promise((resolve, reject) => {
      const ws = new WebSocket(this.url);
      this.ws = ws;
      let joined = false;
      const fail = (err) => {
        if (joined || this.failJoin !== fail) return;
        this.failJoin = null;
        this.done = true;
        clearTimeout(timeout);
        this.detach();
        try { ws.close(); } catch { /* already closed */ }
        reject(err);
      };
      this.failJoin = fail;
      const timeout = setTimeout(() => fail(new SignalError('timeout', 'timed out joining')), JOIN_TIMEOUT_MS);
      ws.onopen = () => this.send({ type: 'join', token });
      ws.onerror = () => { /* a close event follows */ };
      ws.onclose = (ev) => {
        if (!joined) fail(new SignalError('closed', `connection closed (${ev.code})`));
        else this.lost(`closed (${ev.code})`);
      };
      ws.onmessage = (ev) => {
        let msg;
        try { msg = JSON.parse(ev.data); } catch { return; }
        this.lastHeard = Date.now();
        if (joined) return this.dispatch(msg);
        if (msg.type === 'joined') {
          joined = true;
          this.failJoin = null;
          clearTimeout(timeout);
          this.startKeepalive();
          resolve(msg);
        } else if (msg.type === 'lobby' || msg.type === 'lobby_host') {
          clearTimeout(timeout);
          if (!this.timer) this.timer = setInterval(() => this.send({ type: 'ping' }), PING_MS);
          onLobby?.(msg);
        } else if (msg.type === 'error') {
          fail(new SignalError(msg.code, msg.message, msg.fatal));
        }
      };
    });
  }

  /** Starts delivering messages; those that came after `joined` and before this are replayed. */
  listen(handler) {
    this.handler = handler;
    const queued = this.backlog.splice(0);
    for (const msg of queued) handler(msg);
  }

  dispatch(msg) {
    if (this.handler) this.handler(msg);
    else this.backlog.push(msg);
  }

  /** Sends a message if the socket is open; returns whether it was sent. */
  send(msg) {
    if (this.ws?.readyState !== WebSocket.OPEN) return false;
    this.ws.send(JSON.stringify(msg));
    return true;
  }

  startKeepalive() {
    clearInterval(this.timer);
    this.timer = setInterval(() => {
      if (Date.now() - this.lastHeard > SILENCE_MS) return this.lost('server silent');
      this.send({ type: 'ping' });
    }, PING_MS);
  }

  detach() {
    clearInterval(this.timer);
    if (this.ws) this.ws.onopen = this.ws.onmessage = this.ws.onclose = this.ws.onerror = null;
  }

  /** The connection died under us: report it once. */
  lost(reason) {
    if (this.done) return;
    this.done = true;
    this.detach();
    try { this.ws.close(); } catch { /* already closed */ }
    this.onClose(reason);
  }

  /** Closes on purpose: onClose is not called. */
  close() {
    this.failJoin?.(new SignalError('closed', 'closed by the client'));
    this.done = true;
    this.detach();
    try { this.ws?.close(1000); } catch { /* already closed */ }
  }
}
