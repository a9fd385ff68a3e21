// Figures for the closing note and docs (not a test): time from opening a meeting link to
// the first remote video frame (median of 10 joins), and the server's CPU and memory during
// a 4-person call. Run: ip netns exec <ns> node tests/browser/bench.mjs (tests/browser/bench.sh).
import { readFileSync } from 'node:fs';
import { startServer, openParticipant, waitForRemoteMedia, sleep } from './lib.js';

const CLK_TCK = 100;
const cpuSeconds = (pid) => {
  const f = readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1].split(' ');
  return (Number(f[11]) + Number(f[12])) / CLK_TCK; // utime + stime
};
const rssMiB = (pid) => Number(readFileSync(`/proc/${pid}/status`, 'utf8').match(/VmRSS:\s+(\d+)/)[1]) / 1024;
const median = (xs) => { const s = [...xs].sort((a, b) => a - b); return s[Math.floor(s.length / 2)]; };

const server = await startServer();
try {
  const host = await openParticipant(server, 'bench-join', 'Host');
  await host.waitFor(() => window.stoa.state === 'joined', null, 20000, 'host joined');
  const joins = [];
  for (let i = 0; i < 10; i++) {
    const p = await openParticipant(server, 'bench-join', `Guest${i}`);
    const t = await p.waitFor(() => window.stoa.timings.firstRemoteFrame, null, 20000, 'first remote frame');
    joins.push(Math.round(t));
    await p.close();
    await sleep(500);
  }
  await host.close();
  console.log(`first remote frame after opening the link (ms): ${joins.join(' ')}; median ${median(joins)}`);

  const four = [];
  for (let i = 0; i < 4; i++) four.push(await openParticipant(server, 'bench-four', `P${i}`));
  for (const p of four) await waitForRemoteMedia(p, { videos: 3 });
  await sleep(3000);
  const c0 = cpuSeconds(server.pid);
  const WINDOW = 20;
  await sleep(WINDOW * 1000);
  const c1 = cpuSeconds(server.pid);
  const report = await server.counters('bench-four');
  const forwarded = report.participants.reduce((n, p) => n + p.packets_out, 0);
  console.log(`4-person call: server CPU ${(100 * (c1 - c0) / WINDOW).toFixed(1)}% of one core over ${WINDOW} s, RSS ${rssMiB(server.pid).toFixed(1)} MiB, ${forwarded} packets forwarded in total`);
  for (const p of four) await p.close();
} finally {
  await server.stop();
}
