// HTTP API of the Stoa server (docs/api.md): accounts, meetings, contacts, guest tokens, a
// call's server-side statistics and network-test settings, plus the room-name rules that the pages share. No WebRTC, no DOM.

/**
 * A server's or a browser's phrase ("no such meeting") as a sentence of its own: capitalised,
 * with a full stop, so pages never paste it raw into one of theirs.
 */
export function sentence(text) {
  const s = String(text ?? '').trim();
  if (!s) return '';
  return s[0].toUpperCase() + s.slice(1) + (/[.!?…]$/.test(s) ? '' : '.');
}

/** A room name: 1 to 64 characters of A-Z a-z 0-9 - _ (crates/proto/src/ids.rs). */
export const ROOM_RE = /^[A-Za-z0-9_-]{1,64}$/;

const API = '/api/v1';
const enc = encodeURIComponent;

/**
 * An HTTP failure: `code` and `field` come from the `{error, message, field}` body.
 * `fatal` is true when retrying the same request cannot help (4xx).
 */
export class ApiError extends Error {
  constructor(message, status, code, field) {
    super(sentence(message));
    this.status = status;
    this.code = code;
    this.field = field || null;
    this.fatal = status >= 400 && status < 500 && status !== 408 && status !== 429;
    this.final = this.fatal; // meeting.js: stop retrying
  }
}

/** One JSON request; resolves with the answer's JSON (null for an empty body). */
async function request(method, path, { body, timeoutMs = 0, token = null } = {}) {
  const ctl = new AbortController();
  const timer = timeoutMs ? setTimeout(() => ctl.abort(), timeoutMs) : 0;
  const headers = { accept: 'application/json' };
  if (body !== undefined) headers['content-type'] = 'application/json';
  if (token) headers.authorization = `Bearer ${token}`;
  let res;
  try {
    res = await fetch(API + path, {
      method,
      headers,
      body: body === undefined ? undefined : JSON.stringify(body),
      signal: ctl.signal,
      cache: 'no-store',
      credentials: 'same-origin',
    });
  } catch (err) {
    throw new ApiError(ctl.signal.aborted ? 'the server did not answer in time' : err.message || 'could not reach the server', 0);
  } finally {
    clearTimeout(timer);
  }
  let data = null;
  try { data = await res.json(); } catch { /* empty or non-JSON body */ }
  if (!res.ok) {
    throw new ApiError(data?.message || `${res.status} ${res.statusText}`, res.status, data?.error, data?.field);
  }
  return data;
}

const get = (path, opts) => request('GET', path, opts);
const post = (path, body = {}) => request('POST', path, { body });
const patch = (path, body) => request('PATCH', path, { body });
const put = (path, body) => request('PUT', path, { body });
const del = (path) => request('DELETE', path);

/** Every item of a paged list (`{items, next_offset}`), following `next_offset`. */
async function all(path, max = 1000) {
  const items = [];
  let offset = 0;
  while (offset != null && items.length < max) {
    const sep = path.includes('?') ? '&' : '?';
    const page = await get(`${path}${sep}limit=100&offset=${offset}`);
    items.push(...(page?.items || []));
    offset = page?.next_offset ?? null;
  }
  return items;
}

// ---- accounts ----------------------------------------------------------------------------

export const signup = (email, password, displayName) =>
  post('/auth/signup', { email, password, display_name: displayName });
export const login = (email, password) => post('/auth/login', { email, password });
export const logout = () => post('/auth/logout');
export const changePassword = (current, next) =>
  put('/me/password', { current_password: current, new_password: next });

/** Deletes the signed-in account (`DELETE /me`, the password again); the session ends. */
export const deleteAccount = (password) => request('DELETE', '/me', { body: { password } });

/** The signed-in user, or null when nobody is signed in (`GET /session`: no 401 when signed out). */
export async function getMe() {
  const { user } = await get('/session', { timeoutMs: 5000 });
  return user || null;
}

