// Interop with coturn's client tools, which no one here wrote, against Stoa's STUN/TURN
// server in the NAT lab: binding, relaying with long-term and shared-secret credentials over
// UDP, TCP and TLS, with channels and without, NAT behaviour discovery, and refusals.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { ns, PUBLIC_IP, ECHO_PEER, TURN_SECRET, startLabServer, inNs } from './lab.js';

let server;
let echo;
before(async () => {
  server = await startLabServer();
  echo = spawn('ip', ['netns', 'exec', ns.sink, 'turnutils_peer', '-L', ECHO_PEER, '-p', '3480'], { stdio: 'ignore' });
  await new Promise((r) => setTimeout(r, 300));
});
after(async () => {
  echo?.kill();
  await server?.stop();
});

/** Runs turnutils_uclient from the cone-NAT host; returns sent/received message counts. */
async function uclient(extra, { from = ns.cone, messages = 50, clients = 4 } = {}) {
  const args = ['-e', ECHO_PEER, '-r', '3480', '-m', String(clients), '-n', String(messages), '-l', '300', '-z', '5', ...extra, PUBLIC_IP];
  const r = await inNs(from, 'turnutils_uclient', args, 60000);
  const out = r.stdout + r.stderr;
  const tot = [...out.matchAll(/tot_send_msgs=(\d+), tot_recv_msgs=(\d+)/g)].pop();
  return { code: r.code, sent: tot ? +tot[1] : 0, received: tot ? +tot[2] : 0, out };
}

test('turnutils_stunclient gets its NAT mapping', async () => {
  const r = await inNs(ns.cone, 'turnutils_stunclient', [PUBLIC_IP], 5000);
  assert.match(r.stdout, /UDP reflexive addr: 100\.64\.1\.2:\d+/, r.stdout + r.stderr);
});

const relayCases = [
  ['long-term credentials over UDP with channels', ['-u', 'test', '-w', 'test']],
  ['long-term credentials over UDP with Send indications', ['-u', 'test', '-w', 'test', '-s']],
  ['long-term credentials over TCP', ['-u', 'test', '-w', 'test', '-t']],
  ['long-term credentials over TLS', ['-u', 'test', '-w', 'test', '-t', '-S']],
  ['shared-secret credentials over UDP', ['-u', 'alice', '-W', TURN_SECRET]],
  ['shared-secret credentials over TCP without channels', ['-u', 'alice', '-W', TURN_SECRET, '-t', '-s']],
];
for (const [name, args] of relayCases) {
  test(`turnutils_uclient relays every message: ${name}`, async () => {
    const r = await uclient(args);
    assert.ok(r.sent >= 200, `sent ${r.sent}\n${r.out.slice(-1500)}`);
    assert.equal(r.received, r.sent, `received ${r.received} of ${r.sent}\n${r.out.slice(-1500)}`);
  });
}

test('wrong or expired credentials relay nothing', async () => {
  for (const args of [['-u', 'test', '-w', 'wrong'], ['-u', 'nobody', '-w', 'test'], ['-u', 'alice', '-W', 'not-the-secret']]) {
    const r = await uclient(args, { messages: 5, clients: 1 });
    assert.equal(r.received, 0, `${args.join(' ')} relayed ${r.received}`);
  }
});

test('the relay refuses loopback and private peers (no open relay)', async () => {
  for (const peer of ['127.0.0.1', '192.168.1.2', '10.1.2.3']) {
    const args = ['-u', 'test', '-w', 'test', '-e', peer, '-r', '3480', '-m', '1', '-n', '5', '-l', '100', PUBLIC_IP];
    const r = await inNs(ns.cone, 'turnutils_uclient', args, 20000);
    const tot = [...(r.stdout + r.stderr).matchAll(/tot_recv_msgs=(\d+)/g)].pop();
    assert.equal(tot ? +tot[1] : 0, 0, `relayed to ${peer}`);
    assert.match(r.stdout + r.stderr, /403|Forbidden|error/i, `refusal for ${peer} is visible`);
  }
});

test('turnutils_natdiscovery classifies the cone and the symmetric NAT', async () => {
  const cone = await inNs(ns.cone, 'turnutils_natdiscovery', ['-m', '-f', PUBLIC_IP], 40000);
  assert.match(cone.stdout, /Endpoint Independent Mapping/i, cone.stdout + cone.stderr);
  const sym = await inNs(ns.symmetric, 'turnutils_natdiscovery', ['-m', PUBLIC_IP], 40000);
  assert.match(sym.stdout, /Address and Port Dependent Mapping/i, sym.stdout + sym.stderr);
});
