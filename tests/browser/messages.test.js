// What the pages say when something is missing or wrong: no 401 logged by signed-out pages,
// an HTML page for a bad link, every error of an empty sign-up form at once, a visible error
// for a name of only spaces and for a meeting in the past, and the server's phrases shown as
// sentences of their own (capitalised, never pasted into ours).
import { test, after, afterEach } from 'node:test';
import assert from 'node:assert/strict';
import { browserSession, openParticipant, openUser, startServer } from './lib.js';

const session = browserSession({ afterEach, after });
const people = session.people;
let server;

async function user(name, path) {
  const u = await openUser(server ??= session.server = await startServer(), name, path);
  people.push(u);
  return u;
}

test('signed-out pages log no failed request; a bad link is a page, not JSON', async () => {
  const u = await user('Visitor', '/');
  const failed = [];
  const watch = (page) => page.on('response', (r) => { if (r.status() >= 400) failed.push(`${r.status()} ${r.url()}`); });
  watch(u.page);
  for (const path of ['/', '/login', '/signup', '/m/some-room', '/nettest']) {
    await u.page.goto(`${server.base}${path}`);
    await u.page.waitForLoadState('networkidle');
  }
  assert.deepEqual(failed, [], 'no request of a signed-out page fails');
  assert.deepEqual(u.logs.filter((l) => / error: /.test(l)), [], 'nothing logged as an error');
  // A link to no meeting says so before anyone clicks Join.
  await u.page.goto(`${server.base}/m/some-room`);
  await u.page.waitForSelector('#prejoin-people.refused');
  assert.match(await u.page.textContent('#prejoin-people'), /^There is no meeting at this link\./);

  for (const [path, title] of [['/nope', 'Page not found'], ['/m/<script>', 'This is not a meeting link'], ['/m/<script>alert(1)</script>', 'Page not found']]) {
    const res = await u.page.goto(`${server.base}${path}`);
    assert.equal(res.status(), 404, path);
    assert.equal(await u.page.textContent('#error-title'), title, path);
    assert.ok(await u.page.isVisible('a[href="/"]'), `${path}: a way home`);
  }
});

test('forms show every error, in sentences', async () => {
  const u = await user('Newcomer', '/signup');
  await u.page.click('#auth-submit');
  const errors = await u.page.$$eval('.field-error', (ps) => Object.fromEntries(ps.map((p) => [p.dataset.for, p.textContent])));
  for (const field of ['display_name', 'email', 'password']) assert.match(errors[field] || '', /^[A-Z].*\.$/, `${field}: ${JSON.stringify(errors)}`);

  // The server's own words ("invalid email or password") as a sentence.
  await u.page.goto(`${server.base}/login`);
  await u.page.fill('#email', 'nobody@example.com');
  await u.page.fill('#password', 'not the password');
  await u.page.click('#auth-submit');
  await u.page.waitForSelector('.form-error:not(:empty)');
  assert.match(await u.page.textContent('.form-error'), /^[A-Z][^]*[.!?]$/);

  // A meeting in the past is refused with a word; in the future it is scheduled.
  await u.page.goto(`${server.base}/signup`);
  await u.page.fill('#display-name', 'Sam Scheduler');
  await u.page.fill('#email', 'sam@example.com');
  await u.page.fill('#password', 'correct horse battery');
  await u.page.click('#auth-submit');
  await u.page.waitForURL(/\/app\//);
  await u.page.goto(`${server.base}/app/meetings/new`);
  await u.page.waitForSelector('#mf-title');
  await u.page.fill('#mf-title', 'Yesterday');
  await u.page.fill('#mf-date', '2020-01-15');
  await u.page.click('#mf-submit');
  await u.page.waitForSelector('.field-error[data-for="start_at"]:not(:empty)');
  assert.match(await u.page.textContent('.field-error[data-for="start_at"]'), /already passed/);
  assert.match(u.page.url(), /\/app\/meetings\/new$/, 'nothing was saved');
  await u.page.fill('#mf-date', '2031-01-15');
  await u.page.click('#mf-submit');
  await u.page.waitForURL(/\/app\/meetings\/[^/]+$/);
});

test('a name of only spaces gets a visible error; a known refusal is our sentence alone', async () => {
  const u = await user('Spaces', '/m/spaces-room');
  await u.page.waitForSelector('#join-name:visible');
  await u.page.fill('#join-name', '   ');
  await u.page.click('#join-button');
  await u.page.waitForSelector('#join-error:not(:empty)');
  assert.match(await u.page.textContent('#join-error'), /^Enter your name/);
  assert.equal(await u.eval(() => window.stoa.state), 'prejoin');
  await u.page.fill('#join-name', 'Sue');
  assert.equal(await u.page.textContent('#join-error'), '', 'typing clears it');

  // A locked meeting: the page's explanation, without the server's phrase pasted after it.
  const host = await user('Host', '/signup');
  await host.page.fill('#display-name', 'Hana Host');
  await host.page.fill('#email', 'hana@example.com');
  await host.page.fill('#password', 'correct horse battery');
  await host.page.click('#auth-submit');
  await host.page.waitForURL(/\/app\//);
  const room = await host.eval(async () => (await (await fetch('/api/v1/meetings', {
    method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ title: 'Locked' }),
  })).json()).room);
  await host.page.goto(`${server.base}/m/${room}?autojoin=1`);
  await host.waitFor(() => window.stoa?.state === 'joined', null, 20000, 'the host joined');
  await host.eval(() => window.stoa.setLocked(true));
  await host.page.waitForSelector('#locked-badge:visible');
  const late = await openParticipant(server, room, 'Late');
  people.push(late);
  await late.waitFor(() => window.stoa.state === 'left', null, 15000, 'the locked meeting to refuse');
  assert.equal(await late.page.textContent('#left-title'), 'This meeting is locked');
  assert.equal(await late.page.textContent('#left-detail'), 'The host locked the meeting: nobody new can join until they unlock it.');
});
