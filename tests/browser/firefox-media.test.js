// Firefox with media: Firefox ESR and Chromium in one call through the web app (each sees
// and hears the other), Firefox's screen share, a third person joining and leaving while
// Firefox is in the call, and WHIP/WHEP from Firefox pages. One Firefox process serves all
// the tests (a tab per person); Chromium runs a process per person as elsewhere.
import { test, after, afterEach } from 'node:test';
import assert from 'node:assert/strict';
import { browserSession, launchFirefox, openFirefoxUser, openParticipant, sleep, startServer, startXvfb, waitForRemoteMedia } from './lib.js';

const session = browserSession({ afterEach, after });
// Firefox runs headful on an X server without a screen: that is what it shares.
let xvfb = null;
let firefox = null;
// The call of the first test, which the second one continues.
const call = { fay: null, carl: null };
after(async () => {
  for (const p of [call.fay, call.carl]) await p?.close().catch(() => {});
  await firefox?.close();
  await xvfb?.stop();
});

async function theFirefox() {
  if (!firefox) {
    xvfb = await startXvfb();
    firefox = await launchFirefox({ display: xvfb.display });
  }
  return firefox;
}

/** A participant in a tab of the file's Firefox. */
async function openFirefoxParticipant(server, room, name, query = '') {
  return openParticipant(server, room, name, query, { browser: 'firefox', firefox: await theFirefox() });
}

/** Decoded frames of all received videos, summed. */
/**
 * Frames decoded so far per received video (keyed by mid and track). A receiver reused for a
 * new stream (someone left and came back) starts counting again from zero.
 */
const framesIn = async (p) => Object.fromEntries((await p.stats()).inbound
  .filter((x) => x.kind === 'video').map((x) => [`${x.mid}/${x.trackIdentifier}`, x.framesDecoded || 0]));

/**
 * Waits until `p` has decoded `more` frames beyond `since` (from `framesIn`), summed over its
 * received videos; a count below its baseline is a restarted receiver and counts from zero.
 */
const moreFrames = (p, since, more, what) => p.waitFor(async ({ since, more }) => {
  const s = await window.stoa.stats();
  const grown = s.inbound.filter((x) => x.kind === 'video').map((x) => {
    const now = x.framesDecoded || 0;
    const before = since[`${x.mid}/${x.trackIdentifier}`] ?? 0;
    return now >= before ? now - before : now;
  });
  return grown.reduce((a, b) => a + b, 0) > more;
}, { since, more }, 20000, what);

/** Total audio energy received so far (all inbound audio). */
const audioEnergy = async (p) => (await p.stats()).inbound.filter((x) => x.kind === 'audio').reduce((e, x) => e + (x.totalAudioEnergy || 0), 0);

test('Firefox and Chromium see and hear each other through the SFU', async () => {
  const server = session.server = await startServer();
  const room = 'ff-call';
  const fay = call.fay = await openFirefoxParticipant(server, room, 'Fay');
  const carl = call.carl = await openParticipant(server, room, 'Carl');
  for (const p of [fay, carl]) {
    const s = await waitForRemoteMedia(p, { timeout: 40000 });
    const video = s.inbound.find((x) => x.kind === 'video' && x.framesDecoded > 30);
    assert.ok(video.frameWidth > 0, `${p.name} decodes ${JSON.stringify(video)}`);
  }
  // Audio energy keeps rising both ways: the streams are live, not a single burst.
  for (const p of [fay, carl]) {
    const e1 = await audioEnergy(p);
    await p.waitFor(async (e1) => {
      const s = await window.stoa.stats();
      return s.inbound.filter((x) => x.kind === 'audio').reduce((e, x) => e + (x.totalAudioEnergy || 0), 0) > e1;
    }, e1, 15000, 'audio energy to rise');
  }
  const report = await server.counters(room);
  assert.equal(report.participants.length, 2, JSON.stringify(report));
  for (const p of report.participants) {
    assert.ok(p.packets_in > 100, `server received ${p.packets_in} packets from ${p.name}`);
    assert.ok(p.packets_out > 100, `server forwarded ${p.packets_out} packets to ${p.name}`);
  }
});

