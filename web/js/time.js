// Time zones and time formatting for the app pages, with nothing but the browser's Intl:
// wall-clock time in an IANA zone ↔ instants, meeting occurrences (stepped through as the
// server's crates/server/src/api/recurrence.rs does), durations.

/** The viewer's IANA time zone, e.g. "Europe/Berlin". */
export const viewerZone = () => Intl.DateTimeFormat().resolvedOptions().timeZone || 'UTC';

/** Every zone the browser knows, with the viewer's and UTC always present. */
export function zoneNames() {
  const names = new Set(Intl.supportedValuesOf?.('timeZone') || []);
  names.add(viewerZone());
  names.add('UTC');
  return [...names].sort();
}

const partsFormat = new Map();
/** The wall-clock fields of instant `date` in zone `tz`. */
function wallParts(date, tz) {
  let f = partsFormat.get(tz);
  if (!f) {
    f = new Intl.DateTimeFormat('en-US', {
      timeZone: tz, hourCycle: 'h23',
      year: 'numeric', month: '2-digit', day: '2-digit', hour: '2-digit', minute: '2-digit', second: '2-digit',
    });
    partsFormat.set(tz, f);
  }
  const p = Object.fromEntries(f.formatToParts(date).map((x) => [x.type, x.value]));
  return { year: +p.year, month: +p.month, day: +p.day, hour: +p.hour % 24, minute: +p.minute, second: +p.second };
}

/** How far zone `tz` is ahead of UTC at instant `date`, in ms. */
function offsetMs(date, tz) {
  const w = wallParts(date, tz);
  const asUtc = Date.UTC(w.year, w.month - 1, w.day, w.hour, w.minute, w.second);
  return asUtc - Math.floor(date.getTime() / 1000) * 1000;
}

const DAY_MS = 86400000;

/**
 * The instant when the clocks in `tz` show the wall time `y-m-d h:min:sec` (months 1-12), read
 * as RFC 5545 and the server read a local time: one that a change of the clocks repeats is its
 * first instant, one that a change skips is read with the offset from before the change.
 */
function wallToInstant(y, m, d, hour, min, tz, sec = 0) {
  const wall = Date.UTC(y, m - 1, d, hour, min, sec);
  const before = wall - offsetMs(new Date(wall - DAY_MS), tz);
  const after = wall - offsetMs(new Date(wall + DAY_MS), tz);
  const fits = [before, after].filter((t) => offsetMs(new Date(t), tz) === wall - t);
  return new Date(fits.length ? Math.min(...fits) : before);
}

/** `"2026-12-01"` and `"09:30"` (form inputs) in zone `tz` → Date. */
export function zonedToInstant(dateStr, timeStr, tz) {
  const [y, m, d] = dateStr.split('-').map(Number);
  const [hour, min] = timeStr.split(':').map(Number);
  return wallToInstant(y, m, d, hour, min, tz);
}

const pad = (n, w = 2) => String(Math.abs(n)).padStart(w, '0');

/** RFC 3339 with the offset of zone `tz`: `2026-12-01T09:30:00+01:00`. */
export function rfc3339InZone(date, tz) {
  const w = wallParts(date, tz);
  const off = Math.round(offsetMs(date, tz) / 60000);
  const sign = off < 0 ? '-' : '+';
  return `${pad(w.year, 4)}-${pad(w.month)}-${pad(w.day)}T${pad(w.hour)}:${pad(w.minute)}:${pad(w.second)}${sign}${pad(Math.trunc(off / 60))}:${pad(off % 60)}`;
}

/** An instant as the `{date: "2026-12-01", time: "09:30"}` of date and time inputs in `tz`. */
export function instantToInputs(date, tz) {
  const w = wallParts(date, tz);
  return { date: `${pad(w.year, 4)}-${pad(w.month)}-${pad(w.day)}`, time: `${pad(w.hour)}:${pad(w.minute)}` };
}

/** No occurrence is looked for from this year on: the server takes dates up to 2199. */
const HORIZON_YEAR = 2200;

const daysInMonth = (year, month) => new Date(Date.UTC(year, month, 0)).getUTCDate();
const isoDate = ({ year, month, day }) => `${pad(year, 4)}-${pad(month)}-${pad(day)}`;

/**
 * The local date of slot `k` of a series whose first date is `first` (the k-th day, week or
 * month after it), or null for a month without the monthly series' day (the 31st, Feb 30).
 */
