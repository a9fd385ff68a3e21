// Meeting page entry (/m/{room}). Owns the meeting state and its lifecycle: pre-join, joining
// (token → WebSocket → lobby → `joined` → RTCPeerConnection), the signaling message handlers
// (including the server's `active_speaker`), local media and the controls, the host's powers
// (lobby, mute, remove, lock), reconnection with backoff, leaving, and the `window.stoa` test
// hooks. The peer connection lives in call.js, the socket in signaling.js, the DOM in ui.js,
// the diagnostics panel in diagnostics.js.

import { getMe, joinRoom, roomFromLocation, sentence, socketUrl } from './api.js';
import { startBlur } from './blur.js';
import { Call } from './call.js';
import { figures, initDiagnostics } from './diagnostics.js';
import { deviceOf, listDevices, openCam, openLocal, openMic, openScreen } from './media.js';
import { Signaling, SignalError, pid } from './signaling.js';
import { SizeReporter } from './sizes.js';
import { startNotices } from './notices.js';
import { meterMicrophone, showWhoIsIn } from './prejoin.js';
import * as ui from './ui.js';

const RETRY_WINDOW_MS = 30000;   // keep trying to (re)connect this long
const MEDIA_FAIL_MS = 15000;     // media down this long despite ICE restarts: rejoin from scratch
const STATS_MS = 700;

const params = new URLSearchParams(location.search);
// `/m/{room}#token=<jwt>`: an integration's own access token (minted with `stoa token` or the
// same key) replaces the guest join. The fragment never reaches a server; drop it from the URL.
const givenToken = new URLSearchParams(location.hash.slice(1)).get('token');
if (givenToken) history.replaceState(null, '', location.pathname + location.search);
const flag = (k) => params.has(k) && !['0', 'false', 'no'].includes(params.get(k));
const store = {
  get: (k) => { try { return localStorage.getItem(`stoa.${k}`) || ''; } catch { return ''; } },
  set: (k, v) => { try { localStorage.setItem(`stoa.${k}`, v); } catch { /* private mode */ } },
};

const S = {
  room: roomFromLocation(),
  state: 'prejoin',
  name: '',
  renamedTo: '',                         // a name chosen in the call, kept across reconnections
  account: null,                         // the signed-in user (GET /api/v1/me), or null: a guest
  me: null,
  grants: { publish: true, subscribe: true, publish_data: true, room_admin: false },
  participants: new Map(), // id -> {id, identity, name, tracks: [Track]}, everyone but us
  orphans: new Map(),      // participant id -> tracks announced before the participant was
  chat: [],
  reactions: [],                         // the last reactions seen: [{participant: "p7", emoji}]
  isHost: false,                         // joined with the room_admin grant
  lobby: [],                             // host: [{id, name}] waiting to be admitted
  locked: false,
  endingAll: false,                      // we sent end_meeting (our own `ended` says so)
  lobbyAt: 0,                            // when we last entered the lobby (restarts the retry window)
  timings: { pageStart: 0, timeOrigin: performance.timeOrigin, joined: null, firstRemoteFrame: null, reconnects: 0 },
  token: null,                           // the room access token of the current session
  activeSpeaker: null,                   // "p7" as announced by the server, or null
  sig: null,
  call: null,
  sizes: null,                           // reports the size received videos are shown at
  mic: null, cam: null, screen: null,   // local tracks, kept across reconnections
  blur: null,                            // the camera with its background blurred (blur.js), sent instead of `cam`
  blurWanted: store.get('blur') === '1',
  blurQueue: Promise.resolve(),          // blur starts and stops, one at a time
  micOn: true,
  camOn: !flag('nocam'),
  stream: new MediaStream(),             // msid of our camera and microphone
  screenStream: new MediaStream(),
  mediaReady: Promise.resolve(),
  gen: 0,                                // bumped to cancel an older session's async work
  mediaFailTimer: 0,
  statsTimer: 0,
  statsFirstFrame: 0,
};

// ---- state and rendering ---------------------------------------------------------------

function setState(state, detail) {
  S.state = state;
  ui.setState(state, detail);
}

let renderQueued = false;
function render() {
  if (renderQueued) return;
  renderQueued = true;
  queueMicrotask(() => {
    renderQueued = false;
    const me = { id: S.me?.pid, name: S.me?.name || S.name, micOff: !(S.micOn && S.mic), handRaised: !!S.me?.hand_raised };
    ui.renderMedia(S.participants, S.call?.remote || new Map(), me);
  });
}