test('Firefox shares its screen to Chromium; a third person joins and leaves; chat; Firefox leaves and rejoins', async () => {
  const { fay, carl } = call;
  assert.ok(fay && carl, 'the call of the previous test');
  await fay.page.click('#screen-button');
  await carl.waitFor(() => document.querySelectorAll('.tile.screen video').length > 0, null, 15000, 'Fay\'s screen-share tile');
  await waitForRemoteMedia(carl, { videos: 2, frames: 10 });
  const screen = await carl.waitFor(() => {
    const v = document.querySelector('.tile.screen video');
    return v && v.videoWidth > 0 && { width: v.videoWidth, height: v.videoHeight };
  }, null, 15000, 'the shared screen shown');
  console.log(`# Chromium shows Firefox's screen at ${screen.width}x${screen.height}`);

  // Dan (Chromium) joins: Firefox gets his camera too, Dan gets Fay's camera and screen and Carl.
  const dan = await openParticipant(session.server, 'ff-call', 'Dan');
  session.people.push(dan);
  await waitForRemoteMedia(dan, { videos: 3, frames: 10, timeout: 40000 });
  await waitForRemoteMedia(fay, { videos: 2, frames: 10, timeout: 40000 });
  const danId = await dan.eval(() => window.stoa.me.pid);

  // Dan leaves: his tile goes from Firefox, which renegotiates back to stable, and media
  // keeps flowing both ways between Fay and Carl.
  await dan.page.click('#leave-button');
  await fay.waitFor((id) => !document.querySelector(`.tile[data-participant="${id}"]`) && !window.stoa.participants.has(id), danId, 15000, 'Dan gone');
  await fay.waitFor(() => window.stoa.pc.signalingState === 'stable' && window.stoa.pc.connectionState === 'connected', null, 15000, 'a stable, connected call');
  await moreFrames(fay, await framesIn(fay), 30, 'Firefox to keep decoding after Dan left');
  await moreFrames(carl, await framesIn(carl), 30, 'Chromium to keep decoding Firefox after Dan left');

  // Chat both ways.
  await fay.page.type('#chat-input', 'hello from Firefox');
  await fay.page.click('#chat-send');
  await carl.page.fill('#chat-input', 'hello from Chromium');
  await carl.page.click('#chat-send');
  for (const [p, text, from] of [[carl, 'hello from Firefox', 'Fay'], [fay, 'hello from Chromium', 'Carl']]) {
    const msg = await p.waitFor((text) => window.stoa.chat.find((m) => m.text === text), text, 10000, `the chat message "${text}"`);
    assert.equal(msg.name, from);
  }

  // Fay leaves and rejoins: Carl sees her go and come back, media flows both ways again.
  const fayId = await fay.eval(() => window.stoa.me.pid);
  await fay.page.click('#leave-button');
  await carl.waitFor((id) => !window.stoa.participants.has(id), fayId, 15000, 'Fay gone');
  await fay.page.click('#rejoin-button');
  await fay.waitFor(() => window.stoa.state === 'joined', null, 20000, 'Fay back in the call');
  const back = await fay.eval(() => window.stoa.me.pid);
  await carl.waitFor((id) => window.stoa.participants.has(id), back, 15000, 'Fay back');
  await moreFrames(fay, await framesIn(fay), 30, 'Firefox to decode Carl after rejoining');
  await moreFrames(carl, await framesIn(carl), 30, 'Chromium to decode Firefox after it rejoined').catch(async (e) => {
    // What each side saw, for the failure report.
    const carlId = await carl.eval(() => window.stoa.me.pid);
    const report = await fetch(`${session.server.base}/api/v1/rooms/ff-call/stats`, { headers: { authorization: `Bearer ${session.server.token('ff-call', 'diag', ['--admin'])}` } }).then((r) => r.json()).catch(() => null);
    const sub = report?.participants.find((p) => `p${p.id}` === carlId);
    const inbound = (await carl.stats()).inbound.map((x) => `${x.kind} mid ${x.mid} ${x.trackIdentifier}: ${x.framesDecoded ?? '-'} frames, ${x.packetsReceived} packets`);
    const sent = (await fay.stats()).outbound.map((x) => `${x.kind} ${x.rid ?? ''} ${x.active === false ? 'off' : 'on'}: ${x.packetsSent} packets`);
    throw new Error(`${e.message}\nChromium receives: ${JSON.stringify(inbound)}\nserver to Chromium: ${JSON.stringify(sub?.received)}\nFirefox sends: ${JSON.stringify(sent)}\nChromium logs: ${JSON.stringify(carl.logs.slice(-20))}`);
  });

  const trouble = fay.logs.filter((l) => /error|offering|answering|rolling back/i.test(l));
  assert.deepEqual(trouble, [], 'Firefox logged no negotiation errors');
});

