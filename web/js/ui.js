// UI: everything the meeting page shows. Renders tiles, audio elements, the people list, chat,
// controls, the host's lobby panel and moderation buttons, the active speaker's highlight and
// the "Follow speaker" layout, toasts and the screens (pre-join, meeting, left) from state that
// meeting.js hands in, and reports clicks back through the handlers given to initUi. No
// networking (the diagnostics panel is diagnostics.js).

import { icon, fillIcons } from './icons.js';
import { initPip, refreshPip, closePip } from './pip.js';

const $ = (sel) => document.querySelector(sel);
const el = (tag, cls, text) => {
  const e = document.createElement(tag);
  if (cls) e.className = cls;
  if (text != null) e.textContent = text;
  return e;
};

let handlers = {};
let firstFrameCb = null;

// ---- setup -----------------------------------------------------------------------------

export function initUi(h) {
  handlers = h;
  fillIcons();
  for (const e of document.querySelectorAll('.room-name')) e.textContent = h.room;
  for (const e of document.querySelectorAll('.meeting-link')) e.textContent = meetingLink();

  $('#join-form').addEventListener('submit', (e) => {
    e.preventDefault();
    const input = $('#join-name');
    const name = input.value.trim();
    if (name) return h.onJoin(name);
    // Only spaces get past `required`: say what is missing instead of doing nothing.
    setJoinError('Enter your name, so that others know who you are.');
    input.setAttribute('aria-invalid', 'true');
    input.focus();
  });
  $('#join-name').addEventListener('input', () => {
    setAvatar($('#preview-avatar'), $('#join-name').value);
    $('#join-name').removeAttribute('aria-invalid');
    setJoinError('');
  });
  $('#pre-mic').onclick = () => h.onToggleMic();
  $('#pre-cam').onclick = () => h.onToggleCam();
  $('#pre-blur').onclick = () => h.onToggleBlur();
  $('#blur-toggle').onchange = () => h.onToggleBlur();
  $('#mic-button').onclick = () => h.onToggleMic();
  $('#cam-button').onclick = () => h.onToggleCam();
  $('#screen-button').onclick = () => h.onToggleScreen();
  $('#stop-presenting').onclick = () => h.onToggleScreen();
  $('#leave-button').onclick = () => h.onLeave();
  $('#rejoin-button').onclick = () => h.onRejoin();
  $('#settings-button').onclick = showSettings;
  $('#chat-button').onclick = () => togglePanel('chat');
  $('#people-button').onclick = () => togglePanel('people');
  $('#panel-close').onclick = () => togglePanel(null);
  for (const b of document.querySelectorAll('[data-panel]')) b.onclick = () => togglePanel(b.dataset.panel, true);
  $('#lock-button').onclick = () => h.onToggleLock();
  $('#end-button').onclick = () => {
    if (confirm('End the meeting for everyone? Everyone in it, and everyone waiting to join, will have to leave.')) h.onEndMeeting();
  };
  initPip($('#pip-button'), pipTrack, () => toast('Nobody has their camera on yet.'));
  $('#hand-button').onclick = () => h.onToggleHand();
  initReactions(h.onReact);
  $('#follow-button').onclick = () => setFollow(!$('#gallery').classList.contains('follow'));
  $('#lobby-panel').addEventListener('click', (e) => {
    const b = e.target.closest('button');
    const id = b?.closest('.lobby-entry')?.dataset.lobbyId;
    if (!id) return;
    if (b.classList.contains('admit')) h.onAdmit(id);
    else if (b.classList.contains('deny')) h.onDeny(id);
  });
  // Host buttons on tiles and in the people list carry their participant in an ancestor.
  for (const box of [$('#grid'), $('#people-list')]) {
    box.addEventListener('click', (e) => {
      const b = e.target.closest('.host-mute, .host-remove, .host-make-host, .host-lower-hand');
      const id = b?.closest('[data-participant]')?.dataset.participant;
      if (!id) return;
      if (b.classList.contains('host-mute')) return h.onHostMute(id);
      if (b.classList.contains('host-lower-hand')) return h.onLowerHand(id);
      const name = b.closest('[data-participant]').querySelector('.name, .person-name')?.textContent || 'this person';
      if (b.classList.contains('host-make-host')) {
        if (confirm(`Make ${name} a host? They will be able to admit, mute and remove people, lock and end the meeting.`)) h.onMakeHost(id);
        return;
      }
      if (confirm(`Remove ${name} from the meeting? They will not be able to come back by themselves.`)) h.onHostRemove(id);
    });
  }
  for (const b of document.querySelectorAll('.copy-link')) b.onclick = copyMeetingLink;
  $('#rename-form').addEventListener('submit', (e) => {
    e.preventDefault();
    const name = $('#rename-input').value.trim();
    if (!name) return toast('Type the name others should see.', 'error');
    h.onRename(name);
  });
  $('#chat-form').addEventListener('submit', (e) => {
    e.preventDefault();
    const input = $('#chat-input');
    const text = input.value.trim();
    if (text && h.onChat(text) !== false) input.value = '';
  });
  for (const s of document.querySelectorAll('select[data-device]')) {
    s.onchange = () => h.onDevice(s.dataset.device, s.value);
  }
  if (!('setSinkId' in HTMLMediaElement.prototype)) $('#speaker-field').hidden = true;

  // Chat starts open where there is room for it, so its input is usable straight away.
  togglePanel(window.innerWidth >= 900 ? 'chat' : null);
  new ResizeObserver(() => layout()).observe($('#gallery'));
  const tick = () => { $('#clock').textContent = new Date().toLocaleTimeString([], { hour: '2-digit', minute: '2-digit' }); };
  tick();
  setInterval(tick, 15000);
}

