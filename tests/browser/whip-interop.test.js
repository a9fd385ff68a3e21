// Interop with WHIP/WHEP clients nobody on the project wrote. FFmpeg's `-f whip` muxer (the
// static build in the imageio-ffmpeg wheel, installed by scripts/install-test-deps) publishes
// H.264 + Opus; Chromium plays it over WHEP from a page of another origin (CORS), decodes it
// and restarts ICE over PATCH; FFmpeg's DELETE on exit ends the session. Then Eyevinn's WHIP
// client and WebRTC player from npm (bundled with esbuild) publish and play from pages of
// another origin, and end their sessions with DELETE.
import { test, after, afterEach } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { existsSync, readdirSync } from 'node:fs';
import { join, dirname } from 'node:path';
import { fileURLToPath } from 'node:url';
import { build } from 'esbuild';
import { browserSession, startServer, openUser, sleep } from './lib.js';

const session = browserSession({ afterEach, after });
const people = session.people;
const started = Date.now();
after(() => console.log(`# whip-interop wall time: ${((Date.now() - started) / 1000).toFixed(1)} s`));

/** The FFmpeg binary: $STOA_FFMPEG, or the one scripts/install-test-deps put under target/. */
function ffmpegPath() {
  if (process.env.STOA_FFMPEG) return process.env.STOA_FFMPEG;
  const venv = join(dirname(fileURLToPath(import.meta.url)), '../../target/interop-venv/lib');
  for (const py of existsSync(venv) ? readdirSync(venv) : []) {
    const bin = join(venv, py, 'site-packages/imageio_ffmpeg/binaries');
    const exe = existsSync(bin) && readdirSync(bin).find((f) => f.startsWith('ffmpeg-'));
    if (exe) return join(bin, exe);
  }
  throw new Error('FFmpeg not found: run scripts/install-test-deps (or set STOA_FFMPEG)');
}

/** FFmpeg publishing a test pattern and a tone over WHIP until stopped. */
function publish(url, token) {
  const args = [
    '-hide_banner', '-loglevel', 'info', '-re',
    '-f', 'lavfi', '-i', 'testsrc2=size=320x240:rate=25',
    '-f', 'lavfi', '-i', 'sine=frequency=440:sample_rate=48000',
    '-c:v', 'libx264', '-profile:v', 'baseline', '-preset', 'ultrafast', '-tune', 'zerolatency',
    '-g', '25', '-bf', '0', '-pix_fmt', 'yuv420p', '-b:v', '400k',
    '-c:a', 'libopus', '-ar', '48000', '-ac', '2', '-b:a', '48k',
    '-t', '90', '-f', 'whip', '-authorization', token, url,
  ];
  const proc = spawn(ffmpegPath(), args, { stdio: ['ignore', 'ignore', 'pipe'] });
  let log = '';
  proc.stderr.on('data', (d) => { log += d; });
  return {
    proc,
    log: () => log,
    /** Stops FFmpeg as Ctrl-C does: it finishes the stream and sends its DELETE. */
    async stop() {
      if (proc.exitCode !== null) return;
      proc.kill('SIGINT');
      await Promise.race([new Promise((r) => proc.once('exit', r)), sleep(10000)]);
      if (proc.exitCode === null) proc.kill('SIGKILL');
    },
  };
}

// Pages on localhost use the endpoints on 127.0.0.1: requests of another origin (CORS).
const port = 8800;
const viewerOrigin = `http://localhost:${port}`;
const serverForCors = async () => session.server || startServer(port, { args: ['--cors-origin', viewerOrigin] }).then((s) => (session.server = s));