function refreshLocal() {
  ui.setControls({
    micOn: S.micOn && !!S.mic,
    camOn: S.camOn && !!S.cam,
    blurOn: S.blurWanted,
    handRaised: !!S.me?.hand_raised,
    sharing: !!S.screen,
    canPublish: S.grants.publish,
    canChat: S.grants.publish_data,
    canShare: !!navigator.mediaDevices?.getDisplayMedia,
  });
  ui.setLocalVideo(camOut(), S.camOn, S.cam || !S.camOn ? '' : 'Camera is starting…');
  render();
}

async function refreshDevices() {
  const lists = await listDevices();
  ui.fillDevices(lists, {
    audioinput: deviceOf(S.mic),
    videoinput: deviceOf(S.cam),
    audiooutput: store.get('audiooutput'),
  });
}

// ---- local media -----------------------------------------------------------------------

function mediaErrorText(err) {
  if (err?.name === 'NotAllowedError') return 'Camera and microphone are blocked. Allow them in the address bar to be seen and heard.';
  if (err?.name === 'NotFoundError') return 'No camera or microphone found.';
  if (err?.name === 'NotReadableError') return 'Your camera or microphone is in use by another application.';
  return `Camera or microphone unavailable. ${sentence(err?.message || err)}`;
}

/** A local track stopped by itself (device unplugged, "stop sharing" in the browser bar). */
function watchEnded(track, slot, source) {
  track.addEventListener('ended', () => {
    if (S[slot] !== track) return;
    if (slot === 'screen') return stopScreenShare();
    S[slot] = null;
    if (slot === 'cam') syncBlur();
    S.call?.removeTrack(source);
    ui.toast(`Your ${slot === 'mic' ? 'microphone' : 'camera'} stopped.`, 'error');
    refreshLocal();
  });
}

async function acquireMedia() {
  const wantVideo = S.camOn;
  const got = await openLocal({ audio: true, video: wantVideo, micId: store.get('audioinput'), camId: store.get('videoinput') });
  S.mic = got.mic;
  S.cam = got.cam;
  if (S.mic) { S.mic.enabled = S.micOn; watchEnded(S.mic, 'mic', 'microphone'); }
  if (S.cam) { S.cam.enabled = S.camOn; watchEnded(S.cam, 'cam', 'camera'); }
  if (!S.cam) S.camOn = false;
  if (got.error && (!S.mic || (wantVideo && !S.cam))) ui.toast(mediaErrorText(got.error), 'error', 8000);
  refreshLocal();
  refreshDevices();
  await syncBlur();
}

/** The camera as others get it: blurred when the person asked for that. */
const camOut = () => S.blur?.track || S.cam;

/** Turns background blur on or off (remembered on this device); resolves with whether it is on. */
async function setBlur(on) {
  S.blurWanted = !!on;
  store.set('blur', S.blurWanted ? '1' : '');
  refreshLocal();
  await syncBlur();
  return !!S.blur;
}

/**
 * Brings the blur in line with the wish and the camera: starts it (others keep getting the
 * plain camera until the first blurred frame), points it at a new camera, pauses it while
 * the camera is off, stops it. Queued, so toggles in quick succession apply in order.
 */
function syncBlur() {
  S.blurQueue = S.blurQueue.then(async () => {
    if (S.blurWanted && S.cam && !S.blur) {
      try {
        S.blur = await startBlur(S.cam);
      } catch (err) {
        S.blurWanted = false;
        store.set('blur', '');
        ui.toast(`Background blur is not available: ${err?.message || err}.`, 'error');
      }
    } else if (S.blur && (!S.blurWanted || !S.cam)) {
      S.blur.stop();
      S.blur = null;
    }
    if (S.blur) {
      S.blur.setCamera(S.camOn ? S.cam : null);
      S.blur.track.enabled = S.camOn;
    }
    if (S.call && S.grants.publish && camOut()) await S.call.setTrack('camera', camOut(), S.stream);
    refreshLocal();
  });
  return S.blurQueue;
}

