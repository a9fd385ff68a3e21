// Codecs and transports: H.264 where the browser offers it, and ICE-TCP when UDP is blocked.
import { test, after, afterEach } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { browserSession, startServer, openParticipant, waitForRemoteMedia } from './lib.js';

const session = browserSession({ afterEach, after });
const people = session.people;
let server;

test('a browser publishing H.264 is decoded by one receiving it through the SFU', async () => {
  server = session.server = await startServer();
  const room = 'e2e-h264';
  const h264 = await openParticipant(server, room, 'Hana', '&codec=H264');
  const vp8 = await openParticipant(server, room, 'Victor');
  people.push(h264, vp8);
  const got = await waitForRemoteMedia(vp8);
  const video = got.inbound.find((x) => x.kind === 'video' && x.framesDecoded > 30);
  assert.equal(video.codec, 'video/H264', `Victor decodes ${video.codec}`);
  const back = await waitForRemoteMedia(h264);
  assert.equal(back.inbound.find((x) => x.kind === 'video').codec, 'video/VP8');
});

test('with all UDP and TURN blocked, browsers connect over ICE-TCP', async () => {
  const room = 'e2e-ice-tcp'; // on media worker 1 (see lib.js)
  // No UDP at all, and no TURN over TCP or TLS: only the SFU's ICE-TCP port is left.
  const rules = [
    ['INPUT', '-p', 'udp', '-j', 'DROP'],
    ['INPUT', '-p', 'tcp', '--dport', '3478', '-j', 'DROP'],
    ['INPUT', '-p', 'tcp', '--dport', '5349', '-j', 'DROP'],
  ];
  for (const rule of rules) execFileSync('iptables', ['-A', ...rule]);
  try {
    const a = await openParticipant(server, room, 'Tcp-A');
    const b = await openParticipant(server, room, 'Tcp-B');
    people.push(a, b);
    for (const p of [a, b]) {
      const s = await waitForRemoteMedia(p, { timeout: 40000 });
      assert.equal(s.selectedPair?.remoteProtocol, 'tcp', `${p.name}: ${JSON.stringify(s.selectedPair)}`);
      assert.equal(s.selectedPair?.remotePort, 8802, `${p.name}: ${JSON.stringify(s.selectedPair)}`);
    }
  } finally {
    for (const rule of rules) execFileSync('iptables', ['-D', ...rule]);
  }
});

test('with UDP to the media port blocked, browsers still connect (through the TURN relay)', async () => {
  const room = 'e2e-relayed'; // on media worker 1 (see lib.js)
  const rule = ['INPUT', '-p', 'udp', '--dport', '8801', '-j', 'DROP'];
  execFileSync('iptables', ['-A', ...rule]);
  try {
    const a = await openParticipant(server, room, 'Relay-A');
    const b = await openParticipant(server, room, 'Relay-B');
    people.push(a, b);
    for (const p of [a, b]) {
      const s = await waitForRemoteMedia(p, { timeout: 40000 });
      const pair = s.selectedPair || {};
      assert.ok(pair.localCandidateType === 'relay' || pair.remoteProtocol === 'tcp', `${p.name}: ${JSON.stringify(pair)}`);
    }
  } finally {
    execFileSync('iptables', ['-D', ...rule]);
  }
});
