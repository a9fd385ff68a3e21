// Home page (/): starts a new meeting (POST /api/v1/meetings) or joins one by link or room name.

import { createMeeting, roomFromInput } from './api.js';
import { fillIcons } from './icons.js';

const $ = (sel) => document.querySelector(sel);
const showError = (text) => { $('#home-error').textContent = text || ''; };

fillIcons();

$('#new-meeting').addEventListener('click', async () => {
  const button = $('#new-meeting');
  button.disabled = true;
  showError('');
  try {
    const { url, room } = await createMeeting();
    location.assign(url || `/m/${encodeURIComponent(room)}`);
  } catch (err) {
    showError(`Could not create a meeting: ${err.message}`);
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