function stopLocal() {
  for (const slot of ['mic', 'cam', 'screen']) {
    S[slot]?.stop();
    S[slot] = null;
  }
  S.blur?.stop();
  S.blur = null;
  refreshLocal();
}

/** Puts a new local track in `slot`, sending it on the same transceiver (no renegotiation). */
async function replaceLocal(slot, source, track, on) {
  const old = S[slot];
  track.enabled = on;
  S[slot] = track;
  watchEnded(track, slot, source);
  if (slot === 'cam' && (S.blur || S.blurWanted)) await syncBlur();
  else if (S.call && S.grants.publish) await S.call.setTrack(source, track, S.stream);
  if (old && old !== track) old.stop();
  refreshLocal();
  refreshDevices();
}

// ---- controls (also window.stoa) -------------------------------------------------------

/** Toggles the microphone; resolves with whether it is now on. */
async function toggleMic() {
  S.micOn = !S.micOn;
  if (S.micOn && !S.mic) {
    try {
      await replaceLocal('mic', 'microphone', await openMic(store.get('audioinput')), true);
    } catch (err) {
      S.micOn = false;
      ui.toast(mediaErrorText(err), 'error');
    }
  }
  if (S.mic) S.mic.enabled = S.micOn;
  S.call?.setMuted('microphone', !S.micOn);
  refreshLocal();
  return S.micOn;
}

/** Toggles the camera; resolves with whether it is now on. */
async function toggleCam() {
  S.camOn = !S.camOn;
  if (S.camOn && !S.cam) {
    try {
      await replaceLocal('cam', 'camera', await openCam(store.get('videoinput')), true);
    } catch (err) {
      S.camOn = false;
      ui.toast(mediaErrorText(err), 'error');
    }
  }
  if (S.cam) S.cam.enabled = S.camOn;
  if (S.blur) await syncBlur();
  S.call?.setMuted('camera', !S.camOn);
  refreshLocal();
  return S.camOn;
}

/** Shares a screen as an extra sendonly transceiver; resolves with whether sharing started. */
async function startScreenShare() {
  if (S.screen) return true;
  if (!S.grants.publish) return false;
  let track;
  try {
    track = await openScreen();
  } catch (err) {
    if (err?.name !== 'NotAllowedError') ui.toast(`Could not share your screen. ${sentence(err?.message || err)}`, 'error');
    return false;
  }
  S.screen = track;
  watchEnded(track, 'screen', 'screen');
  if (S.call) await S.call.setTrack('screen', track, S.screenStream);
  refreshLocal();
  return true;
}

async function stopScreenShare() {
  const track = S.screen;
  if (!track) return;
  S.screen = null;
  track.stop();
  refreshLocal();
  await S.call?.removeTrack('screen'); // direction → inactive, renegotiates, `publish` drops it
}

/** Changes the name others see, for this call (a guest's next visit remembers it too). */
function rename(name) {
  name = String(name ?? '').trim().slice(0, 64);
  if (!name || name === S.me?.name) return false;
  if (S.state !== 'joined' || !S.sig?.send({ type: 'rename', name })) {
    ui.toast('Not connected: your name was not changed.', 'error');
    return false;
  }
  S.renamedTo = name;
  if (!S.account) {
    S.name = name;
    store.set('name', name);
  }
  return true;
}

function sendChat(text) {
  text = String(text ?? '');
  if (!text.trim() || text.length > 4000) return false;
  if (!S.grants.publish_data) {
    ui.toast('You are not allowed to chat in this meeting.', 'error');
    return false;
  }
  if (S.state !== 'joined' || !S.sig?.send({ type: 'chat', text })) {
    ui.toast('Not connected: message not sent.', 'error');
    return false;
  }
  return true;
}

async function onDevice(kind, id) {
  store.set(kind, id);
  if (kind === 'audiooutput') return ui.setSpeaker(id);
  try {
    if (kind === 'audioinput') await replaceLocal('mic', 'microphone', await openMic(id), S.micOn);
    else await replaceLocal('cam', 'camera', await openCam(id), S.camOn);
  } catch (err) {
    ui.toast(`Could not switch device. ${sentence(err?.message || err)}`, 'error');
  }
}

// ---- the session -----------------------------------------------------------------------

class Stale extends Error {}

