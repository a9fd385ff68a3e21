// Simulcast and bandwidth adaptation with real browsers: a publisher (Chromium or Firefox)
// sends three layers; a subscriber (Chromium or Firefox) behind a link shaped with `tc` (in
// its own network namespace, joined to the test namespace by a veth pair) gets the low layer
// while limited to 300 kbit/s and the high layer again once the limit is lifted. Asserted
// from the subscriber's getStats() (decoded frame width, freezes) and from the server's stats
// API (the forwarded layer).
import { test, after, afterEach } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { browserSession, openParticipant, sleep, startServer, waitForRemoteMedia } from './lib.js';

const session = browserSession({ afterEach, after });
const NS = `stoa-shaped-${process.pid}`;
const [HERE, THERE] = ['10.201.0.1', '10.201.0.2'];
const sh = (...args) => execFileSync(args[0], args.slice(1), { stdio: ['ignore', 'pipe', 'pipe'] }).toString();

/**
 * A namespace for the subscriber, reached over veth `shv0` (here) / `shv1` (there). IPv6 is
 * off on the pair: its link-local addresses would finish duplicate address detection a second
 * or two later, and Chromium aborts the page loads under way then with ERR_NETWORK_CHANGED.
 * Returns once both ends are up.
 */
async function shapedNamespace() {
  sh('ip', 'netns', 'add', NS);
  sh('ip', 'link', 'add', 'shv0', 'type', 'veth', 'peer', 'name', 'shv1', 'netns', NS);
  sh('sh', '-c', 'echo 1 > /proc/sys/net/ipv6/conf/shv0/disable_ipv6');
  sh('ip', 'netns', 'exec', NS, 'sh', '-c', 'echo 1 > /proc/sys/net/ipv6/conf/shv1/disable_ipv6');
  sh('ip', 'addr', 'add', `${HERE}/24`, 'dev', 'shv0');
  sh('ip', 'link', 'set', 'shv0', 'up');
  sh('ip', 'netns', 'exec', NS, 'ip', 'addr', 'add', `${THERE}/24`, 'dev', 'shv1');
  sh('ip', 'netns', 'exec', NS, 'ip', 'link', 'set', 'shv1', 'up');
  sh('ip', 'netns', 'exec', NS, 'ip', 'link', 'set', 'lo', 'up');
  const operstate = (prefix, dev) => sh(...prefix, 'cat', `/sys/class/net/${dev}/operstate`).trim();
  const deadline = Date.now() + 5000;
  while (operstate([], 'shv0') !== 'up' || operstate(['ip', 'netns', 'exec', NS], 'shv1') !== 'up') {
    if (Date.now() > deadline) throw new Error('the veth pair to the shaped namespace did not come up');
    await sleep(50);
  }
}

/**
 * Limits what flows towards the subscriber (egress of shv0) with a token bucket, or lifts
 * the limit. (tbf, not netem: this machine's kernel has no sch_netem; tbf is the rate limit.)
 */
function limitDownlink(kbit) {
  if (kbit) sh('tc', 'qdisc', 'replace', 'dev', 'shv0', 'root', 'tbf', 'rate', `${kbit}kbit`, 'burst', '16kbit', 'latency', '300ms');
  else sh('tc', 'qdisc', 'replace', 'dev', 'shv0', 'root', 'pfifo_fast');
}

after(() => {
  try { sh('ip', 'link', 'del', 'shv0'); } catch { /* already gone */ }
  try { sh('ip', 'netns', 'del', NS); } catch { /* already gone */ }
});

/** The subscriber's decoded video: width, frames, freezes (Chrome's freeze counters). */
const videoIn = (p) => p.eval(async () => {
  const s = await window.stoa.stats();
  const v = s?.inbound.find((x) => x.kind === 'video');
  return v ? { width: v.frameWidth || 0, frames: v.framesDecoded || 0, freezes: v.freezeCount || 0, frozenS: v.totalFreezesDuration || 0 } : null;
});

/** Samples the subscriber every 200 ms until `done(sample)` or `ms`; returns the samples. */
async function watch(p, ms, done) {
  const samples = [];
  const start = Date.now();
  while (Date.now() - start < ms) {
    const v = await videoIn(p);
    if (v) samples.push({ t: Date.now() - start, ...v });
    if (v && done(v)) break;
    await sleep(200);
  }
  return samples;
}