/**
 * In a page: publishes the fake camera and microphone over WHIP (`kind` 'whip') or plays the
 * room over WHEP ('whep'), without trickle ICE (the offer carries all candidates). Keeps the
 * connection in `window.live`; returns the session's Location.
 */
async function whipWhep({ kind, room, token }) {
  const pc = new RTCPeerConnection();
  if (kind === 'whip') {
    const s = await navigator.mediaDevices.getUserMedia({ audio: true, video: true });
    for (const t of s.getTracks()) pc.addTransceiver(t, { direction: 'sendonly', streams: [s] });
  } else {
    pc.addTransceiver('audio', { direction: 'recvonly' });
    pc.addTransceiver('video', { direction: 'recvonly' });
    pc.ontrack = (e) => {
      const el = document.createElement(e.track.kind);
      el.autoplay = true;
      el.srcObject = new MediaStream([e.track]);
      document.body.append(el);
    };
  }
  await pc.setLocalDescription(await pc.createOffer());
  await new Promise((resolve) => {
    if (pc.iceGatheringState === 'complete') return resolve();
    pc.onicegatheringstatechange = () => pc.iceGatheringState === 'complete' && resolve();
  });
  const r = await fetch(`/${kind}/${room}`, {
    method: 'POST',
    headers: { authorization: `Bearer ${token}`, 'content-type': 'application/sdp' },
    body: pc.localDescription.sdp,
  });
  if (r.status !== 201) throw new Error(`${kind}: ${r.status} ${await r.text()}`);
  await pc.setRemoteDescription({ type: 'answer', sdp: await r.text() });
  window.live = pc;
  return r.headers.get('location');
}

test('a Firefox WHIP publisher is watched by a Firefox WHEP viewer', async () => {
  const server = session.server = session.server || await startServer();
  const room = 'ff-live';
  const pub = await openFirefoxUser(server, 'WHIP', '/', { firefox: await theFirefox() });
  const viewer = await openFirefoxUser(server, 'WHEP', '/', { firefox });
  session.people.push(pub, viewer);
  const pubToken = server.token(room, 'ff-whip', ['--name', 'Firefox WHIP']);
  const viewToken = server.token(room, 'ff-whep', ['--no-publish']);
  const published = await pub.eval(whipWhep, { kind: 'whip', room, token: pubToken });
  assert.match(published, new RegExp(`^/whip/${room}/`));
  const watched = await viewer.eval(whipWhep, { kind: 'whep', room, token: viewToken });
  assert.match(watched, new RegExp(`^/whep/${room}/`));

  const got = await viewer.waitFor(async () => {
    const inbound = [];
    (await window.live.getStats()).forEach((s) => s.type === 'inbound-rtp' && inbound.push(s));
    const video = inbound.find((s) => s.kind === 'video' && s.framesDecoded > 30);
    const audio = inbound.find((s) => s.kind === 'audio' && s.totalAudioEnergy > 0 && s.totalSamplesReceived > 48000);
    return video && audio && { frames: video.framesDecoded, width: video.frameWidth, energy: audio.totalAudioEnergy };
  }, null, 30000, 'WHEP video decoding and audio');
  assert.ok(got.width > 0, JSON.stringify(got));
  // The server received the publisher's packets and forwarded them to the viewer.
  let report;
  const until = Date.now() + 15000;
  const flowing = (r) => r.participants.length === 2 && r.participants.every((p) => (p.kind === 'whip' ? p.packets_in : p.packets_out) > 100);
  while (!flowing(report = await server.counters(room)) && Date.now() < until) await sleep(250);
  assert.ok(flowing(report), JSON.stringify(report));

  // DELETE on each Location ends the session; the room empties.
  for (const [p, location, token] of [[viewer, watched, viewToken], [pub, published, pubToken]]) {
    const status = await p.eval(async ({ location, token }) => {
      const r = await fetch(location, { method: 'DELETE', headers: { authorization: `Bearer ${token}` } });
      window.live.close();
      return r.status;
    }, { location, token });
    assert.ok(status >= 200 && status < 300, `DELETE ${location}: ${status}`);
  }
  const deadline = Date.now() + 10000;
  let left;
  while ((left = (await server.counters(room)).participants.length) > 0 && Date.now() < deadline) await sleep(200);
  assert.equal(left, 0, 'the WHIP and WHEP sessions ended');
});