/** Token → WebSocket → joined → RTCPeerConnection. Throws to let runSession retry. */
async function connect(gen) {
  const check = () => { if (gen !== S.gen) throw new Stale('superseded'); };
  const { token } = givenToken
    ? { token: givenToken }
    : await joinRoom(S.room, S.account ? '' : S.name, store.get(`host.${S.room}`));
  check();
  S.token = token;
  const sig = new Signaling(socketUrl('/ws'), { onClose: (reason) => lost(sig, reason) });
  S.sig = sig;
  const joined = await sig.join(token, {
    onLobby: (msg) => {
      if (gen !== S.gen) return;
      S.lobbyAt = performance.now();
      setState('lobby', msg.present === false ? 'The host is not in the meeting now. You will be let in once a host is back.' : undefined);
    },
  });
  check();
  if (S.timings.joined == null) S.timings.joined = performance.now();
  else { S.timings.reconnects++; S.timings.rejoined = performance.now(); }
  await S.mediaReady;
  check();
  onJoined(joined);
  // A name chosen in the call outlives a reconnection (a signed-in person's token carries
  // the account's name).
  if (S.renamedTo && S.renamedTo !== S.me.name) sig.send({ type: 'rename', name: S.renamedTo });
  startCall(sig, joined.ice_servers);
  sig.listen(onMessage);
  setState('joined');
}

/** Joins, retrying with backoff for RETRY_WINDOW_MS; `reconnecting` only changes the wording. */
async function runSession(reconnecting) {
  const gen = ++S.gen;
  setState(reconnecting ? 'reconnecting' : 'joining');
  const started = performance.now();
  for (let attempt = 0; ; attempt++) {
    try {
      await connect(gen);
      return;
    } catch (err) {
      if (gen !== S.gen) return; // left, or another session took over
      teardown();
      if (err.final) return end(err);
      if (performance.now() - Math.max(started, S.lobbyAt) > RETRY_WINDOW_MS) {
        return end(err, reconnecting ? 'Could not reconnect' : 'Could not join the meeting');
      }
      console.warn('stoa: connecting failed, retrying', err);
      const delay = Math.min(500 * 2 ** attempt, 5000) * (0.8 + Math.random() * 0.4);
      await new Promise((r) => setTimeout(r, delay));
      if (gen !== S.gen) return;
    }
  }
}

function onJoined(j) {
  S.me = normParticipant(j.you);
  ui.setName(S.me.name);
  S.grants = { ...S.grants, ...j.grants };
  S.isHost = !!S.grants.room_admin;
  S.lobby = [];
  S.locked = !!j.locked;
  ui.setHost(S.isHost);
  ui.renderLobby(S.lobby);
  ui.setLocked(S.locked);
  S.participants.clear();
  for (const p of j.participants || []) {
    const n = normParticipant(p);
    if (n.pid !== S.me.pid) S.participants.set(n.pid, n);
  }
  refreshLocal();
}

/** Whether `iceServers` has a TURN server, which `?relay=1` needs to connect at all. */
const hasTurn = (iceServers) => (iceServers || []).some((s) => [].concat(s.urls || []).some((u) => /^turns?:/i.test(u)));

function startCall(sig, iceServers) {
  const relayOnly = flag('relay');
  if (relayOnly && !hasTurn(iceServers)) {
    ui.toast('Relay-only mode (?relay=1), but the server offers no TURN relay: media cannot connect.', 'error', 10000);
  }
  const call = new Call({
    iceServers,
    relayOnly,
    videoCodec: params.get('codec'),
    simulcast: !(params.has('simulcast') && !flag('simulcast')),
    send: (m) => sig.send(m),
    onRemoteChange: render,
    onConnectionState: onPcState,
    onError: (err, broken) => {
      console.warn('stoa:', err);
      if (broken) lost(sig, err.message);
      else ui.toast(err.message, 'error');
    },
  });
  S.call = call;
  S.sizes?.stop();
  S.sizes = new SizeReporter((m) => sig.send(m), () => call.remote);
  if (S.grants.publish) {
    // Added synchronously, so the first offer carries them all.
    if (S.mic) call.setTrack('microphone', S.mic, S.stream);
    if (camOut()) call.setTrack('camera', camOut(), S.stream);
    if (S.screen) call.setTrack('screen', S.screen, S.screenStream);
  }
  clearInterval(S.statsTimer);
  S.statsTimer = setInterval(pollStats, STATS_MS);
}

