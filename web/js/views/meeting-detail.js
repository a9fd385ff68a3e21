// Meeting detail (/app/meetings/{id}): when (in the viewer's zone), skipped occurrences, who
// is invited, who is in the call now (refreshed every 5 s), Join, the .ics download, and for
// the host: edit, lock/unlock, cancel, and restoring a skipped occurrence.

import { calendarUrl, cancelMeeting, getMeeting, updateMeeting } from '../api.js';
import { $, busy, h, toast } from '../dom.js';
import { currentOccurrence, fmtDateTime, fmtRecurrence, fmtTime, viewerZone } from '../time.js';

export const nav = 'meetings';

const LIVE_MS = 5000;

export async function render(root, ctx, id) {
  let m = await getMeeting(id);
  ctx.setTitle(m.title || 'Meeting');
  const liveList = h('ul', { id: 'meeting-live', class: 'people' });
  const lockTag = h('span', { id: 'meeting-locked-badge', class: 'tag warn' }, 'Locked');
  const lockButton = h('button', { id: 'meeting-lock', class: 'button', type: 'button' });

  const showLive = () => {
    const live = m.live || [];
    liveList.replaceChildren(...(live.length
      ? live.map((p) => h('li', { class: 'person', 'data-user-id': p.user_id || null }, p.name, !p.user_id && h('span', { class: 'tag' }, 'Guest')))
      : [h('li', { class: 'empty' }, 'Nobody is in the meeting right now.')]));
  };
  const showLock = () => {
    lockTag.hidden = !m.locked;
    lockButton.textContent = m.locked ? 'Unlock' : 'Lock';
    lockButton.title = m.locked ? 'Let people join again' : 'Nobody new can join until you unlock';
  };
  lockButton.addEventListener('click', () => busy(lockButton, async () => {
    m = { ...m, ...(await updateMeeting(m.id, { locked: !m.locked })) };
    showLock();
    toast(m.locked ? 'Meeting locked' : 'Meeting unlocked');
  }));

  const cancelButton = h('button', { id: 'meeting-cancel', class: 'button danger', type: 'button' }, 'Cancel meeting');
  cancelButton.addEventListener('click', () => {
    if (!window.confirm(`Cancel "${m.title}"? Its link will stop working.`)) return;
    busy(cancelButton, async () => {
      await cancelMeeting(m.id);
      toast('Meeting cancelled');
      ctx.navigate(`/app/meetings/${encodeURIComponent(m.id)}`, { replace: true });
    });
  });

  // Skipped occurrences, each of which the host may restore.
  const skippedTerm = h('dt', {}, 'Skipped');
  const skippedList = h('ul', { id: 'meeting-skipped', class: 'skipped' });
  const showSkipped = () => {
    const skipped = m.skipped_occurrences || [];
    skippedTerm.hidden = skippedList.hidden = skipped.length === 0;
    skippedList.replaceChildren(...skipped.map((at) => h('li', { 'data-occurrence': at },
      fmtDateTime(at),
      m.is_host && !m.cancelled && restoreButton(at))));
  };
  const restoreButton = (at) => {
    const button = h('button', { class: 'button small restore', type: 'button', title: 'Hold this occurrence after all' }, 'Restore');
    button.addEventListener('click', () => busy(button, async () => {
      const rest = (m.skipped_occurrences || []).filter((t) => t !== at);
      m = { ...m, ...(await updateMeeting(m.id, { skipped_occurrences: rest })) };
      showSkipped();
      toast(`Restored ${fmtDateTime(at)}`);
    }));
    return button;
  };

  const copyButton = h('button', { id: 'meeting-copy', class: 'button', type: 'button' }, 'Copy link');
  copyButton.addEventListener('click', async () => {
    try {
      await navigator.clipboard.writeText(new URL(m.url, location.origin).href);
      toast('Link copied');
    } catch {
      toast(new URL(m.url, location.origin).href, 'info', 10000);
    }
  });

  const open = !m.cancelled;
  root.append(
    h('header', { class: 'view-head' },
      h('h1', { id: 'meeting-title' }, m.title || 'Untitled meeting'),
      lockTag,
      m.cancelled && h('span', { class: 'tag danger' }, 'Cancelled')),
    h('section', { class: 'card meeting-facts' },
      h('p', { id: 'meeting-when', class: 'when' }, whenText(m)),
      m.description && h('p', { id: 'meeting-description', class: 'description' }, m.description),
      h('dl', {},
        h('dt', {}, 'Host'), h('dd', { id: 'meeting-host' }, m.is_host ? `${m.host.display_name} (you)` : m.host?.display_name),
        h('dt', {}, 'Link'), h('dd', {}, h('code', {}, new URL(m.url, location.origin).href)),
        h('dt', {}, 'Options'), h('dd', {}, [m.lobby ? 'Lobby' : 'No lobby', m.require_sign_in ? 'sign-in required' : 'guests welcome'].join(', ')),
        skippedTerm, h('dd', {}, skippedList)),
      h('div', { class: 'actions' },
        open && h('a', { id: 'meeting-join', class: 'primary', href: m.url }, 'Join'),
        open && copyButton,
        h('a', { id: 'meeting-ics', class: 'button', href: calendarUrl(m.id), download: `${m.room}.ics` }, 'Download .ics'),
        open && m.is_host && h('a', { id: 'meeting-edit', class: 'button', href: `/app/meetings/${encodeURIComponent(m.id)}/edit` }, 'Edit'),
        open && m.is_host && lockButton,
        open && m.is_host && cancelButton)),
    h('section', { class: 'card' },
      h('h2', {}, 'In the meeting now'),
      liveList),
    h('section', { class: 'card' },
      h('h2', {}, 'Invited'),
      m.invitees?.length
        ? h('ul', { id: 'meeting-invitees', class: 'people' }, m.invitees.map((u) => h('li', { class: 'person', 'data-user-id': u.id }, u.display_name, h('span', { class: 'hint' }, u.email))))
        : h('p', { id: 'meeting-invitees', class: 'empty' }, 'Nobody is invited: share the link.')));
  showLive();
  showLock();
  showSkipped();

  if (open) {
    ctx.every(LIVE_MS, async () => {
      try {
        const fresh = await getMeeting(id);
        if (!ctx.alive) return;
        m = { ...m, live: fresh.live, locked: fresh.locked };
        showLive();
        showLock();
      } catch { /* shown again on the next tick */ }
    });
  }
}

/** "Tue, Dec 1, 2026, 10:00 – 10:30 (Europe/Berlin) · Weekly, 10 times", in the viewer's zone. */
function whenText(m) {
  if (!m.start_at) return `Instant meeting, created ${fmtDateTime(m.created_at)}`;
  const zone = viewerZone();
  const at = currentOccurrence(m) || new Date(m.start_at);
  const end = new Date(at.getTime() + m.duration_minutes * 60000);
  let text = `${fmtDateTime(at)} – ${fmtTime(end)} (${zone.replaceAll('_', ' ')})`;
  if (m.time_zone && m.time_zone !== zone) text += ` · ${fmtTime(at, m.time_zone)} in ${m.time_zone.replaceAll('_', ' ')}`;
  const rec = fmtRecurrence(m);
  return rec ? `${text} · ${rec}` : text;
}
