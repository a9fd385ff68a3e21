// Call quality in the web app: the server's active-speaker announcements reach every page and
// light up the speaker's tile (and "Follow speaker" shows it large), and the diagnostics panel
// shows live figures from getStats() and, for the host, the server's view of the call.
import { test, after, afterEach } from 'node:test';
import assert from 'node:assert/strict';
import { browserSession, startServer, openParticipant, openUser, waitForRemoteMedia } from './lib.js';

const session = browserSession({ afterEach, after });
const people = session.people;

/** Signs up in the page, creates a meeting and joins it as its host; returns the room. */
async function hostMeeting(server, name) {
  const host = await openUser(server, name, '/');
  people.push(host);
  const room = await host.eval(async (n) => {
    const api = await import('/static/js/api.js');
    await api.signup(`${n.toLowerCase()}@example.com`, 'correct horse battery', n);
    return (await api.createMeeting({ title: 'Quality' })).room;
  }, name);
  await host.newPage(`/m/${room}?autojoin=1`);
  return { host, room };
}

const speakerIs = (p, id, what) => p.waitFor((x) => window.stoa.activeSpeaker === x, id, 20000, what);

test('the active speaker is announced and highlighted; diagnostics show inbound video', async () => {
  const server = session.server = await startServer();
  const { host: alice, room } = await hostMeeting(server, 'Alice');
  const bob = await openParticipant(server, room, 'Bob');
  people.push(bob);
  for (const p of [alice, bob]) await waitForRemoteMedia(p);
  assert.equal(await alice.eval(() => window.stoa.isHost), true);
  const [a, b] = [await alice.eval(() => window.stoa.me.pid), await bob.eval(() => window.stoa.me.pid)];

  // Both fake microphones beep alike, so Bob turns his off: only Alice makes sound.
  assert.equal(await bob.eval(() => window.stoa.toggleMic()), false);
  for (const p of [alice, bob]) await speakerIs(p, a, 'Alice as the active speaker');
  await bob.waitFor((x) => !!document.querySelector(`.tile.speaking[data-participant="${x}"]`), a, 5000, "Alice's tile lit");
  await alice.waitFor(() => !!document.querySelector('#self-view.speaking'), null, 5000, "Alice's self view lit");

  // Follow speaker puts Alice's tile first and large on Bob's page.
  await bob.page.click('#follow-button');
  await bob.waitFor((x) => !!document.querySelector(`#gallery.follow .tile.followed[data-participant="${x}"]`), a, 5000, 'the followed tile');

  // Swap: Alice goes quiet and Bob speaks.
  assert.equal(await alice.eval(() => window.stoa.toggleMic()), false);
  assert.equal(await bob.eval(() => window.stoa.toggleMic()), true);
  for (const p of [alice, bob]) await speakerIs(p, b, 'Bob as the active speaker');
  await alice.waitFor((x) => !!document.querySelector(`.tile.speaking[data-participant="${x}"]`), b, 5000, "Bob's tile lit");
  assert.equal(await bob.eval((x) => !!document.querySelector(`.tile.speaking[data-participant="${x}"]`), a), false);

  // The diagnostics panel: the browser's figures for Bob, the server's too for the host.
  await bob.page.click('#stats-button');
  await bob.waitFor(() => Number(document.querySelector('#stats-inbound tr[data-kind="video"] .bitrate')?.dataset.bps) > 0,
    null, 10000, 'a non-zero inbound video bitrate');
  const d = await bob.eval(() => window.stoa.diagnostics);
  const video = d.inbound.find((t) => t.kind === 'video');
  assert.ok(video.width > 0 && video.height > 0 && video.participant === a, JSON.stringify(video));
  assert.ok(d.connection?.pairType.includes('host'), JSON.stringify(d.connection));
  assert.equal(d.server, null, 'a guest gets no server view');
  assert.equal(await bob.eval(() => document.querySelector('#stats-server-section').hidden), true);

  await alice.page.click('#stats-button');
  const rows = await alice.waitFor(() => {
    const r = [...document.querySelectorAll('#stats-server tr')];
    return r.length === 2 && window.stoa.diagnostics?.server?.participants?.every((p) => p.bitrate_in_bps > 0) && r.length;
  }, null, 10000, "the server's view");
  assert.equal(rows, 2);
});
