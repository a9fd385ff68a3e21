// The network test page on a network without NAT (the run's loopback-only namespace, like a
// LAN): UDP reaches the server, so its verdict must say so and no row may call UDP blocked.
import { test, after, afterEach } from 'node:test';
import assert from 'node:assert/strict';
import { browserSession, openUser, startServer } from './lib.js';

const session = browserSession({ afterEach, after });

test('without NAT, the network test says UDP works and the network is ready', async () => {
  const server = session.server = await startServer();
  const u = await openUser(server, 'Tester', '/nettest');
  session.people.push(u);
  const r = await u.eval(() => window.nettest.done);
  const seen = JSON.stringify(r, null, 1);
  assert.equal(r.turn.udp?.ok, true, `the relay over UDP answers here: ${seen}`);
  assert.equal(r.stun.ok, true, `UDP reached the server: ${seen}`);
  assert.equal(r.mapping, 'no-nat', seen);
  assert.equal(r.verdict, 'ready', seen);

  const page = await u.eval(() => ({
    verdict: document.querySelector('#nt-summary').dataset.verdict,
    text: document.querySelector('#nt-summary').textContent,
    stun: document.querySelector('.nt-check[data-check="stun"]').dataset.status,
    mapping: document.querySelector('.nt-check[data-check="mapping"]').dataset.status,
    rows: document.querySelector('#nt-checks').textContent,
  }));
  assert.equal(page.verdict, 'ready', page.text);
  assert.equal(page.stun, 'ok', page.rows);
  assert.equal(page.mapping, 'ok', page.rows);
  assert.doesNotMatch(page.text + page.rows, /blocked/i, 'nothing measured here is blocked');
});
