// The screen before joining: who is already in the call (`GET /api/v1/rooms/{room}/people`,
// asked again every few seconds) and a level meter of the microphone, so people can check it
// before others hear them. Both stop once the person joins.

import { roomPeople, sentence } from './api.js';

const PEOPLE_EVERY_MS = 5000;

/** "Ann is in the call", "Ann, Ben and 3 others are in the call", "No one else is here yet". */
export function peopleText({ count, names }) {
  if (!count) return 'No one else is here yet';
  const others = count - names.length;
  const list = others > 0 ? [...names, `${others} other${others === 1 ? '' : 's'}`] : names;
  const said = list.length === 1 ? list[0] : `${list.slice(0, -1).join(', ')} and ${list[list.length - 1]}`;
  return `${said} ${count === 1 ? 'is' : 'are'} in the call`;
}

/**
 * Shows who is in the call in `el` while `active()` holds, or what joining would be refused
 * for (a wrong link, a cancelled or locked meeting), so nobody clicks Join to find out.
 */
export function showWhoIsIn(room, el, active) {
  const tick = async () => {
    if (!active()) return;
    try {
      const people = await roomPeople(room);
      el.textContent = people.refusal ? sentence(people.refusal.message) : peopleText(people);
      el.classList.toggle('refused', !!people.refusal);
    } catch {
      el.textContent = '';
    }
    setTimeout(tick, PEOPLE_EVERY_MS);
  };
  tick();
}

/**
 * Drives the meter `el` (its first child's width) from the level of `track()` (the current
 * microphone track, which may change) while `active()` holds.
 */
export function meterMicrophone(el, track, active) {
  let ctx = null;
  let source = null;
  let analyser = null;
  let current = null;
  let samples = null;
  const bar = el.firstElementChild;
  const frame = () => {
    if (!active()) {
      ctx?.close();
      return;
    }
    const t = track();
    if (t !== current) {
      source?.disconnect();
      source = null;
      current = t;
      if (t && t.readyState === 'live') {
        if (!ctx) {
          ctx = new AudioContext();
          // Browsers may start it suspended until the page is touched.
          document.addEventListener('pointerdown', () => ctx.resume().catch(() => {}), { once: true });
        }
        analyser ||= Object.assign(ctx.createAnalyser(), { fftSize: 512 });
        samples ||= new Float32Array(analyser.fftSize);
        source = ctx.createMediaStreamSource(new MediaStream([t]));
        source.connect(analyser);
      }
    }
    let level = 0;
    if (source && t?.enabled) {
      analyser.getFloatTimeDomainData(samples);
      let sum = 0;
      for (const x of samples) sum += x * x;
      // RMS in dBFS, -60..0 shown as 0..100.
      const db = 10 * Math.log10(sum / samples.length + 1e-12);
      level = Math.max(0, Math.min(100, Math.round((db + 60) * (100 / 60))));
    }
    bar.style.width = `${level}%`;
    el.setAttribute('aria-valuenow', String(level));
    requestAnimationFrame(frame);
  };
  requestAnimationFrame(frame);
}
