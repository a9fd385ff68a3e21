// Every page at phone size, portrait (390×844) and landscape (844×390), on a touch screen:
// nothing overflows sideways, and every visible control can be brought into view and is the
// element a finger tapping its centre would hit. In the call, the control bar must fit as it
// is (the page does not scroll) and Chat must open, take a message and close again by touch.
// Screenshots of each page go to tests/browser/results/phone-*.png.
import { test, after, afterEach } from 'node:test';
import assert from 'node:assert/strict';
import { mkdirSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { browserSession, launchBrowser, startServer } from './lib.js';

const RESULTS = join(dirname(fileURLToPath(import.meta.url)), 'results');
const session = browserSession({ afterEach, after });
const SIZES = { portrait: { width: 390, height: 844 }, landscape: { width: 844, height: 390 } };

/** A phone: its own Chromium with a touch screen and a mobile viewport. */
async function phone(server, viewport) {
  const browser = await launchBrowser();
  const context = await browser.newContext({
    viewport, hasTouch: true, isMobile: true, deviceScaleFactor: 2, permissions: ['camera', 'microphone'],
  });
  const page = await context.newPage();
  const errors = [];
  page.on('pageerror', (e) => errors.push(e.message));
  const p = { browser, page, errors, close: () => browser.close() };
  session.people.push(p);
  return p;
}

/**
 * Every visible control of the page (buttons, links, fields, tabs), or of the parts `scope`
 * selects: each is scrolled into view unless `fixed`, then must lie inside the viewport and be
 * what a tap on its centre hits. → a list of problems, empty when all is well.
 */
function controlProblems(page, { fixed = false, scope = 'body' } = {}) {
  return page.evaluate(async ({ fixed, scope }) => {
    const problems = [];
    const W = innerWidth; const H = innerHeight;
    const doc = document.documentElement;
    if (doc.scrollWidth > W + 1) problems.push(`the page is ${doc.scrollWidth}px wide in a ${W}px viewport`);
    const name = (e) => `${e.tagName.toLowerCase()}${e.id ? `#${e.id}` : ''}${e.className && typeof e.className === 'string' ? `.${e.className.trim().split(/\s+/).join('.')}` : ''}`
      + ` "${(e.getAttribute('title') || e.getAttribute('aria-label') || e.textContent || e.placeholder || '').trim().slice(0, 30)}"`;
    const controls = [...document.querySelectorAll(scope)]
      .flatMap((part) => [...part.querySelectorAll('button, a[href], input, select, textarea, [role="tab"]')])
      .filter((e) => e.checkVisibility({ checkOpacity: true, checkVisibilityCSS: true }) && e.getClientRects().length);
    if (!controls.length) problems.push('no visible control at all');
    for (const e of controls) {
      if (!fixed) {
        e.scrollIntoView({ block: 'center', inline: 'nearest' });
        await new Promise((r) => requestAnimationFrame(r));
      }
      const r = e.getBoundingClientRect();
      if (r.left < -1 || r.top < -1 || r.right > W + 1 || r.bottom > H + 1) {
        problems.push(`${name(e)} is outside the ${W}×${H} viewport at ${Math.round(r.left)},${Math.round(r.top)}–${Math.round(r.right)},${Math.round(r.bottom)}`);
        continue;
      }
      const hit = document.elementFromPoint(r.left + r.width / 2, r.top + r.height / 2);
      const label = e.closest('label');
      if (!hit || !(e === hit || e.contains(hit) || (label && label.contains(hit)))) {
        problems.push(`${name(e)} is covered by ${hit ? name(hit) : 'nothing'}`);
      }
    }
    scrollTo(0, 0);
    return problems;
  }, { fixed, scope });
}

async function check(p, what, shot, options) {
  const problems = await controlProblems(p.page, options);
  mkdirSync(RESULTS, { recursive: true });
  await p.page.screenshot({ path: join(RESULTS, `phone-${shot}.png`) });
  assert.deepEqual(problems, [], `${what}: ${problems.join('; ')}`);
}

const waitState = (page, state) => page.waitForFunction((s) => window.stoa?.state === s, state, { timeout: 20000 });

for (const [orientation, viewport] of Object.entries(SIZES)) {
  test(`at phone size (${orientation}), every page works by touch`, { timeout: 180000 }, async () => {
    // One server for both orientations (the after hook stops it; a second on the same port
    // would exit while the first kept answering).
    const server = session.server ??= await startServer();
    const p = await phone(server, viewport);
    const { page } = p;

    await page.goto(`${server.base}/`);
    await check(p, 'home page', `${orientation}-home`);
    await page.goto(`${server.base}/login`);
    await check(p, 'log-in page', `${orientation}-login`);
    await page.goto(`${server.base}/nettest`);
    await page.evaluate(() => window.nettest.done);
    await check(p, 'network test', `${orientation}-nettest`);

    // Sign up by touch; the empty form's errors must not push anything off screen either.
    await page.goto(`${server.base}/signup`);
    await page.tap('#auth-submit');
    await check(p, 'sign-up page', `${orientation}-signup`);
    await page.fill('#display-name', 'Pat Phone');
    await page.fill('#email', `pat-${orientation}@example.com`);
    await page.fill('#password', 'correct horse battery');
    await page.tap('#auth-submit');
    await page.waitForURL(/\/app\//);
    await page.waitForFunction(() => window.stoaApp?.me);
    await check(p, 'the app: meetings', `${orientation}-app-meetings`);
    for (const view of ['contacts', 'history', 'account']) {
      await page.tap(`.app-nav a[data-nav="${view}"]`);
      await page.waitForURL(new RegExp(`/app/${view}`));
      await check(p, `the app: ${view}`, `${orientation}-app-${view}`);
    }
    await page.goto(`${server.base}/app/meetings/new`);
    await page.waitForSelector('form');
    await check(p, 'the app: new meeting', `${orientation}-app-new-meeting`);

    // The meeting: pre-join, then the call as its host (a signed-in owner would be too).
    const room = await page.evaluate(async (title) => {
      const r = await fetch('/api/v1/meetings', { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ title }) });
      return (await r.json()).room;
    }, `Phone ${orientation}`);
    await page.goto(`${server.base}/m/${room}`);
    await page.waitForSelector('#join-button:visible');
    await check(p, 'pre-join', `${orientation}-prejoin`);
    await page.tap('#join-button');
    await waitState(page, 'joined');
    await check(p, 'in the call', `${orientation}-call`, { fixed: true });

    await page.tap('#chat-button');
    await page.waitForSelector('#chat-input:visible');
    // The panel covers the call (on a phone, all of it): its controls and the bar must work.
    await check(p, 'chat open', `${orientation}-chat`, { fixed: true, scope: '.side-panel, .controls' });
    await page.tap('#chat-input');
    await page.keyboard.type('hello from a phone');
    await page.tap('#chat-send');
    await page.waitForFunction(() => document.querySelector('#chat-log')?.textContent.includes('hello from a phone'));
    await page.tap('#panel-close');
    await page.waitForSelector('#chat-input', { state: 'hidden' });

    await page.tap('#leave-button');
    await waitState(page, 'left');
    await check(p, 'after leaving', `${orientation}-left`);
    assert.deepEqual(p.errors, [], 'no script errors');
  });
}
