// Sign-in (/login) and sign-up (/signup) pages: one form each, posted to /api/v1/auth/*; on
// success the browser goes to `?next=` (a path on this site) or /app. API errors are shown next
// to the field they name.

import { getMe, login, safeNext, signup } from './api.js';
import { $, clearFormErrors, showFormError, showFormErrors } from './dom.js';

const page = document.body.dataset.page; // "login" | "signup"
const next = safeNext(new URLSearchParams(location.search).get('next'));
const form = $('#auth-form');

// Carry ?next= over to the other form.
if (next !== '/app') $('#switch-link').search = `?next=${encodeURIComponent(next)}`;

/** Checks in the browser what the server would refuse anyway, for a faster answer: all at once. */
function localErrors(values) {
  const errs = [];
  if (page === 'signup' && !values.display_name) errs.push({ field: 'display_name', message: 'Enter your name.' });
  if (!/^[^\s@]+@[^\s@]+$/.test(values.email)) errs.push({ field: 'email', message: 'Enter an email address like name@example.com.' });
  if (!values.password) errs.push({ field: 'password', message: page === 'signup' ? 'Choose a password of at least 8 characters.' : 'Enter your password.' });
  else if (page === 'signup' && values.password.length < 8) errs.push({ field: 'password', message: 'The password needs at least 8 characters.' });
  return errs;
}

form.addEventListener('submit', async (e) => {
  e.preventDefault();
  const values = {
    email: $('#email').value.trim(),
    password: $('#password').value,
    display_name: $('#display-name')?.value.trim(),
  };
  const problems = localErrors(values);
  if (problems.length) return showFormErrors(form, problems);
  clearFormErrors(form);
  const button = $('#auth-submit');
  button.disabled = true;
  try {
    if (page === 'signup') await signup(values.email, values.password, values.display_name);
    else await login(values.email, values.password);
    location.assign(next);
  } catch (err) {
    // invalid_credentials and rate_limited name no field: the message goes under the form.
    if (err.code === 'email_taken') {
      showFormError(form, { field: 'email', message: 'An account with this email already exists. Sign in instead?' });
    } else {
      showFormError(form, err);
    }
    button.disabled = false;
  }
});

getMe().then((user) => {
  if (!user) return;
  $('#signed-in-name').textContent = user.display_name;
  $('#continue-link').href = next;
  $('#signed-in-note').hidden = false;
}).catch(() => { /* the form works regardless */ });
