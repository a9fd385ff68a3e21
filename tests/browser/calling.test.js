// Calling a contact as people do it: a contact request is announced to its recipient, a call
// rings a signed-in person who is on the home page or in a meeting page (not only in the app),
// declining tells the caller, answering is one click, and a finished call moves from
// "Upcoming" to "Past".
import { test, after, afterEach } from 'node:test';
import assert from 'node:assert/strict';
import { browserSession, openUser, startServer } from './lib.js';

const session = browserSession({ afterEach, after });
const people = session.people;

async function signUp(server, name, displayName, email) {
  const u = await openUser(server, name, '/signup');
  people.push(u);
  await u.page.fill('#display-name', displayName);
  await u.page.fill('#email', email);
  await u.page.fill('#password', 'correct horse battery');
  await u.page.click('#auth-submit');
  await u.page.waitForURL(/\/app\//);
  u.me = await u.waitFor(() => window.stoaApp?.me, null, 10000, 'the signed-in app');
  return u;
}

/** `fetch` of the API inside the page (with its session cookie) → `{status, json}`. */
const api = (u, path, method = 'GET', body) => u.eval(async ({ path, method, body }) => {
  const r = await fetch(path, { method, headers: body ? { 'content-type': 'application/json' } : {}, body: body && JSON.stringify(body) });
  return { status: r.status, json: await r.json().catch(() => null) };
}, { path, method, body });

const presenceOf = async (u, id) => (await api(u, '/api/v1/contacts')).json.items.find((c) => c.id === id)?.presence;

test('requests, rings and declines reach people on any page; answering is one click', async () => {
  const server = session.server = await startServer();
  const a = await signUp(server, 'Alice', 'Alice Archer', 'alice@example.com');
  const b = await signUp(server, 'Bob', 'Bob Baker', 'bob@example.com');

  // Bob is on the home page when Alice asks to become his contact.
  await b.page.goto(`${server.base}/`);
  await b.page.waitForSelector('#signed-in-links:not([hidden])');
  await b.waitFor(() => window.stoaEvents?.state === 'open', null, 10000, 'Bob\'s event socket');
  assert.equal((await api(a, '/api/v1/contacts/requests', 'POST', { user_id: b.me.id })).status, 201);
  await b.page.waitForSelector('#toasts .toast:has-text("Alice Archer wants to add you as a contact")', { timeout: 10000 });
  assert.equal((await api(b, `/api/v1/contacts/requests/${a.me.id}/accept`, 'POST')).status, 204);
  await a.waitFor(async (id) => (await (await fetch('/api/v1/contacts')).json()).items.find((c) => c.id === id)?.presence === 'online',
    b.me.id, 10000, 'Bob online while on the home page');

  // Alice calls; Bob, still on the home page, declines; Alice is told.
  await a.page.goto(`${server.base}/app/contacts`);
  await a.page.click(`#contact-list li.contact[data-user-id="${b.me.id}"] button.call`);
  await a.page.waitForURL(/\/m\//);
  await a.waitFor(() => window.stoa?.state === 'joined', null, 20000, 'Alice in her call');
  await b.page.waitForSelector('#ring-dialog[open]', { timeout: 15000 });
  assert.equal(await b.page.textContent('#ring-title'), 'Alice Archer is calling');
  await b.page.click('#ring-decline');
  await a.page.waitForSelector('#toasts .toast:has-text("Bob Baker declined the call.")', { timeout: 10000 });
  assert.equal(await a.eval(() => window.stoa.state), 'joined', 'the caller stays until she leaves');
  await a.page.click('#leave-button');

  // Bob waits on another meeting's page; Alice calls again; one click and Bob is in her call.
  await b.page.goto(`${server.base}/m/bobs-own-room`);
  await b.page.waitForSelector('#join-button:visible');
  assert.equal(await presenceOf(a, b.me.id), 'online', 'a meeting page keeps Bob reachable');
  const call = await api(a, `/api/v1/contacts/${b.me.id}/call`, 'POST');
  assert.equal(call.status, 201);
  await a.page.goto(`${server.base}${call.json.url}?autojoin=1`);
  await a.waitFor(() => window.stoa?.state === 'joined', null, 20000, 'Alice in her second call');
  await b.page.waitForSelector('#ring-dialog[open]', { timeout: 15000 });
  await b.page.click('#ring-join');
  await b.page.waitForURL(new RegExp(call.json.url));
  await b.waitFor(() => window.stoa?.state === 'joined', null, 20000, 'Bob joined with one click');
  await a.waitFor(() => window.stoa.participants.size === 1, null, 20000, 'Alice sees Bob');

  // Both hang up: both calls are over, so "Past" lists them and "Upcoming" does not.
  for (const u of [a, b]) await u.page.click('#leave-button');
  await a.page.goto(`${server.base}/app/meetings`);
  await a.page.waitForSelector('#past');
  const rows = await a.eval(() => ({
    upcoming: [...document.querySelectorAll('#upcoming .meeting-item')].map((e) => e.dataset.meetingId),
    past: [...document.querySelectorAll('#past .meeting-item')].map((e) => ({ id: e.dataset.meetingId, join: !!e.querySelector('.join') })),
  }));
  assert.ok(!rows.upcoming.includes(call.json.id), JSON.stringify(rows));
  assert.deepEqual(rows.past.find((r) => r.id === call.json.id), { id: call.json.id, join: false }, JSON.stringify(rows));
});
