// Schedule form (/app/meetings/new) and edit form (/app/meetings/{id}/edit): title,
// description, date and time in a chosen time zone, duration, recurrence and when it ends
// (never, after a number of times, on a date), sign-in and lobby options, invited contacts.

import { createMeeting, getMeeting, listContacts, updateMeeting } from '../api.js';
import { $, $$, clearFormErrors, h, showFormError } from '../dom.js';
import { instantToInputs, rfc3339InZone, viewerZone, zonedToInstant, zoneNames } from '../time.js';

export const nav = 'meetings';

const DURATIONS = [15, 30, 45, 60, 90, 120, 180];

export async function render(root, ctx, id) {
  const [meeting, contacts] = await Promise.all([id ? getMeeting(id) : null, listContacts()]);
  if (meeting && !meeting.is_host) throw Object.assign(new Error('Only the host can edit this meeting.'), { status: 403 });
  ctx.setTitle(meeting ? `Edit ${meeting.title}` : 'Schedule a meeting');

  const zone = meeting?.time_zone || viewerZone();
  // A new meeting starts at the next full hour.
  const start = meeting?.start_at ? new Date(meeting.start_at) : new Date(Math.ceil(Date.now() / 3600000) * 3600000);
  const at = instantToInputs(start, zone);
  const duration = meeting?.duration_minutes || 30;
  const recurrence = meeting?.recurrence || 'none';
  const ends = meeting?.recurrence_until ? 'until' : meeting?.recurrence_count ? 'count' : 'never';
  const err = (field) => h('p', { class: 'field-error', 'data-for': field });
  const label = (forId, text) => h('label', { class: 'field-label', for: forId }, text);

  // Invitees: contacts, plus anyone already invited who is not (or no longer) a contact.
  const invited = new Set((meeting?.invitees || []).map((u) => u.id));
  const people = [...contacts, ...(meeting?.invitees || []).filter((u) => !contacts.some((c) => c.id === u.id))];

  const form = h('form', { id: 'meeting-form', class: 'card form', novalidate: true },
    label('mf-title', 'Title'),
    h('input', { id: 'mf-title', name: 'title', maxlength: 200, required: true, value: meeting?.title || '' }),
    err('title'),
    label('mf-description', 'Description'),
    h('textarea', { id: 'mf-description', name: 'description', rows: 3, maxlength: 5000 }, meeting?.description || ''),
    err('description'),
    h('div', { class: 'row' },
      h('div', {}, label('mf-date', 'Date'), h('input', { id: 'mf-date', name: 'start_at', type: 'date', required: true, value: at.date })),
      h('div', {}, label('mf-time', 'Time'), h('input', { id: 'mf-time', type: 'time', required: true, value: at.time })),
      h('div', { class: 'grow' }, label('mf-zone', 'Time zone'),
        h('select', { id: 'mf-zone', name: 'time_zone' }, zoneNames().map((z) => h('option', { value: z, selected: z === zone }, z.replaceAll('_', ' ')))))),
    err('start_at'), err('time_zone'),
    h('div', { class: 'row' },
      h('div', {}, label('mf-duration', 'Duration'),
        h('select', { id: 'mf-duration', name: 'duration_minutes' },
          [...new Set([...DURATIONS, duration])].sort((a, b) => a - b).map((d) => h('option', { value: String(d), selected: d === duration }, d < 60 ? `${d} min` : `${d / 60} h`)))),
      h('div', {}, label('mf-recurrence', 'Repeats'),
        h('select', { id: 'mf-recurrence', name: 'recurrence' },
          [['none', 'Does not repeat'], ['daily', 'Daily'], ['weekly', 'Weekly'], ['monthly', 'Monthly']].map(([v, t]) => h('option', { value: v, selected: v === recurrence }, t)))),
      h('div', { id: 'mf-ends-field' }, label('mf-ends', 'Ends'),
        h('select', { id: 'mf-ends' },
          [['never', 'Never'], ['count', 'After a number of times'], ['until', 'On a date']].map(([v, t]) => h('option', { value: v, selected: v === ends }, t)))),
      h('div', { id: 'mf-count-field' }, label('mf-count', 'Times'),
        h('input', { id: 'mf-count', name: 'recurrence_count', type: 'number', min: 1, max: 1000, value: meeting?.recurrence_count ?? '' })),
      h('div', { id: 'mf-until-field' }, label('mf-until', 'Last date'),
        h('input', { id: 'mf-until', name: 'recurrence_until', type: 'date', value: meeting?.recurrence_until ?? '' }))),
    err('duration_minutes'), err('recurrence'), err('recurrence_count'), err('recurrence_until'), err('skipped_occurrences'),
    h('label', { class: 'check' }, h('input', { id: 'mf-sign-in', name: 'require_sign_in', type: 'checkbox', checked: !!meeting?.require_sign_in }), 'Only people with an account can join'),
    h('label', { class: 'check' }, h('input', { id: 'mf-lobby', name: 'lobby', type: 'checkbox', checked: !!meeting?.lobby }), 'Lobby: I admit people one by one'),
    h('fieldset', { id: 'mf-invitees', class: 'invitees' },
      h('legend', { class: 'field-label' }, 'Invite contacts'),
      people.length
        ? people.map((u) => h('label', { class: 'check' },
          h('input', { type: 'checkbox', name: 'invitees', value: u.id, checked: invited.has(u.id) }),
          u.display_name, h('span', { class: 'hint' }, u.email)))
        : h('p', { class: 'hint' }, 'Add contacts to invite them.')),
    err('invitees'),
    h('div', { class: 'actions' },
      h('button', { id: 'mf-submit', class: 'primary', type: 'submit' }, meeting ? 'Save changes' : 'Schedule'),
      h('a', { class: 'button', href: meeting ? `/app/meetings/${encodeURIComponent(meeting.id)}` : '/app/meetings' }, 'Cancel')),
    h('p', { class: 'form-error', role: 'alert' }));

  const syncEnds = () => {
    const repeats = $('#mf-recurrence', form).value !== 'none';
    const ending = $('#mf-ends', form).value;
    $('#mf-ends-field', form).hidden = !repeats;
    $('#mf-count-field', form).hidden = !repeats || ending !== 'count';
    $('#mf-until-field', form).hidden = !repeats || ending !== 'until';
  };
  $('#mf-recurrence', form).addEventListener('change', syncEnds);
  $('#mf-ends', form).addEventListener('change', syncEnds);
  syncEnds();

  form.addEventListener('submit', async (e) => {
    e.preventDefault();
    const body = readForm(form, meeting);
    if (body.error) return showFormError(form, body.error);
    clearFormErrors(form);
    const button = $('#mf-submit', form);
    button.disabled = true;
    try {
      const saved = meeting ? await updateMeeting(meeting.id, body) : await createMeeting(body);
      ctx.navigate(`/app/meetings/${encodeURIComponent(saved.id)}`);
    } catch (error) {
      showFormError(form, error);
      button.disabled = false;
    }
  });

  root.append(h('header', { class: 'view-head' }, h('h1', {}, meeting ? 'Edit meeting' : 'Schedule a meeting')), form);
  $('#mf-title', form).focus();
}

