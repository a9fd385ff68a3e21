// Small DOM helpers shared by the account pages (login, sign-up, the app): building elements,
// showing API errors next to form fields, toasts.

export const $ = (sel, root = document) => root.querySelector(sel);
export const $$ = (sel, root = document) => [...root.querySelectorAll(sel)];

/**
 * `h('button', {class: 'pill', onclick: fn, 'data-id': 7}, 'Add')`: an element with attributes
 * (`on*` become listeners, `false`/null are left out) and children (strings become text).
 */
export function h(tag, props = {}, ...children) {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(props || {})) {
    if (v == null || v === false) continue;
    if (k.startsWith('on')) e.addEventListener(k.slice(2), v);
    else if (k === 'class') e.className = v;
    else if (k in e && typeof v !== 'string') e[k] = v; // checked, disabled, value, ...
    else e.setAttribute(k, v === true ? '' : String(v));
  }
  e.append(...children.flat().filter((c) => c != null && c !== false));
  return e;
}

/** Clears the messages that showFormError left in `form`. */
export function clearFormErrors(form) {
  for (const e of $$('.field-error, .form-error', form)) e.textContent = '';
  for (const e of $$('[aria-invalid]', form)) e.removeAttribute('aria-invalid');
}

/**
 * Shows an ApiError in `form`: next to the field it names (`.field-error[data-for=field]`),
 * else in the form's `.form-error`.
 */
export function showFormError(form, err) {
  showFormErrors(form, [err]);
}

/** Shows every one of `errs` (as showFormError does one); the first named field gets the focus. */
export function showFormErrors(form, errs) {
  clearFormErrors(form);
  let focused = false;
  for (const err of errs) {
    const text = err?.message || String(err);
    const slot = err?.field && form.querySelector(`.field-error[data-for="${CSS.escape(err.field)}"]`);
    if (slot) {
      slot.textContent = text;
      const input = form.querySelector(`[name="${CSS.escape(err.field)}"]`);
      input?.setAttribute('aria-invalid', 'true');
      if (input && !focused) { input.focus(); focused = true; }
    } else {
      $('.form-error', form).textContent = text;
    }
  }
}

/** A message at the bottom of the page; kind: info | error. */
export function toast(text, kind = 'info', ms = kind === 'error' ? 6000 : 3500) {
  const box = $('#toasts');
  const t = h('div', { class: `toast ${kind}`, role: kind === 'error' ? 'alert' : 'status' }, text);
  box.append(t);
  while (box.children.length > 4) box.firstElementChild.remove();
  setTimeout(() => { t.classList.add('out'); setTimeout(() => t.remove(), 300); }, ms);
}

/** Runs `fn` with `button` disabled; errors become a toast. Resolves with fn's result. */
export async function busy(button, fn) {
  button.disabled = true;
  try {
    return await fn();
  } catch (err) {
    toast(err.message || String(err), 'error');
    return undefined;
  } finally {
    button.disabled = false;
  }
}