function onPcState(state) {
  if (state === 'connected') {
    clearTimeout(S.mediaFailTimer);
    S.mediaFailTimer = 0;
  } else if ((state === 'failed' || state === 'disconnected') && !S.mediaFailTimer) {
    const sig = S.sig;
    S.mediaFailTimer = setTimeout(() => {
      S.mediaFailTimer = 0;
      if (S.call && S.call.pc.connectionState !== 'connected') lost(sig, 'media connection failed');
    }, MEDIA_FAIL_MS);
  }
}

/** Closes the socket and the peer connection of the current session (local media stays). */
function teardown() {
  S.sig?.close();
  S.sig = null;
  S.call?.close();
  S.call = null;
  S.sizes?.stop();
  S.sizes = null;
  clearInterval(S.statsTimer);
  clearTimeout(S.mediaFailTimer);
  S.mediaFailTimer = 0;
  S.participants.clear();
  S.orphans.clear();
  S.activeSpeaker = null;
  ui.setActiveSpeaker(null, null);
  render();
}

/** The socket (or the media) of the current session died: reconnect from scratch. */
function lost(sig, reason) {
  if (sig !== S.sig || S.state === 'left') return;
  console.warn('stoa: connection lost:', reason);
  teardown();
  runSession(true);
}

// Per error code: title, explanation, the state to end in, and whether "Try again" makes sense.
const FINAL_TEXT = {
  replaced: ['You joined from another window', 'This meeting is open somewhere else with the same identity.'],
  unauthorized: ['You could not be let in', 'Your access to this meeting was refused.'],
  forbidden: ['You could not be let in', 'You are not allowed to do that in this meeting.'],
  not_admitted: ['You could not be let in', ''],
  denied: ['The host did not let you in', '', 'denied'],
  removed: ['The host removed you from the meeting', '', 'removed', false],
  sign_in_required: ['Sign in to join this meeting', 'The host only admits people with an account on this server.', 'left', false],
  meeting_locked: ['This meeting is locked', 'The host locked the meeting: nobody new can join until they unlock it.'],
  meeting_cancelled: ['This meeting was cancelled', 'Its link no longer works.', 'left', false],
  no_such_meeting: ['There is no meeting at this link', 'Check the link you were sent, or start a new meeting from the home page.', 'left', false],
  lobby: ['This meeting has a lobby', 'Join it from the meeting page, where the host can let you in.', 'left', false],
  ended: ['The meeting has ended', 'The host ended it for everyone.', 'left', false],
};

/** Ends the session for good after an error; the person may try again by hand where that can help. */
function end(err, title) {
  S.gen++;
  teardown();
  stopLocal();
  const byMe = err?.code === 'ended' && S.endingAll;
  const [t, d, state = 'left', retry = true] = byMe ? ['You ended the meeting for everyone', '', 'left', false]
    : FINAL_TEXT[err?.code] || [title || 'The call ended', ''];
  setState(state);
  // Our own explanation when there is one; else the server's words, as a sentence of their own.
  const detail = d || sentence(err?.message);
  const next = `/m/${encodeURIComponent(S.room)}`;
  ui.showLeft(t, detail, {
    rejoinLabel: retry ? 'Try again' : null,
    link: err?.code === 'sign_in_required' ? { href: `/login?next=${encodeURIComponent(next)}`, label: 'Sign in' } : null,
  });
}

function leave() {
  if (S.state === 'left') return;
  S.gen++;
  S.sig?.send({ type: 'leave' });
  teardown();
  stopLocal();
  setState('left');
  ui.showLeft('You left the meeting');
}

/**
 * The keyboard shortcuts (listed in the settings dialog, as in Meet): Ctrl/⌘+D microphone,
 * Ctrl/⌘+E camera, Ctrl/⌘+Alt+C chat, Ctrl/⌘+Alt+P people, Ctrl/⌘+Alt+H hand, "?" the list
 * itself.
 */
