// Account view (/app/account): who is signed in, password change, log-out, account deletion.

import { changePassword, deleteAccount, logout } from '../api.js';
import { $, clearFormErrors, h, showFormError, toast } from '../dom.js';

export const nav = 'account';

export async function render(root, ctx) {
  ctx.setTitle('Account');
  const form = h('form', { id: 'password-form', class: 'card form', novalidate: true },
    h('h2', {}, 'Change password'),
    h('label', { class: 'field-label', for: 'pw-current' }, 'Current password'),
    h('input', { id: 'pw-current', name: 'current_password', type: 'password', autocomplete: 'current-password', required: true }),
    h('p', { class: 'field-error', 'data-for': 'current_password' }),
    h('label', { class: 'field-label', for: 'pw-new' }, 'New password (at least 8 characters)'),
    h('input', { id: 'pw-new', name: 'new_password', type: 'password', autocomplete: 'new-password', minlength: 8, maxlength: 256, required: true }),
    h('p', { class: 'field-error', 'data-for': 'new_password' }),
    h('p', { class: 'hint' }, 'Your other signed-in browsers will be signed out.'),
    h('button', { id: 'pw-submit', class: 'primary', type: 'submit' }, 'Change password'),
    h('p', { class: 'form-error', role: 'alert' }));
  form.addEventListener('submit', async (e) => {
    e.preventDefault();
    const current = $('#pw-current', form).value;
    const next = $('#pw-new', form).value;
    if (next.length < 8) return showFormError(form, { field: 'new_password', message: 'The new password needs at least 8 characters.' });
    clearFormErrors(form);
    const button = $('#pw-submit', form);
    button.disabled = true;
    try {
      await changePassword(current, next);
      form.reset();
      toast('Password changed');
    } catch (err) {
      // 403 wrong_password names no field, but it is about one.
      showFormError(form, err.code === 'wrong_password' ? { field: 'current_password', message: err.message } : err);
    } finally {
      button.disabled = false;
    }
  });
  const out = h('button', { id: 'account-logout', class: 'button', type: 'button' }, 'Log out');
  out.addEventListener('click', async () => {
    ctx.events.stop();
    await logout().catch(() => {});
    location.assign('/');
  });
  root.append(
    h('header', { class: 'view-head' }, h('h1', {}, 'Account')),
    h('section', { class: 'card profile' },
      h('dl', {},
        h('dt', {}, 'Name'), h('dd', { id: 'account-name' }, ctx.me.display_name),
        h('dt', {}, 'Email'), h('dd', { id: 'account-email' }, ctx.me.email)),
      out),
    form,
    deletionForm(ctx));
}

/** Deleting the account: the password again, then a last confirmation. */
function deletionForm(ctx) {
  const form = h('form', { id: 'delete-account-form', class: 'card form', novalidate: true },
    h('h2', {}, 'Delete account'),
    h('p', { class: 'hint' }, 'Your account, your sign-ins, the meetings you host, your invitations, contacts and blocks are deleted for good. Where you attended someone else\'s meeting, their history keeps the time but not your name.'),
    h('label', { class: 'field-label', for: 'delete-password' }, 'Password'),
    h('input', { id: 'delete-password', name: 'password', type: 'password', autocomplete: 'current-password', required: true }),
    h('p', { class: 'field-error', 'data-for': 'password' }),
    h('button', { id: 'delete-account', class: 'danger', type: 'submit' }, 'Delete my account'),
    h('p', { class: 'form-error', role: 'alert' }));
  form.addEventListener('submit', async (e) => {
    e.preventDefault();
    const password = $('#delete-password', form).value;
    if (!password) return showFormError(form, { field: 'password', message: 'Enter your password to confirm.' });
    clearFormErrors(form);
    if (!window.confirm('Delete your account and everything in it? This cannot be undone.')) return;
    const button = $('#delete-account', form);
    button.disabled = true;
    try {
      await deleteAccount(password);
      ctx.events.stop();
      location.assign('/?deleted=1');
    } catch (err) {
      showFormError(form, err.code === 'wrong_password' ? { field: 'password', message: err.message } : err);
      button.disabled = false;
    }
  });
  return form;
}