/** Called with performance.now() when the first remote video frame is shown. */
/** The link that brings others into this meeting (the page's own address, without query). */
function meetingLink() { return location.origin + location.pathname; }

async function copyMeetingLink() {
  try {
    await navigator.clipboard.writeText(meetingLink());
    toast('Meeting link copied');
  } catch {
    toast(`Copy the link from the address bar: ${meetingLink()}`, 'error');
  }
}

export function onFirstFrame(cb) { firstFrameCb = cb; }

// ---- screens ---------------------------------------------------------------------------

const OVERLAY_TEXT = { joining: 'Joining…', reconnecting: 'Reconnecting…', lobby: 'Waiting for the host to let you in…' };
const ENDED = new Set(['left', 'removed', 'denied']);

/** state: prejoin | joining | lobby | joined | reconnecting | left | removed | denied */
export function setState(state, detail) {
  if (ENDED.has(state)) $('#toasts').replaceChildren();
  document.body.dataset.state = state;
  const overlay = $('#overlay');
  overlay.classList.toggle('show', state in OVERLAY_TEXT);
  overlay.classList.toggle('waiting', state === 'lobby');
  $('#overlay-text').textContent = detail || OVERLAY_TEXT[state] || '';
  $('#join-button').disabled = state === 'joining';
  if (state !== 'joined') { setHost(false); renderLobby([]); }
  if (ENDED.has(state)) closePip();
}

/**
 * The screen after a call. `rejoinLabel` null hides the rejoin button; `link` ({href, label})
 * adds a primary link (e.g. to sign in).
 */
export function showLeft(title, detail = '', { rejoinLabel = 'Rejoin', link = null } = {}) {
  $('#left-title').textContent = title;
  $('#left-detail').textContent = detail;
  $('#rejoin-button').textContent = rejoinLabel || '';
  $('#rejoin-button').hidden = !rejoinLabel;
  const a = $('#left-link');
  a.hidden = !link;
  if (link) { a.href = link.href; a.textContent = link.label; }
  $('#settings').open && $('#settings').close();
}

/** A signed-in user joins under their account: no name to type. */
/**
 * The pre-join form for who joins: a signed-in user (`user`) joins under their account, a
 * guest (`null`) types a name. The name field stays hidden until this is known.
 */
export function setAccount(user) {
  $('#join-name-field').hidden = !!user;
  $('#join-name').required = !user;
  $('#join-as').hidden = !user;
  if (user) $('#join-as-name').textContent = user.display_name;
}

// ---- host: moderation controls and the lobby ------------------------------------------

/** Shows the host's controls (lock toggle, mute/remove buttons) or hides them. */
export function setHost(isHost) {
  document.body.classList.toggle('is-host', isHost);
  $('#lock-button').hidden = !isHost;
  $('#end-button').hidden = !isHost;
}

