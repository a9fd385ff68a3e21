// The host's side of a meeting with a lobby: people waiting are told when no host is there
// (and again when one is back), and "End the meeting for everyone" asks first, then ends it for
// everyone in the call and in the lobby.
import { test, after, afterEach } from 'node:test';
import assert from 'node:assert/strict';
import { browserSession, openParticipant, openUser, startServer, sleep } from './lib.js';

const session = browserSession({ afterEach, after });
const people = session.people;

test('the lobby hears when the host leaves; the host ends the meeting for everyone', async () => {
  const server = session.server = await startServer();
  const host = await openUser(server, 'Host', '/signup');
  people.push(host);
  await host.page.fill('#display-name', 'Hana Host');
  await host.page.fill('#email', 'hana@example.com');
  await host.page.fill('#password', 'correct horse battery');
  await host.page.click('#auth-submit');
  await host.page.waitForURL(/\/app\//);
  const room = await host.eval(async () => (await (await fetch('/api/v1/meetings', {
    method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ title: 'Interviews', lobby: true }),
  })).json()).room);
  await host.page.goto(`${server.base}/m/${room}?autojoin=1`);
  await host.waitFor(() => window.stoa?.state === 'joined', null, 20000, 'the host joined');

  // Gus waits while the host is there; the host leaves; Gus is told; the host is back.
  const gus = await openParticipant(server, room, 'Gus');
  people.push(gus);
  await gus.waitFor(() => window.stoa.state === 'lobby', null, 15000, 'the lobby');
  assert.match(await gus.page.textContent('#overlay-text'), /Waiting for the host to let you in/);
  await host.page.click('#leave-button');
  await gus.waitFor(() => /host is not in the meeting/.test(document.querySelector('#overlay-text').textContent), null, 10000, 'word that no host is there');
  assert.equal(await gus.eval(() => window.stoa.state), 'lobby', 'still waiting, and knows why');
  await host.page.click('#rejoin-button');
  await host.waitFor(() => window.stoa?.state === 'joined', null, 20000, 'the host back');
  await gus.waitFor(() => /Waiting for the host to let you in/.test(document.querySelector('#overlay-text').textContent), null, 10000, 'word that the host is back');

  // Pat is let in; Gus keeps waiting.
  const pat = await openParticipant(server, room, 'Pat');
  people.push(pat);
  await host.page.waitForSelector('#lobby-panel .lobby-entry[data-lobby-id]:has-text("Pat") .admit', { timeout: 15000 });
  await host.page.click('#lobby-panel .lobby-entry[data-lobby-id]:has-text("Pat") .admit');
  await pat.waitFor(() => window.stoa.state === 'joined', null, 15000, 'Pat admitted');

  // "End for everyone" asks first: no, nothing happens; yes, everyone is out.
  assert.ok(await host.page.isVisible('#end-button'), 'the host has the button');
  assert.equal(await pat.page.isVisible('#end-button'), false, 'a guest has not');
  host.page.once('dialog', (d) => d.dismiss());
  await host.page.click('#end-button');
  await sleep(1000);
  assert.equal(await pat.eval(() => window.stoa.state), 'joined');
  const asked = new Promise((resolve) => host.page.once('dialog', (d) => { resolve(d.message()); d.accept(); }));
  await host.page.click('#end-button');
  assert.match(await asked, /^End the meeting for everyone\?/);
  for (const [p, title] of [[host, 'You ended the meeting for everyone'], [pat, 'The meeting has ended'], [gus, 'The meeting has ended']]) {
    await p.waitFor(() => window.stoa.state === 'left', null, 15000, `${p.name} out of the meeting`);
    assert.equal(await p.page.textContent('#left-title'), title, p.name);
    assert.equal(await p.page.isVisible('#rejoin-button'), false, `${p.name}: no automatic way back`);
  }
  await sleep(2000);
  assert.equal(await pat.eval(() => window.stoa.state), 'left', 'no reconnection after the end');
});
