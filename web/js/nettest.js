// Network test page (/nettest): tells a person, in plain language, what gets through from their
// network to the Stoa server and what to ask their IT department for. Each check is its own
// RTCPeerConnection that only gathers candidates (nothing is ever connected), all in parallel:
// STUN over UDP, the NAT's mapping behaviour (two STUN ports of one IP, RFC 4787 terms), and
// TURN over UDP, TCP and TLS. Settings come from `GET /api/v1/nettest`.
// Test hook: `window.nettest = {done, results, config, run()}` (see web/README.md).

import { ROOM_RE, getNetTest } from './api.js';
import { fillIcons, icon } from './icons.js';

const GATHER_MS = 6000; // per check; the checks run in parallel

const $ = (sel) => document.querySelector(sel);
const el = (tag, cls, text) => {
  const e = document.createElement(tag);
  if (cls) e.className = cls;
  if (text != null) e.textContent = text;
  return e;
};

// ---- candidate gathering ---------------------------------------------------------------

/** One candidate, from the browser's fields where it has them, else from the SDP line. */
function parseCandidate(ice, eventUrl) {
  const f = ice.candidate.split(/\s+/); // candidate:1 1 udp 1677729535 198.51.100.7 53211 typ srflx raddr … rport …
  const after = (k) => { const i = f.indexOf(k); return i >= 0 ? f[i + 1] : null; };
  const rport = ice.relatedPort ?? after('rport');
  return {
    type: ice.type || after('typ'),
    protocol: (ice.protocol || f[2] || '').toLowerCase(),
    address: ice.address || f[4] || '',
    port: Number(ice.port ?? f[5]) || 0,
    relatedAddress: ice.relatedAddress || after('raddr'),
    relatedPort: rport == null ? null : Number(rport),
    url: ice.url || eventUrl || null, // which ICE server produced it (Chromium)
    candidate: ice.candidate,
  };
}

/**
 * Gathers candidates with `iceServers` until gathering completes, `enough(candidates)` holds or
 * GATHER_MS pass, then closes the connection. Never rejects.
 * → {candidates, errors: [{url, code, text}], complete, timedOut, ms, error}
 */
function gather(iceServers, { relay = false, enough = () => false } = {}) {
  const started = performance.now();
  const out = { candidates: [], errors: [], complete: false, timedOut: false, ms: 0, error: null };
  return new Promise((resolve) => {
    let pc = null;
    let settled = false;
    const finish = () => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      out.ms = Math.round(performance.now() - started);
      if (pc) {
        pc.onicecandidate = pc.onicecandidateerror = pc.onicegatheringstatechange = null;
        try { pc.close(); } catch { /* already closed */ }
      }
      resolve(out);
    };
    const timer = setTimeout(() => { out.timedOut = true; finish(); }, GATHER_MS);
    try {
      pc = new RTCPeerConnection({ iceServers, iceTransportPolicy: relay ? 'relay' : 'all' });
      pc.onicecandidate = (e) => {
        if (!e.candidate) { out.complete = true; finish(); return; }
        if (!e.candidate.candidate) return; // end of candidates ("")
        out.candidates.push(parseCandidate(e.candidate, e.url));
        if (enough(out.candidates)) finish();
      };
      pc.onicecandidateerror = (e) => {
        out.errors.push({ url: e.url || null, code: e.errorCode || 0, text: e.errorText || '' });
      };
      pc.onicegatheringstatechange = () => {
        if (pc.iceGatheringState === 'complete') { out.complete = true; finish(); }
      };
      pc.createDataChannel('nettest');
      pc.createOffer()
        .then((offer) => !settled && pc.setLocalDescription(offer))
        .catch((err) => { out.error = err?.message || String(err); finish(); });
    } catch (err) {
      out.error = err?.message || String(err); // e.g. a malformed ICE server URL
      finish();
    }
  });
}