export function setLocked(locked) {
  $('#locked-badge').hidden = !locked;
  const b = $('#lock-button');
  b.innerHTML = icon(locked ? 'lock' : 'unlock');
  b.classList.toggle('active', locked);
  b.setAttribute('aria-pressed', String(locked));
  b.title = locked ? 'Unlock the meeting' : 'Lock the meeting (nobody new can join)';
}

/** The host's list of people waiting to be let in: [{id, name}]. */
export function renderLobby(waiting) {
  const panel = $('#lobby-panel');
  panel.hidden = !waiting.length;
  $('#lobby-count').textContent = String(waiting.length);
  $('#lobby-list').replaceChildren(...waiting.map((w) => {
    const li = el('li', 'lobby-entry');
    li.dataset.lobbyId = w.id;
    const av = el('div', 'avatar small');
    setAvatar(av, w.name, w.id);
    li.append(av, el('span', 'person-name', w.name), el('button', 'pill admit', 'Admit'), el('button', 'ghost small deny', 'Deny'));
    for (const b of li.querySelectorAll('button')) b.type = 'button';
    return li;
  }));
}

/** The Mute and Remove buttons of one participant (visible to the host only). */
function hostButtons() {
  const box = el('div', 'host-controls');
  const mute = el('button', 'icon-button host-mute');
  mute.type = 'button';
  mute.title = 'Mute';
  mute.innerHTML = icon('micOff');
  const remove = el('button', 'icon-button host-remove');
  remove.type = 'button';
  remove.title = 'Remove from the meeting';
  remove.innerHTML = icon('removeUser');
  box.append(mute, remove);
  return box;
}

export function setJoinError(text) { $('#join-error').textContent = text || ''; }

export function setName(name) {
  $('#join-name').value = name;
  if (document.activeElement !== $('#rename-input')) $('#rename-input').value = name;
  setAvatar($('#preview-avatar'), name);
  setAvatar($('#self-view .avatar'), name);
}

// ---- controls and self view ------------------------------------------------------------

/** @param {{micOn, camOn, sharing, canPublish, canChat, canShare}} s */
export function setControls(s) {
  const btn = (sel, on, onIcon, offIcon, onTitle, offTitle) => {
    for (const b of document.querySelectorAll(sel)) {
      b.innerHTML = icon(on ? onIcon : offIcon);
      b.classList.toggle('off', !on);
      b.setAttribute('aria-pressed', String(!on));
      b.title = on ? onTitle : offTitle;
      b.disabled = !s.canPublish;
    }
  };
  btn('#mic-button, #pre-mic', s.micOn, 'mic', 'micOff', 'Turn off microphone', 'Turn on microphone');
  btn('#cam-button, #pre-cam', s.camOn, 'cam', 'camOff', 'Turn off camera', 'Turn on camera');
  const blur = $('#pre-blur');
  blur.classList.toggle('active', s.blurOn);
  blur.setAttribute('aria-pressed', String(s.blurOn));
  blur.title = s.blurOn ? 'Stop blurring your background' : 'Blur your background';
  blur.disabled = !s.canPublish;
  $('#blur-toggle').checked = s.blurOn;
  $('#blur-toggle').disabled = !s.canPublish;
  const screen = $('#screen-button');
  screen.classList.toggle('active', s.sharing);
  screen.setAttribute('aria-pressed', String(s.sharing));
  screen.title = s.sharing ? 'Stop presenting' : 'Present your screen';
  screen.disabled = !s.canPublish || !s.canShare;
  $('#presenting-bar').classList.toggle('show', s.sharing);
  $('#chat-input').disabled = $('#chat-send').disabled = !s.canChat;
  $('#chat-input').placeholder = s.canChat ? 'Send a message to everyone' : 'Chat is turned off for you';
  $('#self-view .mic-state').innerHTML = s.micOn ? '' : icon('micOff');
  const hand = $('#hand-button');
  hand.classList.toggle('active', !!s.handRaised);
  hand.setAttribute('aria-pressed', String(!!s.handRaised));
  hand.title = s.handRaised ? 'Lower your hand (Ctrl+Alt+H)' : 'Raise your hand (Ctrl+Alt+H)';
  $('#self-view').classList.toggle('hand-raised', !!s.handRaised);
}

