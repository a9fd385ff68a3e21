// Time zones and time formatting for the app pages, with nothing but the browser's Intl:
// wall-clock time in an IANA zone ↔ instants, meeting occurrences, durations.

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

/**
 * The instant when the clocks in `tz` show the wall time `y-m-d h:min` (months 1-12). A wall
 * time that a DST change skips or repeats gets one of the instants next to it.
 */
function wallToInstant(y, m, d, hour, min, tz) {
  const guess = Date.UTC(y, m - 1, d, hour, min);
  const first = guess - offsetMs(new Date(guess), tz);
  const second = guess - offsetMs(new Date(first), tz);
  return new Date(Math.min(first, second));
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

/** The same wall-clock time `days` later in `tz` (a weekly meeting stays at 9:00 across DST). */
function addDaysInZone(date, days, tz) {
  const w = wallParts(date, tz);
  const next = new Date(Date.UTC(w.year, w.month - 1, w.day + days));
  return wallToInstant(next.getUTCFullYear(), next.getUTCMonth() + 1, next.getUTCDate(), w.hour, w.minute, tz);
}

/**
 * The start of a meeting's current or next occurrence (one that has not ended at `now`), or
 * null when all are over. A meeting without `start_at` (an instant meeting) counts as starting
 * when it was created.
 */
export function currentOccurrence(m, now = new Date()) {
  const durMs = Math.max(m.duration_minutes || 60, 1) * 60000;
  let start = new Date(m.start_at || m.created_at);
  if (start.getTime() + durMs > now.getTime()) return start;
  if (!m.start_at || m.recurrence === 'none' || !m.recurrence) return null;
  const step = m.recurrence === 'daily' ? 1 : 7;
  const count = m.recurrence_count ?? Infinity;
  // Jump close to now, then walk: DST shifts are at most hours.
  let n = Math.max(0, Math.floor((now - start) / (step * 86400000)) - 1);
  if (n >= count) return null;
  start = addDaysInZone(new Date(m.start_at), n * step, m.time_zone || 'UTC');
  while (start.getTime() + durMs <= now.getTime()) {
    n += 1;
    if (n >= count) return null;
    start = addDaysInZone(new Date(m.start_at), n * step, m.time_zone || 'UTC');
  }
  return start;
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

/** "Weekly, 10 times" / "Daily" / "" for a meeting. */
export function fmtRecurrence(m) {
  if (!m.recurrence || m.recurrence === 'none') return '';
  const what = m.recurrence === 'daily' ? 'Daily' : 'Weekly';
  return m.recurrence_count ? `${what}, ${m.recurrence_count} times` : what;
}