// ---- meetings ----------------------------------------------------------------------------

/**
 * `POST /meetings`. Signed out, `{}` gives an ad-hoc link `{room, url}`; signed in, `draft`
 * (`{title, ...}`) is stored and the answer is the Meeting.
 */
export const createMeeting = (draft = {}) => post('/meetings', draft);
export const listMeetings = () => all('/meetings');
export const getMeeting = (id) => get(`/meetings/${enc(id)}`);
export const updateMeeting = (id, fields) => patch(`/meetings/${enc(id)}`, fields);
export const cancelMeeting = (id) => del(`/meetings/${enc(id)}`);
/** Declines the call of meeting `id` (an invitee); its host is told. */
export const declineCall = (id) => post(`/meetings/${enc(id)}/decline`);
export const calendarUrl = (id) => `${API}/meetings/${enc(id)}/calendar.ics`;
export const listHistory = () => all('/history', 200);

/**
 * `POST /rooms/{room}/join` → `{token, room, identity, name, host}`. `name` may be omitted
 * when signed in (the display name is used); `hostKey` is an ad-hoc room creator's key.
 */
export const joinRoom = (room, name, hostKey) => post(`/rooms/${enc(room)}/join`, {
  ...(name ? { name } : {}),
  ...(hostKey ? { host_key: hostKey } : {}),
});
/** Who is in the call now (`{count, names}`), as the screen before joining shows it. */
export const roomPeople = (room) => get(`/rooms/${enc(room)}/people`, { timeoutMs: 5000 });
/** The server's statistics of a call; `token` must be the host's (room-admin) access token. */
export const roomStats = (room, token) => get(`/rooms/${enc(room)}/stats`, { token, timeoutMs: 5000 });

// ---- contacts ----------------------------------------------------------------------------

export const searchUsers = (q) => get(`/users?q=${enc(q)}&limit=20`).then((p) => p.items || []);
export const listContacts = () => all('/contacts');
export const contactRequests = () => get('/contacts/requests');
/** Resolves with `"pending"` or `"accepted"` (they had already asked us). */
export const requestContact = (userId) => post('/contacts/requests', { user_id: userId }).then((r) => r?.status);
export const acceptRequest = (userId) => post(`/contacts/requests/${enc(userId)}/accept`);
export const declineRequest = (userId) => post(`/contacts/requests/${enc(userId)}/decline`);
export const withdrawRequest = (userId) => del(`/contacts/requests/${enc(userId)}`);
export const removeContact = (userId) => del(`/contacts/${enc(userId)}`);
export const listBlocks = () => all('/blocks');
export const block = (userId) => post('/blocks', { user_id: userId });
export const unblock = (userId) => del(`/blocks/${enc(userId)}`);
/** `POST /contacts/{id}/call` → the instant Meeting; the contact's app rings. */
export const callContact = (userId) => post(`/contacts/${enc(userId)}/call`);

/** `GET /nettest` → `{host, stun, stun_alt, turn: {udp, tcp, tls}|null, username, credential, media}`. */
export async function getNetTest() {
  const cfg = await get('/nettest', { timeoutMs: 3000 });
  if (cfg == null) throw new ApiError('the server did not answer with JSON', 200);
  return cfg;
}

/** The ws:// or wss:// URL of a socket path on this server. */
export function socketUrl(path, loc = location) {
  return `${loc.protocol === 'https:' ? 'wss' : 'ws'}://${loc.host}${path}`;
}

// ---- room names --------------------------------------------------------------------------

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

/** A `?next=` target if it is a path on this site, else `fallback`. */
export function safeNext(next, fallback = '/app') {
  if (!next || !next.startsWith('/') || next.startsWith('//') || next.startsWith('/\\')) return fallback;
  try {
    const url = new URL(next, location.origin);
    return url.origin === location.origin ? url.pathname + url.search + url.hash : fallback;
  } catch {
    return fallback;
  }
}
