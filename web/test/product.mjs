// End-to-end checks of what people do together on Ferrocast, in real headless Chromium against a
// running `ferrocast serve`: two users (ana streams, bob watches) signed up through the UI, live
// state pushed to an open channel page, the chat between them with moderation, the viewer count,
// the next stream's title, the chat replayed beside the recording, the player embedded by another
// site, a password reset through a real mail, a keyboard-only sign-up, and the layout at a laptop's
// and a phone's size.
//
//   FERROCAST_URL=http://localhost:8080 FERROCAST_MAILDIR=/tmp/maildir node web/test/product.mjs
//
// Environment: FERROCAST_URL (required; must be the server's public URL, since the chat takes the
// session cookie only from pages of that origin), FERROCAST_MAILDIR (required: the Maildir an SMTP
// server the Ferrocast server mails through delivers to; new mail appears in its `new/`),
// FERROCAST_RTMP_URL (optional, e.g. rtmp://127.0.0.1:1935/live; default: what the dashboard shows
// for OBS), CHROMIUM (default /usr/bin/chromium), ARTIFACTS_DIR (screenshots; default
// test-artifacts/product).
//
// Each step prints one line; the first failure prints why, saves a screenshot of every open page
// and exits 1. Uncaught page errors and console errors on any page fail the step they happen in,
// except the ones listed as tolerated for that step (each with its reason).

import { chromium } from 'playwright-core';
import { mkdirSync, readdirSync, readFileSync, existsSync } from 'node:fs';
import path from 'node:path';
import assert from 'node:assert/strict';
import { publish, killChildren } from './support.mjs';

const base = process.env.FERROCAST_URL;
const maildir = process.env.FERROCAST_MAILDIR;
if (!base || !maildir) {
  console.error('set FERROCAST_URL (the server, e.g. http://localhost:8080) and FERROCAST_MAILDIR (where its SMTP server delivers)');
  process.exit(2);
}
const artifacts = path.resolve(process.env.ARTIFACTS_DIR || 'test-artifacts/product');
mkdirSync(artifacts, { recursive: true });

const SECOND = 1000;
/** What a user would call "at once": the live state and chat budgets of the product. */
const LIVE_STATE_BUDGET_MS = 2 * SECOND;
const CHAT_BUDGET_MS = 1 * SECOND;
const SCREENS = [
  { width: 1366, height: 768 },
  { width: 390, height: 844 },
];
const DEFAULT_VIEWPORT = { width: 1280, height: 800 };

const started = Date.now();
let passed = 0;
let failed = 0;

function log(line) {
  console.log(`[${((Date.now() - started) / 1000).toFixed(1).padStart(6)} s] ${line}`);
}

const browser = await chromium.launch({
  executablePath: process.env.CHROMIUM || '/usr/bin/chromium',
  headless: true,
  args: [
    '--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking', '--disable-component-update', '--disable-sync',
    // The server under test listens on loopback, and Chromium's Local Network Access checks block
    // a page from a public origin (the "other site", http://other.example) from framing a
    // loopback one (net::ERR_BLOCKED_BY_LOCAL_NETWORK_ACCESS_CHECKS). A deployed server is public
    // and never meets this; the permission cannot be granted through Playwright or CDP here.
    '--disable-features=LocalNetworkAccessChecks',
  ],
});

// Every page of every context reports here. `tolerated` holds, for the running step, the console
// errors it provokes on purpose or that Chromium logs for expected HTTP answers.
const problems = [];
let tolerated = [];
const pages = new Set();
function watchPage(page, who) {
  pages.add({ page, who });
  page.on('pageerror', (error) => problems.push(`${who}: uncaught page error: ${error.stack || error}`));
  page.on('console', (msg) => {
    if (msg.type() !== 'error') return;
    const text = `${msg.text()} (${msg.location().url || 'no url'})`;
    if (tolerated.some((re) => re.test(text))) return;
    problems.push(`${who}: console error: ${text}`);
  });
}

// Each person gets their own browser profile and a User-Agent of their own: the server counts a
// viewer per address and User-Agent, and all of them share 127.0.0.1, so with one User-Agent any
// number of players would count as one and the viewer check below could not fail.
const probe = await browser.newContext();
const defaultUserAgent = await (await probe.newPage()).evaluate(() => navigator.userAgent);
await probe.close();
async function person(who, options = {}) {
  const context = await browser.newContext({ baseURL: base, viewport: DEFAULT_VIEWPORT, userAgent: `${defaultUserAgent} ferrocast-product/${who}`, ...options });
  const page = await context.newPage();
  watchPage(page, who);
  return { context, page, who };
}

async function step(name, fn) {
  const t0 = Date.now();
  try {
    await fn();
    // Errors logged just as the step ended still belong to it.
    await new Promise((resolve) => setTimeout(resolve, 50));
    if (problems.length) throw new Error(problems.splice(0).join('\n'));
    passed += 1;
    log(`ok   ${name} (${((Date.now() - t0) / 1000).toFixed(1)} s)`);
  } catch (error) {
    failed += 1;
    log(`FAIL ${name}\n${error.stack || error}`);
    for (const { page, who } of pages) {
      if (page.isClosed()) continue;
      await page.screenshot({ path: path.join(artifacts, `failure-${name.replace(/[^a-z0-9]+/gi, '-')}-${who}.png`), fullPage: true }).catch(() => {});
    }
    throw error;
  } finally {
    tolerated = [];
  }
}

