// History view (/app/history): past meetings the user hosted, was invited to or attended,
// each with who was there and for how long.

import { listHistory } from '../api.js';
import { h } from '../dom.js';
import { fmtDateTime, fmtDuration } from '../time.js';

export const nav = 'history';

export async function render(root, ctx) {
  ctx.setTitle('History');
  root.append(h('header', { class: 'view-head' }, h('h1', {}, 'History')));
  const items = await listHistory();
  root.append(items.length
    ? h('ul', { id: 'history-list', class: 'history-list' }, items.map((x) => entry(x, ctx.me)))
    : h('p', { class: 'empty card' }, 'Meetings you attend will show up here.'));
}

/** One person's stays summed up: several rows when they left and came back. */
function byPerson(attendees) {
  const people = new Map();
  for (const a of attendees || []) {
    const key = a.user_id || `guest:${a.name}`;
    const p = people.get(key) || { name: a.name, userId: a.user_id, seconds: 0, first: a.joined_at };
    p.seconds += a.seconds || 0;
    if (a.joined_at < p.first) p.first = a.joined_at;
    people.set(key, p);
  }
  return [...people.values()].sort((a, b) => (a.first < b.first ? -1 : 1));
}

function entry({ meeting: m, attendees }, me) {
  const times = (attendees || []).flatMap((a) => [a.joined_at, a.left_at].filter(Boolean)).map((t) => new Date(t).getTime());
  const start = times.length ? Math.min(...times) : new Date(m.start_at || m.created_at).getTime();
  const length = times.length ? (Math.max(...times) - start) / 1000 : 0;
  const people = byPerson(attendees);
  return h('li', { class: 'card history-item', 'data-meeting-id': m.id },
    h('div', { class: 'item-main' },
      h('a', { class: 'item-title', href: `/app/meetings/${encodeURIComponent(m.id)}` }, m.title || 'Untitled meeting'),
      h('div', { class: 'item-sub' }, `${fmtDateTime(start)} · ${fmtDuration(length)} · ${people.length} ${people.length === 1 ? 'person' : 'people'}`)),
    h('ul', { class: 'attendees' }, people.map((p) => h('li', { class: 'attendee', 'data-user-id': p.userId || null },
      h('span', { class: 'attendee-name' }, p.userId && p.userId === me.id ? `${p.name} (you)` : p.name),
      !p.userId && h('span', { class: 'tag' }, 'Guest'),
      h('span', { class: 'attendee-time' }, fmtDuration(p.seconds))))));
}