function slotDate(first, recurrence, k) {
  if (recurrence === 'monthly') {
    const d = new Date(Date.UTC(first.year, first.month - 1 + k, 1));
    const date = { year: d.getUTCFullYear(), month: d.getUTCMonth() + 1, day: first.day };
    return first.day <= daysInMonth(date.year, date.month) ? date : null;
  }
  const d = new Date(Date.UTC(first.year, first.month - 1, first.day + (recurrence === 'daily' ? k : 7 * k)));
  return { year: d.getUTCFullYear(), month: d.getUTCMonth() + 1, day: d.getUTCDate() };
}

/** A slot no later than the one holding the first occurrence after instant `t`. */
function slotBefore(first, recurrence, t) {
  const days = Math.floor((t - Date.UTC(first.year, first.month - 1, first.day)) / DAY_MS);
  const k = { daily: days, weekly: Math.floor(days / 7), monthly: Math.floor(days / 31) }[recurrence];
  return Math.max(0, k - 1);
}

/**
 * The starts of a recurring meeting's occurrences from a little before `after` on, in order, up
 * to its `recurrence_count` (skipped ones count) or its `recurrence_until` (a local date,
 * inclusive), each at the first start's wall-clock time in its zone.
 */
function* occurrences(m, after) {
  const tz = m.time_zone || 'UTC';
  const w = wallParts(new Date(m.start_at), tz);
  const first = { year: w.year, month: w.month, day: w.day };
  const from = slotBefore(first, m.recurrence, after.getTime());
  let index = 0; // occurrences in the slots before `from`
  for (let k = 0; k < from; k += 1) if (slotDate(first, m.recurrence, k)) index += 1;
  for (let k = from; ; k += 1) {
    const date = slotDate(first, m.recurrence, k);
    if (!date) continue;
    if (date.year >= HORIZON_YEAR) return;
    if (m.recurrence_count != null && index >= m.recurrence_count) return;
    if (m.recurrence_until && isoDate(date) > m.recurrence_until) return;
    index += 1;
    yield wallToInstant(date.year, date.month, date.day, w.hour, w.minute, tz, w.second);
  }
}

/**
 * The start of a meeting's current or next occurrence (one that has not ended at `now` and is
 * not skipped), or null when all are over. A meeting without `start_at` (an instant meeting)
 * counts as starting when it was created.
 */
export function currentOccurrence(m, now = new Date()) {
  const durMs = Math.max(m.duration_minutes || 60, 1) * 60000;
  const notOver = (start) => start.getTime() + durMs > now.getTime();
  if (!m.start_at || !m.recurrence || m.recurrence === 'none') {
    const start = new Date(m.start_at || m.created_at);
    return notOver(start) ? start : null;
  }
  const skipped = new Set((m.skipped_occurrences || []).map((t) => new Date(t).getTime()));
  for (const start of occurrences(m, new Date(now.getTime() - durMs))) {
    if (notOver(start) && !skipped.has(start.getTime())) return start;
  }
  return null;
}

/** "Tue, Dec 1, 2026, 10:00 AM" in the viewer's zone (or `tz`). */
export function fmtDateTime(date, tz) {
  return new Intl.DateTimeFormat(undefined, {
    weekday: 'short', year: 'numeric', month: 'short', day: 'numeric', hour: '2-digit', minute: '2-digit', timeZone: tz,
  }).format(new Date(date));
}

/** "10:30 AM" in the viewer's zone (or `tz`). */
export function fmtTime(date, tz) {
  return new Intl.DateTimeFormat(undefined, { hour: '2-digit', minute: '2-digit', timeZone: tz }).format(new Date(date));
}

/** 3725 → "1 h 2 min", 42 → "42 s". */
export function fmtDuration(seconds) {
  const s = Math.max(0, Math.round(seconds || 0));
  if (s < 60) return `${s} s`;
  const h = Math.floor(s / 3600);
  const min = Math.round((s % 3600) / 60);
  return h ? `${h} h${min ? ` ${min} min` : ''}` : `${min} min`;
}

/** "Mar 31, 2027" for the date "2027-03-31" (a day, in no zone). */
export function fmtDate(date) {
  const [y, m, d] = date.split('-').map(Number);
  return new Intl.DateTimeFormat(undefined, { year: 'numeric', month: 'short', day: 'numeric', timeZone: 'UTC' })
    .format(Date.UTC(y, m - 1, d));
}

const RECURRENCE_NAMES = { daily: 'Daily', weekly: 'Weekly', monthly: 'Monthly' };

/** "Weekly, 10 times" / "Monthly, until Mar 31, 2027" / "Daily" / "" for a meeting. */
export function fmtRecurrence(m) {
  const what = RECURRENCE_NAMES[m.recurrence];
  if (!what) return '';
  if (m.recurrence_until) return `${what}, until ${fmtDate(m.recurrence_until)}`;
  return m.recurrence_count ? `${what}, ${m.recurrence_count} times` : what;
}
