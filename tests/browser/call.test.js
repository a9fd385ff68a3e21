// Two and three people in a meeting through the web app, headless Chromium with fake devices.
import { test, after, afterEach } from 'node:test';
import assert from 'node:assert/strict';
import { browserSession, startServer, openParticipant, participantPath, waitForRemoteMedia, spawnBareChromium, sleep } from './lib.js';

const session = browserSession({ afterEach, after });
const people = session.people;
let server;

test('two browsers see and hear each other through the SFU', async () => {
  server = session.server = await startServer();
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

  // Keyboard shortcuts, and their list in the settings dialog.
  const micOn = () => alice.eval(() => window.stoa.local.micOn);
  await alice.page.keyboard.press('Control+d');
  await alice.waitFor(() => window.stoa.local.micOn === false, null, 5000, 'Ctrl+D to turn the microphone off');
  await alice.page.keyboard.press('Control+d');
  await alice.waitFor(() => window.stoa.local.micOn === true, null, 5000, 'Ctrl+D to turn it on again');
  assert.equal(await micOn(), true);
  const panel = () => alice.eval(() => document.body.dataset.panel);
  const before = await panel(); // wide windows open with the chat shown
  await alice.page.keyboard.press('Control+Alt+c');
  assert.equal(await panel(), before === 'chat' ? '' : 'chat', 'Ctrl+Alt+C toggles the chat');
  await alice.page.keyboard.press('Control+Alt+p');
  assert.equal(await panel(), 'people', 'Ctrl+Alt+P shows the people');
  await alice.page.keyboard.press('Shift+Slash');
  await alice.page.waitForSelector('#settings[open] #shortcuts');
  assert.match(await alice.page.textContent('#shortcuts'), /Ctrl \+ D\s*Turn the microphone on or off/);

  // Alice blurs her background there. Bob's picture of her loses its fine detail (the fake
  // camera shows no person, so all of it is background), and gets it back when she stops.
  const sharp = await detailOfRemoteVideo(bob);
  await alice.page.click('#blur-toggle');
  await alice.waitFor(() => window.stoa.local.blur, null, 30000, 'the blur model running');
  const sent = () => alice.eval(() => {
    const l = window.stoa.local;
    return l.sentCam !== l.cam && window.stoa.pc.getSenders().some((s) => s.track === l.sentCam)
      && document.querySelector('#self-view video').srcObject?.getVideoTracks()[0] === l.sentCam;
  });
  assert.ok(await sent(), 'the blurred picture is what is sent and what Alice sees of herself');
  const blurred = await waitForDetail(bob, (d) => d < sharp * 0.5, `detail below half of ${sharp.toFixed(2)}`);
  await sleep(2000);
  const blurFps = (await bob.stats()).inbound.find((x) => x.kind === 'video').framesPerSecond;
  // The camera off and on again: still blurred.
  await alice.eval(() => window.stoa.toggleCam());
  assert.equal(await alice.eval(() => window.stoa.toggleCam()), true);
  assert.ok(await sent(), 'still blurred after the camera was off');
  await alice.page.click('#blur-toggle');
  await alice.waitFor(() => !window.stoa.local.blur && window.stoa.pc.getSenders().some((s) => s.track === window.stoa.local.cam), null, 10000, 'the plain camera sent again');
  const back = await waitForDetail(bob, (d) => d > sharp * 0.7, `detail back near ${sharp.toFixed(2)}`);
  console.log(`background blur: detail of the received picture ${sharp.toFixed(2)} plain, ${blurred.toFixed(2)} blurred (${blurFps} fps), ${back.toFixed(2)} after`);

  // Alice raises her hand (Ctrl+Alt+H): Bob sees it on her tile; she lowers it with the button.
  await alice.page.keyboard.press('Escape');
  await alice.page.waitForSelector('#settings', { state: 'hidden' });
  const [aliceId, bobId] = [await alice.eval(() => window.stoa.me.pid), await bob.eval(() => window.stoa.me.pid)];
  await alice.page.keyboard.press('Control+Alt+h');
  await bob.waitFor((id) => !!document.querySelector(`.tile.hand-raised[data-participant="${id}"]`), aliceId, 10000, "Alice's raised hand on her tile");
  assert.match(await bob.page.textContent('#toasts'), /Alice raised their hand/);
  await alice.waitFor(() => document.querySelector('#hand-button').getAttribute('aria-pressed') === 'true', null, 5000, 'her hand button pressed');
  await alice.page.click('#hand-button');
  await bob.waitFor((id) => !document.querySelector(`.tile.hand-raised[data-participant="${id}"]`), aliceId, 10000, 'the hand lowered');
  // Bob reacts: the reaction floats over his tile on Alice's page, and the menu closes.
  await bob.page.click('#react-button');
  await bob.page.click('#reactions .reaction[title="React with 🎉"]');
  await alice.waitFor((id) => document.querySelector(`.tile[data-participant="${id}"] .reaction-bubble`)?.textContent === '🎉', bobId, 5000, "Bob's reaction over his tile");
  assert.equal(await bob.eval(() => document.querySelector('#reactions').hidden), true, 'the reactions menu closes');
});