function onShortcut(e) {
  if (S.state !== 'prejoin' && S.state !== 'joined') return;
  const k = e.key.toLowerCase();
  const typing = e.target instanceof HTMLElement && e.target.matches('input, textarea, select, [contenteditable]');
  if (k === '?' && !typing && !e.ctrlKey && !e.metaKey && !e.altKey) {
    e.preventDefault();
    ui.showSettings();
    return;
  }
  if (!(e.ctrlKey || e.metaKey) || e.shiftKey) return;
  const action = e.altKey
    ? { c: () => ui.togglePanel('chat'), p: () => ui.togglePanel('people'), h: toggleHand }[{ KeyC: 'c', KeyP: 'p', KeyH: 'h' }[e.code] || k]
    : { d: toggleMic, e: toggleCam }[k];
  if (!action || (e.altKey && S.state !== 'joined')) return;
  e.preventDefault();
  action();
}

function rejoin() {
  if (S.state !== 'left' && S.state !== 'denied') return;
  S.mediaReady = acquireMedia();
  runSession(false);
}

// ---- server messages -------------------------------------------------------------------

// Objects keep the server's fields as sent (`id` may be a number); `pid` adds the "p7" form
// used for map keys, tiles and msid matching.
const normParticipant = (p) => ({ ...p, pid: pid(p.id), tracks: [...(p.tracks || [])] });
const ownerOf = (participant) => {
  const id = pid(participant);
  return id === S.me?.pid ? S.me : S.participants.get(id);
};

function onMessage(m) {
  const call = S.call;
  switch (m.type) {
    case 'offer': call?.handleOffer(m.sdp); break;
    case 'answer': call?.handleAnswer(m.sdp); break;
    case 'participant_joined': {
      const p = normParticipant(m.participant);
      if (p.pid === S.me?.pid) break;
      for (const t of S.orphans.get(p.pid) || []) if (!p.tracks.some((x) => x.id === t.id)) p.tracks.push(t);
      S.orphans.delete(p.pid);
      const known = S.participants.has(p.pid);
      S.participants.set(p.pid, p);
      if (!known) ui.toast(`${p.name} joined`);
      break;
    }
    case 'hand_raised': {
      const owner = ownerOf(m.participant);
      if (!owner) break;
      owner.hand_raised = m.raised;
      if (owner === S.me) refreshLocal();
      else if (m.raised) ui.toast(`${owner.name} raised their hand`);
      break;
    }
    case 'reaction': {
      const owner = ownerOf(m.participant);
      if (!owner) break;
      S.reactions = [...S.reactions.slice(-19), { participant: owner.pid, emoji: m.emoji }];
      ui.showReaction(owner === S.me ? null : owner.pid, m.emoji);
      break;
    }
    case 'participant_renamed': {
      const id = pid(m.id);
      if (id === S.me?.pid) {
        S.me.name = m.name;
        ui.setName(m.name);
        break;
      }
      const p = S.participants.get(id);
      if (p && p.name !== m.name) {
        ui.toast(`${p.name} is now ${m.name}`);
        p.name = m.name;
      }
      break;
    }
    case 'participant_left': {
      const id = pid(m.id);
      const p = S.participants.get(id);
      S.participants.delete(id);
      S.orphans.delete(id);
      call?.forgetParticipant(id);
      if (p) ui.toast(`${p.name} left`);
      break;
    }
    case 'track_published': {
      const t = m.track;
      call?.reviveTrack(t.id);
      const owner = ownerOf(t.participant);
      const key = pid(t.participant);
      if (owner) owner.tracks = [...owner.tracks.filter((x) => x.id !== t.id), t];
      else S.orphans.set(key, [...(S.orphans.get(key) || []).filter((x) => x.id !== t.id), t]);
      break;
    }
    case 'track_unpublished': {
      const owner = ownerOf(m.participant);
      if (owner) owner.tracks = owner.tracks.filter((x) => x.id !== m.id);
      S.orphans.delete(pid(m.participant));
      call?.forgetTrack(m.id);
      break;
    }
    case 'chat': {
      const msg = m.message;
      S.chat.push(msg);
      ui.addChat({ name: msg.name, text: msg.text, ts: msg.ts, mine: pid(msg.from) === S.me?.pid });
      break;
    }
    case 'lobby_update': {
      const known = new Set(S.lobby.map((e) => e.id));
      S.lobby = [...(m.waiting || [])];
      for (const e of S.lobby) if (!known.has(e.id)) ui.toast(`${e.name} is waiting to join`);
      ui.renderLobby(S.lobby);
      return;
    }
    case 'grants': {
      const wasHost = S.isHost;
      S.grants = { ...S.grants, ...m.grants };
      S.isHost = !!S.grants.room_admin;
      ui.setHost(S.isHost);
      if (S.isHost && !wasHost) ui.toast('You are now a host of this meeting');
      break;
    }
    case 'locked':
      S.locked = !!m.locked;
      ui.setLocked(S.locked);
      return;
    case 'active_speaker':
      S.activeSpeaker = m.participant == null ? null : pid(m.participant);
      ui.setActiveSpeaker(S.activeSpeaker, S.me?.pid);
      return;
    case 'muted_by_host':
      if (m.kind === 'video' ? S.camOn : S.micOn) {
        (m.kind === 'video' ? toggleCam() : toggleMic()).then(() => ui.toast('The host muted you'));
      }
      return;
    case 'layers': S.call?.setActiveLayers(m.track, m.active || []); break;
    case 'pong': return;
    case 'error': onServerError(m); break;
    default: return; // unknown: newer server
  }
  render();
}

