// A figure for docs/browsers.md (not a test): time from opening a meeting link to the first
// remote video frame in Firefox, median of 10 joins, against a room with one Chromium
// publisher. Chromium joins alternate with Firefox's, so both figures see the same machine
// load. Each join is a fresh browser process and profile; times are from the page's
// navigation start. Run: tests/browser/bench.sh bench-firefox.mjs.
import { startServer, openParticipant, sleep } from './lib.js';

const median = (xs) => { const s = [...xs].sort((a, b) => a - b); return s[Math.floor(s.length / 2)]; };

const server = await startServer();
try {
  const host = await openParticipant(server, 'bench-firefox', 'Host');
  await host.waitFor(() => window.stoa.state === 'joined', null, 20000, 'host joined');
  const runs = { firefox: [], chromium: [] };
  for (let i = 0; i < 10; i++) {
    for (const browser of ['firefox', 'chromium']) {
      const p = await openParticipant(server, 'bench-firefox', `${browser}${i}`, '', { browser });
      const t = await p.waitFor(() => window.stoa.timings.firstRemoteFrame && window.stoa.timings, null, 30000, 'first remote frame');
      runs[browser].push({ joined: Math.round(t.joined), frame: Math.round(t.firstRemoteFrame) });
      await p.close();
      await sleep(500);
    }
  }
  await host.close();
  for (const [browser, r] of Object.entries(runs)) {
    const frames = r.map((x) => x.frame);
    console.log(`${browser}: first remote frame after opening the link (ms): ${frames.join(' ')}; median ${median(frames)} (joined the room at median ${median(r.map((x) => x.joined))})`);
  }
} finally {
  await server.stop();
}