/** The public API as a signed-out client (no browser): what anyone may see. */
async function publicApi(p) {
  const response = await fetch(new URL(p, base), { headers: { accept: 'application/json' } });
  return { status: response.status, body: response.status === 204 ? null : await response.json().catch(() => null) };
}

/** Polls `fn` every `everyMs` until it returns a truthy value; fails with `what` after `timeoutMs`. */
async function until(what, fn, { timeoutMs = 30 * SECOND, everyMs = 100 } = {}) {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await fn();
    if (value) return value;
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs / 1000} s waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, everyMs));
  }
}

/**
 * Records, inside the page, when elements matching each selector first appear (Date.now(), the
 * same clock as this script's): `window.__seen[name]`. A MutationObserver catches the moment the
 * DOM changes, not the next time a poll happens to look.
 */
async function watchFor(page, selectors) {
  await page.evaluate((entries) => {
    window.__seen = {};
    const check = () => {
      for (const [name, selector] of entries) {
        if (!window.__seen[name] && document.querySelector(selector)) window.__seen[name] = Date.now();
      }
    };
    window.__seenObserver?.disconnect();
    window.__seenObserver = new MutationObserver(check);
    window.__seenObserver.observe(document.body, { childList: true, subtree: true, attributes: true });
    check();
  }, Object.entries(selectors));
}

async function seenAt(page, name, timeoutMs) {
  const handle = await page.waitForFunction((n) => window.__seen && window.__seen[n], name, { timeout: timeoutMs });
  return handle.jsonValue();
}

/** Presses Tab until `predicate(document.activeElement)` holds (keyboard only: no clicks). */
async function tabTo(page, description, predicate, { max = 60, shift = false } = {}) {
  for (let i = 0; i < max; i += 1) {
    await page.keyboard.press(shift ? 'Shift+Tab' : 'Tab');
    if (await page.evaluate(predicate)) return;
  }
  const at = await page.evaluate(() => `${document.activeElement.tagName} “${(document.activeElement.textContent || document.activeElement.getAttribute('aria-label') || '').trim().slice(0, 40)}”`);
  throw new Error(`${max} presses of Tab never reached ${description} (focus is on ${at})`);
}

/** The mails that arrived in the Maildir since `before` (a Set of file names). */
function newMails(before) {
  const dir = path.join(maildir, 'new');
  if (!existsSync(dir)) return [];
  return readdirSync(dir)
    .filter((name) => !before.has(name))
    .map((name) => parseMail(readFileSync(path.join(dir, name))));
}

function mailNames() {
  const dir = path.join(maildir, 'new');
  return new Set(existsSync(dir) ? readdirSync(dir) : []);
}

/** Headers (lowercased names, unfolded) and the decoded text of a message or of its text parts. */
function parseMail(raw) {
  const text = raw.toString('latin1');
  const split = text.search(/\r?\n\r?\n/);
  const head = split < 0 ? text : text.slice(0, split);
  const body = split < 0 ? '' : text.slice(split).replace(/^\r?\n\r?\n/, '');
  const headers = {};
  for (const line of head.replace(/\r?\n[ \t]+/g, ' ').split(/\r?\n/)) {
    const colon = line.indexOf(':');
    if (colon > 0) headers[line.slice(0, colon).trim().toLowerCase()] = line.slice(colon + 1).trim();
  }
  const type = headers['content-type'] || 'text/plain';
  const boundary = /multipart\//i.test(type) && (type.match(/boundary="?([^";]+)"?/i) || [])[1];
  if (boundary) {
    const parts = body.split(`--${boundary}`).slice(1).filter((p) => !p.startsWith('--'));
    return { headers, text: parts.map((p) => parseMail(Buffer.from(p.replace(/^\r?\n/, ''), 'latin1')).text).join('\n') };
  }
  const encoding = (headers['content-transfer-encoding'] || '7bit').toLowerCase();
  let bytes;
  if (encoding === 'quoted-printable') {
    const soft = body.replace(/=\r?\n/g, '');
    const out = [];
    for (let i = 0; i < soft.length; i += 1) {
      if (soft[i] === '=' && /^[0-9A-Fa-f]{2}$/.test(soft.slice(i + 1, i + 3))) {
        out.push(Number.parseInt(soft.slice(i + 1, i + 3), 16));
        i += 2;
      } else {
        out.push(soft.charCodeAt(i) & 0xff);
      }
    }
    bytes = Buffer.from(out);
  } else if (encoding === 'base64') {
    bytes = Buffer.from(body.replace(/\s+/g, ''), 'base64');
  } else {
    bytes = Buffer.from(body, 'latin1');
  }
  return { headers, text: bytes.toString('utf8') };
}