/** Shows our own camera in the preview (pre-join) and the self view (in call). */
export function setLocalVideo(track, camOn, status = '') {
  for (const box of [$('#preview'), $('#self-view')]) {
    const v = box.querySelector('video');
    attach(v, camOn ? track : null);
    box.classList.toggle('cam-off', !(camOn && track));
  }
  $('#preview-status').textContent = status;
}

export function fillDevices(lists, current) {
  for (const s of document.querySelectorAll('select[data-device]')) {
    const kind = s.dataset.device;
    const devices = lists[kind] || [];
    s.replaceChildren(...devices.map((d, i) => {
      const o = el('option', null, d.label || `${kind === 'audioinput' ? 'Microphone' : kind === 'videoinput' ? 'Camera' : 'Speaker'} ${i + 1}`);
      o.value = d.deviceId;
      return o;
    }));
    if (!devices.length) s.append(el('option', null, kind === 'videoinput' ? 'No camera' : kind === 'audioinput' ? 'No microphone' : 'Default'));
    if (current[kind]) s.value = current[kind];
    s.disabled = !devices.length;
  }
}

// ---- panel, chat -----------------------------------------------------------------------

let panel = null;
let unread = 0;

export function showSettings() {
  if (!$('#settings').open) $('#settings').showModal?.();
}

/** Opens the side panel `name` ('chat', 'people'), or closes it if open (`force`: opens). */
export function togglePanel(name, force = false) {
  panel = !force && panel === name ? null : name;
  document.body.dataset.panel = panel || '';
  for (const b of document.querySelectorAll('[data-panel]')) b.setAttribute('aria-selected', String(b.dataset.panel === panel));
  $('#chat-button').classList.toggle('active', panel === 'chat');
  $('#people-button').classList.toggle('active', panel === 'people');
  if (panel === 'chat') {
    unread = 0;
    $('#chat-badge').hidden = true;
    const log = $('#chat-log');
    log.scrollTop = log.scrollHeight;
  }
  requestAnimationFrame(layout);
}

/** Appends one chat message: {name, text, ts, mine}. */
export function addChat({ name, text, ts, mine }) {
  const log = $('#chat-log');
  const atBottom = log.scrollHeight - log.scrollTop - log.clientHeight < 40;
  const item = el('div', `chat-msg${mine ? ' mine' : ''}`);
  const head = el('div', 'chat-head');
  head.append(el('span', 'chat-name', mine ? 'You' : name), el('time', 'chat-time', fmtTime(ts)));
  const last = log.lastElementChild;
  // Consecutive messages from one sender within two minutes share a header.
  if (last?.dataset.sender === name && ts - Number(last.dataset.ts) < 120000) item.classList.add('cont');
  item.dataset.sender = name;
  item.dataset.ts = String(ts);
  item.append(head, el('div', 'chat-text', text));
  log.append(item);
  if (atBottom || mine) log.scrollTop = log.scrollHeight;
  if (panel !== 'chat' && !mine) {
    unread++;
    const badge = $('#chat-badge');
    badge.textContent = unread > 9 ? '9+' : String(unread);
    badge.hidden = false;
    toast(`${name}: ${text.length > 80 ? `${text.slice(0, 80)}…` : text}`, 'chat');
  }
}

const fmtTime = (ts) => new Date(ts).toLocaleTimeString([], { hour: '2-digit', minute: '2-digit' });

// ---- toasts ----------------------------------------------------------------------------

/** A small message at the bottom; kind: info | error | chat. Returns the element. */
export function toast(text, kind = 'info', ms = kind === 'error' ? 6000 : 3500, action) {
  const box = $('#toasts');
  const t = el('div', `toast ${kind}`, text);
  if (action) {
    const b = el('button', 'pill', action.label);
    b.onclick = () => { t.remove(); action.run(); };
    t.append(b);
  }
  box.append(t);
  while (box.children.length > 4) box.firstElementChild.remove();
  if (ms) setTimeout(() => { t.classList.add('out'); setTimeout(() => t.remove(), 300); }, ms);
  return t;
}

// ---- tiles -----------------------------------------------------------------------------

const tiles = new Map(); // key -> tile element (key: participant id, or "screen:<track id>")
const audios = new Map(); // track id -> <audio>
let sinkId = '';

function attach(video, track) {
  const current = video.srcObject?.getTracks()[0] || null;
  if (current === track) return false;
  video.srcObject = track ? new MediaStream([track]) : null;
  if (track) video.play().catch(() => { /* autoplay retried on the next user gesture */ });
  return true;
}