function onServerError(m) {
  const err = new SignalError(m.code, m.message, m.fatal);
  console.warn('stoa: server error', m);
  if (err.final) return end(err);
  if (m.fatal) return ui.toast(err.message, 'error'); // the socket closes; we reconnect
  if (m.code === 'bad_sdp') S.call?.offerRejected();
  ui.toast(err.message, 'error');
}

// ---- host powers -------------------------------------------------------------------------

/** Sends a moderation message; false when we are not the host or not connected. */
function hostSend(msg) {
  if (!S.isHost || S.state !== 'joined') return false;
  return !!S.sig?.send(msg);
}

const admit = (id) => hostSend({ type: 'admit', id });
const deny = (id) => hostSend({ type: 'deny', id });
const setLocked = (locked) => hostSend({ type: 'lock', locked: !!locked });
/** Ends the meeting for everyone in it and in its lobby, this host included. */
function endMeeting() {
  S.endingAll = hostSend({ type: 'end_meeting' });
  return S.endingAll;
}

/** `participant` goes out in the server's own form (as in `participant_left`), not as "p7". */
function hostAct(type, id) {
  const p = S.participants.get(pid(id));
  return !!p && hostSend({ type, participant: p.id });
}
const muteParticipant = (id) => hostAct('mute_participant', id);
const lowerHand = (id) => hostAct('lower_hand', id);

/** Raises or lowers our hand; resolves with whether it was asked for. */
function toggleHand() {
  if (S.state !== 'joined' || !S.sig?.send({ type: 'raise_hand', raised: !S.me?.hand_raised })) {
    ui.toast('Not connected: your hand was not raised.', 'error');
    return false;
  }
  return true;
}

function react(emoji) {
  if (S.state !== 'joined' || !S.sig?.send({ type: 'react', emoji })) {
    ui.toast('Not connected: your reaction was not sent.', 'error');
    return false;
  }
  return true;
}
const removeParticipant = (id) => hostAct('remove_participant', id);
const makeHost = (id) => {
  const sent = hostAct('make_host', id);
  const p = S.participants.get(pid(id));
  if (sent && p) {
    p.host = true;
    render();
  }
  return sent;
};

// ---- stats: a first-frame fallback ---------------------------------------------------------

async function pollStats() {
  const call = S.call;
  if (!call || S.state !== 'joined') return;
  let report;
  try { report = await call.pc.getStats(); } catch { return; }
  let decoded = false;
  report.forEach((s) => {
    if (s.type === 'inbound-rtp' && s.kind === 'video' && s.framesDecoded > 0) decoded = true;
  });
  // requestVideoFrameCallback (ui.js) measures the first frame; this only covers its absence.
  if (decoded && S.timings.firstRemoteFrame == null) {
    if (!S.statsFirstFrame) S.statsFirstFrame = performance.now();
    else if (performance.now() - S.statsFirstFrame > 1500) S.timings.firstRemoteFrame = S.statsFirstFrame;
  }
}

// ---- start -----------------------------------------------------------------------------

/** The display name a given access token carries (its `name` claim), or ''. */
function tokenName(token) {
  try {
    const payload = token.split('.')[1].replace(/-/g, '+').replace(/_/g, '/');
    return String(JSON.parse(atob(payload)).name || '');
  } catch { return ''; }
}