/** Longest time without a newly decoded frame, in ms, across the samples. */
function longestStall(samples) {
  let worst = 0;
  let since = samples[0]?.t ?? 0;
  for (let i = 1; i < samples.length; i++) {
    if (samples[i].frames > samples[i - 1].frames) since = samples[i].t;
    else worst = Math.max(worst, samples[i].t - since);
  }
  return worst;
}

/**
 * Starts timing the gaps between frames the viewer's page presents (requestVideoFrameCallback
 * on the remote video); `maxFrameGap` reads the longest gap since, in ms.
 */
const startFrameGaps = (p) => p.eval(() => {
  const video = document.querySelector('.tile[data-participant] video');
  const meter = { max: 0, last: null };
  window.__frameGaps = meter;
  const tick = (now) => {
    if (meter.last !== null) meter.max = Math.max(meter.max, now - meter.last);
    meter.last = now;
    if (window.__frameGaps === meter) video.requestVideoFrameCallback(tick);
  };
  video.requestVideoFrameCallback(tick);
});
const maxFrameGap = (p) => p.eval(() => Math.round(window.__frameGaps.max));

/** The server's stats of the viewer: its bandwidth estimate and what it receives. */
async function viewerStats(server, room, subscriberPid) {
  const token = server.token(room, 'layer-check', ['--admin']);
  const r = await fetch(`${server.base}/api/v1/rooms/${room}/stats`, { headers: { authorization: `Bearer ${token}` } });
  const stats = await r.json();
  return stats.participants.find((p) => `p${p.id}` === subscriberPid);
}

async function forwardedLayer(server, room, subscriberPid) {
  const sub = await viewerStats(server, room, subscriberPid);
  return sub?.received.find((t) => t.kind === 'video')?.layer ?? null;
}

let shaped = null;
/** The shaped namespace and a server that both namespaces reach, made once for the file. */
async function shapedSetup() {
  if (!shaped) {
    await shapedNamespace();
    limitDownlink(0);
    const server = session.server = await startServer(8800, { host: '0.0.0.0' });
    server.base = 'http://127.0.0.1:8800'; // a secure context for the publisher's camera
    shaped = { server, origin: `http://${HERE}:8800` };
  }
  limitDownlink(0);
  return shaped;
}

/**
 * A viewer in the shaped namespace, in Chromium or (`browser` 'firefox') Firefox; it sends no
 * camera, so only the publisher's layers are in play.
 */
async function openViewer({ server, origin }, room, browser = 'chromium') {
  const options = browser === 'firefox' ? { browser, netns: { name: NS, address: THERE }, origin } : { netns: NS, origin };
  const sub = await openParticipant({ ...server, base: origin }, room, 'Viewer', '&nocam=1', options);
  session.people.push(sub);
  await waitForRemoteMedia(sub);
  return sub;
}

/**
 * The publisher `pub` sends simulcast; the unlimited viewer `sub` gets a layer above the
 * lowest, then the low one without freezing over 2 s once limited to 300 kbit/s, and frames
 * keep coming there. Returns the width the viewer started at.
 */
