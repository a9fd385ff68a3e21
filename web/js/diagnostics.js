// Diagnostics panel (#stats-panel): live call figures while it is open, refreshed every
// second. From the browser's getStats(): per received track resolution, frame rate, bitrate,
// packets lost and jitter; for the connection round-trip time, available outgoing bitrate and
// the candidate pair in use. For a host also the server's view of every participant
// (GET /api/v1/rooms/{room}/stats). Owns the panel's DOM and its timer, nothing else.

import { roomStats } from './api.js';

const REFRESH_MS = 1000;

let source = null;   // {pc(), remote(), nameOf(pid), room, token(), isHost()}
let timer = 0;
let previous = new Map(); // inbound-rtp id -> {bytes, t}
let latest = null;

const $ = (sel) => document.querySelector(sel);

/** Connects the panel to the meeting's state (see `source` above) and its button. */
export function initDiagnostics(s) {
  source = s;
  $('#stats-button').onclick = () => toggle();
  $('#stats-close').onclick = () => toggle(false);
}

/** The figures last shown, or null: `{inbound, connection, server}`. */
export const figures = () => latest;

/** Opens or closes the panel; returns whether it is open. */
export function toggle(open = $('#stats-panel').hidden) {
  $('#stats-panel').hidden = !open;
  $('#stats-button').classList.toggle('active', open);
  $('#stats-button').setAttribute('aria-pressed', String(open));
  clearInterval(timer);
  if (open) {
    refresh();
    timer = setInterval(refresh, REFRESH_MS);
  }
  return open;
}

async function refresh() {
  const pc = source.pc();
  const [report, server] = await Promise.all([
    pc ? pc.getStats().catch(() => null) : null,
    source.isHost() ? roomStats(source.room, source.token()).catch((e) => ({ error: e.message })) : null,
  ]);
  latest = { ...(report ? summarise(report) : { inbound: [], connection: null }), server };
  render(latest);
}

/** Per received track and connection figures from an RTCStatsReport. */
function summarise(report) {
  const byTrack = new Map([...source.remote().values()].map((r) => [r.track.id, r]));
  const now = performance.now();
  const inbound = [];
  const seen = new Map();
  let pair = null;
  report.forEach((s) => {
    if (s.type === 'inbound-rtp') {
      const prev = previous.get(s.id);
      const bps = prev && now > prev.t ? ((s.bytesReceived - prev.bytes) * 8000) / (now - prev.t) : 0;
      seen.set(s.id, { bytes: s.bytesReceived, t: now });
      const owner = byTrack.get(s.trackIdentifier)?.participant;
      inbound.push({
        kind: s.kind, participant: owner || null, name: owner ? source.nameOf(owner) : '?',
        width: s.frameWidth ?? null, height: s.frameHeight ?? null, fps: s.framesPerSecond ?? null,
        bitrate: Math.max(0, Math.round(bps)), packetsLost: s.packetsLost ?? 0,
        jitterMs: s.jitter != null ? s.jitter * 1000 : null,
      });
    } else if (s.type === 'candidate-pair' && (s.nominated || s.selected) && s.state === 'succeeded') {
      pair = s;
    }
  });
  previous = seen;
  inbound.sort((a, b) => a.name.localeCompare(b.name) || a.kind.localeCompare(b.kind));
  return { inbound, connection: pair && connectionOf(report, pair) };
}

function connectionOf(report, pair) {
  const local = report.get(pair.localCandidateId);
  const remote = report.get(pair.remoteCandidateId);
  return {
    rttMs: pair.currentRoundTripTime != null ? pair.currentRoundTripTime * 1000 : null,
    availableOutgoingBitrate: pair.availableOutgoingBitrate ?? null,
    pairType: `${local?.candidateType || '?'} → ${remote?.candidateType || '?'} (${local?.protocol || '?'})`,
  };
}

// ---- rendering ---------------------------------------------------------------------------

const kbps = (bps) => (bps == null ? '–' : `${Math.round(bps / 1000)} kbit/s`);
const num = (v, digits = 0) => (v == null ? '–' : Number(v).toFixed(digits));
const pct = (f) => (f == null ? '–' : `${(f * 100).toFixed(1)} %`);

function cell(text, cls) {
  const td = document.createElement('td');
  td.textContent = text;
  if (cls) td.className = cls;
  return td;
}

function row(cells, attrs = {}) {
  const tr = document.createElement('tr');
  Object.assign(tr.dataset, attrs);
  tr.append(...cells);
  return tr;
}

function render({ inbound, connection, server }) {
  const c = connection || {};
  $('#stats-rtt').textContent = c.rttMs == null ? '–' : `${num(c.rttMs)} ms`;
  $('#stats-outgoing').textContent = kbps(c.availableOutgoingBitrate);
  $('#stats-pair').textContent = c.pairType || '–';
  $('#stats-inbound').replaceChildren(...inbound.map((t) => {
    const rate = cell(kbps(t.bitrate), 'bitrate');
    rate.dataset.bps = String(t.bitrate);
    return row([
      cell(t.name), cell(t.kind),
      cell(t.kind === 'video' && t.width ? `${t.width}×${t.height}` : '–'),
      cell(t.kind === 'video' ? num(t.fps) : '–'),
      rate, cell(String(t.packetsLost)), cell(t.jitterMs == null ? '–' : `${num(t.jitterMs, 1)} ms`),
    ], { kind: t.kind, participant: t.participant || '' });
  }));
  renderServer(server);
}

/** The host's section: one row per participant as the server sees it. */
function renderServer(server) {
  $('#stats-server-section').hidden = !server;
  if (!server) return;
  $('#stats-server-error').textContent = server.error || '';
  $('#stats-server').replaceChildren(...(server.participants || []).map((p) => row([
    cell(p.name), cell(kbps(p.bitrate_in_bps)), cell(kbps(p.bitrate_out_bps)),
    cell(`${pct(p.loss_in)} / ${pct(p.loss_out)}`), cell(p.rtt_ms == null ? '–' : `${num(p.rtt_ms)} ms`),
    cell(`${p.nacks_sent + p.nacks_received} / ${p.plis_sent + p.plis_received}`),
  ], { participant: `p${p.id}` })));
}
