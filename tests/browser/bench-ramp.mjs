// Figures for the docs (not a test): in a 2-person call, how long the big tile shows a low
// layer before the full-width one, measured from the first decoded frame. Five calls; the
// viewer's decoded width is sampled every 100 ms. Run: tests/browser/bench.sh bench-ramp.mjs
import { startServer, openParticipant, sleep } from './lib.js';

const median = (xs) => { const s = [...xs].sort((a, b) => a - b); return s[Math.floor(s.length / 2)]; };
const server = await startServer();
try {
  const results = [];
  for (let i = 0; i < 5; i++) {
    const room = `ramp-${i}`;
    const a = await openParticipant(server, room, 'Ann');
    const b = await openParticipant(server, room, 'Ben');
    const full = await a.eval(() => window.stoa.local.cam.getSettings().width);
    const samples = [];
    const start = Date.now();
    let first = null;
    while (Date.now() - start < 30000) {
      const w = await b.eval(async () => {
        const s = await window.stoa.stats();
        return s?.inbound.find((x) => x.kind === 'video' && x.framesDecoded > 0)?.frameWidth || 0;
      });
      if (w && first === null) first = Date.now();
      if (w) samples.push([Date.now() - first, w]);
      if (w >= full) break;
      await sleep(100);
    }
    const widths = [...new Set(samples.map(([, w]) => w))].join('→');
    const atFull = samples.find(([, w]) => w >= full)?.[0] ?? null;
    results.push(atFull ?? 30000);
    console.log(`call ${i + 1}: widths ${widths}; full width ${full} after ${atFull ?? 'never (30 s)'} ms from the first frame`);
    await a.close();
    await b.close();
    await sleep(500);
  }
  console.log(`time from the first frame to the full width (ms): median ${median(results)} of ${results.join(' ')}`);
} finally {
  await server.stop();
}