const hasType = (type) => (list) => list.some((c) => c.type === type);
const ofType = (list, type) => (list || []).filter((c) => c.type === type);
const isV4 = (a) => /^\d{1,3}(\.\d{1,3}){3}$/.test(a || '');
const isIp = (a) => isV4(a) || (!!a && a.includes(':'));
const unspecified = (a) => !a || a === '0.0.0.0' || a === '::';
const prefer4 = (list) => list.find((c) => isV4(c.address)) || list[0] || null;
const endpoint = (c) => (c ? `${c.address.includes(':') ? `[${c.address}]` : c.address}:${c.port}` : null);

/** Not a private, shared (CGNAT), loopback or link-local address. */
function isPublic(a) {
  if (isV4(a)) {
    const [x, y] = a.split('.').map(Number);
    return !(x === 0 || x === 10 || x === 127 || x >= 224 || (x === 100 && y >= 64 && y < 128)
      || (x === 169 && y === 254) || (x === 172 && y >= 16 && y < 32) || (x === 192 && y === 168));
  }
  const l = (a || '').toLowerCase();
  return isIp(l) && l !== '::1' && l !== '::' && !/^f[cd]/.test(l) && !/^fe[89ab]/.test(l);
}

/** The port of a stun:/turn:/turns: URL. */
function portOf(url) {
  if (!url) return null;
  const m = /:(\d+)(?:[?/]|$)/.exec(url.replace(/^\w+:/, ''));
  return m ? Number(m[1]) : url.startsWith('turns:') ? 5349 : 3478;
}

/** Why a check produced nothing, for the technical line. */
function failureText(r) {
  if (!r) return '';
  if (r.error) return r.error;
  const e = r.errors.find((x) => x.code && x.code !== 701) || r.errors[0];
  if (e) return `error ${e.code}${e.text ? `: ${e.text}` : ''}`;
  return r.timedOut ? `no answer within ${GATHER_MS / 1000} s` : 'no answer';
}

/** The TURN server answered but refused the test credentials: the network is fine, the server is not. */
const refused = (r) => !!r?.errors.some((e) => [401, 403, 437, 438, 441].includes(e.code));

// ---- analysis ----------------------------------------------------------------------------

/**
 * Compares the srflx candidates of the one connection that asked both STUN ports.
 * → {mapping, why, a, b}
 */
function compareMappings(cfg, both, alt) {
  const cands = ofType(both?.candidates, 'srflx');
  // One group per local socket (its base address:port); with hidden bases (mDNS), per family.
  const groups = new Map();
  for (const c of cands) {
    const key = !unspecified(c.relatedAddress) && c.relatedPort ? `${c.relatedAddress}:${c.relatedPort}` : isV4(c.address) ? 'v4' : 'v6';
    if (!groups.has(key)) groups.set(key, []);
    groups.get(key).push(c);
  }
  let same = null;
  for (const list of groups.values()) {
    const main = list.find((c) => c.url === cfg.stun);
    const second = list.find((c) => c.url === cfg.stun_alt);
    let a = null; let b = null;
    if (main && second) [a, b] = [main, second];
    else if (list.length >= 2 && !list.some((c) => c.url)) [a, b] = list; // no candidate.url (not Chromium)
    if (!a) continue;
    if (endpoint(a) !== endpoint(b)) return { mapping: 'address-and-port-dependent', why: 'two-ports', a, b };
    same = same || { a, b };
  }
  if (same) return { mapping: 'endpoint-independent', why: 'same-port', ...same };
  const altAnswered = ofType(alt?.candidates, 'srflx').length > 0 || cands.some((c) => c.url === cfg.stun_alt);
  const a = prefer4(cands);
  if (cands.length && altAnswered && both.complete) {
    // Both servers answered, yet one candidate: Chromium drops a srflx identical to one it has.
    return { mapping: 'endpoint-independent', why: 'merged', a, b: null };
  }
  return { mapping: 'unknown', why: altAnswered ? 'incomplete' : 'alt-silent', a, b: null };
}

/**
 * Gather results → the public results object plus what the texts need. Exported for tests:
 * `g` is {stun, both, alt, udp, tcp, tls}, each null or {candidates, errors, complete, timedOut, error}.
 */
