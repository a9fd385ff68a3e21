// The signed-in app (/app/...): header, a small history-API router over the views in
// js/views/, and the events socket with its notices (notices.js: rings, contact requests).
// Signed out, it sends the browser to /login and back.

import { getMe, logout } from './api.js';
import { $, $$, h } from './dom.js';
import { Events } from './events.js';
import { fillIcons } from './icons.js';
import { showNotices } from './notices.js';
import * as account from './views/account.js';
import * as contacts from './views/contacts.js';
import * as history from './views/history.js';
import * as meetingDetail from './views/meeting-detail.js';
import * as meetingForm from './views/meeting-form.js';
import * as meetings from './views/meetings.js';

/** Path pattern → view module; the captured groups are passed to the view. */
const ROUTES = [
  [/^\/app\/meetings$/, meetings],
  [/^\/app\/meetings\/new$/, meetingForm],
  [/^\/app\/meetings\/([^/]+)\/edit$/, meetingForm],
  [/^\/app\/meetings\/([^/]+)$/, meetingDetail],
  [/^\/app\/contacts$/, contacts],
  [/^\/app\/history$/, history],
  [/^\/app\/account$/, account],
];

const events = new Events();
const app = { me: null, events, view: null, navigate };
let current = null; // {cleanups: [], alive} of the rendered view

function toLogin() {
  location.replace(`/login?next=${encodeURIComponent(location.pathname + location.search)}`);
}

// ---- router ------------------------------------------------------------------------------

function navigate(path, { replace = false } = {}) {
  if (replace) window.history.replaceState(null, '', path);
  else window.history.pushState(null, '', path);
  route();
}

async function route() {
  let path = location.pathname.replace(/\/+$/, '');
  if (path === '/app') {
    path = '/app/meetings';
    window.history.replaceState(null, '', path + location.search);
  }
  if (current) {
    current.alive = false;
    for (const fn of current.cleanups) fn();
  }
  const scope = { cleanups: [], alive: true };
  current = scope;

  let view = null;
  let args = [];
  for (const [re, v] of ROUTES) {
    const m = path.match(re);
    if (m) { view = v; args = m.slice(1).map(decodeURIComponent); break; }
  }
  const root = h('div', { class: 'view' });
  $('#view').replaceChildren(root);
  for (const a of $$('[data-nav]')) {
    if (view && a.dataset.nav === view.nav) a.setAttribute('aria-current', 'page');
    else a.removeAttribute('aria-current');
  }
  app.view = view ? view.nav : 'not-found';
  document.body.dataset.view = app.view;
  if (!view) {
    document.title = 'Not found · Stoa';
    root.append(h('h1', {}, 'Nothing here'), h('p', {}, h('a', { href: '/app/meetings' }, 'Back to your meetings')));
    return;
  }

  const ctx = {
    me: app.me,
    events,
    navigate,
    setTitle: (t) => { document.title = `${t} · Stoa`; },
    /** Runs `fn` when the view is left (at once if it already was). */
    onCleanup: (fn) => (scope.alive ? scope.cleanups.push(fn) : fn()),
    /** Calls `fn` every `ms` while the view is shown. */
    every: (ms, fn) => {
      const t = setInterval(fn, ms);
      ctx.onCleanup(() => clearInterval(t));
    },
    get alive() { return scope.alive; },
  };
  try {
    await view.render(root, ctx, ...args);
  } catch (err) {
    if (err.status === 401) return toLogin();
    if (!scope.alive) return;
    root.replaceChildren(
      h('h1', {}, err.status === 404 ? 'Not found' : 'Something went wrong'),
      h('p', { class: 'form-error' }, err.message || String(err)),
      h('p', {}, h('a', { href: '/app/meetings' }, 'Back to your meetings')),
    );
  }
}

// Same-site links into the app change the view without a page load.
document.addEventListener('click', (e) => {
  const a = e.target.closest('a[href]');
  if (!a || e.defaultPrevented || e.button !== 0 || e.metaKey || e.ctrlKey || e.shiftKey || e.altKey) return;
  if (a.target || a.hasAttribute('download')) return;
  const url = new URL(a.href, location.href);
  if (url.origin !== location.origin || !/^\/app(\/|$)/.test(url.pathname)) return;
  e.preventDefault();
  if (url.pathname + url.search !== location.pathname + location.search) navigate(url.pathname + url.search);
});
window.addEventListener('popstate', route);

// ---- start -------------------------------------------------------------------------------

async function start() {
  fillIcons();
  let me;
  try {
    me = await getMe();
  } catch (err) {
    $('#view').replaceChildren(h('p', { class: 'form-error' }, `Could not reach the server. ${err.message}`));
    return;
  }
  if (!me) return toLogin();
  app.me = me;
  $('#app-user').textContent = me.display_name;
  $('#app-user').title = me.email;
  $('#logout-button').addEventListener('click', async () => {
    events.stop();
    await logout().catch(() => {});
    location.assign('/');
  });

  showNotices(events);
  events.on('open', () => { $('#events-status').hidden = true; });
  events.on('drop', async () => {
    $('#events-status').hidden = false;
    // The socket is refused without a session: stop knocking and sign in again.
    if (events.reconnects >= 2 && !(await getMe().catch(() => true))) {
      events.stop();
      toLogin();
    }
  });
  events.start();
  await route();
}

/** Test hooks: the signed-in user, the current view, the events socket, navigate(path). */
window.stoaApp = app;
start();