/** At each of SCREENS: the selectors are shown, nothing is wider than the screen; a screenshot. */
async function layoutAt(page, name, { firstScreen = [], visible = [] }) {
  const lines = [];
  for (const screen of SCREENS) {
    await page.setViewportSize(screen);
    await page.evaluate(() => window.scrollTo(0, 0));
    await page.evaluate(() => new Promise((resolve) => requestAnimationFrame(() => requestAnimationFrame(resolve))));
    const overflow = await page.evaluate(() => document.documentElement.scrollWidth - window.innerWidth);
    assert.ok(overflow <= 0, `${name} at ${screen.width}×${screen.height} is ${overflow}px wider than the screen`);
    const boxes = [];
    for (const selector of firstScreen) {
      const box = await page.locator(selector).first().boundingBox();
      assert.ok(box, `${selector} is not shown at ${screen.width}×${screen.height}`);
      assert.ok(box.y >= 0 && box.y + box.height <= screen.height + 1 && box.x >= 0 && box.x + box.width <= screen.width + 1, `at ${screen.width}×${screen.height}, ${selector} is outside the first screen: ${JSON.stringify(box)}`);
      boxes.push(`${selector} ${Math.round(box.y)}–${Math.round(box.y + box.height)}`);
    }
    await page.screenshot({ path: path.join(artifacts, `${name}-${screen.width}x${screen.height}.png`) });
    // Further down on a phone: scrolled to, it is all within the screen's width and height.
    for (const selector of visible) {
      const locator = page.locator(selector).first();
      await locator.scrollIntoViewIfNeeded();
      const box = await locator.boundingBox();
      assert.ok(box && box.width > 0 && box.height > 0, `${selector} is not shown at ${screen.width}×${screen.height}`);
      assert.ok(box.x >= 0 && box.x + box.width <= screen.width + 1, `at ${screen.width}×${screen.height}, ${selector} sticks out sideways: ${JSON.stringify(box)}`);
      assert.ok(box.height <= screen.height, `at ${screen.width}×${screen.height}, ${selector} is taller than the screen: ${JSON.stringify(box)}`);
      boxes.push(`${selector} ${Math.round(box.width)}×${Math.round(box.height)}`);
    }
    lines.push(`${screen.width}×${screen.height}: ${boxes.join('; ')}`);
  }
  await page.setViewportSize(DEFAULT_VIEWPORT);
  await page.evaluate(() => window.scrollTo(0, 0));
  for (const line of lines) log(`     ${name} ${line}`);
}

/** Waits for `success`; an error the page shows instead (a rate limit, say) fails at once with its words. */
async function expectSuccess(page, success, what, timeout = 20 * SECOND) {
  const alert = page.locator('main [role="alert"]:not(:empty)').first();
  await Promise.race([success.waitFor({ timeout }), alert.waitFor({ timeout })]);
  if (!(await success.isVisible().catch(() => false)) && (await alert.isVisible().catch(() => false))) {
    throw new Error(`${what}: the page says “${(await alert.innerText()).trim()}”`);
  }
  await success.waitFor({ timeout });
}

async function signUpThroughUi(page, username, password) {
  await page.goto('/');
  await page.getByRole('link', { name: 'Sign up', exact: true }).click();
  await page.getByLabel('Username').fill(username);
  await page.getByLabel('Email').fill(`${username}@example.com`);
  await page.getByLabel('Password').fill(password);
  await page.getByRole('button', { name: 'Sign up' }).click();
  await expectSuccess(page, page.getByRole('heading', { name: 'Dashboard' }), `signing up ${username}`);
  await page.locator('.nav-user', { hasText: username }).waitFor();
}

const run = Date.now().toString(36);
const ana = { name: `ana${run}`, password: 'ana streams test patterns' };
const bob = { name: `bob${run}`, password: 'bob watches test patterns', newPassword: 'bob found his way back in' };
const carol = { name: `carol${run}`, password: 'carol only uses the keyboard' };
const slug = `ana-${run}`;
const streamTitle = `Friday test patterns ${run}`;
const messages = { bob: `hello from bob ${run}`, ana: `welcome, bob ${run}`, later: `ana again ${run}`, banned: `am I banned ${run}?` };
// Chromium logs these for answers the app expects and handles:
// - the master playlist answers 404 until a stream's first segments exist (the player retries);
// - when a stream ends, hls.js has already asked for the next part, which never comes (404), and
//   a blocking playlist reload that waited its limit answers 503;
// - a wrong password is answered 401.
const STREAM_START = /status of 404.*\/master\.m3u8/;
const STREAM_END = [/status of 404.*-p\d+\.m4s/, /status of 404.*\.m4s/, /status of 503.*_HLS_msn=/, /status of 404.*\.m3u8/];
const WRONG_PASSWORD = /status of 401/;

let A;
let B;
let anon;
let live = null;
let streamKey = null;
let rtmpBase = process.env.FERROCAST_RTMP_URL || null;
let videoId = null;
const measured = {};