export function analyse(cfg, g) {
  const near = [g.stun, g.both, g.alt].filter(Boolean);
  const srflx = near.flatMap((r) => ofType(r.candidates, 'srflx'));
  const hosts = near.flatMap((r) => ofType(r.candidates, 'host')).filter((c) => isIp(c.address));
  const hostAddrs = new Set(hosts.map((c) => c.address));

  const turnResult = (r) => {
    if (!r) return null;
    const relayCand = prefer4(ofType(r.candidates, 'relay'));
    return { ok: !!relayCand, relayed: endpoint(relayCand) };
  };
  const turn = { udp: turnResult(g.udp), tcp: turnResult(g.tcp), tls: turnResult(g.tls) };

  const why = {};
  let mappedCand = prefer4(ofType(g.stun?.candidates, 'srflx'))
    || prefer4(srflx.filter((c) => c.url === cfg.stun)) || prefer4(srflx);
  let noNat = srflx.some((c) => hostAddrs.has(c.address) || (!unspecified(c.relatedAddress) && c.relatedAddress === c.address));
  if (!srflx.length) {
    // When host addresses are not hidden, Chromium drops a srflx candidate equal to its own
    // socket address (no NAT: a public address, a LAN or loopback): no srflx at all, yet the
    // STUN server answered, or the UDP relay's candidate carries that mapped address.
    const viaRelay = ofType(g.udp?.candidates, 'relay').find((c) => hostAddrs.has(c.relatedAddress) && c.relatedPort);
    const own = prefer4(hosts.filter((c) => c.protocol === 'udp'));
    const answered = g.stun?.complete && !g.stun.errors.length && !g.stun.error;
    if (viaRelay) {
      noNat = true;
      mappedCand = { address: viaRelay.relatedAddress, port: viaRelay.relatedPort, url: cfg.turn?.udp };
      why.stun = 'own-address';
    } else if (own && answered) { noNat = true; mappedCand = own; why.stun = 'own-address'; }
  }
  const udpRelay = prefer4(ofType(g.udp?.candidates, 'relay'));
  if (!mappedCand && udpRelay) {
    // The relay answered over UDP, so UDP reaches the server even though STUN alone did not.
    const known = isIp(udpRelay.relatedAddress) && !unspecified(udpRelay.relatedAddress);
    mappedCand = known ? { address: udpRelay.relatedAddress, port: udpRelay.relatedPort, url: cfg.turn?.udp } : null;
    why.stun = 'relay';
  }
  const stun = { ok: !!mappedCand || why.stun === 'relay', mapped: endpoint(mappedCand) };
  why.stunUrl = mappedCand?.url || cfg.stun; // the alternate port, if only that one answered
  why.publicAddress = isPublic(mappedCand?.address);

  let mapping = 'unknown';
  let pair = null;
  if (noNat) { mapping = 'no-nat'; why.mapping = 'no-nat'; }
  else if (!cfg.stun_alt) why.mapping = 'no-alt';
  else if (!srflx.length) why.mapping = stun.ok ? 'stun-silent' : 'udp-blocked';
  else {
    const m = compareMappings(cfg, g.both, g.alt);
    mapping = m.mapping;
    why.mapping = m.why;
    pair = [m.a, m.b];
  }

  const verdict = stun.ok ? 'ready' : Object.values(turn).some((t) => t?.ok) ? 'relay' : 'blocked';
  return { results: { stun, mapping, filtering: 'unknown', turn, verdict }, why, pair };
}

// ---- the checks' rows --------------------------------------------------------------------

const CHECKS = [
  ['stun', 'Reaching the server over UDP'],
  ['mapping', 'How your router translates addresses'],
  ['filtering', 'Which incoming traffic your router lets through'],
  ['turn-udp', 'Relay over UDP'],
  ['turn-tcp', 'Relay over TCP'],
  ['turn-tls', 'Relay over TLS'],
];
const STATUS_ICON = { ok: 'check', warn: 'warn', fail: 'close', info: 'info' };