function watchFirstFrame(video) {
  const done = () => {
    if (firstFrameCb) { const cb = firstFrameCb; firstFrameCb = null; cb(performance.now()); }
  };
  if ('requestVideoFrameCallback' in video) video.requestVideoFrameCallback(done);
  else video.addEventListener('loadeddata', done, { once: true });
}

function initials(name) {
  const parts = String(name || '?').trim().split(/\s+/).filter(Boolean);
  const s = parts.length > 1 ? parts[0][0] + parts[parts.length - 1][0] : (parts[0] || '?').slice(0, 2);
  return s.toUpperCase();
}

function hue(s) {
  let h = 0;
  for (const c of String(s)) h = (h * 31 + c.codePointAt(0)) % 360;
  return h;
}

function setAvatar(node, name, key = name) {
  node.textContent = initials(name);
  node.style.setProperty('--hue', hue(key || '?'));
}

function makeTile(key, screen) {
  const t = el('div', screen ? 'tile screen' : 'tile');
  if (!screen) t.dataset.participant = key;
  t.innerHTML = `<video autoplay playsinline muted></video>
    <div class="avatar-wrap"><div class="avatar"></div></div>
    <div class="nameplate"><span class="hand" aria-label="Hand raised">✋</span><span class="mic-state"></span><span class="name"></span></div>`;
  if (!screen) t.append(hostButtons());
  if (screen) $('#screens').append(t);
  else $('#grid').insertBefore(t, $('#grid > #self-view')); // the self view stays last
  tiles.set(key, t);
  return t;
}

/**
 * Renders every remote participant and track.
 * @param {Map<string, {pid, name, tracks: Array}>} participants  others, by "p7" id
 * @param {Map<string, {id, participant, kind, track}>} remote    received tracks, by server track id
 * @param {{name: string}} me
 */
export function renderMedia(participants, remote, me) {
  const keep = new Set();
  for (const p of participants.values()) {
    const infos = new Map(p.tracks.map((t) => [t.id, t]));
    let cam = null;
    let camInfo = null;
    for (const r of remote.values()) {
      if (r.participant !== p.pid || r.kind !== 'video') continue;
      const info = infos.get(r.id);
      if (info?.source === 'screen') {
        const key = `screen:${r.id}`;
        keep.add(key);
        const t = tiles.get(key) || makeTile(key, true);
        t.dataset.owner = p.pid;
        t.dataset.track = r.id;
        t.querySelector('.name').textContent = `${p.name} is presenting`;
        setAvatar(t.querySelector('.avatar'), p.name, p.pid);
        t.classList.toggle('video-off', r.track.muted);
        if (attach(t.querySelector('video'), r.track)) watchFirstFrame(t.querySelector('video'));
      } else if (!cam || (info && !camInfo)) {
        cam = r;
        camInfo = info;
      }
    }
    keep.add(p.pid);
    const t = tiles.get(p.pid) || makeTile(p.pid, false);
    const mic = p.tracks.find((x) => x.kind === 'audio' && x.source !== 'screen');
    const micOff = !mic || mic.muted;
    t.querySelector('.name').textContent = p.name;
    t.classList.toggle('hand-raised', !!p.hand_raised);
    t.querySelector('.mic-state').innerHTML = micOff ? icon('micOff') : '';
    t.classList.toggle('mic-off', micOff);
    t.querySelector('.host-mute').disabled = micOff;
    t.classList.toggle('video-off', !cam || !!camInfo?.muted || cam.track.muted);
    if (cam) t.dataset.track = cam.id; else delete t.dataset.track;
    setAvatar(t.querySelector('.avatar'), p.name, p.pid);
    if (attach(t.querySelector('video'), cam?.track || null) && cam) watchFirstFrame(t.querySelector('video'));
  }
  for (const [key, t] of tiles) {
    if (!keep.has(key)) { t.remove(); tiles.delete(key); }
  }

  // One <audio> per remote audio track.
  const sink = $('#audio-sink');
  for (const r of remote.values()) {
    if (r.kind !== 'audio') continue;
    let a = audios.get(r.id);
    if (!a) {
      a = el('audio');
      a.autoplay = true;
      a.dataset.track = r.id;
      a.dataset.participant = r.participant;
      if (sinkId) a.setSinkId?.(sinkId).catch(() => {});
      sink.append(a);
      audios.set(r.id, a);
    }
    if (a.srcObject?.getTracks()[0] !== r.track) {
      a.srcObject = new MediaStream([r.track]);
      a.play().catch(() => blockedAudio());
    }
  }
  for (const [id, a] of audios) {
    if (!remote.has(id) || remote.get(id).kind !== 'audio') { a.srcObject = null; a.remove(); audios.delete(id); }
  }

  renderPeople(participants, me);
  applySpeaker();
  const gallery = $('#gallery');
  const presenting = $('#screens').children.length > 0;
  gallery.classList.toggle('presenting', presenting);
  // Like Meet: the self view fills the stage when alone, floats beside one other person,
  // and joins the grid from three people on.
  const self = $('#self-view');
  const inGrid = presenting || participants.size !== 1;
  if (inGrid && self.parentElement !== $('#grid')) $('#grid').append(self);
  if (!inGrid && self.parentElement !== gallery) gallery.append(self);
  gallery.classList.toggle('alone', participants.size === 0);
  $('#people-count').textContent = String(participants.size + 1);
  layout();
  refreshPip();
}

