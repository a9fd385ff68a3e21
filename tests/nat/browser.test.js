// Headless Chromium behind the lab's NATs joins a meeting on the public side and decodes video;
// the pre-call network test reports each network correctly.
import { test, before, after, afterEach } from 'node:test';
import assert from 'node:assert/strict';
import { browserSession, openParticipant, waitForRemoteMedia, launchBrowser } from '../browser/lib.js';
import { ns, startLabServer } from './lab.js';

const session = browserSession({ afterEach, after });
const people = session.people;
let server;
before(async () => { server = session.server = await startLabServer(); });

const behind = (netns) => ({ netns, origin: server.base });

test('behind a cone NAT and a symmetric NAT, browsers connect without a relay', async () => {
  const a = await openParticipant(server, 'nat-direct', 'Cone', '', behind(ns.cone));
  const b = await openParticipant(server, 'nat-direct', 'Symmetric', '', behind(ns.symmetric));
  people.push(a, b);
  for (const p of [a, b]) {
    const s = await waitForRemoteMedia(p, { timeout: 40000 });
    assert.notEqual(s.selectedPair?.localCandidateType, 'relay', `${p.name}: ${JSON.stringify(s.selectedPair)}`);
    assert.equal(s.selectedPair?.remoteAddress, '203.0.113.10', `${p.name} reached the SFU directly`);
  }
});

test('behind the symmetric NAT, relay-only: media flows through the TURN relay', async () => {
  const a = await openParticipant(server, 'nat-relay-2', 'Cone', '', behind(ns.cone));
  const b = await openParticipant(server, 'nat-relay-2', 'Relayed', '&relay=1', behind(ns.symmetric));
  people.push(a, b);
  const s = await waitForRemoteMedia(b, { timeout: 40000 });
  assert.equal(s.selectedPair?.localCandidateType, 'relay', JSON.stringify(s.selectedPair));
  await waitForRemoteMedia(a, { timeout: 40000 });
});

test('with UDP blocked by a firewall, a browser connects over TCP', async () => {
  const a = await openParticipant(server, 'nat-over-tcp', 'Cone', '', behind(ns.cone));
  const c = await openParticipant(server, 'nat-over-tcp', 'NoUdp', '', behind(ns.udpBlocked));
  people.push(a, c);
  const s = await waitForRemoteMedia(c, { timeout: 60000 });
  const pair = s.selectedPair || {};
  assert.ok(pair.remoteProtocol === 'tcp' || pair.localCandidateType === 'relay', JSON.stringify(pair));
  await waitForRemoteMedia(a, { timeout: 40000 });
});

async function nettest(netns) {
  const browser = await launchBrowser(behind(netns));
  try {
    const page = await browser.newPage();
    await page.goto(`${server.base}/nettest`);
    return await page.evaluate(() => window.nettest.done);
  } finally {
    await browser.close();
  }
}

test('the network test page tells each network what it is', async () => {
  const cone = await nettest(ns.cone);
  assert.equal(cone.stun.ok, true, JSON.stringify(cone));
  assert.equal(cone.mapping, 'endpoint-independent', JSON.stringify(cone));
  assert.equal(cone.verdict, 'ready', JSON.stringify(cone));

  const sym = await nettest(ns.symmetric);
  assert.equal(sym.mapping, 'address-and-port-dependent', JSON.stringify(sym));
  assert.equal(sym.turn.udp.ok, true, JSON.stringify(sym));

  const blocked = await nettest(ns.udpBlocked);
  assert.equal(blocked.stun.ok, false, JSON.stringify(blocked));
  assert.equal(blocked.turn.tcp.ok, true, JSON.stringify(blocked));
  assert.notEqual(blocked.verdict, 'ready', JSON.stringify(blocked));
});