test('FFmpeg publishes H.264 + Opus over WHIP; Chromium on another origin plays it over WHEP and restarts ICE', async () => {
  const server = await serverForCors();
  const room = 'e2e-ffmpeg';
  const ffmpeg = publish(`${server.base}/whip/${room}`, server.token(room, 'ffmpeg'));
  try {
    const deadline = Date.now() + 20000;
    for (;;) {
      const c = await server.counters(room).catch(() => null);
      const p = c?.participants.find((x) => x.identity === 'ffmpeg');
      if (p?.connected && p.packets_in > 50) break;
      if (Date.now() > deadline || ffmpeg.proc.exitCode !== null) {
        throw new Error(`FFmpeg did not connect: ${JSON.stringify(c)}\n${ffmpeg.log().slice(-3000)}\n${server.log().slice(-3000)}`);
      }
      await sleep(250);
    }

    // The viewer's page is on localhost, the WHEP endpoint on 127.0.0.1: a CORS request.
    const viewer = await openUser(server, 'Viewer', null);
    people.push(viewer);
    await viewer.page.goto(`${viewerOrigin}/healthz`);
    const created = await viewer.eval(async ({ url, token }) => {
      const pc = new RTCPeerConnection();
      const streams = {};
      pc.ontrack = (e) => {
        streams[e.track.kind] = e.streams[0]?.id || null;
        // Audio is only decoded (and its energy measured) when something plays it.
        if (e.track.kind === 'audio') {
          const a = new Audio();
          a.srcObject = new MediaStream([e.track]);
          a.play().catch(() => {});
        }
      };
      pc.addTransceiver('video', { direction: 'recvonly' });
      pc.addTransceiver('audio', { direction: 'recvonly' });
      await pc.setLocalDescription(await pc.createOffer());
      const r = await fetch(url, {
        method: 'POST',
        headers: { 'content-type': 'application/sdp', authorization: `Bearer ${token}` },
        body: pc.localDescription.sdp,
      });
      if (r.status !== 201) return { status: r.status, body: await r.text() };
      const answer = await r.text();
      await pc.setRemoteDescription({ type: 'answer', sdp: answer });
      window.whep = { pc, streams, answer, location: r.headers.get('location') };
      return { status: r.status, location: r.headers.get('location'), etag: r.headers.get('etag') };
    }, { url: `http://127.0.0.1:${port}/whep/${room}`, token: server.token(room, 'viewer', ['--no-publish']) });
    assert.equal(created.status, 201, JSON.stringify(created));
    assert.match(created.location || '', new RegExp(`^/whep/${room}/p\\d+-[0-9a-f]{32}$`), 'Location readable cross-origin');
    assert.ok(created.etag, 'ETag readable cross-origin');

    const got = await viewer.waitFor(async () => {
      const stats = await window.whep.pc.getStats();
      const codecs = {};
      stats.forEach((x) => { if (x.type === 'codec') codecs[x.id] = x.mimeType; });
      let video = null;
      let audio = null;
      stats.forEach((x) => {
        if (x.type !== 'inbound-rtp') return;
        if (x.kind === 'video') video = { frames: x.framesDecoded, width: x.frameWidth, codec: codecs[x.codecId] };
        if (x.kind === 'audio') audio = { packets: x.packetsReceived, energy: x.totalAudioEnergy };
      });
      return video?.frames > 50 && audio?.packets > 100 ? { video, audio, streams: window.whep.streams } : false;
    }, null, 30000, 'decoded H.264 video and Opus audio from FFmpeg');
    assert.equal(got.video.codec, 'video/H264');
    assert.equal(got.video.width, 320);
    assert.ok(got.audio.energy > 0, `audio energy ${got.audio.energy}`);
    assert.ok(got.streams.video && got.streams.video === got.streams.audio,
      `audio and video in one MediaStream (lip sync): ${JSON.stringify(got.streams)}`);

    // ICE restart over PATCH (RFC 9725 §4.4): the browser's new credentials in, the
    // server's out; media goes on over the restarted session.
    const restart = await viewer.eval(async ({ base, token }) => {
      const { pc } = window.whep;
      const value = (sdp, name) => new RegExp(`a=${name}:(\\S+)`).exec(sdp)[1];
      pc.restartIce();
      const offer = await pc.createOffer();
      await pc.setLocalDescription(offer);
      const r = await fetch(`${base}${window.whep.location}`, {
        method: 'PATCH',
        headers: { 'content-type': 'application/trickle-ice-sdpfrag', 'if-match': '*', authorization: `Bearer ${token}` },
        body: `a=ice-ufrag:${value(offer.sdp, 'ice-ufrag')}\r\na=ice-pwd:${value(offer.sdp, 'ice-pwd')}\r\n`,
      });
      const frag = await r.text();
      if (r.status !== 200) return { status: r.status, frag };
      const old = window.whep.answer;
      const answer = old.split(value(old, 'ice-ufrag')).join(value(frag, 'ice-ufrag'))
        .split(value(old, 'ice-pwd')).join(value(frag, 'ice-pwd'));
      await pc.setRemoteDescription({ type: 'answer', sdp: answer });
      let frames = 0;
      (await pc.getStats()).forEach((x) => { if (x.type === 'inbound-rtp' && x.kind === 'video') frames = x.framesDecoded; });
      return { status: r.status, etag: r.headers.get('etag'), mine: value(offer.sdp, 'ice-ufrag'), frames };
    }, { base: `http://127.0.0.1:${port}`, token: server.token(room, 'viewer', ['--no-publish']) });
    assert.equal(restart.status, 200, JSON.stringify(restart));
    assert.notEqual(restart.etag, created.etag, 'a new ETag after the ICE restart');
    // The new browser ufrag is in use and a second candidate pair was selected.
    await viewer.waitFor(async ({ mine, frames }) => {
      let transport = null;
      let decoded = 0;
      (await window.whep.pc.getStats()).forEach((x) => {
        if (x.type === 'transport') transport = x;
        if (x.type === 'inbound-rtp' && x.kind === 'video') decoded = x.framesDecoded;
      });
      return window.whep.pc.connectionState === 'connected' && decoded > frames + 50
        && transport?.iceLocalUsernameFragment === mine && transport.selectedCandidatePairChanges >= 2;
    }, restart, 20000, 'video decoding on over the restarted ICE session');
  } finally {
    await ffmpeg.stop();
  }

  // FFmpeg's DELETE on exit ended its session, and the server says so.
  const deadline = Date.now() + 10000;
  while (Date.now() < deadline && !server.log().includes('ended by DELETE')) await sleep(200);
  const deleted = server.log().split('\n').some((l) => l.includes('ended by DELETE') && l.includes('ffmpeg'));
  assert.ok(deleted, `no DELETE from FFmpeg:\n${ffmpeg.log().slice(-2000)}`);
  const c = await server.counters(room).catch(() => ({ participants: [] }));
  assert.ok(!c.participants.some((x) => x.identity === 'ffmpeg'), JSON.stringify(c));
});