let audioToast = null;
function blockedAudio() {
  if (audioToast?.isConnected) return;
  audioToast = toast('Your browser blocked sound from the meeting.', 'error', 0, {
    label: 'Play sound',
    run: () => { for (const a of audios.values()) a.play().catch(() => {}); },
  });
}

/** Routes all remote audio to the chosen speaker, where the browser can. */
export function setSpeaker(id) {
  sinkId = id;
  for (const a of audios.values()) a.setSinkId?.(id).catch(() => {});
}

// The active speaker ("p7", or null in silence) and the remote participant last heard, whose
// tile "Follow speaker" shows large (once its tile exists; the announcement may come first).
const speaker = { active: null, followed: null, me: null };

/** The server announced the active speaker; `me` is our own id (our self view lights up). */
export function setActiveSpeaker(active, me) {
  speaker.active = active;
  speaker.me = me;
  if (active && active !== me) speaker.followed = active;
  applySpeaker();
  layout();
  refreshPip();
}

/** What picture-in-picture shows: a presented screen, else the last person heard, else anyone's camera. */
function pipTrack() {
  const showing = (t) => t && !t.classList.contains('video-off') && t.querySelector('video').srcObject?.getVideoTracks()[0];
  const all = [...tiles.values()];
  for (const t of [...all.filter((x) => x.classList.contains('screen')), tiles.get(speaker.followed), ...all]) {
    const track = showing(t);
    if (track) return track;
  }
  return null;
}

function applySpeaker() {
  for (const [key, t] of tiles) {
    t.classList.toggle('speaking', key === speaker.active);
    t.classList.toggle('followed', key === speaker.followed);
  }
  $('#self-view').classList.toggle('speaking', !!speaker.active && speaker.active === speaker.me);
}

/** "Follow speaker": the last remote speaker's tile first and large. */
export function setFollow(on) {
  $('#gallery').classList.toggle('follow', on);
  const b = $('#follow-button');
  b.classList.toggle('active', on);
  b.setAttribute('aria-pressed', String(on));
  layout();
}

function renderPeople(participants, me) {
  const list = $('#people-list');
  const row = (name, id, micOff, you, isHost = false, hand = false) => {
    const li = el('li', 'person');
    const av = el('div', 'avatar small');
    setAvatar(av, name, id);
    li.append(av, el('span', 'person-name', you ? `${name} (You)` : name));
    if (hand) li.append(el('span', 'person-hand', '✋'));
    const m = el('span', 'mic-state');
    m.innerHTML = micOff ? icon('micOff') : icon('mic');
    li.append(m);
    if (!you) {
      li.dataset.participant = id;
      const host = hostButtons();
      host.querySelector('.host-mute').disabled = micOff;
      const promote = el('button', 'icon-button host-make-host');
      promote.type = 'button';
      promote.title = 'Make a host';
      promote.innerHTML = icon('makeHost');
      promote.hidden = isHost;
      host.prepend(promote);
      if (hand) {
        const lower = el('button', 'icon-button host-lower-hand');
        lower.type = 'button';
        lower.title = 'Lower their hand';
        lower.innerHTML = icon('hand');
        host.prepend(lower);
      }
      li.append(host);
    }
    return li;
  };
  const rows = [row(me?.name || 'You', me?.id || 'me', !!me?.micOff, true, false, !!me?.handRaised)];
  // Raised hands first, in the order the list had them.
  const others = [...participants.values()].sort((a, b) => Number(!!b.hand_raised) - Number(!!a.hand_raised));
  for (const p of others) {
    const mic = p.tracks.find((x) => x.kind === 'audio' && x.source !== 'screen');
    rows.push(row(p.name, p.pid, !mic || mic.muted, false, p.host, !!p.hand_raised));
  }
  list.replaceChildren(...rows);
}

