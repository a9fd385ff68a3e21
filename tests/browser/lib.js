// Test harness: starts a Stoa server and headless Chromium instances (each its own process,
// with a fake camera and microphone) and helps tests drive the meeting page.
import { spawn, execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { chromium } from 'playwright-core';
import puppeteer from 'puppeteer-core';

const STOA_BIN = process.env.STOA_BIN;
const CHROME_FLAGS = [
  '--no-sandbox', '--disable-gpu',
  '--use-fake-ui-for-media-stream', '--use-fake-device-for-media-stream',
  '--autoplay-policy=no-user-gesture-required',
  '--disable-background-networking', '--disable-component-update', '--disable-sync', '--no-first-run',
  '--disable-features=WebRtcHideLocalIpsWithMdns', '--allow-loopback-in-peer-connection',
  '--mute-audio', '--disable-quic',
  // getDisplayMedia picks the fake screen without a picker.
  '--auto-select-desktop-capture-source=Entire screen', '--auto-accept-this-tab-capture',
];

/**
 * Starts `stoa serve` and waits for /healthz. `host`/`port` is its HTTP address; `args` are
 * extra flags; `netns` runs it inside that network namespace; `dataDir` reuses the data of an
 * earlier server (stopped with `stop({keepData: true})`) instead of a fresh directory.
 */
export async function startServer(port = 8800, { host = '127.0.0.1', args = [], netns = null, dataDir = null } = {}) {
  if (!STOA_BIN) throw new Error('STOA_BIN is not set: run through tests/browser/run.sh');
  dataDir = dataDir || mkdtempSync(join(tmpdir(), 'stoa-e2e-'));
  // Two media workers whatever the machine: the room names of the transport tests are chosen
  // so that TURN and ICE-TCP (on worker 0) serve rooms of worker 1 as well as of worker 0.
  const argv = ['serve', '--data-dir', dataDir, '--http-addr', `${host}:${port}`, '--media-workers', '2', ...args];
  const [cmd, cmdArgs] = netns ? ['ip', ['netns', 'exec', netns, STOA_BIN, ...argv]] : [STOA_BIN, argv];
  const proc = spawn(cmd, cmdArgs, {
    stdio: ['ignore', 'pipe', 'pipe'],
    env: { ...process.env, STOA_LOG: process.env.STOA_LOG || 'info' },
  });
  let log = '';
  proc.stdout.on('data', (d) => { log += d; });
  proc.stderr.on('data', (d) => { log += d; });
  const base = `http://${host}:${port}`;
  const deadline = Date.now() + 20000;
  for (;;) {
    if (proc.exitCode !== null) throw new Error(`stoa exited early:\n${log}`);
    try {
      // Our own process must say it is ready: another server on the port also answers.
      const r = await fetch(`${base}/healthz`);
      if (r.ok && log.includes('Stoa is ready')) break;
    } catch { /* not listening yet */ }
    if (Date.now() > deadline) throw new Error(`stoa did not become healthy:\n${log}`);
    await sleep(100);
  }
  return {
    base,
    dataDir,
    pid: proc.pid,
    log: () => log,
    token(room, identity, extra = []) {
      const out = execFileSync(STOA_BIN, ['token', '--data-dir', dataDir, '--room', room, '--identity', identity, ...extra]);
      return out.toString().trim().split('\n').pop();
    },
    async counters(room) {
      const token = this.token(room, 'test-admin', ['--admin']);
      const r = await fetch(`${base}/api/v1/rooms/${room}/counters`, { headers: { authorization: `Bearer ${token}` } });
      if (!r.ok) throw new Error(`counters: ${r.status} ${await r.text()}`);
      return r.json();
    },
    /** Stops the server; its data directory is deleted unless `keepData`. */
    async stop({ keepData = false } = {}) {
      if (proc.exitCode === null && proc.signalCode === null) {
        proc.kill('SIGTERM');
        await new Promise((r) => proc.once('exit', r));
      }
      // STOA_SERVER_LOG=file keeps the server's output for a look after the run.
      if (process.env.STOA_SERVER_LOG) writeFileSync(process.env.STOA_SERVER_LOG, log);
      if (!keepData) rmSync(dataDir, { recursive: true, force: true });
    },
  };
}

/**
 * A headless Chromium process with a fake camera and microphone; `netns` starts it inside
 * that network namespace, `origin` is an http:// origin to treat as secure.
 */
export async function launchBrowser({ netns = null, origin = null } = {}) {
  const args = [...CHROME_FLAGS];
  if (origin) args.push(`--unsafely-treat-insecure-origin-as-secure=${origin}`);
  const executablePath = netns ? netnsChromium(netns) : '/usr/bin/chromium';
  return chromium.launch({ executablePath, headless: true, args });
}

/** A wrapper script that starts Chromium inside a network namespace. */
function netnsChromium(netns) {
  const path = join(tmpdir(), `stoa-chromium-${netns}.sh`);
  writeFileSync(path, `#!/bin/sh\nexec ip netns exec ${netns} /usr/bin/chromium "$@"\n`, { mode: 0o755 });
  return path;
}

/**
 * One participant: its own Chromium process and profile, on the meeting page of `room` (any
 * name: an integration room), joining with an access token minted by `stoa token`.
 */
export async function openParticipant(server, room, name, query = '', browserOptions = {}) {
  return openUser(server, name, participantPath(server, room, name, query), browserOptions);
}

/** `/m/{room}?autojoin=1…#token=…` for `name`, with a token of a fresh identity. */
export function participantPath(server, room, name, query = '') {
  const identity = `e2e-${name.toLowerCase().replace(/[^a-z0-9]/g, '')}-${Math.random().toString(36).slice(2, 8)}`;
  const token = server.token(room, identity, ['--name', name]);
  return `/m/${room}?autojoin=1${query}#token=${token}`;
}

/**
 * One person: their own Chromium process and profile (cookies), on `path` of the server.
 * `page` may be replaced (`await u.newPage(path)`); the helpers always use the current one.
 */
export async function openUser(server, name, path = '/', browserOptions = {}) {
  if (browserOptions.browser === 'firefox') return openFirefoxUser(server, name, path, browserOptions);
  const browser = await launchBrowser(browserOptions);
  const context = await browser.newContext({ permissions: ['camera', 'microphone'] });
  const logs = [];
  const u = {
    name, browser, context, logs, page: null,
    /** Opens `path` in a new tab that becomes `u.page` (the old one stays open). */
    async newPage(to) {
      const page = await context.newPage();
      page.on('console', (m) => logs.push(`[${name}] ${m.type()}: ${m.text()}`));
      page.on('pageerror', (e) => logs.push(`[${name}] pageerror: ${e.message}`));
      u.page = page;
      if (to != null) await page.goto(`${server.base}${to}`);
      return page;
    },
    /** Polls `fn` (run in the page, may be async) until it returns something truthy. */
    async waitFor(fn, arg, timeout = 20000, what = 'condition') {
      const deadline = Date.now() + timeout;
      let last;
      while (Date.now() < deadline) {
        last = await u.page.evaluate(fn, arg).catch((e) => `error: ${e.message}`);
        if (last && !(typeof last === 'string' && last.startsWith('error: '))) return last;
        await sleep(250);
      }
      throw new Error(`${name}: timed out waiting for ${what} (last: ${JSON.stringify(last)})\n${logs.slice(-30).join('\n')}`);
    },
    stats: () => u.page.evaluate(() => window.stoa.stats()),
    eval: (fn, arg) => u.page.evaluate(fn, arg),
    close: () => browser.close(),
  };
  await u.newPage(path);
  return u;
}

/**
 * A headless Firefox ESR process (driven over WebDriver BiDi by puppeteer-core) with a fake
 * camera and microphone that gathers ICE candidates on loopback. With `display` (an X
 * display, see `startXvfb`) it runs headful there instead, and can share that screen:
 * headless Firefox has fake cameras and microphones but no fake screen. With `netns`
 * ({name, address}: a namespace and its address reachable from here) it runs inside that
 * namespace; `origin` is an http:// origin to treat as secure.
 */
export async function launchFirefox({ display = null, netns = null, origin = null } = {}) {
  const prefs = {
    'media.navigator.streams.fake': true,
    'media.navigator.permission.disabled': true,
    // Without a granted camera/microphone, Firefox gathers only on its default route's
    // address, and the tests' namespace has no default route: no candidates at all.
    'permissions.default.camera': 1,
    'permissions.default.microphone': 1,
    'media.autoplay.default': 0,
    // The tests' server is on loopback, which Firefox leaves out of ICE by default.
    'media.peerconnection.ice.loopback': true,
    'media.peerconnection.ice.obfuscate_host_addresses': false,
  };
  if (origin) prefs['dom.securecontext.allowlist'] = new URL(origin).hostname;
  const options = {
    browser: 'firefox',
    executablePath: '/usr/bin/firefox-esr',
    headless: !display,
    defaultViewport: { width: 1280, height: 720 }, // as Playwright's Chromium pages
    env: display ? { ...process.env, DISPLAY: display } : process.env,
    extraPrefsFirefox: prefs,
  };
  if (!netns) return puppeteer.launch(options);
  // Firefox's BiDi endpoint listens on the namespace's loopback: a relay inside the namespace
  // exposes it on the namespace's address, and Firefox's announcement of it is rewritten.
  const port = 9339;
  const relay = spawn('ip', ['netns', 'exec', netns.name, process.execPath, join(import.meta.dirname, 'bidi-relay.mjs'), netns.address, String(port)], { stdio: ['ignore', 'pipe', 'inherit'] });
  await new Promise((resolve, reject) => {
    relay.stdout.once('data', resolve);
    relay.once('exit', (code) => reject(new Error(`the BiDi relay in ${netns.name} exited (${code})`)));
  });
  const path = join(tmpdir(), `stoa-firefox-${netns.name}.sh`);
  writeFileSync(path, `#!/bin/sh\nip netns exec ${netns.name} /usr/bin/firefox-esr "$@" 2>&1 | sed -u 's#ws://127.0.0.1:#ws://${netns.address}:#' >&2\n`, { mode: 0o755 });
  try {
    const browser = await puppeteer.launch({ ...options, executablePath: path, debuggingPort: port });
    browser.once('disconnected', () => relay.kill());
    return browser;
  } catch (e) {
    relay.kill();
    throw e;
  }
}

/**
 * One person in headless Firefox ESR, on `path` of the server: its own Firefox process
 * (`launchFirefox` options), or a new tab of `firefox` (from `launchFirefox`) when given,
 * which `close` then leaves running.
 * Same helpers as `openUser`, but `page` is a puppeteer page.
 */
export async function openFirefoxUser(server, name, path = '/', { firefox = null, ...launch } = {}) {
  const browser = firefox || await launchFirefox(launch);
  const logs = [];
  const page = await browser.newPage();
  page.on('console', (m) => logs.push(`[${name}] ${m.type()}: ${m.text()}`));
  page.on('pageerror', (e) => logs.push(`[${name}] pageerror: ${e.message}`));
  await page.goto(`${server.base}${path}`);
  return {
    name, browser, logs, page,
    async waitFor(fn, arg, timeout = 20000, what = 'condition') {
      const deadline = Date.now() + timeout;
      let last;
      while (Date.now() < deadline) {
        last = await page.evaluate(fn, arg).catch((e) => `error: ${e.message}`);
        if (last && !(typeof last === 'string' && last.startsWith('error: '))) return last;
        await sleep(250);
      }
      throw new Error(`${name}: timed out waiting for ${what} (last: ${JSON.stringify(last)})\n${logs.slice(-30).join('\n')}`);
    },
    stats: () => page.evaluate(() => window.stoa.stats()),
    eval: (fn, arg) => page.evaluate(fn, arg),
    close: () => (firefox ? page.close() : browser.close()),
  };
}

/** Starts an X server without a screen (Xvfb) on a free display; `stop()` ends it. */
export async function startXvfb() {
  // -displayfd: Xvfb picks a free display and writes its number once it accepts clients.
  const proc = spawn('Xvfb', ['-displayfd', '1', '-screen', '0', '1280x720x24', '-nolisten', 'tcp'], { stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  let log = '';
  proc.stdout.on('data', (d) => { out += d; });
  proc.stderr.on('data', (d) => { log += d; });
  const deadline = Date.now() + 10000;
  while (!out.includes('\n')) {
    if (proc.exitCode !== null || Date.now() > deadline) throw new Error(`Xvfb did not start:\n${log}`);
    await sleep(50);
  }
  return {
    display: `:${out.trim()}`,
    async stop() {
      if (proc.exitCode !== null) return;
      proc.kill('SIGTERM');
      await new Promise((r) => proc.once('exit', r));
    },
  };
}

/** Waits until a participant decodes video frames and receives audio with energy. */
export async function waitForRemoteMedia(p, { videos = 1, frames = 30, timeout = 25000 } = {}) {
  await p.waitFor(async ({ videos, frames }) => {
    const s = await window.stoa.stats();
    if (!s) return false;
    const v = s.inbound.filter((x) => x.kind === 'video' && x.framesDecoded > frames);
    const a = s.inbound.filter((x) => x.kind === 'audio' && x.totalSamplesReceived > 48000 && x.totalAudioEnergy > 0);
    return v.length >= videos && a.length >= 1;
  }, { videos, frames }, timeout, `${videos} remote video(s) decoding and audio`).catch(async (e) => {
    const s = await p.stats().catch(() => null);
    const seen = s?.inbound.map((x) => `${x.kind} ${x.trackIdentifier}: ${x.kind === 'video' ? `${x.framesDecoded} frames ${x.frameWidth}w` : `energy ${x.totalAudioEnergy}`}, ${x.packetsReceived} packets`);
    throw new Error(`${e.message}\nreceiving: ${JSON.stringify(seen)}`);
  });
  return p.stats();
}

/**
 * Per-file test state: a list whose browsers are closed after each test, and the server
 * stopped after the file. Register with node:test's `afterEach`/`after`.
 */
export function browserSession({ afterEach, after }) {
  const session = { people: [], server: null };
  afterEach(async () => {
    for (const p of session.people.splice(0)) await p.close().catch(() => {});
  });
  after(async () => {
    if (session.server) await session.server.stop();
  });
  return session;
}

export function sleep(ms) { return new Promise((r) => setTimeout(r, ms)); }

/** A Chromium process without a driver, for tests that kill it abruptly. */
export function spawnBareChromium(url) {
  const profile = mkdtempSync(join(tmpdir(), 'stoa-chrome-'));
  const proc = spawn('/usr/bin/chromium', ['--headless=new', ...CHROME_FLAGS, `--user-data-dir=${profile}`, url], { stdio: 'ignore' });
  // After a SIGKILL, Chromium's child processes may write to the profile for a while longer:
  // removing it is retried in the background and never fails the test.
  const removeProfile = () => rm(profile, { recursive: true, force: true, maxRetries: 10, retryDelay: 500 });
  proc.once('exit', () => removeProfile().catch(() => setTimeout(() => removeProfile().catch(() => {}), 10000).unref()));
  return proc;
}