try {
  A = await person('ana');
  B = await person('bob');

  await step('ana and bob sign up through the UI', async () => {
    await signUpThroughUi(A.page, ana.name, ana.password);
    await signUpThroughUi(B.page, bob.name, bob.password);
  });

  await step('ana creates a channel and sets the next stream’s title in the dashboard', async () => {
    const page = A.page;
    const create = page.locator('form', { has: page.getByRole('button', { name: 'Create channel' }) });
    await create.getByLabel('Title').fill(`Ana’s channel ${run}`);
    await create.getByLabel('Address').fill(slug);
    await create.getByRole('button', { name: 'Create channel' }).click();
    const card = page.locator(`article.channel-card[data-slug="${slug}"]`);
    await card.waitFor();
    await card.getByRole('button', { name: 'Reveal' }).click();
    streamKey = (await card.locator('.stream-key').innerText()).trim();
    assert.match(streamKey, /^live_[0-9a-f]{40}$/);
    rtmpBase ??= (await card.locator('.server-url').innerText()).trim();
    const setup = card.locator('form.stream-setup-form');
    await setup.getByLabel('Stream title').fill(streamTitle);
    await setup.getByLabel('Stream description').fill('Colour bars and a sine tone.');
    await setup.getByRole('button', { name: 'Save stream setup' }).click();
    await setup.getByRole('status').filter({ hasText: 'Saved.' }).waitFor();
    const mine = (await (await page.request.get('/api/channels')).json()).items.find((c) => c.slug === slug);
    assert.equal(mine.stream_title, streamTitle, 'the server has the next stream’s title');
    // It stays after a reload.
    await page.reload();
    assert.equal(await page.locator(`article.channel-card[data-slug="${slug}"] form.stream-setup-form`).getByLabel('Stream title').inputValue(), streamTitle);
  });

  await step('bob opens the channel before it is live: offline, with the chat; a visitor waits on the home page', async () => {
    await B.page.goto(`/c/${slug}`);
    await B.page.locator('.offline').waitFor();
    const chat = B.page.locator('aside.chat');
    await chat.locator('input[name="text"]:visible, .chat-signin:visible').first().waitFor();
    if (await chat.locator('.chat-signin').isVisible()) {
      throw new Error(`the chat does not take bob's session: ${await chat.locator('.chat-signin').innerText()} (is FERROCAST_URL ${base} the server's public URL? The chat honours the cookie only from pages of that origin)`);
    }
    assert.equal(await B.page.locator('.player').count(), 0);
    anon = await person('anonymous');
    await anon.page.goto('/');
    await anon.page.locator('main[aria-busy]').waitFor({ state: 'detached' });
    assert.equal(await anon.page.locator('#live-heading').isVisible(), false, 'nobody is live yet');
  });

  await step('ana goes live: bob’s open page shows the player within 2 s of the stream being playable', async () => {
    tolerated = [STREAM_START];
    await watchFor(B.page, { player: '.player video', live: '.player .live-button:not([hidden])', offline: '.offline[data-ended="true"]' });
    // Where the time goes, should the budget be missed: when bob's page asked for the live video
    // (right after the pushed state said live) and when the answer came.
    const videoRequests = [];
    const onRequest = (request) => /\/api\/videos\/[0-9a-f]+$/.test(request.url()) && videoRequests.push({ asked: Date.now(), request });
    const onResponse = (response) => {
      const entry = videoRequests.find((r) => r.request === response.request());
      if (entry) entry.answered = Date.now();
    };
    B.page.on('request', onRequest);
    B.page.on('response', onResponse);
    // 360p: the server's ladder skips the taller rungs, so one rendition is made. On a small CI
    // machine three renditions and three browsers fall behind real time, and a recording then
    // holds less media than the wall-clock time its chat was sent in (offsets are wall-clock).
    live = publish(`${rtmpBase}/${streamKey}`, 90, { size: '640x360' });
    const playable = await until('the API to say the channel is live', async () => {
      if (live.ffmpeg.exitCode !== null) throw new Error(`ffmpeg exited: ${(await live.exited).stderr}`);
      const { body } = await publicApi(`/api/channels/${slug}`);
      if (!body || !body.live) return null;
      videoId = body.live_video_id;
      return Date.now();
    }, { timeoutMs: 45 * SECOND });
    const shown = await seenAt(B.page, 'player', 10 * SECOND);
    measured.live = shown - playable;
    B.page.off('request', onRequest);
    B.page.off('response', onResponse);
    const asked = videoRequests[0];
    log(
      `     player shown ${measured.live} ms after the API said live (the API was polled every 100 ms)` +
        (asked ? `; the page asked for the video ${asked.asked - playable} ms and had it ${asked.answered - playable} ms after that` : ''),
    );
    assert.ok(measured.live < LIVE_STATE_BUDGET_MS, `the player appeared ${measured.live} ms after the stream was playable (budget ${LIVE_STATE_BUDGET_MS} ms)`);
    // And it plays.
    await B.page.waitForFunction(() => document.querySelector('.player video')?.currentTime > 0.5, null, { timeout: 30 * SECOND });
    // The home page open meanwhile lists it under "Live now", told by the server's events.
    await anon.page.locator(`section[aria-labelledby="live-heading"] a[href="/watch/${videoId}"]`).waitFor({ timeout: 5 * SECOND });
  });

  await step('bob sees the title ana set for the stream', async () => {
    await B.page.locator('.video-title', { hasText: streamTitle }).waitFor({ timeout: 5 * SECOND });
    const video = await publicApi(`/api/videos/${videoId}`);
    assert.equal(video.body?.title, streamTitle, `GET /api/videos/${videoId}: ${video.status} ${JSON.stringify(video.body)}`);
  });

  await step('with bob’s one player open, the count shown is 1 viewer', async () => {
    tolerated = [STREAM_START];
    const viewers = B.page.locator('.viewers');
    await viewers
      .filter({ hasText: /^1 viewer$/ })
      .waitFor({ timeout: 15 * SECOND })
      .catch(async () => {
        const shown = await viewers.innerText().catch(() => 'nothing');
        throw new Error(`bob's page never said “1 viewer” (it says “${shown}”; the API says ${JSON.stringify((await publicApi(`/api/channels/${slug}`)).body?.viewers)})`);
      });
    // The count is re-read every 2 s: over three rounds it stays 1 (one player, counted once).
    const seen = new Set();
    for (let i = 0; i < 7; i += 1) {
      seen.add((await viewers.innerText()).trim());
      await B.page.waitForTimeout(1000);
    }
    assert.deepEqual([...seen], ['1 viewer'], `viewer counts shown: ${[...seen]}`);
    const channel = (await publicApi(`/api/channels/${slug}`)).body;
    assert.equal(channel.viewers, 1, 'the API counts one viewer too');
    // Ana's dashboard, live (no player there), at both sizes.
    await A.page.goto('/dashboard');
    await A.page.locator(`article.channel-card[data-slug="${slug}"] .badge-live`).first().waitFor({ timeout: 10 * SECOND });
    await layoutAt(A.page, 'dashboard', { visible: [`article.channel-card[data-slug="${slug}"] form.stream-setup-form`] });
  });

  await step('chat: bob’s message reaches ana within 1 s, and ana’s reaches bob', async () => {
    tolerated = [STREAM_START];
    await A.page.goto(`/c/${slug}`);
    for (const p of [A.page, B.page]) {
      await p.locator('aside.chat input[name="text"]').waitFor();
      await p.waitForFunction(() => !document.querySelector('.chat-status:not([hidden])')?.textContent, null, { timeout: 10 * SECOND });
    }
    const send = async (from, to, text) => {
      const input = from.locator('aside.chat input[name="text"]');
      await input.fill(text);
      const t0 = Date.now();
      await input.press('Enter');
      await to.locator('.chat-msg .chat-text', { hasText: text }).waitFor({ timeout: 5 * SECOND });
      const ms = Date.now() - t0;
      // The sender sees it too, once stored; the input is empty and still focused.
      await from.locator('.chat-msg .chat-text', { hasText: text }).waitFor({ timeout: 5 * SECOND });
      assert.equal(await input.inputValue(), '');
      assert.equal(await input.evaluate((el) => el === document.activeElement), true, 'the input keeps the focus');
      return ms;
    };
    measured.chatBobToAna = await send(B.page, A.page, messages.bob);
    measured.chatAnaToBob = await send(A.page, B.page, messages.ana);
    log(`     bob → ana ${measured.chatBobToAna} ms, ana → bob ${measured.chatAnaToBob} ms`);
    assert.ok(measured.chatBobToAna < CHAT_BUDGET_MS, `bob's message took ${measured.chatBobToAna} ms`);
    assert.ok(measured.chatAnaToBob < CHAT_BUDGET_MS, `ana's message took ${measured.chatAnaToBob} ms`);
    // Text stays text: markup typed into the chat is shown as typed.
    await B.page.locator('aside.chat input[name="text"]').fill('<b>not bold</b>');
    await B.page.locator('aside.chat input[name="text"]').press('Enter');
    await A.page.locator('.chat-msg .chat-text', { hasText: '<b>not bold</b>' }).waitFor();
    assert.equal(await A.page.locator('.chat-msg .chat-text b').count(), 0, 'no markup from a message');
    // Only the owner moderates.
    assert.equal(await B.page.locator('.chat-msg .chat-action').count(), 0, 'bob has no moderation buttons');
    await A.page.locator('.chat-msg', { hasText: messages.bob }).getByRole('button', { name: `Delete message from ${bob.name}` }).waitFor();
  });

  await step('ana deletes bob’s message: it disappears from bob’s page', async () => {
    const row = A.page.locator('.chat-msg', { hasText: messages.bob });
    await row.hover();
    await row.getByRole('button', { name: `Delete message from ${bob.name}` }).click();
    await B.page.locator('.chat-msg', { hasText: messages.bob }).waitFor({ state: 'detached', timeout: 5 * SECOND });
    await row.waitFor({ state: 'detached', timeout: 5 * SECOND });
  });

  await step('ana bans bob: his next message is refused with the reason, and never reaches ana', async () => {
    const row = A.page.locator('.chat-msg', { hasText: messages.ana });
    // Ana's own message has Delete but no Ban; bob's markup message offers the ban.
    assert.equal(await row.getByRole('button', { name: /^Ban / }).count(), 0, 'no ban for oneself');
    const bobs = A.page.locator('.chat-msg', { hasText: '<b>not bold</b>' });
    await bobs.hover();
    await bobs.getByRole('button', { name: `Ban ${bob.name}` }).click();
    const dialog = A.page.getByRole('dialog', { name: `Ban ${bob.name} from this chat?` });
    await dialog.getByRole('button', { name: `Ban ${bob.name}` }).click();
    await A.page.locator('.chat-status', { hasText: `${bob.name} is banned` }).waitFor();
    const input = B.page.locator('aside.chat input[name="text"]');
    await input.fill(messages.banned);
    await input.press('Enter');
    await B.page.locator('.chat-error', { hasText: 'banned' }).waitFor({ timeout: 5 * SECOND });
    // Given back to him, not shown as sent.
    assert.equal(await input.inputValue(), messages.banned);
    // A message ana sends after it arrives, so anything bob's could have done has been done by then.
    await A.page.locator('aside.chat input[name="text"]').fill(messages.later);
    await A.page.locator('aside.chat input[name="text"]').press('Enter');
    await A.page.locator('.chat-msg .chat-text', { hasText: messages.later }).waitFor();
    await B.page.locator('.chat-msg .chat-text', { hasText: messages.later }).waitFor();
    assert.equal(await A.page.locator('.chat-msg', { hasText: messages.banned }).count(), 0, 'the banned message is not in ana’s chat');
    assert.equal(await B.page.locator('.chat-msg', { hasText: messages.banned }).count(), 0, 'nor in bob’s');
    // The ban is listed for ana, who could lift it.
    await A.page.locator('.chat-bans summary').click();
    await A.page.locator('.chat-ban-list li', { hasText: bob.name }).waitFor();
    await A.page.locator('.chat-bans summary').click();
  });

  await step('signed out, the chat is readable, with a “Sign in to chat” link', async () => {
    tolerated = [STREAM_START];
    await anon.page.goto(`/c/${slug}`);
    const chat = anon.page.locator('aside.chat');
    await chat.locator('.chat-text', { hasText: messages.ana }).waitFor();
    await chat.locator('.chat-text', { hasText: messages.later }).waitFor();
    assert.equal(await chat.locator('.chat-text', { hasText: messages.bob }).count(), 0, 'the deleted message is gone for newcomers too');
    const link = chat.getByRole('link', { name: 'Sign in to chat' });
    assert.equal(await link.getAttribute('href'), `/login?next=${encodeURIComponent(`/c/${slug}`)}`);
    assert.equal(await chat.locator('input[name="text"]').isVisible(), false, 'no input for a signed-out visitor');
    await anon.page.goto('/');
  });

  await step('layout, live: the chat panel and the player’s bar fit, nothing overflows sideways', async () => {
    tolerated = [STREAM_START];
    await B.page.locator('aside.chat input[name="text"]').fill('');
    await layoutAt(B.page, 'chat-live', { firstScreen: ['.player-bar', '.player video'], visible: ['aside.chat', 'aside.chat .chat-form'] });
    // On a wide screen the chat is beside the player and all of it is in the first screen.
    const box = await B.page.locator('aside.chat').boundingBox();
    const player = await B.page.locator('.player').boundingBox();
    assert.ok(box.x > player.x + player.width - 1, `the chat is beside the player at ${DEFAULT_VIEWPORT.width} px: ${JSON.stringify({ box, player })}`);
    assert.ok(box.y + box.height <= DEFAULT_VIEWPORT.height, `the chat fits the first screen: ${JSON.stringify(box)}`);
  });

  await step('ana stops: bob’s page shows the offline state within 2 s of the API saying so', async () => {
    tolerated = [STREAM_START, ...STREAM_END];
    live.ffmpeg.kill('SIGINT');
    await live.exited;
    const ended = await until('the API to say the channel is no longer live', async () => {
      const { body } = await publicApi(`/api/channels/${slug}`);
      return body && !body.live ? Date.now() : null;
    }, { timeoutMs: 45 * SECOND });
    const shown = await seenAt(B.page, 'offline', 10 * SECOND);
    measured.offline = shown - ended;
    log(`     offline shown ${measured.offline} ms after the API said it ended`);
    assert.ok(measured.offline < LIVE_STATE_BUDGET_MS, `the offline state came ${measured.offline} ms after the stream ended (budget ${LIVE_STATE_BUDGET_MS} ms)`);
    assert.equal(await B.page.locator('.player').count(), 0, 'the player is gone');
    assert.equal(await B.page.getByRole('link', { name: 'Watch the recording' }).getAttribute('href'), `/watch/${videoId}`);
  });

  await step('the recording replays the chat as playback passes each message', async () => {
    await until('the recording to be ready', async () => (await publicApi(`/api/videos/${videoId}`)).body?.status === 'ready', { timeoutMs: 60 * SECOND, everyMs: 500 });
    const replay = (await publicApi(`/api/videos/${videoId}/chat`)).body.items;
    const first = replay.find((m) => m.text === messages.ana);
    assert.ok(first, `ana's message is in the replay: ${JSON.stringify(replay)}`);
    assert.ok(!replay.some((m) => m.text === messages.bob || m.text === messages.banned), 'neither the deleted nor the refused message is replayed');
    const recording = (await publicApi(`/api/videos/${videoId}`)).body;
    const last = replay[replay.length - 1];
    assert.ok(
      last.offset_secs < recording.duration_secs,
      `the recording is ${recording.duration_secs} s long, but its last chat message is at ${last.offset_secs} s: the stream fell behind real time (a loaded machine), or the offsets are off`,
    );
    const page = anon.page;
    await page.goto(`/watch/${videoId}`);
    const chat = page.locator('aside.chat-replay');
    await chat.waitFor({ timeout: 10 * SECOND });
    const video = page.locator('.player video');
    await page.waitForFunction(() => document.querySelector('.player video')?.readyState >= 2, null, { timeout: 30 * SECOND });
    const shownNow = () => page.locator('aside.chat-replay .chat-text', { hasText: messages.ana }).count();
    // Before its offset it is not shown; playing past it shows it.
    await video.evaluate((el, t) => {
      el.currentTime = t;
      el.muted = true;
      return el.play();
    }, Math.max(0, first.offset_secs - 1.5));
    await page.waitForFunction((t) => document.querySelector('.player video').currentTime < t, first.offset_secs - 0.2);
    assert.equal(await shownNow(), 0, `not shown at ${(await video.evaluate((el) => el.currentTime)).toFixed(1)} s, before its offset ${first.offset_secs} s`);
    await chat.locator('.chat-text', { hasText: messages.ana }).waitFor({ timeout: 10 * SECOND });
    const at = await video.evaluate((el) => el.currentTime);
    assert.ok(at >= first.offset_secs - 0.3, `shown at ${at.toFixed(2)} s, its offset is ${first.offset_secs} s`);
    log(`     “${messages.ana}” at offset ${first.offset_secs.toFixed(1)} s shown at ${at.toFixed(1)} s`);
    // A seek back hides it again.
    await video.evaluate((el) => {
      el.currentTime = 0;
    });
    await chat.locator('.chat-text', { hasText: messages.ana }).waitFor({ state: 'detached', timeout: 5 * SECOND });
    // Screenshots with the messages shown.
    await video.evaluate((el, t) => {
      el.currentTime = t;
      el.pause();
    }, replay[replay.length - 1].offset_secs + 0.5);
    await chat.locator('.chat-text', { hasText: messages.later }).waitFor({ timeout: 10 * SECOND });
    await layoutAt(page, 'watch-replay', { firstScreen: ['.player-bar', '.player video'], visible: ['aside.chat-replay'] });
  });

  await step('another site embeds the recording in an iframe, and it plays', async () => {
    const page = anon.page;
    const src = new URL(`/embed/${videoId}`, base).href;
    await page.route('http://other.example/**', (route) =>
      route.fulfill({
        contentType: 'text/html',
        body: `<!doctype html><title>Another site</title><h1>Our blog</h1><iframe src="${src}" width="640" height="360" allow="autoplay; fullscreen" allowfullscreen></iframe>`,
      }),
    );
    await page.goto('http://other.example/');
    const video = page.frameLocator('iframe').locator('video');
    await video.waitFor({ timeout: 20 * SECOND });
    const frame = page.frames().find((f) => f.url().startsWith(src));
    assert.ok(frame, 'the iframe loaded the embed page');
    // Autoplay in a cross-origin frame may be refused: the player then starts muted, or waits for play.
    await frame.waitForFunction(() => document.querySelector('video')?.readyState >= 2, null, { timeout: 30 * SECOND });
    await video.evaluate((el) => {
      if (el.paused) {
        el.muted = true;
        el.play();
      }
    });
    const from = await video.evaluate((el) => el.currentTime);
    await frame.waitForFunction((t) => document.querySelector('video').currentTime > t + 1.5, from, { timeout: 20 * SECOND });
    log(`     embedded player went from ${from.toFixed(1)} s to ${(await video.evaluate((el) => el.currentTime)).toFixed(1)} s`);
    await page.unroute('http://other.example/**');
  });

  await step('password reset: bob asks for a link, it arrives by mail, he sets a new password and signs in', async () => {
    const page = B.page;
    await page.goto('/');
    await page.getByRole('button', { name: 'Log out' }).click();
    await page.getByRole('link', { name: 'Log in' }).click();
    await page.waitForURL('**/login**');
    await page.getByRole('link', { name: 'Forgot your password?' }).click();
    await page.waitForURL('**/forgot-password');
    const before = mailNames();
    await page.getByLabel('Email').fill(`${bob.name}@example.com`);
    await page.getByRole('button', { name: 'Send the link' }).click();
    await expectSuccess(page, page.getByText('If an account uses this address, a link to reset its password is on its way.'), 'asking for a reset link');
    const mail = await until('the reset mail in the Maildir', () => newMails(before).find((m) => (m.headers.to || '').includes(`${bob.name}@example.com`)), { timeoutMs: 20 * SECOND, everyMs: 200 });
    const link = (mail.text.match(/https?:\/\/\S+\/reset-password#token=[A-Za-z0-9_-]+/) || [])[0];
    assert.ok(link, `a reset link in the mail:\n${mail.text}`);
    const target = new URL(link);
    if (target.origin !== new URL(base).origin) log(`     the link points at ${target.origin}; opening it on ${base}`);
    await page.goto(new URL(target.pathname + target.hash, base).href);
    await page.getByLabel('New password', { exact: true }).fill(bob.newPassword);
    await page.getByLabel('New password again').fill(`${bob.newPassword} typo`);
    await page.getByRole('button', { name: 'Set the new password' }).click();
    await page.getByText('The two passwords differ.').waitFor();
    await page.getByLabel('New password again').fill(bob.newPassword);
    await page.getByRole('button', { name: 'Set the new password' }).click();
    await page.waitForURL('**/login');
    await page.getByText('Password changed. Sign in with your new password.').waitFor();
    await page.getByLabel('Username or email').fill(bob.name);
    await page.getByLabel('Password').fill(bob.newPassword);
    await page.getByRole('button', { name: 'Log in' }).click();
    await page.waitForURL('**/dashboard');
    await page.locator('.nav-user', { hasText: bob.name }).waitFor();
    // The old password is refused, and the link works once.
    const old = await fetch(new URL('/api/auth/login', base), { method: 'POST', headers: { 'content-type': 'application/json', origin: new URL(base).origin }, body: JSON.stringify({ username_or_email: bob.name, password: bob.password }) });
    assert.equal(old.status, 401, 'the old password no longer works');
    const again = await fetch(new URL('/api/auth/password-reset/confirm', base), { method: 'POST', headers: { 'content-type': 'application/json', origin: new URL(base).origin }, body: JSON.stringify({ token: new URLSearchParams(target.hash.slice(1)).get('token'), new_password: 'yet another passphrase' }) });
    assert.equal(again.status, 400, 'a used link is refused');
  });

  await step('keyboard only: sign up, create a channel, show the key with the password and copy it', async () => {
    const C = await person('carol', { permissions: ['clipboard-read', 'clipboard-write'] });
    const page = C.page;
    const focused = (test) => page.evaluate(test);
    await page.goto('/');
    await tabTo(page, 'the Sign up link', () => document.activeElement.matches('a') && document.activeElement.textContent.trim() === 'Sign up');
    await page.keyboard.press('Enter');
    await page.waitForURL('**/signup');
    await tabTo(page, 'the Username field', () => document.activeElement.name === 'username');
    await page.keyboard.type(carol.name);
    await page.keyboard.press('Tab');
    await page.keyboard.type(`${carol.name}@example.com`);
    await page.keyboard.press('Tab');
    assert.equal(await focused(() => document.activeElement.name), 'password', 'Tab goes from Email to Password');
    await page.keyboard.type(carol.password);
    await page.keyboard.press('Enter');
    await page.waitForURL('**/dashboard');
    await page.getByRole('heading', { name: 'Dashboard' }).waitFor();
    await tabTo(page, 'the new channel’s Title field', () => document.activeElement.name === 'title' && !!document.activeElement.closest('form')?.querySelector('button[type=submit]')?.textContent.includes('Create channel'));
    await page.keyboard.type(`Carol ${run}`);
    await page.keyboard.press('Enter');
    const card = page.locator(`article.channel-card[data-slug="carol-${run}"]`);
    await card.waitFor();
    assert.equal((await (await page.request.get('/api/channels')).json()).items.length, 1);
    // A key is shown only in the visit that made it: a reload forgets it, and the password shows it again.
    await page.reload();
    await card.getByText('Hidden.').waitFor();
    await tabTo(page, 'Show key…', () => document.activeElement.textContent === 'Show key…');
    await page.keyboard.press('Enter');
    await page.waitForFunction(() => document.activeElement.name === 'password');
    await page.keyboard.type(carol.password);
    await page.keyboard.press('Enter');
    const code = card.locator('.stream-key[data-revealed="true"]');
    await code.waitFor();
    const streamKeyShown = (await code.innerText()).trim();
    assert.match(streamKeyShown, /^live_[0-9a-f]{40}$/);
    await tabTo(page, 'Copy stream key', () => document.activeElement.getAttribute('aria-label') === 'Copy stream key');
    await page.keyboard.press('Enter');
    await card.getByRole('button', { name: 'Copy stream key' }).filter({ hasText: 'Copied' }).waitFor();
    const clipboard = await page.evaluate(() => navigator.clipboard.readText());
    assert.equal(clipboard, streamKeyShown, 'the clipboard holds the key');
    carol.page = page;
  });

  await step('account: carol changes her e-mail, then deletes her account and what it owned', async () => {
    tolerated = [WRONG_PASSWORD];
    const page = carol.page;
    await page.goto('/account');
    const email = page.locator('section', { has: page.getByRole('heading', { name: 'E-mail' }) });
    await email.getByLabel('New e-mail address').fill(`carol.new.${run}@example.com`);
    await email.getByLabel('Your password').fill('not her password');
    await email.getByRole('button', { name: 'Change e-mail' }).click();
    await email.getByText('That is not your password.').waitFor();
    await email.getByLabel('Your password').fill(carol.password);
    await email.getByRole('button', { name: 'Change e-mail' }).click();
    await email.getByText(`E-mail changed to carol.new.${run}@example.com.`).waitFor();
    await page.locator('.account-facts dd', { hasText: `carol.new.${run}@example.com` }).waitFor();
    const danger = page.locator('section', { has: page.getByRole('heading', { name: 'Delete account' }) });
    await danger.getByLabel('Your password, to delete the account').fill(carol.password);
    await danger.getByRole('button', { name: 'Delete my account…' }).click();
    const dialog = page.getByRole('dialog', { name: 'Delete your account?' });
    await dialog.waitFor();
    assert.match(await dialog.innerText(), new RegExp(`/c/carol-${run}`), 'the dialog names the channel that goes');
    const confirm = dialog.getByRole('button', { name: 'Delete my account' });
    assert.equal(await confirm.isDisabled(), true);
    await page.screenshot({ path: path.join(artifacts, 'delete-account.png') });
    await dialog.getByLabel(/Type your username/).fill(carol.name);
    await confirm.click();
    await page.waitForURL(`${new URL(base).origin}/`);
    await page.getByText('Your account and everything it owned have been deleted.').waitFor();
    await page.getByRole('link', { name: 'Log in' }).waitFor();
    assert.equal((await publicApi(`/api/channels/carol-${run}`)).status, 404, 'her channel is gone');
  });

  await step('home: “Live now” follows the server’s events (no polling); screenshots', async () => {
    const page = anon.page;
    const requests = [];
    const onRequest = (request) => requests.push({ url: request.url(), at: Date.now() });
    page.on('request', onRequest);
    await page.goto('/');
    await page.getByRole('heading', { name: 'Recent videos' }).waitFor();
    await until('the home page to listen to /api/events', () => requests.some((r) => r.url.endsWith('/api/events')), { timeoutMs: 5 * SECOND });
    const loaded = Date.now();
    await page.waitForTimeout(1500);
    const rereads = requests.filter((r) => r.at > loaded && /\/api\/videos\?/.test(r.url));
    assert.deepEqual(rereads, [], 'no re-reads of the video list without an event');
    page.off('request', onRequest);
    await layoutAt(page, 'home', { firstScreen: ['.site-header'] });
  });
} catch {
  // The failing step has reported; fall through to the summary.
} finally {
  killChildren();
  await browser.close().catch(() => {});
  const numbers = Object.entries(measured).map(([k, v]) => `${k} ${v} ms`).join(', ');
  if (numbers) console.log(`measured: ${numbers}`);
  console.log(`product: ${passed} passed, ${failed} failed in ${((Date.now() - started) / 1000).toFixed(0)} s`);
  console.log(`screenshots in ${artifacts}`);
  process.exit(failed ? 1 : 0);
}
