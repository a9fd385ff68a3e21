// HTTP API of the Stoa server (new meetings, guest tokens, network-test settings) and the
// room-name rules that the home page and the meeting page share. No WebRTC, no DOM.

/** A room name: 1 to 64 characters of A-Z a-z 0-9 - _ (crates/proto/src/ids.rs). */
export const ROOM_RE = /^[A-Za-z0-9_-]{1,64}$/;

/** An HTTP failure. `fatal` is true when retrying the same request cannot help (4xx). */
export class ApiError extends Error {
  constructor(message, status, code) {
    super(message);
    this.status = status;
    this.code = code;
    this.fatal = status >= 400 && status < 500 && status !== 408 && status !== 429;
    this.final = this.fatal; // meeting.js: stop retrying
  }
}

async function post(path, body) {
  const res = await fetch(path, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify(body ?? {}),
  });
  let data = null;
  try { data = await res.json(); } catch { /* empty or non-JSON body */ }
  if (!res.ok) {
    throw new ApiError(data?.message || `${res.status} ${res.statusText}`, res.status, data?.error);
  }
  return data;
}

async function get(path, { timeoutMs = 0 } = {}) {
  const ctl = new AbortController();
  const timer = timeoutMs ? setTimeout(() => ctl.abort(), timeoutMs) : 0;
  let res;
  try {
    res = await fetch(path, { headers: { accept: 'application/json' }, signal: ctl.signal, cache: 'no-store' });
  } catch (err) {
    throw new ApiError(ctl.signal.aborted ? 'the server did not answer in time' : err.message || String(err), 0);
  } finally {
    clearTimeout(timer);
  }
  let data = null;
  try { data = await res.json(); } catch { /* empty or non-JSON body */ }
  if (!res.ok) {
    throw new ApiError(data?.message || `${res.status} ${res.statusText}`, res.status, data?.error);
  }
  if (data == null) throw new ApiError('the server did not answer with JSON', res.status);
  return data;
}

/** `POST /api/v1/meetings` → `{room, url}`. */
export const createMeeting = () => post('/api/v1/meetings', {});

/** `POST /api/v1/rooms/{room}/join` → `{token, identity, name, room}`. */
export const joinRoom = (room, name) =>
  post(`/api/v1/rooms/${encodeURIComponent(room)}/join`, { name });

/** `GET /api/v1/nettest` → `{host, stun, stun_alt, turn: {udp, tcp, tls}|null, username, credential, media}`. */
export const getNetTest = () => get('/api/v1/nettest', { timeoutMs: 3000 });

/** The room a meeting page is for: the last segment of `/m/{room}`. */
export function roomFromLocation(loc = location) {
  const seg = loc.pathname.split('/').filter(Boolean).pop() || '';
  const room = decodeURIComponent(seg);
  // Opened as a plain file (development): allow ?room=.
  if (!ROOM_RE.test(room)) return new URLSearchParams(loc.search).get('room') || room;
  return room;
}

/** Parses what a person pasted: a meeting link (`https://host/m/abc`, `/m/abc`) or a bare room name. */
export function roomFromInput(text) {
  let s = text.trim();
  const m = s.match(/\/m\/([^/?#\s]+)/);
  if (m) s = m[1];
  try { s = decodeURIComponent(s); } catch { /* keep as typed */ }
  return ROOM_RE.test(s) ? s : null;
}