async function limitedViewerGetsLowLayer(server, room, pub, sub) {
  const subPid = await sub.eval(() => window.stoa.me.pid);
  const layers = await pub.waitFor(async () => {
    const s = await window.stoa.stats();
    const v = s.outbound.filter((x) => x.kind === 'video' && x.rid && x.packetsSent > 0);
    return v.length >= 2 ? v.map((x) => `${x.rid}:${x.frameWidth}`) : false;
  }, null, 20000, 'simulcast layers sent');
  // The low layer is a quarter of the camera's width (web/js/call.js).
  const lowest = (await pub.eval(() => window.stoa.local.cam.getSettings().width)) / 4;
  const high = await sub.waitFor(async (lowest) => {
    const s = await window.stoa.stats();
    const v = s.inbound.find((x) => x.kind === 'video');
    return v && v.frameWidth > lowest ? v.frameWidth : false;
  }, lowest, 45000, 'a layer above the lowest at the viewer').catch(async (e) => {
    const v = await viewerStats(server, room, subPid);
    const video = v?.received.find((t) => t.kind === 'video');
    const sent = (await pub.stats()).outbound.filter((x) => x.kind === 'video').map((x) => `${x.rid}:${x.active ? 'on' : 'off'}:${x.frameWidth}`);
    throw new Error(`${e.message}\nserver: layer ${video?.layer} at ${video?.bitrate_bps} bit/s, estimate ${v?.estimated_bandwidth_bps}, PLIs from the viewer ${video?.plis_received}; viewer decodes ${JSON.stringify(await videoIn(sub))}; publisher sends ${sent.join(' ')}`);
  });
  console.log(`# ${pub.name}: layers ${layers.join(' ')}; viewer starts at width ${high}`);
  const highLayer = await forwardedLayer(server, room, subPid);
  assert.ok(['h', 'f'].includes(highLayer), `forwarded layer ${highLayer}`);

  // 300 kbit/s: the low layer (150 kbit/s) fits, the others do not.
  await startFrameGaps(sub);
  limitDownlink(300);
  const down = await watch(sub, 20000, (v) => v.width > 0 && v.width <= lowest);
  const low = down[down.length - 1];
  const downGap = await maxFrameGap(sub);
  console.log(`# limited: low layer (width ${low.width}) after ${low.t} ms; longest gap between frames ${downGap} ms`);
  assert.ok(low.width <= lowest, `still at width ${low.width} after 20 s at 300 kbit/s`);
  // Release build, with the queue hold: median 0.64 s, 0.2 to 1.5 s over 30 runs (docs/benchmarks.md); the goal is 1 s.
  assert.ok(downGap <= 2000, `video froze ${downGap} ms while adapting`);
  assert.equal(await forwardedLayer(server, room, subPid), 'q');
  // Frames keep coming on the low layer.
  const steady = await watch(sub, 4000, () => false);
  const steadyStall = longestStall(steady);
  console.log(`# on the low layer: longest stall ${steadyStall} ms over 4 s`);
  assert.ok(steady[steady.length - 1].frames > steady[0].frames + 30, 'frames flow on the low layer');
  // Usually 0; up to 1.7 s seen when probing for the next layer overflows the limited link.
  assert.ok(steadyStall <= 2000, `frozen ${steadyStall} ms on the low layer`);
  return high;
}

test('a subscriber limited to 300 kbit/s gets the low layer, and the high one when the limit is lifted', async () => {
  const setup = await shapedSetup();
  const { server } = setup;
  const room = 'simulcast';
  const pub = await openParticipant(server, room, 'Publisher');
  session.people.push(pub);
  const sub = await openViewer(setup, room);
  const high = await limitedViewerGetsLowLayer(server, room, pub, sub);

  // The limit lifted: back to a high layer.
  limitDownlink(0);
  const up = await watch(sub, 40000, (v) => v.width >= high);
  const back = up[up.length - 1];
  console.log(`# unlimited: width ${back.width} after ${back.t} ms; longest stall ${longestStall(up)} ms`);
  assert.ok(back.width >= high, `still at width ${back.width} 40 s after the limit was lifted`);
  const subPid = await sub.eval(() => window.stoa.me.pid);
  assert.ok(['h', 'f'].includes(await forwardedLayer(server, room, subPid)));
});

test('a Firefox publisher\'s layers: a Chromium viewer limited to 300 kbit/s moves to its low layer', async () => {
  const setup = await shapedSetup();
  const { server } = setup;
  const room = 'simulcast-firefox';
  const pub = await openParticipant(server, room, 'Firefox', '', { browser: 'firefox' });
  session.people.push(pub);
  const sub = await openViewer(setup, room);
  await limitedViewerGetsLowLayer(server, room, pub, sub);
});

test('a Firefox viewer limited to 300 kbit/s moves to the low layer of a Chromium publisher without freezing', async () => {
  const setup = await shapedSetup();
  const { server } = setup;
  const room = 'simulcast-firefox-viewer';
  const pub = await openParticipant(server, room, 'Chromium');
  session.people.push(pub);
  const sub = await openViewer(setup, room, 'firefox');
  await limitedViewerGetsLowLayer(server, room, pub, sub);
});
