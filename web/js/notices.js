// What reaches a signed-in person on every page (home, the app, a meeting): their event socket
// (so contacts see them online), the ringing dialog of an incoming call, whose Join opens the
// meeting and joins it in one click, and a notice when someone asks to become a contact.

import { declineCall } from './api.js';
import { h, toast } from './dom.js';
import { Events } from './events.js';
import { fillIcons } from './icons.js';

const RING_MS = 60000; // an unanswered ringing dialog closes after this long

let ringTimer = 0;
let ringing = null; // the `ring` event shown

/** The ringing dialog: the page's own `#ring-dialog`, else one made now. */
function ringDialog() {
  let d = document.getElementById('ring-dialog');
  if (d) return d;
  d = h('dialog', { id: 'ring-dialog', class: 'ring-dialog', 'aria-labelledby': 'ring-title' },
    h('div', { class: 'ring-avatar', 'data-icon': 'phone' }),
    h('h2', { id: 'ring-title' }),
    h('p', { id: 'ring-detail' }, 'Incoming call'),
    h('div', { class: 'actions' },
      h('button', { id: 'ring-decline', type: 'button', class: 'danger' }, 'Decline'),
      h('button', { id: 'ring-join', type: 'button', class: 'primary' }, 'Join')));
  fillIcons(d);
  document.body.append(d);
  return d;
}

function closeRing() {
  clearTimeout(ringTimer);
  ringing = null;
  document.getElementById('ring-dialog')?.close();
}

function ring(msg) {
  const dialog = ringDialog();
  const who = msg.from?.display_name || 'Someone';
  ringing = msg;
  dialog.querySelector('#ring-title').textContent = `${who} is calling`;
  dialog.querySelector('#ring-detail').textContent = msg.from?.email || 'Incoming call';
  dialog.dataset.meetingId = msg.meeting_id || '';
  dialog.querySelector('#ring-join').onclick = () => {
    closeRing();
    const url = new URL(msg.url || `/m/${encodeURIComponent(msg.room)}`, location.href);
    url.searchParams.set('autojoin', '1');
    location.assign(url.pathname + url.search);
  };
  dialog.querySelector('#ring-decline').onclick = () => {
    closeRing();
    if (msg.meeting_id) declineCall(msg.meeting_id).catch(() => { /* the caller just hears nothing */ });
  };
  if (!dialog.open) dialog.showModal();
  clearTimeout(ringTimer);
  ringTimer = setTimeout(() => {
    if (ringing !== msg) return;
    closeRing();
    toast(`Missed call from ${who}.`);
  }, RING_MS);
}

function contactRequest(msg) {
  const who = msg.from?.display_name || 'Someone';
  toast([`${who} wants to add you as a contact. `, h('a', { class: 'pill', href: '/app/contacts' }, 'See the request')], 'info', 10000);
}

/** Shows the rings and contact requests that `events` (an `Events`) receives on this page. */
export function showNotices(events) {
  events.on('ring', ring);
  events.on('contact_request', contactRequest);
}

/**
 * Opens the signed-in user's event socket with its notices; returns it, for more listeners
 * (also as `window.stoaEvents`, for tests).
 */
export function startNotices() {
  const events = new Events();
  showNotices(events);
  events.start();
  window.stoaEvents = events;
  return events;
}