function resetRows() {
  const list = $('#nt-checks');
  list.replaceChildren();
  for (const [key, title] of CHECKS) {
    const li = el('li', 'nt-check');
    li.dataset.check = key;
    const badge = el('span', 'nt-icon');
    const body = el('div', 'nt-check-body');
    const head = el('h3');
    head.append(el('span', 'nt-check-title', title), el('span', 'nt-tag'));
    body.append(head, el('p', 'nt-text'), el('p', 'nt-tech'));
    li.append(badge, body);
    list.append(li);
    setRow(key, { status: 'running', tag: 'Testing…', text: '' });
  }
}

/** status: running | ok | warn | fail | info */
function setRow(key, { status, tag, text, tech = '' }) {
  const li = document.querySelector(`.nt-check[data-check="${key}"]`);
  if (!li) return;
  li.dataset.status = status;
  li.querySelector('.nt-icon').innerHTML = status === 'running' ? '<span class="spinner"></span>' : icon(STATUS_ICON[status]);
  li.querySelector('.nt-tag').textContent = tag;
  li.querySelector('.nt-text').textContent = text;
  const t = li.querySelector('.nt-tech');
  t.textContent = tech;
  t.hidden = !tech;
}

function renderStun(cfg, a) {
  const { stun } = a.results;
  if (!cfg.stun) return setRow('stun', { status: 'info', tag: 'Not offered', text: 'This server does not offer STUN, so UDP could not be tested.' });
  if (stun.ok && a.why.stun === 'own-address') {
    return setRow('stun', {
      status: 'ok', tag: 'Works',
      text: 'This computer can reach the server over UDP, the quickest way to carry audio and video.',
      tech: `${a.why.stunUrl} answered; the address it saw is this computer's own, ${stun.mapped}`,
    });
  }
  if (stun.ok && a.why.stun === 'relay') {
    return setRow('stun', {
      status: 'ok', tag: 'Works',
      text: 'This computer can reach the server over UDP, the quickest way to carry audio and video: the relay answered over UDP.',
      tech: `${cfg.stun}: ${failureText(a.g.stun)}; ${cfg.turn?.udp} answered${stun.mapped ? `, your public address ${stun.mapped}` : ''}`,
    });
  }
  if (stun.ok) {
    return setRow('stun', {
      status: 'ok', tag: 'Works',
      text: 'This computer can reach the server over UDP, the quickest way to carry audio and video.',
      tech: `${a.why.stunUrl} → your public address ${stun.mapped}`,
    });
  }
  setRow('stun', {
    status: 'fail', tag: 'Blocked',
    text: `No answer over UDP from port ${portOf(cfg.stun)}. Your network probably blocks outgoing UDP, so audio and video would have to go over TCP or through the relay, with a little more delay.`,
    tech: `${cfg.stun}: no server-reflexive candidate (${failureText(a.g.stun)})`,
  });
}