/** Fine detail of the first remote camera's current frame: mean absolute step between neighbouring pixels (green channel). */
function detailOfRemoteVideo(p) {
  return p.eval(() => {
    const v = document.querySelector('.tile:not(.screen) video');
    const [w, h] = [v.videoWidth, v.videoHeight];
    const c = document.createElement('canvas');
    c.width = w;
    c.height = h;
    const g = c.getContext('2d', { willReadFrequently: true });
    g.drawImage(v, 0, 0, w, h);
    const d = g.getImageData(0, 0, w, h).data;
    let sum = 0;
    for (let y = 0; y < h; y++) for (let x = 1; x < w; x++) sum += Math.abs(d[(y * w + x) * 4 + 1] - d[(y * w + x - 1) * 4 + 1]);
    return sum / (h * (w - 1));
  });
}

async function waitForDetail(p, ok, what) {
  const seen = [];
  for (const until = Date.now() + 20000; Date.now() < until; await sleep(500)) {
    const d = await detailOfRemoteVideo(p);
    seen.push(d.toFixed(2));
    if (ok(d)) return d;
  }
  throw new Error(`received picture: ${what}; measured ${seen.join(' ')}`);
}

test('three people: everyone decodes two videos; a screen share and a chat message reach the others; leaving is seen', async () => {
  const room = 'e2e-three';
  const [a, b, c] = [await openParticipant(server, room, 'Ann'), await openParticipant(server, room, 'Ben'), await openParticipant(server, room, 'Cat')];
  people.push(a, b, c);
  for (const p of [a, b, c]) await waitForRemoteMedia(p, { videos: 2 });

  // Ben keeps the call in a picture-in-picture window: someone's camera at first.
  const pipTrack = () => document.querySelector('#pip-video')?.srcObject?.getVideoTracks()[0]?.id;
  await b.page.click('#pip-button');
  await b.waitFor(() => document.pictureInPictureElement?.id === 'pip-video', null, 10000, 'the picture-in-picture window');
  const cameras = await b.eval(() => [...document.querySelectorAll('.tile:not(.screen) video')].map((v) => v.srcObject?.getVideoTracks()[0]?.id));
  assert.ok(cameras.includes(await b.eval(pipTrack)), 'picture-in-picture shows a camera');

  // Ann shares her screen (a user gesture is needed for getDisplayMedia).
  await a.page.click('#screen-button');
  for (const p of [b, c]) {
    await p.waitFor(() => document.querySelectorAll('.tile.screen video').length > 0, null, 15000, 'a screen-share tile');
    await waitForRemoteMedia(p, { videos: 3, frames: 10 });
  }
  // The window follows the presentation without another click, and plays it.
  await b.waitFor(() => {
    const screen = document.querySelector('.tile.screen video').srcObject?.getVideoTracks()[0];
    const v = document.querySelector('#pip-video');
    return screen && v.srcObject?.getVideoTracks()[0] === screen && v.videoWidth > 0 && !v.paused && document.pictureInPictureElement === v;
  }, null, 10000, 'the presented screen in picture-in-picture');

  // Ben writes in the chat; everyone gets it with his name.
  await b.page.fill('#chat-input', 'hello from Ben');
  await b.page.click('#chat-send');
  for (const p of [a, c]) {
    const msg = await p.waitFor(() => window.stoa.chat.find((m) => m.text === 'hello from Ben'), null, 10000, 'the chat message');
    assert.equal(msg.name, 'Ben');
  }
  const log = await a.page.locator('#chat-log').innerText();
  assert.ok(log.includes('hello from Ben'), `chat log shows the message: ${log}`);

  // Ben changes his name in the People panel: the others' tiles and his chat use the new one.
  const benId = await b.eval(() => window.stoa.me.pid);
  await b.page.click('#people-button');
  // The People panel offers the meeting's link, one click to copy.
  assert.match(await b.page.locator('#people-view .meeting-link').innerText(), /\/m\/e2e-three$/);
  await b.context.grantPermissions(['clipboard-read', 'clipboard-write']);
  await b.page.click('#people-view .copy-link');
  await b.waitFor(() => document.querySelector('#toasts')?.textContent.includes('Meeting link copied'), null, 5000, 'word that the link was copied');
  assert.match(await b.eval(() => navigator.clipboard.readText()), /\/m\/e2e-three$/);
  await b.page.fill('#rename-input', 'Benjamin');
  await b.page.click('#rename-button');
  await b.waitFor(() => window.stoa.me.name === 'Benjamin', null, 10000, 'his own new name');
  for (const p of [a, c]) {
    await p.waitFor((id) => document.querySelector(`.tile[data-participant="${id}"] .name`)?.textContent === 'Benjamin', benId, 10000, 'Ben\'s tile renamed');
  }
  assert.ok(await b.eval(() => !!document.querySelector('#people-list')?.textContent.includes('Benjamin (You)')));
  await b.page.click('#chat-button');
  await b.page.fill('#chat-input', 'renamed');
  await b.page.click('#chat-send');
  const renamed = await a.waitFor(() => window.stoa.chat.find((m) => m.text === 'renamed'), null, 10000, 'the chat message after renaming');
  assert.equal(renamed.name, 'Benjamin');

  // Cat leaves; the others see her tile go within a few seconds.
  const catId = await c.eval(() => window.stoa.me.pid);
  for (const p of [a, b]) {
    await p.waitFor((id) => document.querySelector(`.tile[data-participant="${id}"]`), catId, 5000, 'Cat\'s tile');
  }
  const t0 = Date.now();
  await c.page.click('#leave-button');
  for (const p of [a, b]) {
    await p.waitFor((id) => !document.querySelector(`.tile[data-participant="${id}"]`), catId, 5000, 'Cat\'s tile to disappear');
  }
  const goneMs = Date.now() - t0;
  assert.ok(goneMs < 5000, `Cat's departure took ${goneMs} ms to show`);
});