// ---- reactions -------------------------------------------------------------------------

// The reactions the server accepts (stoa_proto::REACTIONS).
const REACTIONS = ['👍', '👏', '😂', '❤️', '🎉', '😮'];

function initReactions(onReact) {
  const button = $('#react-button');
  const menu = $('#reactions');
  const show = (open) => {
    menu.hidden = !open;
    button.setAttribute('aria-expanded', String(open));
  };
  for (const emoji of REACTIONS) {
    const b = el('button', 'reaction', emoji);
    b.type = 'button';
    b.setAttribute('role', 'menuitem');
    b.title = `React with ${emoji}`;
    b.onclick = () => { onReact(emoji); show(false); };
    menu.append(b);
  }
  button.onclick = () => show(menu.hidden);
  document.addEventListener('click', (e) => {
    if (!menu.hidden && !e.target.closest('.react-wrap')) show(false);
  });
  document.addEventListener('keydown', (e) => { if (e.key === 'Escape') show(false); });
}

/** Floats `emoji` over the tile of `participant` ("p7"), or over the self view for `null`. */
export function showReaction(participant, emoji) {
  const tile = participant ? tiles.get(participant) : $('#self-view');
  if (!tile) return;
  const bubble = el('span', 'reaction-bubble', emoji);
  bubble.setAttribute('aria-hidden', 'true');
  tile.append(bubble);
  setTimeout(() => bubble.remove(), 3000);
}

// ---- layout ----------------------------------------------------------------------------

/**
 * Picks the column count that makes tiles largest in `box`; sets --tile-w and --tile-ar.
 * Tiles are 16:9, or 3:4 in a portrait box (phones) unless `fixed`.
 */
function fit(box, count, fixed = false, gap = 10) {
  const W = box.clientWidth;
  const H = box.clientHeight;
  if (!count || !W || !H) return;
  const ar = !fixed && H > W * 1.2 ? 3 / 4 : 16 / 9;
  let best = 0;
  for (let cols = 1; cols <= count; cols++) {
    const rows = Math.ceil(count / cols);
    const w = Math.min((W - gap * (cols - 1)) / cols, ((H - gap * (rows - 1)) / rows) * ar);
    best = Math.max(best, w);
  }
  box.style.setProperty('--tile-w', `${Math.floor(best)}px`);
  box.style.setProperty('--tile-ar', ar === 16 / 9 ? '16 / 9' : '3 / 4');
}

export function layout() {
  const gallery = $('#gallery');
  const grid = $('#grid');
  if (gallery.classList.contains('presenting')) {
    fit($('#screens'), $('#screens').children.length, true);
    grid.style.removeProperty('--tile-w');
    grid.style.removeProperty('--tile-ar');
  } else if (gallery.classList.contains('follow') && grid.querySelector(':scope > .tile.followed')) {
    fitFollow(grid, grid.children.length);
  } else {
    fit(grid, grid.children.length);
  }
}

/** Follow speaker: the followed tile as large as fits above a strip of the others. */
function fitFollow(grid, count, gap = 10) {
  const W = grid.clientWidth;
  const H = grid.clientHeight;
  if (!W || !H) return;
  const others = count - 1;
  const stripH = others ? Math.min(H * 0.25, 160) : 0;
  const small = others ? Math.min(stripH * 16 / 9, (W - gap * (others - 1)) / others) : 0;
  const big = Math.min(W, (H - (others ? stripH + gap : 0)) * 16 / 9);
  grid.style.setProperty('--tile-w', `${Math.floor(small)}px`);
  grid.style.setProperty('--tile-ar', '16 / 9');
  grid.style.setProperty('--follow-w', `${Math.floor(big)}px`);
}
