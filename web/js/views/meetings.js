// Meetings view (/app/meetings): "New meeting now", a link to the schedule form, and the
// meetings the user hosts or is invited to, split into upcoming (each at its next occurrence,
// which the host of a recurring one may skip) and past.

import { createMeeting, listHistory, listMeetings, updateMeeting } from '../api.js';
import { $, busy, h, showFormError, toast } from '../dom.js';
import { currentOccurrence, fmtDateTime, fmtRecurrence, fmtTime } from '../time.js';

export const nav = 'meetings';

export async function render(root, ctx) {
  ctx.setTitle('Meetings');
  const instant = h('form', { id: 'instant-form', class: 'inline-form', novalidate: true },
    h('input', { id: 'instant-title', name: 'title', maxlength: 200, 'aria-label': 'Title of the new meeting', placeholder: `${ctx.me.display_name}'s meeting` }),
    h('button', { id: 'new-meeting', class: 'primary', type: 'submit' }, 'New meeting now'),
    h('p', { class: 'field-error', 'data-for': 'title' }),
    h('p', { class: 'form-error', role: 'alert' }));
  instant.addEventListener('submit', async (e) => {
    e.preventDefault();
    const button = $('#new-meeting', instant);
    button.disabled = true;
    try {
      const title = $('#instant-title', instant).value.trim() || `${ctx.me.display_name}'s meeting`;
      const m = await createMeeting({ title });
      location.assign(m.url || `/m/${encodeURIComponent(m.room)}`);
    } catch (err) {
      showFormError(instant, err);
      button.disabled = false;
    }
  });
  root.append(h('header', { class: 'view-head' },
    h('h1', {}, 'Meetings'),
    h('a', { id: 'schedule-link', class: 'button', href: '/app/meetings/new' }, 'Schedule a meeting')),
  instant);

  const [list, history] = await Promise.all([listMeetings(), listHistory()]);
  // An instant meeting (a call) is over once people were in it and all of them left.
  const endedAt = new Map();
  for (const { meeting, attendees } of history) {
    if (meeting.start_at || !attendees.length || attendees.some((a) => !a.left_at)) continue;
    endedAt.set(meeting.id, new Date(Math.max(...attendees.map((a) => new Date(a.left_at)))));
  }
  const now = new Date();
  const upcoming = [];
  const past = [];
  for (const m of list) {
    const at = m.cancelled || endedAt.has(m.id) ? null : currentOccurrence(m, now);
    if (at) upcoming.push([m, at]);
    else past.push([m, endedAt.get(m.id) || new Date(m.start_at || m.created_at), true]);
  }
  upcoming.sort((a, b) => a[1] - b[1]);
  past.sort((a, b) => b[1] - a[1]);
  root.append(
    section('upcoming', 'Upcoming', upcoming, 'Nothing planned. Start a meeting now or schedule one.', ctx),
    section('past', 'Past', past, 'No past meetings yet.', ctx),
  );
}

function section(id, title, rows, empty, ctx) {
  return h('section', { id, class: 'card' },
    h('h2', {}, title),
    rows.length
      ? h('ul', { class: 'item-list' }, rows.map(([m, at, over]) => item(m, at, over, ctx)))
      : h('p', { class: 'empty' }, empty));
}

/** The host's "Skip this one" for occurrence `at` of recurring meeting `m`; the list is shown anew. */
function skipButton(m, at, ctx) {
  const button = h('button', { class: 'button skip', type: 'button' }, 'Skip this one');
  button.addEventListener('click', () => {
    if (!window.confirm(`Skip "${m.title}" on ${fmtDateTime(at)}? The meetings after it stay as they are.`)) return;
    busy(button, async () => {
      const skipped = [...(m.skipped_occurrences || []), at.toISOString()];
      await updateMeeting(m.id, { skipped_occurrences: skipped });
      toast(`Skipped ${fmtDateTime(at)}`);
      ctx.navigate('/app/meetings', { replace: true });
    });
  });
  return button;
}

/** One meeting; `over`: listed under Past, so no Join button. */
function item(m, at, over, ctx) {
  const end = new Date(at.getTime() + (m.duration_minutes || 0) * 60000);
  const when = m.start_at ? `${fmtDateTime(at)} – ${fmtTime(end)}` : `Instant meeting · ${fmtDateTime(m.created_at)}`;
  return h('li', { class: 'meeting-item', 'data-meeting-id': m.id, 'data-occurrence': at.toISOString() },
    h('div', { class: 'item-main' },
      h('a', { class: 'item-title', href: `/app/meetings/${encodeURIComponent(m.id)}` }, m.title || 'Untitled meeting'),
      h('div', { class: 'item-sub' },
        when,
        fmtRecurrence(m) && h('span', { class: 'tag' }, fmtRecurrence(m)),
        m.cancelled && h('span', { class: 'tag danger' }, 'Cancelled'),
        !m.is_host && h('span', { class: 'tag' }, `Host: ${m.host?.display_name || '?'}`))),
    !m.cancelled && !over && m.is_host && m.recurrence !== 'none' && skipButton(m, at, ctx),
    !m.cancelled && !over && h('a', { class: 'button join', href: m.url }, 'Join'));
}
