// Firefox in meetings with media: headless Firefox ESR and Chromium in one call through the
// web app (each sees and hears the other), Firefox's screen share, a third person joining
// and leaving while Firefox is in the call. One Firefox process serves all the tests (a tab
// per person); Chromium runs a process per person as elsewhere.
import { test, after, afterEach } from 'node:test';
import assert from 'node:assert/strict';
import { browserSession, launchFirefox, openParticipant, startServer, startXvfb, waitForRemoteMedia } from './lib.js';

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
const framesIn = async (p) => (await p.stats()).inbound.filter((x) => x.kind === 'video').reduce((n, x) => n + (x.framesDecoded || 0), 0);

/** Waits until `p` has decoded `more` frames beyond `since` (all received videos). */
const moreFrames = (p, since, more, what) => p.waitFor(async ({ since, more }) => {
  const s = await window.stoa.stats();
  return s.inbound.filter((x) => x.kind === 'video').reduce((n, x) => n + (x.framesDecoded || 0), 0) > since + more;
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