function renderMapping(cfg, a) {
  const [x, y] = a.pair || [];
  const seen = (c) => (c ? endpoint(c) : 'nothing');
  switch (a.why.mapping) {
    case 'no-nat':
      return setRow('mapping', {
        status: 'ok', tag: 'No NAT',
        text: a.why.publicAddress
          ? 'This computer has a public address of its own: nothing translates its traffic.'
          : 'This computer reaches the server directly, on the same network: nothing translates its traffic.',
        tech: `mapped address ${a.results.stun.mapped ?? '?'} is one of this computer's own addresses`,
      });
    case 'same-port':
    case 'merged':
      return setRow('mapping', {
        status: 'ok', tag: 'Cone NAT',
        text: 'Your router gives this computer the same public address and port whoever it talks to (endpoint-independent mapping, a "cone" NAT). That is the friendliest kind for calls.',
        tech: a.why.mapping === 'merged'
          ? `${cfg.stun} and ${cfg.stun_alt} → ${seen(x)} (the browser merged the identical second answer)`
          : `${cfg.stun} → ${seen(x)}, ${cfg.stun_alt} → ${seen(y)}`,
      });
    case 'two-ports':
      return setRow('mapping', {
        status: 'warn', tag: 'Symmetric NAT',
        text: 'Your router picks a new public port for every destination (address- and port-dependent mapping, a "symmetric" NAT): direct connections between peers often fail and a TURN relay is needed. Stoa sends media to its server, which has a public address, so meetings usually still connect directly.',
        tech: `${cfg.stun} → ${seen(x)}, ${cfg.stun_alt} → ${seen(y)}`,
      });
    case 'no-alt':
      return setRow('mapping', {
        status: 'info', tag: 'Not measured',
        text: 'Not measured: this server has no second STUN address to compare answers with.',
      });
    case 'udp-blocked':
      return setRow('mapping', {
        status: 'info', tag: 'Not measured',
        text: 'Not measured: UDP seems to be blocked, so no STUN server answered.',
      });
    case 'stun-silent':
      return setRow('mapping', {
        status: 'info', tag: 'Not measured',
        text: 'Not measured: UDP gets through, but the STUN server did not answer, so there was nothing to compare.',
        tech: `${cfg.stun}: ${failureText(a.g.stun)}`,
      });
    case 'alt-silent':
      return setRow('mapping', {
        status: 'info', tag: 'Not measured',
        text: `Not measured: the server's second STUN port (${portOf(cfg.stun_alt)}) did not answer, so there was nothing to compare.`,
        tech: `${cfg.stun} → ${seen(x)}, ${cfg.stun_alt}: ${failureText(a.g.alt) || 'no answer'}`,
      });
    default:
      return setRow('mapping', {
        status: 'info', tag: 'Not measured',
        text: 'Not measured: the two STUN ports did not both answer this check in time.',
        tech: x
          ? `${cfg.stun} + ${cfg.stun_alt}: only ${x.url || 'one'} answered, ${seen(x)} (${failureText(a.g.both)})`
          : `${cfg.stun} + ${cfg.stun_alt}: ${failureText(a.g.both)}`,
      });
  }
}

function renderFiltering(cfg) {
  setRow('filtering', {
    status: 'info', tag: 'Not measurable here',
    text: 'A browser cannot measure this: it would need packets from an address it never contacted. It matters little for Stoa, because your computer always contacts the server first. To measure it, run this (part of coturn) on a computer on the same network:',
    tech: `turnutils_natdiscovery -m -f ${cfg.host}`,
  });
}

const TURN_LABEL = { udp: 'UDP', tcp: 'TCP', tls: 'TLS' };

function renderTurn(cfg, kind, r) {
  const key = `turn-${kind}`;
  const url = cfg.turn?.[kind];
  const label = TURN_LABEL[kind];
  if (!url) {
    return setRow(key, {
      status: 'info', tag: 'Not offered',
      text: cfg.turn ? `This server does not offer a relay over ${label}.` : 'This server does not offer a relay (TURN).',
    });
  }
  const relayCand = prefer4(ofType(r?.candidates, 'relay'));
  if (relayCand) {
    return setRow(key, {
      status: 'ok', tag: 'Works',
      text: kind === 'tls'
        ? 'If nothing else gets through, audio and video can go through the relay over TLS, which looks like ordinary secure web traffic.'
        : `If direct connections fail, audio and video can go through the server's relay over ${label}.`,
      tech: `${url} → relayed address ${endpoint(relayCand)}`,
    });
  }
  if (refused(r)) {
    return setRow(key, {
      status: 'fail', tag: 'Refused',
      text: 'Your network reached the relay, but the server refused the test login. That is a problem with the meeting server, not your network: tell whoever runs this Stoa server.',
      tech: `${url}: ${failureText(r)}`,
    });
  }
  setRow(key, {
    status: 'fail', tag: 'Blocked',
    text: `No relay: ${kind === 'udp' ? 'UDP' : 'TCP'} to port ${portOf(url)} seems to be blocked${kind === 'tls' ? ' (or something in between interferes with TLS)' : ''}.`,
    tech: `${url}: no relay candidate (${failureText(r)})`,
  });
}

// ---- summary and advice ------------------------------------------------------------------

const SUMMARY_ICON = { ready: 'check', relay: 'warn', blocked: 'close', error: 'close' };