/** Eyevinn's WHIP client and WebRTC player as one script that sets `window.WHIPClient` and `window.WebRTCPlayer`. */
async function eyevinnBundle() {
  const entry = `import { WHIPClient } from '@eyevinn/whip-web-client';
    import { WebRTCPlayer } from '@eyevinn/webrtc-player';
    window.WHIPClient = WHIPClient;
    window.WebRTCPlayer = WebRTCPlayer;`;
  const out = await build({
    stdin: { contents: entry, resolveDir: dirname(fileURLToPath(import.meta.url)) },
    bundle: true, format: 'iife', write: false, logLevel: 'warning',
  });
  return out.outputFiles[0].text;
}

/** Waits until the server logs that `identity`'s session ended by DELETE and no longer lists it. */
async function endedByDelete(server, room, identity) {
  const deadline = Date.now() + 10000;
  const logged = () => server.log().split('\n').some((l) => l.includes('ended by DELETE') && l.includes(identity));
  while (Date.now() < deadline && !logged()) await sleep(200);
  assert.ok(logged(), `no DELETE from ${identity}:\n${server.log().slice(-3000)}`);
  const c = await server.counters(room).catch(() => ({ participants: [] }));
  assert.ok(!c.participants.some((x) => x.identity === identity), JSON.stringify(c));
}

test('the Eyevinn WHIP client and WebRTC player (npm), on another origin, publish and play, and end with DELETE', async () => {
  const server = await serverForCors();
  const room = 'e2e-eyevinn';
  const bundle = await eyevinnBundle();
  const open = async (name) => {
    const u = await openUser(server, name, null);
    people.push(u);
    await u.page.goto(`${viewerOrigin}/healthz`);
    await u.page.evaluate(bundle);
    return u;
  };

  const publisher = await open('Publisher');
  await publisher.eval(async ({ url, token }) => {
    const stream = await navigator.mediaDevices.getUserMedia({ video: { width: 640, height: 360 }, audio: true });
    window.whip = new window.WHIPClient({ endpoint: url, opts: { authkey: token, iceServers: [] } });
    await window.whip.ingest(stream);
  }, { url: `http://127.0.0.1:${port}/whip/${room}`, token: server.token(room, 'eyevinn-publisher') });
  for (const deadline = Date.now() + 20000; ; await sleep(250)) {
    const c = await server.counters(room).catch(() => null);
    const p = c?.participants.find((x) => x.identity === 'eyevinn-publisher');
    if (p?.connected && p.packets_in > 100) break;
    assert.ok(Date.now() < deadline, `the WHIP client did not connect: ${JSON.stringify(c)}\n${publisher.logs.slice(-20).join('\n')}`);
  }

  const viewer = await open('Player');
  await viewer.eval(async ({ url, token }) => {
    const video = document.createElement('video');
    video.muted = true;
    video.autoplay = true;
    video.playsInline = true;
    document.body.append(video);
    window.player = new window.WebRTCPlayer({ video, type: 'whep', iceServers: [] });
    await window.player.load(new URL(url), `Bearer ${token}`);
    window.video = video;
  }, { url: `http://127.0.0.1:${port}/whep/${room}`, token: server.token(room, 'eyevinn-player', ['--no-publish']) });
  const seen = await viewer.waitFor(() => {
    const v = window.video;
    const frames = v.getVideoPlaybackQuality().totalVideoFrames;
    const audio = v.srcObject?.getAudioTracks().length || 0;
    return frames > 30 && v.videoWidth > 0 && audio > 0 && { frames, width: v.videoWidth, audio };
  }, null, 30000, 'the player showing the WHIP client\'s video, with its audio');
  assert.ok(seen.width >= 320, JSON.stringify(seen));
  console.log(`Eyevinn player: ${seen.frames} frames shown, ${seen.width} px wide`);

  await viewer.eval(() => window.player.unload());
  await endedByDelete(server, room, 'eyevinn-player');
  await publisher.eval(() => window.whip.destroy());
  await endedByDelete(server, room, 'eyevinn-publisher');
});
