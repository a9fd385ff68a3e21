// Home page (/): starts a new meeting (POST /api/v1/meetings) or joins one by link or room
// name, signed in or not; links to sign-in / sign-up, or to the app when signed in (and then
// rings and notices, as on every page).

import { createMeeting, getMe, roomFromInput } from './api.js';
import { fillIcons } from './icons.js';
import { startNotices } from './notices.js';

const $ = (sel) => document.querySelector(sel);
const showError = (text) => { $('#home-error').textContent = text || ''; };

fillIcons();

// After an account was deleted, the app sends people here to say so.
if (new URLSearchParams(location.search).get('deleted') === '1') {
  $('#home-notice').textContent = 'Your account was deleted.';
  $('#home-notice').hidden = false;
  history.replaceState(null, '', '/');
}

let me = null;
getMe().then((user) => {
  me = user;
  if (!user) return;
  startNotices();
  $('#home-user').textContent = user.display_name;
  $('#signed-out-links').hidden = true;
  $('#signed-in-links').hidden = false;
}).catch(() => { /* signed-out links stay */ });

$('#new-meeting').addEventListener('click', async () => {
  const button = $('#new-meeting');
  button.disabled = true;
  showError('');
  try {
    // Signed in, the meeting is stored (and needs a title); signed out it is an ad-hoc link.
    const { url, room, host_key: hostKey } = await createMeeting(me ? { title: `${me.display_name}'s meeting` } : {});
    // An ad-hoc meeting's creator is its host: the key stays in this browser.
    if (hostKey) try { localStorage.setItem(`stoa.host.${room}`, hostKey); } catch { /* private mode */ }
    location.assign(url || `/m/${encodeURIComponent(room)}`);
  } catch (err) {
    showError(`Could not create a meeting. ${err.message}`);
    button.disabled = false;
  }
});

const input = $('#join-input');
const sync = () => { $('#join-link-button').disabled = !input.value.trim(); };
input.addEventListener('input', () => { sync(); showError(''); });
sync();

$('#join-form').addEventListener('submit', (e) => {
  e.preventDefault();
  const room = roomFromInput(input.value);
  if (!room) {
    showError('That is not a meeting link or room name (letters, digits, "-" and "_", up to 64).');
    return;
  }
  location.assign(`/m/${encodeURIComponent(room)}`);
});