function setSummary(verdict, title, detail) {
  const box = $('#nt-summary');
  box.dataset.verdict = verdict;
  box.querySelector('.nt-badge').innerHTML = verdict === 'running' ? '<div class="spinner"></div>' : icon(SUMMARY_ICON[verdict]);
  $('#nt-verdict').textContent = title;
  $('#nt-verdict-detail').textContent = detail;
}

const list = (items) => (items.length < 2 ? items.join('') : `${items.slice(0, -1).join(', ')} and ${items[items.length - 1]}`);

function renderSummary(cfg, a) {
  const { results: r, why } = a;
  const relays = ['udp', 'tcp', 'tls'].filter((k) => r.turn[k]?.ok).map((k) => TURN_LABEL[k]);
  const refusedNote = ['udp', 'tcp', 'tls'].some((k) => !r.turn[k]?.ok && refused(a.g[k]))
    ? ' The relay refused the test login, though: tell whoever runs this Stoa server.' : '';
  if (r.verdict === 'ready') {
    let detail = 'Audio and video can go straight to the server over UDP.';
    if (relays.length) detail += ' The relay works too, as a fallback.';
    if (why.mapping === 'two-ports') detail += ' Your router is a "symmetric" NAT; that hinders direct peer-to-peer calls, not Stoa.';
    return setSummary('ready', 'Your network is ready for meetings', detail + refusedNote);
  }
  if (r.verdict === 'relay') {
    return setSummary('relay', 'Meetings will work through the relay (slightly more delay)',
      `UDP to the server seems to be blocked, but the relay gets through over ${list(relays)}. Your IT department can make calls better: see below.`);
  }
  const tcp = cfg.media?.tcp_port;
  setSummary('blocked', 'Meetings will not connect from this network',
    `${cfg.turn ? 'Neither UDP nor the relay reached the server.' : 'UDP to the server seems to be blocked, and this server offers no relay.'}`
    + `${tcp ? ` (Audio and video might still get through over TCP port ${tcp}, which this page cannot test.)` : ''}`
    + ' Show the section below to your IT department.' + refusedNote);
}

/** What the network must allow, with what this test saw for each. */
function portRules(cfg, r) {
  const rules = [];
  const state = (ok) => (ok ? 'open' : 'blocked');
  const turnOpen = (k) => r.turn[k]?.ok || refused(lastGather?.[k]);
  const stunPort = portOf(cfg.stun);
  const turnUdpPort = portOf(cfg.turn?.udp);
  if (cfg.media?.udp_port) rules.push({ proto: 'UDP', port: cfg.media.udp_port, what: 'audio and video', state: 'untested' });
  if (cfg.stun) {
    const both = turnUdpPort === stunPort;
    rules.push({ proto: 'UDP', port: stunPort, what: both ? 'finding the way through your router (STUN) and the relay (TURN)' : 'finding the way through your router (STUN)', state: state(r.stun.ok || (both && turnOpen('udp'))) });
  }
  if (cfg.turn?.udp && turnUdpPort !== stunPort) rules.push({ proto: 'UDP', port: turnUdpPort, what: 'the relay (TURN)', state: state(turnOpen('udp')) });
  if (cfg.turn?.tcp) rules.push({ proto: 'TCP', port: portOf(cfg.turn.tcp), what: 'the relay (TURN) over TCP', state: state(turnOpen('tcp')), tcp: 'TURN' });
  if (cfg.media?.tcp_port) rules.push({ proto: 'TCP', port: cfg.media.tcp_port, what: 'audio and video over TCP (ICE-TCP)', state: 'untested', tcp: 'ICE-TCP' });
  if (cfg.turn?.tls) rules.push({ proto: 'TCP', port: portOf(cfg.turn.tls), what: 'the relay over TLS, which looks like HTTPS', state: state(turnOpen('tls')), tcp: 'TURN over TLS' });
  return rules;
}

