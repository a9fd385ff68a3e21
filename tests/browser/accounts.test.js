// Accounts, meetings and contacts through the web app: sign-up, scheduling with .ics,
// contact requests, live presence, calling a contact, the lobby, the host's mute / remove /
// lock, and everything surviving a server restart. Headless Chromium with fake devices.
import { test, after, afterEach } from 'node:test';
import assert from 'node:assert/strict';
import { browserSession, openParticipant, openUser, startServer, waitForRemoteMedia, sleep } from './lib.js';

const session = browserSession({ afterEach, after });
const people = session.people;
const PASSWORD = 'correct horse battery';

// Every test has its own server (and data dir): stop it after the test, pass or fail.
afterEach(async () => {
  const s = session.server;
  session.server = null;
  if (s) await s.stop();
});

async function start() {
  session.server = await startServer();
  return session.server;
}

async function user(server, name, path) {
  const u = await openUser(server, name, path);
  people.push(u);
  return u;
}

/** Fills the sign-up form on the current page and waits for the app. */
async function signUp(u, displayName, email) {
  await u.page.fill('#display-name', displayName);
  await u.page.fill('#email', email);
  await u.page.fill('#password', PASSWORD);
  await u.page.click('#auth-submit');
  await u.page.waitForURL(/\/app\//);
  const me = await u.waitFor(() => window.stoaApp?.me, null, 10000, 'the signed-in app');
  assert.equal(me.display_name, displayName);
  return me;
}

/** `fetch` inside the page (with its session cookie): `{status, type, body}`. */
function pageFetch(u, path, { method = 'GET', body } = {}) {
  return u.eval(async ({ path, method, body }) => {
    const r = await fetch(path, {
      method,
      headers: body ? { 'content-type': 'application/json' } : {},
      body: body ? JSON.stringify(body) : undefined,
    });
    const text = await r.text();
    let json = null;
    try { json = JSON.parse(text); } catch { /* not JSON */ }
    return { status: r.status, type: r.headers.get('content-type'), text, json };
  }, { path, method, body });
}

/** Clicks the Join button of the pre-join screen and waits until in the call. */
async function joinFromPrejoin(u) {
  await u.page.waitForSelector('#join-button:visible');
  await u.page.click('#join-button');
  await u.waitFor(() => window.stoa?.state === 'joined', null, 20000, 'joined');
}

const waitPresence = (u, id, presence) => u.waitFor(
  ({ id, presence }) => document.querySelector(`#contact-list li.contact[data-user-id="${id}"]`)?.dataset.presence === presence,
  { id, presence }, 20000, `presence ${presence}`);

test('sign up, schedule with .ics, become contacts, see presence, call a contact', async () => {
  const server = await start();
  const a = await user(server, 'Alice', '/signup');
  const b = await user(server, 'Bob', '/signup');
  const alice = await signUp(a, 'Alice Archer', 'alice@example.com');
  const bob = await signUp(b, 'Bob Baker', 'bob@example.com');

  // A signed-out browser is sent to the log-in page, with a way back.
  const anon = await user(server, 'Anon', '/app/contacts');
  await anon.page.waitForURL(/\/login\?next=%2Fapp%2Fcontacts/);
  await anon.close();

  // Alice schedules a weekly meeting at 09:30 in Berlin.
  await a.page.click('#schedule-link');
  await a.page.waitForSelector('#meeting-form');
  await a.page.fill('#mf-title', 'Weekly sync');
  await a.page.fill('#mf-description', 'Plans for the week');
  await a.page.fill('#mf-date', '2031-06-02');
  await a.page.fill('#mf-time', '09:30');
  await a.page.selectOption('#mf-zone', 'Europe/Berlin');
  await a.page.selectOption('#mf-duration', '45');
  await a.page.selectOption('#mf-recurrence', 'weekly');
  await a.page.selectOption('#mf-ends', 'count');
  await a.page.fill('#mf-count', '10');
  await a.page.click('#mf-submit');
  await a.page.waitForURL(/\/app\/meetings\/(?!new$)[^/]+$/);
  assert.equal(await a.page.textContent('#meeting-title'), 'Weekly sync');
  const meetingId = decodeURIComponent(new URL(a.page.url()).pathname.split('/').pop());
  const meeting = (await pageFetch(a, `/api/v1/meetings/${meetingId}`)).json;
  assert.equal(new Date(meeting.start_at).toISOString(), '2031-06-02T07:30:00.000Z', '09:30 in Berlin (CEST) is 07:30 UTC');
  assert.equal(meeting.time_zone, 'Europe/Berlin');
  assert.equal(meeting.recurrence, 'weekly');
  assert.equal(meeting.recurrence_count, 10);
  assert.equal(meeting.duration_minutes, 45);
  const icsHref = await a.page.getAttribute('#meeting-ics', 'href');
  const ics = await pageFetch(a, icsHref);
  assert.equal(ics.status, 200);
  assert.match(ics.type, /^text\/calendar/);
  assert.match(ics.text, /BEGIN:VEVENT/);
  assert.match(ics.text, /RRULE:FREQ=WEEKLY/);
  // The meeting is in Alice's upcoming list.
  await a.page.click('nav a[data-nav="meetings"]');
  await a.page.waitForSelector(`#upcoming .meeting-item[data-meeting-id="${meetingId}"]`);

  // A monthly meeting on the 31st at 18:00 in Berlin until May 31: January, March, May.
  await a.page.click('#schedule-link');
  await a.page.waitForSelector('#meeting-form');
  await a.page.fill('#mf-title', 'Month end');
  await a.page.fill('#mf-date', '2031-01-31');
  await a.page.fill('#mf-time', '18:00');
  await a.page.selectOption('#mf-zone', 'Europe/Berlin');
  await a.page.selectOption('#mf-recurrence', 'monthly');
  assert.equal(await a.page.isVisible('#mf-until'), false, 'no date before "On a date"');
  await a.page.selectOption('#mf-ends', 'until');
  await a.page.fill('#mf-until', '2031-05-31');
  await a.page.click('#mf-submit');
  await a.page.waitForURL(/\/app\/meetings\/(?!new$)[^/]+$/);
  const monthlyId = decodeURIComponent(new URL(a.page.url()).pathname.split('/').pop());
  const monthly = (await pageFetch(a, `/api/v1/meetings/${monthlyId}`)).json;
  assert.deepEqual([monthly.recurrence, monthly.recurrence_until, monthly.recurrence_count], ['monthly', '2031-05-31', null]);
  assert.match(await a.page.textContent('#meeting-when'), /Monthly, until (May 31, 2031|31 May 2031)/);
  const monthlyIcs = await pageFetch(a, `/api/v1/meetings/${monthlyId}/calendar.ics`);
  assert.match(monthlyIcs.text, /RRULE:FREQ=MONTHLY;UNTIL=20310531T215959Z/);

  // Alice skips the next one (after a confirmation); the card moves on to March 31, since
  // February has no 31st.
  await a.page.click('nav a[data-nav="meetings"]');
  const card = `#upcoming .meeting-item[data-meeting-id="${monthlyId}"]`;
  await a.page.waitForSelector(`${card}[data-occurrence="2031-01-31T17:00:00.000Z"] button.skip`);
  const asked = new Promise((resolve) => a.page.once('dialog', (d) => { resolve(d.message()); d.accept(); }));
  await a.page.click(`${card} button.skip`);
  assert.match(await asked, /^Skip "Month end" on /);
  await a.page.waitForSelector(`${card}[data-occurrence="2031-03-31T16:00:00.000Z"]`);
  const skipped = (await pageFetch(a, `/api/v1/meetings/${monthlyId}`)).json;
  assert.deepEqual(skipped.skipped_occurrences, ['2031-01-31T17:00:00Z']);
  const skippedIcs = await pageFetch(a, `/api/v1/meetings/${monthlyId}/calendar.ics`);
  assert.match(skippedIcs.text, /EXDATE;TZID=Europe\/Berlin:20310131T180000/);
  assert.equal(await a.page.isVisible(`#upcoming .meeting-item[data-meeting-id="${meetingId}"] button.skip`), true,
    'the weekly meeting can be skipped too');
  // Skipped by mistake: restored on the meeting's page, and the card shows January 31 again.
  await a.page.goto(`${server.base}/app/meetings/${encodeURIComponent(monthlyId)}`);
  await a.page.click('#meeting-skipped li[data-occurrence="2031-01-31T17:00:00Z"] button.restore');
  await a.page.waitForSelector('#meeting-skipped', { state: 'hidden' });
  assert.deepEqual((await pageFetch(a, `/api/v1/meetings/${monthlyId}`)).json.skipped_occurrences, []);
  await a.page.click('nav a[data-nav="meetings"]');
  await a.page.waitForSelector(`${card}[data-occurrence="2031-01-31T17:00:00.000Z"]`);

  // Alice finds Bob and asks him to be a contact.
  await a.page.click('nav a[data-nav="contacts"]');
  await b.page.click('nav a[data-nav="contacts"]');
  await b.page.waitForSelector('#user-search');
  await a.page.fill('#user-search', 'bob@example.com');
  const result = `#search-results li[data-user-id="${bob.id}"]`;
  await a.page.click(`${result} button.add`);
  await a.page.waitForSelector(`#outgoing-requests li[data-user-id="${bob.id}"]`);

  // Bob's open contacts page shows the request live; he accepts.
  await b.page.waitForSelector(`#incoming-requests li[data-user-id="${alice.id}"] button.accept`, { timeout: 15000 });
  await b.page.click(`#incoming-requests li[data-user-id="${alice.id}"] button.accept`);
  await b.page.waitForSelector(`#contact-list li.contact[data-user-id="${alice.id}"]`);

  // Alice sees Bob as a contact, online (his app is open), then offline when he closes it.
  await a.page.waitForSelector(`#contact-list li.contact[data-user-id="${bob.id}"]`, { timeout: 15000 });
  await waitPresence(a, bob.id, 'online');
  assert.equal(await a.page.textContent(`#contact-list li.contact[data-user-id="${bob.id}"] .presence-label`), 'Online');
  await b.page.close();
  await waitPresence(a, bob.id, 'offline');

  // Bob starts a meeting from the app and joins it: Alice sees him "in a meeting".
  await b.newPage('/app/meetings');
  await waitPresence(a, bob.id, 'online');
  await b.page.fill('#instant-title', 'Bob on his own');
  await b.page.click('#new-meeting');
  await b.page.waitForURL(/\/m\//);
  // The pre-join screen names him once it has asked who is signed in.
  await b.waitFor(() => document.querySelector('#join-as-name')?.textContent === 'Bob Baker', null, 10000, 'Joining as Bob Baker');
  assert.equal(await b.page.isVisible('#join-name'), false, 'a signed-in user types no name');
  await joinFromPrejoin(b);
  assert.equal(await b.eval(() => window.stoa.me.name), 'Bob Baker');
  await waitPresence(a, bob.id, 'in_meeting');
  assert.equal(await a.page.textContent(`#contact-list li.contact[data-user-id="${bob.id}"] .presence-label`), 'In a meeting');

  // Bob goes back to his app; Alice calls him; his app rings and he joins.
  await b.page.click('#leave-button');
  await b.page.goto(`${server.base}/app/meetings`);
  await waitPresence(a, bob.id, 'online');
  await a.page.click(`#contact-list li.contact[data-user-id="${bob.id}"] button.call`);
  await a.page.waitForURL(/\/m\//);
  await a.waitFor(() => window.stoa?.state === 'joined', null, 20000, 'Alice in her call');
  await b.page.waitForSelector('#ring-dialog[open]', { timeout: 15000 });
  assert.equal(await b.page.textContent('#ring-title'), 'Alice Archer is calling');
  await b.page.click('#ring-join');
  await b.page.waitForURL(/\/m\//);
  assert.equal(new URL(b.page.url()).pathname, new URL(a.page.url()).pathname, 'Bob joins the room Alice called from');
  await b.waitFor(() => window.stoa?.state === 'joined', null, 20000, 'Bob in the call: Join on the ring is enough');
  for (const p of [a, b]) {
    const s = await waitForRemoteMedia(p);
    assert.ok(s.inbound.find((x) => x.kind === 'video').framesDecoded > 30, `${p.name} decodes video`);
  }
  const names = await a.page.locator('.tile').allInnerTexts();
  assert.ok(names.some((t) => t.includes('Bob Baker')), `Alice's tiles: ${names}`);
});

test('lobby: the host admits a guest who waited', async () => {
  const server = await start();
  const host = await user(server, 'Host', '/signup?next=/app/meetings/new');
  await signUp(host, 'Hana Host', 'hana@example.com');
  await host.page.waitForSelector('#meeting-form');
  await host.page.fill('#mf-title', 'Interviews');
  await host.page.check('#mf-lobby');
  await host.page.click('#mf-submit');
  await host.page.waitForURL(/\/app\/meetings\/(?!new$)[^/]+$/);
  await host.page.click('#meeting-join');
  await host.page.waitForURL(/\/m\//);
  const room = new URL(host.page.url()).pathname.split('/').pop();
  await joinFromPrejoin(host);
  assert.equal(await host.eval(() => window.stoa.isHost), true);

  const guest = await user(server, 'Guest', `/m/${room}`);
  await guest.page.fill('#join-name', 'Gus Guest');
  await guest.page.click('#join-button');
  await guest.waitFor(() => window.stoa.state === 'lobby', null, 15000, 'the lobby');
  assert.match(await guest.page.textContent('#overlay-text'), /Waiting for the host to let you in/);
  assert.equal(await guest.eval(() => window.stoa.participants.size), 0, 'nobody is seen from the lobby');

  const entry = '#lobby-panel .lobby-entry[data-lobby-id]';
  await host.page.waitForSelector(entry, { timeout: 15000 });
  assert.match(await host.page.textContent(entry), /Gus Guest/);
  assert.equal((await host.eval(() => window.stoa.lobby)).length, 1);
  // Still waiting some seconds later: the lobby has no time limit.
  await sleep(3000);
  assert.equal(await guest.eval(() => window.stoa.state), 'lobby');
  await host.page.click(`${entry} .admit`);
  await guest.waitFor(() => window.stoa.state === 'joined', null, 15000, 'admitted');
  await host.waitFor(() => document.querySelector('#lobby-panel').hidden, null, 10000, 'the lobby panel to empty');
  for (const p of [host, guest]) {
    const s = await waitForRemoteMedia(p);
    assert.ok(s.inbound.find((x) => x.kind === 'video').framesDecoded > 30, `${p.name} decodes video`);
  }
});

test('the host mutes a participant, makes them a host (who locks the meeting), and removes them', async () => {
  const server = await start();
  const host = await user(server, 'Host', '/signup');
  await signUp(host, 'Mia Moderator', 'mia@example.com');
  const created = await pageFetch(host, '/api/v1/meetings', { method: 'POST', body: { title: 'Moderated' } });
  assert.equal(created.status, 201, created.text);
  const room = created.json.room;
  await host.page.goto(`${server.base}/m/${room}?autojoin=1`);
  await host.waitFor(() => window.stoa?.state === 'joined', null, 20000, 'the host joined');
  assert.equal(await host.eval(() => window.stoa.isHost), true);

  const pat = await openParticipant(server, room, 'Pat');
  people.push(pat);
  await waitForRemoteMedia(host);
  await waitForRemoteMedia(pat);
  assert.equal(await pat.eval(() => window.stoa.isHost), false);
  assert.equal(await pat.page.isVisible('.host-controls'), false, 'no host buttons for a guest');
  const patId = await pat.eval(() => window.stoa.me.pid);
  const tile = `.tile[data-participant="${patId}"]`;

  // Mute: Pat's microphone goes off (as with the mic button) and the host sees the track muted.
  await host.page.click(`${tile} .host-mute`);
  await pat.waitFor(() => window.stoa.local.micOn === false && window.stoa.local.mic?.enabled === false, null, 10000, 'muted by the host');
  assert.match(await pat.page.textContent('#toasts'), /The host muted you/);
  assert.equal(await pat.page.getAttribute('#mic-button', 'aria-pressed'), 'true');
  await host.waitFor((id) => window.stoa.participants.get(id)?.tracks.find((t) => t.kind === 'audio')?.muted === true, patId, 10000, 'Pat\'s audio track published as muted');
  // Pat may unmute herself.
  assert.equal(await pat.eval(() => window.stoa.toggleMic()), true);
  await host.waitFor((id) => window.stoa.participants.get(id)?.tracks.find((t) => t.kind === 'audio')?.muted === false, patId, 10000, 'Pat unmuted');

  // The host makes Pat a host too (from the People panel, after a confirmation): she gets the
  // host's controls, and it is her lock that closes the meeting.
  await host.page.click('#people-button');
  const promoted = new Promise((resolve) => host.page.once('dialog', (d) => { resolve(d.message()); d.accept(); }));
  await host.page.click(`#people-list [data-participant="${patId}"] .host-make-host`);
  assert.match(await promoted, /^Make Pat a host\?/);
  await pat.waitFor(() => window.stoa.isHost === true, null, 10000, 'Pat made a host');
  await pat.page.waitForSelector('#lock-button:visible');
  assert.match(await pat.page.textContent('#toasts'), /You are now a host/);

  // Lock (by Pat, now a host): everyone sees the badge; a newcomer is turned away.
  await pat.page.click('#lock-button');
  for (const p of [host, pat]) await p.page.waitForSelector('#locked-badge:visible', { timeout: 10000 });
  assert.equal(await pat.eval(() => window.stoa.locked), true);
  const late = await openParticipant(server, room, 'Late');
  people.push(late);
  await late.waitFor(() => window.stoa.state === 'left', null, 15000, 'the locked meeting to refuse');
  assert.equal(await late.page.textContent('#left-title'), 'This meeting is locked');

  // Remove asks first; then Pat's page says so and does not come back; her tile goes away.
  host.page.once('dialog', (d) => d.dismiss());
  await host.page.click(`${tile} .host-remove`);
  await sleep(1000);
  assert.equal(await pat.eval(() => window.stoa.state), 'joined', 'not removed without a yes');
  const asked = new Promise((resolve) => host.page.once('dialog', (d) => { resolve(d.message()); d.accept(); }));
  await host.page.click(`${tile} .host-remove`);
  assert.match(await asked, /^Remove Pat from the meeting\?/);
  await pat.waitFor(() => window.stoa.state === 'removed', null, 10000, 'removed');
  assert.equal(await pat.page.textContent('#left-title'), 'The host removed you from the meeting');
  assert.equal(await pat.page.isVisible('#rejoin-button'), false);
  await host.waitFor((id) => !document.querySelector(`.tile[data-participant="${id}"]`), patId, 10000, 'Pat\'s tile to go');
  await sleep(3000);
  assert.equal(await pat.eval(() => window.stoa.state), 'removed', 'no automatic rejoin');
  assert.equal(await host.eval(() => window.stoa.participants.size), 0);
});

test('accounts, sessions, meetings and contacts survive a server restart', async () => {
  let server = await start();
  const a = await user(server, 'Alice', '/signup');
  const b = await user(server, 'Bob', '/signup');
  const alice = await signUp(a, 'Alice Archer', 'alice@example.com');
  const bob = await signUp(b, 'Bob Baker', 'bob@example.com');
  const created = await pageFetch(a, '/api/v1/meetings', {
    method: 'POST',
    body: { title: 'Survives restarts', start_at: '2031-01-15T10:00:00+01:00', time_zone: 'Europe/Berlin', duration_minutes: 30, invitees: [] },
  });
  assert.equal(created.status, 201, created.text);
  const meetingId = created.json.id;
  assert.equal((await pageFetch(a, '/api/v1/contacts/requests', { method: 'POST', body: { user_id: bob.id } })).status, 201);
  assert.equal((await pageFetch(b, `/api/v1/contacts/requests/${alice.id}/accept`, { method: 'POST' })).status, 204);

  // Restart on the same data directory and port, with Alice's app open.
  await a.waitFor(() => window.stoaApp.events.state === 'open', null, 10000, 'the events socket');
  const { dataDir } = server;
  await server.stop({ keepData: true });
  session.server = null;
  server = session.server = await startServer(8800, { dataDir });
  // The app's events socket comes back by itself.
  await a.waitFor(() => window.stoaApp.events.state === 'open' && window.stoaApp.events.reconnects >= 1, null, 20000, 'the events socket to reconnect');

  // Alice's old session cookie still works.
  await a.page.goto(`${server.base}/app/meetings`);
  await a.page.waitForSelector(`.meeting-item[data-meeting-id="${meetingId}"]`);
  assert.match(await a.page.textContent(`.meeting-item[data-meeting-id="${meetingId}"]`), /Survives restarts/);
  assert.equal(await a.page.textContent('#app-user'), 'Alice Archer');

  // Bob logs in again from a new browser and still has Alice as a contact.
  const b2 = await user(server, 'Bob again', '/login?next=/app/contacts');
  await b2.page.fill('#email', 'bob@example.com');
  await b2.page.fill('#password', 'wrong password');
  await b2.page.click('#auth-submit');
  await b2.page.waitForSelector('.form-error:not(:empty)');
  assert.equal(new URL(b2.page.url()).pathname, '/login', 'a wrong password keeps the form');
  await b2.page.fill('#password', PASSWORD);
  await b2.page.click('#auth-submit');
  await b2.page.waitForURL(/\/app\/contacts$/);
  await b2.page.waitForSelector(`#contact-list li.contact[data-user-id="${alice.id}"]`);
  await a.page.click('nav a[data-nav="contacts"]');
  await a.page.waitForSelector(`#contact-list li.contact[data-user-id="${bob.id}"]`);
  await waitPresence(a, bob.id, 'online');

  // Alice deletes her account: the password again, then a confirmation.
  await a.page.click('nav a[data-nav="account"]');
  await a.page.fill('#delete-password', 'wrong password');
  a.page.once('dialog', (d) => d.accept());
  await a.page.click('#delete-account');
  await a.page.waitForSelector('#delete-account-form .field-error[data-for="password"]:not(:empty)');
  await a.page.fill('#delete-password', PASSWORD);
  let asked = '';
  a.page.once('dialog', (d) => { asked = d.message(); d.accept(); });
  await a.page.click('#delete-account');
  await a.page.waitForSelector('#home-notice:visible');
  assert.match(asked, /cannot be undone/);
  assert.equal(await a.page.textContent('#home-notice'), 'Your account was deleted.');
  assert.equal((await pageFetch(a, '/api/v1/session')).json.user, null, 'signed out');
  const join = await pageFetch(b2, `/api/v1/rooms/${created.json.room}/join`, { method: 'POST', body: { name: 'Bob' } });
  assert.equal(join.status, 404, `her meeting is gone: ${join.text}`);
  await b2.page.reload();
  await b2.page.waitForSelector('#contact-list');
  await b2.waitFor((id) => !document.querySelector(`#contact-list li.contact[data-user-id="${id}"]`), alice.id, 10000, 'Alice gone from Bob\'s contacts');
});

test('refusals are final: sign-in required (then signing up), denied from the lobby, cancelled', async () => {
  const server = await start();
  const host = await user(server, 'Host', '/signup');
  await signUp(host, 'Rita Rules', 'rita@example.com');
  const make = async (body) => {
    const r = await pageFetch(host, '/api/v1/meetings', { method: 'POST', body });
    assert.equal(r.status, 201, r.text);
    return r.json;
  };
  const strict = await make({ title: 'Members only', require_sign_in: true });
  const lobby = await make({ title: 'Lobby', lobby: true });
  const doomed = await make({ title: 'Doomed' });

  // A guest may not join a sign-in-only meeting; the page links to the log-in, which comes back.
  const g = await user(server, 'Gil', `/m/${strict.room}?name=Gil&autojoin=1`);
  await g.waitFor(() => window.stoa.state === 'left', null, 15000, 'the refusal');
  assert.equal(await g.page.textContent('#left-title'), 'Sign in to join this meeting');
  assert.equal(await g.page.isVisible('#rejoin-button'), false);
  assert.equal(await g.page.getAttribute('#left-link', 'href'), `/login?next=${encodeURIComponent(`/m/${strict.room}`)}`);
  await g.page.click('#left-link');
  await g.page.waitForURL(/\/login\?next=/);
  await g.page.click('#switch-link'); // no account yet: sign up, keeping ?next=
  await g.page.waitForURL(/\/signup\?next=/);
  await g.page.fill('#display-name', 'Gil Guest');
  await g.page.fill('#email', 'gil@example.com');
  await g.page.fill('#password', PASSWORD);
  await g.page.click('#auth-submit');
  await g.page.waitForURL(new RegExp(`/m/${strict.room}$`));
  await joinFromPrejoin(g);
  assert.equal(await g.eval(() => window.stoa.me.name), 'Gil Guest');
  await g.page.click('#leave-button');

  // Denied from the lobby: no automatic retry.
  await host.page.goto(`${server.base}/m/${lobby.room}?autojoin=1`);
  await host.waitFor(() => window.stoa?.state === 'joined', null, 20000, 'the host joined');
  await g.newPage(`/m/${lobby.room}`);
  await g.page.waitForSelector('#join-button:visible');
  await g.page.click('#join-button');
  await g.waitFor(() => window.stoa.state === 'lobby', null, 10000, 'the lobby');
  await host.page.click('#lobby-panel .lobby-entry .deny');
  await g.waitFor(() => window.stoa.state === 'denied', null, 10000, 'denied');
  assert.equal(await g.page.textContent('#left-title'), 'The host did not let you in');
  await sleep(3000);
  assert.equal(await g.eval(() => window.stoa.state), 'denied');
  assert.equal(await host.eval(() => window.stoa.lobby.length), 0);

  // A cancelled meeting's link no longer works.
  assert.equal((await pageFetch(host, `/api/v1/meetings/${doomed.id}`, { method: 'DELETE' })).status, 204);
  await g.newPage(`/m/${doomed.room}?autojoin=1`);
  await g.waitFor(() => window.stoa.state === 'left', null, 15000, 'the refusal');
  assert.equal(await g.page.textContent('#left-title'), 'This meeting was cancelled');

  // A room name nobody made gives no guest entry.
  await g.newPage('/m/standup?name=Gil&autojoin=1');
  await g.waitFor(() => window.stoa.state === 'left', null, 15000, 'the refusal');
  assert.equal(await g.page.textContent('#left-title'), 'There is no meeting at this link');
});

test('whoever makes a meeting signed out is its host; others who open the link are not', async () => {
  const server = await start();
  const creator = await user(server, 'Creator', '/');
  await creator.page.click('#new-meeting');
  await creator.page.waitForURL(/\/m\//);
  const room = new URL(creator.page.url()).pathname.split('/').pop();
  // Before joining: nobody is there yet, and the microphone's meter moves.
  await creator.page.waitForSelector('#prejoin-people:text("No one else is here yet")');
  await creator.waitFor(() => Number(document.querySelector('#mic-meter').getAttribute('aria-valuenow')) > 0, null, 10000, 'the microphone meter to move');
  await creator.page.fill('#join-name', 'Cora');
  await joinFromPrejoin(creator);
  assert.equal(await creator.eval(() => window.stoa.isHost), true);
  // Someone opening the link sees who is in the call before joining.
  const guest = await user(server, 'Guest', `/m/${room}?name=Gus`);
  await guest.page.waitForSelector('#prejoin-people:text("Cora is in the call")', { timeout: 10000 });
  await joinFromPrejoin(guest);
  assert.equal(await guest.eval(() => window.stoa.isHost), false);
  await creator.waitFor(() => window.stoa.participants.size === 1, null, 15000, "the guest in the host's view");
});
