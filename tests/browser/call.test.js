// Two and three people in a meeting through the web app, headless Chromium with fake devices.
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { startServer, openParticipant, waitForRemoteMedia, sleep } from './lib.js';

const people = [];
let server;
after(async () => {
  for (const p of people) await p.close().catch(() => {});
  if (server) await server.stop();
});

test('two browsers see and hear each other through the SFU', async () => {
  server = await startServer();
  const room = 'e2e-two';
  const alice = await openParticipant(server, room, 'Alice');
  const bob = await openParticipant(server, room, 'Bob');
  people.push(alice, bob);
  for (const p of [alice, bob]) {
    const s = await waitForRemoteMedia(p);
    const video = s.inbound.find((x) => x.kind === 'video');
    const audio = s.inbound.find((x) => x.kind === 'audio');
    assert.ok(video.framesDecoded > 30, `${p.name} decoded ${video.framesDecoded} frames`);
    assert.ok(audio.totalAudioEnergy > 0, `${p.name} heard audio energy ${audio.totalAudioEnergy}`);
  }
  // Audio energy keeps rising: the stream is live, not a single burst.
  const e1 = (await bob.stats()).inbound.find((x) => x.kind === 'audio').totalAudioEnergy;
  await sleep(1500);
  const e2 = (await bob.stats()).inbound.find((x) => x.kind === 'audio').totalAudioEnergy;
  assert.ok(e2 > e1, `audio energy rose from ${e1} to ${e2}`);
  // The server's counters prove the media went through the SFU.
  const report = await server.counters(room);
  assert.equal(report.participants.length, 2, JSON.stringify(report));
  for (const p of report.participants) {
    assert.ok(p.packets_in > 100, `server received ${p.packets_in} packets from ${p.name}`);
    assert.ok(p.packets_out > 100, `server forwarded ${p.packets_out} packets to ${p.name}`);
  }
  // Names are shown on the tiles.
  const names = await alice.page.locator('.tile').allInnerTexts();
  assert.ok(names.some((t) => t.includes('Bob')), `Alice's tiles: ${names}`);
});