function renderAdvice(cfg, r) {
  const rules = portRules(cfg, r);
  const udp = [...new Set(rules.filter((x) => x.proto === 'UDP').map((x) => x.port))];
  const tcp = rules.filter((x) => x.tcp).map((x) => `${x.port} (${x.tcp})`);
  let sentence = udp.length ? `Allow outgoing UDP to ${cfg.host} port${udp.length > 1 ? 's' : ''} ${list(udp.map(String))}` : '';
  if (tcp.length) sentence += `${sentence ? ', or at least TCP to port ' : `Allow outgoing TCP to ${cfg.host} port `}${tcp.join(' / ')}`;
  $('#nt-it-rule').textContent = sentence ? `${sentence}.` : 'Allow outgoing connections to the meeting server.';
  $('#nt-it-lead').textContent = {
    ready: 'Nothing needs to change. For reference, or if meetings ever fail from here, this is what Stoa needs:',
    relay: 'Meetings work, but through the relay. For the best sound and picture, ask them to:',
    blocked: 'Ask them to:',
  }[r.verdict];
  const STATE_TEXT = { open: 'Works', blocked: 'Blocked', untested: 'Not testable here' };
  $('#nt-ports').replaceChildren(...rules.map((x) => {
    const li = el('li');
    li.dataset.state = x.state;
    li.append(el('code', 'nt-port', `${x.proto} ${x.port}`), el('span', 'nt-port-what', x.what), el('span', 'nt-tag', STATE_TEXT[x.state]));
    return li;
  }), Object.assign(el('li', 'nt-note', 'Only outgoing connections are needed: this computer always starts them, and a normal firewall lets the replies back in.')));
  $('#nt-it').hidden = false;
}

// ---- running the test --------------------------------------------------------------------

const hook = { done: null, results: null, config: null, run: () => start() };
window.nettest = hook;
let running = false;
let lastGather = null;

/** The settings without the TURN password, for the results JSON and the hook. */
const redact = (cfg) => ({ ...cfg, credential: cfg.credential ? '(hidden)' : cfg.credential });

function failAll(verdict, title, detail, error) {
  for (const [key] of CHECKS) setRow(key, { status: 'info', tag: 'Not run', text: '' });
  setSummary(verdict, title, detail);
  return {
    stun: { ok: false, mapped: null }, mapping: 'unknown', filtering: 'unknown',
    turn: { udp: null, tcp: null, tls: null }, verdict: 'blocked', error,
  };
}