/** The POST/PATCH body, or `{error: {field, message}}` for what the browser can tell is wrong. */
function readForm(form, meeting) {
  const v = (sel) => $(sel, form).value.trim();
  const title = v('#mf-title');
  if (!title) return { error: { field: 'title', message: 'Give the meeting a title.' } };
  if (!v('#mf-date') || !v('#mf-time')) return { error: { field: 'start_at', message: 'Pick a date and a time.' } };
  const zone = v('#mf-zone');
  const recurrence = v('#mf-recurrence');
  const ends = recurrence === 'none' ? 'never' : v('#mf-ends');
  const count = v('#mf-count');
  const until = v('#mf-until');
  if (ends === 'count' && !(Number(count) >= 1)) {
    return { error: { field: 'recurrence_count', message: 'Enter how many times.' } };
  }
  if (ends === 'until' && !until) return { error: { field: 'recurrence_until', message: 'Pick the last date.' } };
  if (ends === 'until' && until < v('#mf-date')) {
    return { error: { field: 'recurrence_until', message: 'The last date cannot be before the first meeting.' } };
  }
  const start = zonedToInstant(v('#mf-date'), v('#mf-time'), zone);
  const end = start.getTime() + Number(v('#mf-duration')) * 60000;
  const moved = !meeting?.start_at || new Date(meeting.start_at).getTime() !== start.getTime();
  if (recurrence === 'none' && moved && end <= Date.now()) {
    return { error: { field: 'start_at', message: 'That time has already passed. Pick a date and time in the future.' } };
  }
  return {
    title,
    description: v('#mf-description'),
    start_at: rfc3339InZone(start, zone),
    time_zone: zone,
    duration_minutes: Number(v('#mf-duration')),
    recurrence,
    recurrence_count: ends === 'count' ? Number(count) : null,
    recurrence_until: ends === 'until' ? until : null,
    require_sign_in: $('#mf-sign-in', form).checked,
    lobby: $('#mf-lobby', form).checked,
    invitees: $$('#mf-invitees input:checked', form).map((i) => i.value),
  };
}