test('a browser that vanishes without saying goodbye is removed within seconds', async () => {
  const room = 'e2e-vanish';
  const a = await openParticipant(server, room, 'Stay');
  people.push(a);
  // A bare Chromium process (no driver) that we can kill outright: no leave message, no
  // WebSocket close handshake, no DTLS close.
  const b = spawnBareChromium(`${server.base}${participantPath(server, room, 'Vanish')}`);
  await waitForRemoteMedia(a);
  const bId = await a.waitFor(() => [...window.stoa.participants.values()].find((p) => p.name === 'Vanish')?.pid, null, 10000, 'the other participant');
  const t0 = Date.now();
  b.kill('SIGKILL');
  await a.waitFor((id) => !window.stoa.participants.has(id), bId, 20000, 'the vanished participant to be removed');
  const report = await server.counters(room);
  assert.equal(report.participants.length, 1, JSON.stringify(report));
  const ms = Date.now() - t0;
  console.log(`vanished participant removed after ${ms} ms`);
  assert.ok(ms < 16000, `removal took ${ms} ms`);
});

test('an ICE restart (as after a network change) keeps the call going without reloading', async () => {
  const room = 'e2e-restart';
  const a = await openParticipant(server, room, 'Rita');
  const b = await openParticipant(server, room, 'Sam');
  people.push(a, b);
  await waitForRemoteMedia(b);
  const ufrag = () => window.stoa.pc.remoteDescription.sdp.match(/a=ice-ufrag:(\S+)/)[1];
  const before = await b.eval(ufrag);
  const loadId = await b.eval(() => performance.timeOrigin);
  await b.eval(() => window.stoa.restartIce());
  await b.waitFor((old) => window.stoa.pc.remoteDescription.sdp.match(/a=ice-ufrag:(\S+)/)[1] !== old, before, 10000, 'new server ICE credentials');
  const frames0 = (await b.stats()).inbound.find((x) => x.kind === 'video').framesDecoded;
  await b.waitFor(async (f0) => {
    const s = await window.stoa.stats();
    return window.stoa.pc.connectionState === 'connected' && s.inbound.find((x) => x.kind === 'video').framesDecoded > f0 + 30;
  }, frames0, 15000, 'video to keep flowing after the restart');
  assert.equal(await b.eval(() => performance.timeOrigin), loadId, 'the page was not reloaded');
});