async function runTest() {
  const t0 = performance.now();
  const startedAt = new Date().toISOString();
  lastGather = null;
  resetRows();
  setSummary('running', 'Testing your network…', 'This takes up to 10 seconds.');
  $('#nt-it').hidden = true;
  $('#nt-json').textContent = 'Not finished yet.';

  if (typeof RTCPeerConnection !== 'function') {
    return failAll('error', 'Meetings will not work in this browser',
      'It has WebRTC, the technology behind video calls, turned off or does not support it. Try an up-to-date Chrome, Edge, Firefox or Safari.',
      'RTCPeerConnection is not available');
  }
  let cfg;
  try {
    cfg = await getNetTest();
    if (!cfg || typeof cfg !== 'object') throw new Error('unexpected answer');
  } catch (err) {
    return failAll('error', 'The network test could not start',
      `The server did not hand out the test settings (${err.message}). It may be an older version of Stoa.`,
      `GET /api/v1/nettest: ${err.message}`);
  }
  cfg = { ...cfg, host: cfg.host || location.hostname, turn: cfg.turn || null };
  hook.config = redact(cfg);
  $('#nt-host').textContent = cfg.host;

  const withAuth = (urls) => [{ urls, username: cfg.username, credential: cfg.credential }];
  const turnJob = (kind) => {
    const url = cfg.turn?.[kind];
    const p = url ? gather(withAuth(url), { relay: true, enough: hasType('relay') }) : Promise.resolve(null);
    return p.then((r) => { renderTurn(cfg, kind, r); return r; }); // each relay row as soon as it is known
  };
  const twoAnswers = (l) => new Set(ofType(l, 'srflx').map((c) => c.url).filter(Boolean)).size >= 2;
  const jobs = {
    // Host candidates too (they can come after the srflx one, with mDNS): they reveal "no NAT".
    stun: cfg.stun ? gather([{ urls: cfg.stun }], { enough: (l) => hasType('srflx')(l) && hasType('host')(l) }) : null,
    both: cfg.stun && cfg.stun_alt ? gather([{ urls: cfg.stun }, { urls: cfg.stun_alt }], { enough: twoAnswers }) : null,
    alt: cfg.stun_alt ? gather([{ urls: cfg.stun_alt }], { enough: hasType('srflx') }) : null,
    udp: turnJob('udp'),
    tcp: turnJob('tcp'),
    tls: turnJob('tls'),
  };
  const keys = Object.keys(jobs);
  const done = await Promise.all(keys.map((k) => jobs[k]));
  const g = Object.fromEntries(keys.map((k, i) => [k, done[i]]));
  lastGather = g;

  const a = { ...analyse(cfg, g), g };
  renderStun(cfg, a);
  renderMapping(cfg, a);
  renderFiltering(cfg);
  renderSummary(cfg, a);
  renderAdvice(cfg, a.results);

  const slim = (r) => r && {
    ms: r.ms, complete: r.complete, timedOut: r.timedOut, error: r.error, errors: r.errors,
    candidates: r.candidates.map(({ type, protocol, address, port, relatedAddress, relatedPort, url }) =>
      ({ type, protocol, address, port, relatedAddress, relatedPort, url })),
  };
  return {
    ...a.results,
    host: cfg.host,
    startedAt,
    durationMs: Math.round(performance.now() - t0),
    details: {
      config: redact(cfg),
      userAgent: navigator.userAgent,
      checks: Object.fromEntries(keys.map((k) => [k, slim(g[k])])),
    },
  };
}

function start() {
  if (running) return hook.done;
  running = true;
  $('#nt-run').disabled = true;
  $('#nt-copy').disabled = true;
  hook.done = runTest()
    .catch((err) => failAll('error', 'The network test failed', err?.message || String(err), String(err?.message || err)))
    .then((results) => {
      hook.results = results;
      $('#nt-json').textContent = JSON.stringify(results, null, 2);
      running = false;
      $('#nt-run').disabled = false;
      $('#nt-copy').disabled = false;
      return results;
    });
  return hook.done;
}

// ---- page --------------------------------------------------------------------------------

function toast(text, kind = 'info', ms = 3500) {
  const box = $('#toasts');
  const t = el('div', `toast ${kind}`, text);
  box.append(t);
  while (box.children.length > 3) box.firstElementChild.remove();
  setTimeout(() => { t.classList.add('out'); setTimeout(() => t.remove(), 300); }, ms);
}

async function copyText(text) {
  try {
    await navigator.clipboard.writeText(text);
    return true;
  } catch { /* not a secure context, or refused: try the old way */ }
  const ta = el('textarea');
  ta.value = text;
  ta.style.cssText = 'position:fixed;top:0;left:0;opacity:0';
  document.body.append(ta);
  ta.select();
  let ok = false;
  try { ok = document.execCommand('copy'); } catch { /* unsupported */ }
  ta.remove();
  return ok;
}

function init() {
  fillIcons();
  const room = new URLSearchParams(location.search).get('room');
  if (room && ROOM_RE.test(room)) {
    const back = $('#nt-back');
    back.href = `/m/${encodeURIComponent(room)}`;
    back.textContent = 'Back to the meeting';
  }
  $('#nt-host').textContent = location.hostname;
  $('#nt-run').onclick = () => start();
  $('#nt-copy').onclick = async () => {
    if (!hook.results) return;
    if (await copyText(JSON.stringify(hook.results, null, 2))) toast('Results copied');
    else {
      $('.nt-raw').open = true;
      toast('Copy the results from "Technical details" below', 'error');
    }
  };
  $('#nt-copy-rule').onclick = async () => {
    if (await copyText($('#nt-it-rule').textContent)) toast('Copied');
    else toast('Select the text to copy it', 'error');
  };
  start();
}

init();
