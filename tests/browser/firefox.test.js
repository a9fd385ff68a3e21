// The web app in Firefox ESR: sign-up, scheduling a meeting, contacts with live presence, and
// calling a Chromium contact (the ring, both in the same call). Media in Firefox is asserted
// in firefox-media.test.js and simulcast.test.js.
import { test, after, afterEach } from 'node:test';
import assert from 'node:assert/strict';
import { browserSession, openFirefoxUser, openUser, startServer } from './lib.js';

const session = browserSession({ afterEach, after });
const PASSWORD = 'correct horse battery';

/** Sets an input's or select's value the way typing would, in any browser. */
function setValue(page, selector, value) {
  return page.$eval(selector, (el, v) => {
    el.value = v;
    el.dispatchEvent(new Event('input', { bubbles: true }));
    el.dispatchEvent(new Event('change', { bubbles: true }));
  }, value);
}

test('Firefox: sign up, schedule, add a Chromium contact, call them, both in the call', async () => {
  const server = session.server = await startServer();

  const f = await openFirefoxUser(server, 'Fiona', '/signup');
  session.people.push(f);
  await f.page.waitForSelector('#auth-submit');
  await setValue(f.page, '#display-name', 'Fiona Fox');
  await setValue(f.page, '#email', 'fiona@example.com');
  await setValue(f.page, '#password', PASSWORD);
  await f.page.click('#auth-submit');
  const fiona = await f.waitFor(() => location.pathname.startsWith('/app/') && window.stoaApp?.me, null, 15000, 'the app in Firefox');
  assert.equal(fiona.display_name, 'Fiona Fox');

  const c = await openUser(server, 'Carl', '/signup');
  session.people.push(c);
  await c.page.fill('#display-name', 'Carl Chrome');
  await c.page.fill('#email', 'carl@example.com');
  await c.page.fill('#password', PASSWORD);
  await c.page.click('#auth-submit');
  await c.page.waitForURL(/\/app\//);
  const carl = await c.waitFor(() => window.stoaApp?.me, null, 10000, 'the app in Chromium');

  // Scheduling through the form works in Firefox.
  await f.page.click('#schedule-link');
  await f.page.waitForSelector('#meeting-form');
  await setValue(f.page, '#mf-title', 'Fox and friends');
  await setValue(f.page, '#mf-date', '2031-06-02');
  await setValue(f.page, '#mf-time', '09:30');
  await setValue(f.page, '#mf-zone', 'Europe/Berlin');
  await f.page.click('#mf-submit');
  await f.waitFor(() => /^\/app\/meetings\/[^/]+$/.test(location.pathname), null, 15000, 'the meeting page');
  await f.page.waitForSelector('#meeting-title');
  assert.equal(await f.page.$eval('#meeting-title', (e) => e.textContent), 'Fox and friends');
  const startAt = await f.eval(async () => {
    const id = decodeURIComponent(location.pathname.split('/').pop());
    return (await (await fetch(`/api/v1/meetings/${id}`)).json()).start_at;
  });
  assert.equal(startAt, '2031-06-02T07:30:00Z', 'Firefox computed the Berlin offset');

  // Contacts: Fiona finds Carl and asks; Carl accepts; Fiona sees him online.
  await f.page.click('nav a[data-nav="contacts"]');
  await c.page.click('nav a[data-nav="contacts"]');
  await f.page.waitForSelector('#user-search');
  await f.page.type('#user-search', 'carl@example.com');
  const add = `#search-results li[data-user-id="${carl.id}"] button.add`;
  await f.page.waitForSelector(add);
  await f.page.click(add);
  const accept = `#incoming-requests li[data-user-id="${fiona.id}"] button.accept`;
  await c.page.waitForSelector(accept, { timeout: 15000 });
  await c.page.click(accept);
  await f.waitFor((id) => document.querySelector(`#contact-list li.contact[data-user-id="${id}"]`)?.dataset.presence === 'online',
    carl.id, 20000, 'Carl online in Firefox');

  // Fiona calls Carl from Firefox; Carl's Chromium app rings and he joins.
  await f.page.click(`#contact-list li.contact[data-user-id="${carl.id}"] button.call`);
  await f.waitFor(() => window.stoa?.state === 'joined', null, 25000, 'Fiona in her call');
  await c.page.waitForSelector('#ring-dialog[open]', { timeout: 15000 });
  await c.page.click('#ring-join');
  await c.page.waitForURL(/\/m\//);
  await c.waitFor(() => window.stoa?.state === 'joined', null, 20000, 'Carl in the call (Join on the ring is enough)');
  const fromCarl = await c.waitFor(() => [...window.stoa.participants.values()].map((p) => p.name).join(','), null, 10000, 'Carl sees Fiona');
  assert.equal(fromCarl, 'Fiona Fox');
  const fromFiona = await f.waitFor(() => [...window.stoa.participants.values()].map((p) => p.name).join(','), null, 10000, 'Fiona sees Carl');
  assert.equal(fromFiona, 'Carl Chrome');
});
