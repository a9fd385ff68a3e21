// The NAT lab as the tests see it: namespace names, addresses and the Stoa server inside it.
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { startServer } from '../browser/lib.js';

const run = promisify(execFile);
const P = process.env.LAB_PREFIX || 'stoa';

export const ns = {
  pub: `${P}-pub`, sink: `${P}-sink`,
  cone: `${P}-a`, symmetric: `${P}-b`, udpBlocked: `${P}-c`,
};
export const PUBLIC_IP = '203.0.113.10';
export const ALT_IP = '203.0.113.11';
export const ECHO_PEER = '100.64.9.2';
export const TURN_SECRET = 's3cret';

/** Stoa on the public side: media and TURN on 203.0.113.10, RFC 5780 alternate on .11. */
export function startLabServer() {
  return startServer(8800, {
    host: PUBLIC_IP,
    netns: ns.pub,
    args: [
      '--media-udp-addr', `${PUBLIC_IP}:8801`, '--media-tcp-addr', `${PUBLIC_IP}:8802`,
      '--turn-addr', `${PUBLIC_IP}:3478`, '--turn-alt-addr', `${ALT_IP}:3479`,
      '--turn-tls-addr', `${PUBLIC_IP}:5349`, '--turn-relay-ip', PUBLIC_IP,
      '--turn-user', 'test:test', '--turn-secret', TURN_SECRET,
      // The echo peer of the interop tests lives in a range denied by default.
      '--turn-allow-peer', `${ECHO_PEER}/32`,
    ],
  });
}

/** Runs a command inside a namespace; resolves with {code, stdout, stderr}, never rejects. */
export async function inNs(namespace, cmd, args, timeoutMs = 30000) {
  try {
    const { stdout, stderr } = await run('ip', ['netns', 'exec', namespace, 'timeout', String(Math.ceil(timeoutMs / 1000)), cmd, ...args], { maxBuffer: 16 << 20 });
    return { code: 0, stdout, stderr };
  } catch (e) {
    return { code: e.code ?? 1, stdout: e.stdout || '', stderr: e.stderr || '' };
  }
}