function join(name) {
  S.name = name.slice(0, 64);
  if (!S.account) store.set('name', S.name);
  ui.setName(S.name);
  ui.setJoinError('');
  runSession(false);
}

window.stoa = {
  get pc() { return S.call?.pc || null; },
  get ws() { return S.sig?.ws || null; },
  get me() { return S.me; },
  get participants() { return S.participants; },
  get chat() { return S.chat; },
  get state() { return S.state; },
  get timings() { return S.timings; },
  get room() { return S.room; },
  get grants() { return S.grants; },
  get remoteTracks() { return S.call?.remote || new Map(); },
  get relayOnly() { return flag('relay'); },
  get local() { return { mic: S.mic, cam: S.cam, sentCam: camOut(), screen: S.screen, micOn: S.micOn, camOn: S.camOn, blur: !!S.blur }; },
  get account() { return S.account; },
  get isHost() { return S.isHost; },
  get lobby() { return S.lobby; },
  get locked() { return S.locked; },
  get activeSpeaker() { return S.activeSpeaker; },
  get reactions() { return S.reactions; },
  get diagnostics() { return figures(); },
  join: (name) => (S.state === 'prejoin' ? join(String(name || 'Guest')) : undefined),
  sendChat,
  rename,
  toggleMic,
  toggleCam,
  setBlur,
  toggleHand,
  react,
  startScreenShare,
  stopScreenShare,
  leave,
  rejoin,
  restartIce: () => S.call?.restartIce(),
  admit,
  deny,
  muteParticipant,
  removeParticipant,
  makeHost,
  setLocked,
  endMeeting,
  stats: () => (S.call ? S.call.stats() : Promise.resolve(null)),
};

async function init() {
  document.title = `${S.room} · Stoa`;
  document.getElementById('nettest-link').href = `/nettest?room=${encodeURIComponent(S.room)}`;
  ui.initUi({
    room: S.room,
    onJoin: join,
    onToggleMic: toggleMic,
    onToggleCam: toggleCam,
    onToggleBlur: () => setBlur(!S.blurWanted),
    onToggleHand: toggleHand,
    onReact: react,
    onLowerHand: lowerHand,
    onToggleScreen: () => (S.screen ? stopScreenShare() : startScreenShare()),
    onLeave: leave,
    onRejoin: rejoin,
    onChat: sendChat,
    onRename: rename,
    onDevice,
    onAdmit: admit,
    onDeny: deny,
    onHostMute: muteParticipant,
    onHostRemove: removeParticipant,
    onMakeHost: makeHost,
    onToggleLock: () => setLocked(!S.locked),
    onEndMeeting: endMeeting,
  });
  initDiagnostics({
    room: S.room,
    pc: () => S.call?.pc || null,
    remote: () => S.call?.remote || new Map(),
    nameOf: (id) => S.participants.get(id)?.name || id,
    token: () => S.token,
    isHost: () => S.isHost && S.state === 'joined',
  });
  ui.onFirstFrame((t) => { if (S.timings.firstRemoteFrame == null) S.timings.firstRemoteFrame = t; });
  navigator.mediaDevices?.addEventListener?.('devicechange', refreshDevices);
  window.addEventListener('pagehide', () => S.sig?.send({ type: 'leave' }));
  window.addEventListener('keydown', onShortcut);

  refreshLocal();
  S.mediaReady = acquireMedia();
  const beforeJoining = () => S.state === 'prejoin';
  meterMicrophone(document.getElementById('mic-meter'), () => S.mic, beforeJoining);
  S.account = await getMe().catch(() => null);
  if (S.account) {
    // Rings reach a signed-in person here too; a caller hears when their call is declined.
    startNotices().on('call_declined', (m) => {
      if (m.room !== S.room || S.state === 'left') return;
      ui.toast(`${m.by?.display_name || 'They'} declined the call.`, 'info', 20000, { label: 'Leave', run: leave });
    });
  }
  const name = (tokenName(givenToken) || S.account?.display_name || params.get('name') || store.get('name')).trim();
  ui.setName(name);
  ui.setAccount(S.account);
  if (flag('autojoin')) {
    join(name || 'Guest');
  } else {
    setState('prejoin');
    showWhoIsIn(S.room, document.getElementById('prejoin-people'), beforeJoining);
    document.getElementById(S.account ? 'join-button' : 'join-name').focus();
  }
}

init();
