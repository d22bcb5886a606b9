// End-to-end checks of the web UI in a real headless Chromium (Debian's), against a running
// `ferrocast serve`. tests/browser.rs starts the server and runs this script; it can also be run by
// hand against any server:
//
//   FERROCAST_URL=http://127.0.0.1:8080 node web/test/browser.mjs
//
// Environment: FERROCAST_URL (required), CHROMIUM (default /usr/bin/chromium), ARTIFACTS_DIR
// (screenshots; default test-artifacts/browser), FERROCAST_ACCESS_TTL_SECS (the server's access
// token lifetime, when the caller shortened it to exercise the silent refresh).
//
// Each step prints one line; the first failure prints why and exits 1. Uncaught page errors and
// console errors fail the run, except the ones a step provokes on purpose (a wrong password is
// answered 401, and Chromium logs that).

import { chromium } from 'playwright-core';
import { execFileSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import assert from 'node:assert/strict';
import { publish, killChildren } from './support.mjs';

const base = process.env.FERROCAST_URL;
if (!base) {
  console.error('set FERROCAST_URL to the server to test, e.g. http://127.0.0.1:8080');
  process.exit(2);
}
const artifacts = path.resolve(process.env.ARTIFACTS_DIR || 'test-artifacts/browser');
const accessTtlSecs = Number(process.env.FERROCAST_ACCESS_TTL_SECS || 0);
mkdirSync(artifacts, { recursive: true });
const scratch = mkdtempSync(path.join(tmpdir(), 'ferrocast-browser-'));

const SECOND = 1000;
const started = Date.now();
let passed = 0;
let failed = 0;
let skipped = 0;

function log(line) {
  console.log(`[${((Date.now() - started) / 1000).toFixed(1).padStart(6)} s] ${line}`);
}

// playwright-core gives every launch a fresh, temporary --user-data-dir of its own.
const browser = await chromium.launch({
  executablePath: process.env.CHROMIUM || '/usr/bin/chromium',
  headless: true,
  args: [
    '--headless',
    '--no-sandbox',
    '--disable-gpu',
    '--disable-quic',
    '--no-first-run',
    '--disable-background-networking',
    '--disable-component-update',
    '--disable-sync',
  ],
});
const context = await browser.newContext({ viewport: { width: 1280, height: 800 }, baseURL: base });
const page = await context.newPage();

// Everything the page says is wrong: uncaught exceptions and console errors.
const problems = [];
let tolerated = [];
page.on('pageerror', (error) => problems.push(`uncaught page error: ${error.stack || error}`));
page.on('console', (msg) => {
  if (msg.type() !== 'error') return;
  const text = `${msg.text()} (${msg.location().url || 'no url'})`;
  if (tolerated.some((re) => re.test(text))) return;
  problems.push(`console error: ${text}`);
});
let refreshes = 0;
page.on('response', (response) => {
  if (response.url().endsWith('/api/auth/refresh') && response.status() === 200) refreshes += 1;
});
// LL-HLS at work: hls.js asks for the next part with blocking reloads (`_HLS_msn`, `_HLS_part`).
const blockingReloads = [];
page.on('request', (request) => {
  if (request.url().includes('_HLS_msn=')) blockingReloads.push(request.url());
});

async function step(name, fn) {
  const t0 = Date.now();
  try {
    await fn();
    if (problems.length) throw new Error(problems.splice(0).join('\n'));
    passed += 1;
    log(`ok   ${name} (${((Date.now() - t0) / 1000).toFixed(1)} s)`);
  } catch (error) {
    failed += 1;
    log(`FAIL ${name}\n${error.stack || error}`);
    const player = await page.locator('.player').first().evaluate((el) => el.outerHTML.replace(/<video[^>]*>/, '<video>').slice(0, 800)).catch(() => null);
    if (player) log(`     player: ${player}`);
    await page.screenshot({ path: path.join(artifacts, `failure-${name.replace(/[^a-z0-9]+/gi, '-')}.png`), fullPage: true }).catch(() => {});
    throw error;
  }
}

function skip(name, why) {
  skipped += 1;
  log(`SKIP ${name}: ${why}`);
}

async function shot(name) {
  await page.screenshot({ path: path.join(artifacts, `${name}.png`), fullPage: true });
}

// The two screens the layout is held to: a common laptop and a phone.
const SCREENS = [
  { width: 1366, height: 768 },
  { width: 390, height: 844 },
];
const DEFAULT_VIEWPORT = { width: 1280, height: 800 };

/**
 * At each of SCREENS, without scrolling: every selector's box lies inside the window. Saves a
 * screenshot of the first screen as `${name}-WxH.png` and logs the boxes.
 */
async function fitsFirstScreen(name, selectors) {
  for (const screen of SCREENS) {
    await page.setViewportSize(screen);
    await page.evaluate(() => window.scrollTo(0, 0));
    // The header's measured height reaches the CSS on the next frames.
    await page.evaluate(() => new Promise((resolve) => requestAnimationFrame(() => requestAnimationFrame(resolve))));
    const boxes = [];
    for (const selector of selectors) {
      const box = await page.locator(selector).first().boundingBox();
      assert.ok(box, `${selector} is not shown at ${screen.width}×${screen.height}`);
      const round = (n) => Math.round(n);
      boxes.push(`${selector} ${round(box.x)},${round(box.y)} ${round(box.width)}×${round(box.height)}`);
      assert.ok(
        box.y >= 0 && box.y + box.height <= screen.height && box.x >= 0 && box.x + box.width <= screen.width,
        `at ${screen.width}×${screen.height}, ${selector} is outside the first screen: ${JSON.stringify(box)}`,
      );
    }
    log(`     ${screen.width}×${screen.height}: ${boxes.join('; ')}`);
    await page.screenshot({ path: path.join(artifacts, `${name}-${screen.width}x${screen.height}.png`) });
  }
  await page.setViewportSize(DEFAULT_VIEWPORT);
}

/** Full-page screenshots of the current page at each of SCREENS, as `${name}-WxH.png`. */
async function shotsAtScreens(name) {
  for (const screen of SCREENS) {
    await page.setViewportSize(screen);
    await page.waitForTimeout(300);
    await page.screenshot({ path: path.join(artifacts, `${name}-${screen.width}x${screen.height}.png`), fullPage: true });
  }
  await page.setViewportSize(DEFAULT_VIEWPORT);
}

/** Waits until the page's <video> has played `secs` seconds past where it was. */
async function playsFor(selector, secs, timeout = 45 * SECOND) {
  const video = page.locator(selector);
  await video.waitFor({ timeout });
  await page.waitForFunction((el) => el.currentTime > 0 && !el.paused && el.readyState >= 2, await video.elementHandle(), { timeout });
  const from = await video.evaluate((el) => el.currentTime);
  await page.waitForFunction(([el, t]) => el.currentTime > t, [await video.elementHandle(), from + secs], { timeout });
  return video.evaluate((el) => ({ currentTime: el.currentTime, duration: el.duration, width: el.videoWidth, height: el.videoHeight }));
}

const user = `web${Date.now().toString(36)}`;
const slug = `live-${user}`;
const channelTitle = `Live ${user}`;
const password = 'a long browser password';
let streamKey = null;
let serverUrl = null;
let recordingId = null;

try {
  await step('home page paints fast and has no errors', async () => {
    const response = await page.goto('/');
    assert.equal(response.status(), 200);
    await page.waitForFunction(() => !document.querySelector('main').hasAttribute('aria-busy'));
    // "Recent videos" heads a list, never nothing (on an empty server the page says so instead).
    const cards = await page.locator('section[aria-labelledby="recent-heading"] .card').count();
    assert.equal(await page.getByRole('heading', { name: 'Recent videos' }).isVisible(), cards > 0, `the heading shows with ${cards} cards`);
    if (!cards) await page.getByText('Nothing here yet.').waitFor();
    const paint = await page.evaluate(() => performance.getEntriesByName('first-contentful-paint')[0]?.startTime ?? null);
    log(`     first contentful paint: ${paint === null ? 'n/a' : `${Math.round(paint)} ms`}`);
    assert.ok(paint !== null && paint < 2000, `first paint took ${paint} ms`);
  });

  await step('an unknown page is a 404 with a way home; unknown API paths stay JSON', async () => {
    tolerated = [/status of 404.*\/no\/such\/page/];
    const response = await page.goto('/no/such/page');
    assert.equal(response.status(), 404);
    await page.getByRole('heading', { name: 'Page not found' }).waitFor();
    const api = await page.request.get('/api/no-such-endpoint');
    assert.equal(api.status(), 404);
    assert.equal((await api.json()).error.code, 'not_found');
    tolerated = [];
  });

  await step('sign up lands on the dashboard, signed in', async () => {
    await page.goto('/');
    await page.getByRole('link', { name: 'Sign up', exact: true }).click();
    await page.getByLabel('Username').fill(user);
    await page.getByLabel('Email').fill(`${user}@example.com`);
    await page.getByLabel('Password').fill(password);
    await page.getByRole('button', { name: 'Sign up' }).click();
    await page.waitForURL('**/dashboard');
    await page.getByRole('heading', { name: 'Dashboard' }).waitFor();
    await page.locator('.nav-user', { hasText: user }).waitFor();
  });

  await step('a taken username is said next to the field', async () => {
    const other = await browser.newContext({ baseURL: base });
    const p = await other.newPage();
    const errors = [];
    p.on('pageerror', (e) => errors.push(String(e)));
    await p.goto('/signup');
    await p.getByLabel('Username').fill(user);
    await p.getByLabel('Email').fill(`other-${user}@example.com`);
    await p.getByLabel('Password').fill(password);
    await p.getByRole('button', { name: 'Sign up' }).click();
    await p.getByText('This username is already taken.').waitFor();
    assert.deepEqual(errors, []);
    await other.close();
  });

  await step('create a channel and read its stream key and server from the dashboard', async () => {
    await page.getByLabel('Title').fill(channelTitle);
    assert.equal(await page.getByLabel('Address').inputValue(), slug);
    await page.getByRole('button', { name: 'Create channel' }).click();
    const card = page.locator(`article.channel-card[data-slug="${slug}"]`);
    await card.waitFor();
    const key = card.locator('.stream-key');
    assert.equal(await key.getAttribute('data-revealed'), 'false');
    assert.doesNotMatch(await key.innerText(), /live_/, 'the key is hidden until revealed');
    await card.getByRole('button', { name: 'Reveal' }).click();
    streamKey = (await card.locator('.stream-key').innerText()).trim();
    assert.match(streamKey, /^live_[0-9a-f]{40}$/);
    serverUrl = (await card.locator('.server-url').innerText()).trim();
    assert.match(serverUrl, /^rtmp:\/\/127\.0\.0\.1:\d+\/live$/);
  });

  await step('the address field explains itself in one wording, also when taken', async () => {
    const form = page.locator('form', { has: page.getByRole('button', { name: 'Create channel' }) });
    const hint = await form.locator('.field-hint').first().innerText();
    assert.match(hint, /3–48 lowercase letters, digits and “-”/);
    await form.getByLabel('Title').fill('Second try');
    await form.getByLabel('Address').fill('Bad_Address');
    assert.equal(await form.getByLabel('Address').inputValue(), 'bad_address', 'addresses are typed lowercase');
    await form.getByRole('button', { name: 'Create channel' }).click();
    await form.getByText('Use 3–48 lowercase letters, digits and “-”.').waitFor();
    tolerated = [/status of 409/];
    await form.getByLabel('Address').fill(slug);
    await form.getByRole('button', { name: 'Create channel' }).click();
    await form.getByText('This address is already taken.').waitFor();
    assert.doesNotMatch(await form.innerText(), /slug/i, 'the form never says "slug"');
    tolerated = [];
    await form.getByLabel('Title').fill('');
    await form.getByLabel('Address').fill('');
  });

  await step('add a simulcast target: its stream key is masked from then on', async () => {
    const card = page.locator(`article.channel-card[data-slug="${slug}"]`);
    // Port 9 on loopback: nothing listens, so the push is retried with the reason shown.
    await card.getByLabel('Server URL with the stream key').fill('rtmp://127.0.0.1:9/live2/browser-secret-key-abcd');
    await card.getByRole('button', { name: 'Add target' }).click();
    const row = card.locator('.restream-row');
    await row.locator('.restream-url', { hasText: 'rtmp://127.0.0.1:9/live2/••••abcd' }).waitFor();
    assert.doesNotMatch(await page.content(), /browser-secret-key/, 'the remote key is not shown again');
    await row.locator('.badge', { hasText: 'Waiting for you to go live' }).waitFor();
  });

  let live = null;
  await step('publish with ffmpeg: the dashboard shows LIVE with the stream health', async () => {
    live = publish(`${serverUrl}/${streamKey}`, 120);
    const card = page.locator(`article.channel-card[data-slug="${slug}"]`);
    await card.locator('.channel-card-head .badge-live').waitFor({ timeout: 40 * SECOND });
    const health = card.locator('.health-grid');
    await health.waitFor({ timeout: 20 * SECOND });
    await page.waitForFunction(() => /1280×720 at \d+ fps/.test(document.querySelector('.health-grid')?.textContent || ''), null, { timeout: 20 * SECOND });
    const text = await health.innerText();
    assert.match(text, /Bitrate/);
    assert.match(text, /Dropped frames/);
    // The simulcast target is tried while live, and says why it does not connect.
    await card.locator('.restream-row[data-state="retrying"] .restream-error', { hasText: 'connect' }).waitFor({ timeout: 20 * SECOND });
    await shot('dashboard');
    await shotsAtScreens('dashboard');
  });

  await step('the channel page plays live in three renditions', async () => {
    // The channel is announced live a few seconds before its first playlist exists: the player
    // retries, and Chromium logs each 404 meanwhile.
    tolerated = [/status of 404.*\/master\.m3u8/];
    await page.goto(`/c/${slug}`);
    await page.locator('.player[data-levels="3"]').waitFor({ timeout: 40 * SECOND });
    const played = await playsFor('.player video', 3.5);
    log(`     live: played to ${played.currentTime.toFixed(1)} s at ${played.width}x${played.height}`);
    assert.ok(blockingReloads.some((url) => url.includes('_HLS_part=')), 'hls.js plays in low-latency mode: blocking reloads for parts');
    const options = await page.getByLabel('Quality').locator('option').allInnerTexts();
    assert.equal(options.length, 4, `Auto + 3 rungs: ${options}`);
    assert.deepEqual(options.slice(1), ['720p', '480p', '360p']);
    await page.locator('.live-button', { hasText: 'LIVE' }).waitFor();
    await page.locator('.viewers').waitFor();
    // Paused, the badge offers the live edge; pressing it plays live again.
    await page.locator('.player video').evaluate((el) => el.pause());
    await page.getByRole('button', { name: 'Go to the live edge' }).click();
    await page.getByRole('button', { name: 'Playing live' }).waitFor({ timeout: 10 * SECOND });
    await playsFor('.player video', 1);
    tolerated = [];
    await shot('watch-live');
  });

  await step('the quality menu switches to the rung picked', async () => {
    await page.getByLabel('Quality').selectOption({ label: '360p' });
    await page.waitForFunction(() => document.querySelector('.player video').videoHeight === 360, null, { timeout: 30 * SECOND });
    await playsFor('.player video', 1);
    await page.getByLabel('Quality').selectOption({ index: 0 });
  });

  await step('live channel page: the player, its LIVE and quality controls and the title fit in the first screen', async () => {
    await fitsFirstScreen('watch-live', ['.channel-header h1', '.player video', '.player-bar', '.live-button', '.quality-field', '.video-title']);
  });

  await step('autoplay without sound: a cue over the picture unmutes, and goes', async () => {
    // This step watches its own pages; the main page leaves the live player, so that its network
    // log (a machine this loaded lets renditions fall a segment apart) is not what fails it.
    await page.goto('/');
    // Whether Chromium refuses sound on a first visit depends on more than this test controls (its
    // engagement scores, when the element learns it has audio), so the refusal is made certain: a
    // page the user has not interacted with gets NotAllowedError for play() with sound, as from
    // most browsers on a first visit.
    const strict = await browser.newContext({ baseURL: base, viewport: SCREENS[0] });
    await strict.addInitScript(() => {
      // navigator.userActivation cannot be trusted to start false here (Chromium under automation
      // may report a fresh page as activated), so the page's own trusted input is what counts.
      let gesture = false;
      for (const type of ['pointerdown', 'keydown']) {
        addEventListener(type, (event) => {
          if (event.isTrusted) gesture = true;
        }, true);
      }
      const play = HTMLMediaElement.prototype.play;
      HTMLMediaElement.prototype.play = function playUnlessRefused() {
        if (!this.muted && !gesture) return Promise.reject(new DOMException('play() with sound needs a gesture', 'NotAllowedError'));
        return play.call(this);
      };
    });
    const errors = [];
    const visit = async () => {
      const p = await strict.newPage();
      p.on('pageerror', (e) => errors.push(String(e)));
      await p.goto(`/c/${slug}`);
      const cue = p.getByRole('button', { name: 'Click to unmute the video' });
      await cue.waitFor({ timeout: 40 * SECOND });
      const video = p.locator('.player video');
      assert.equal(await video.evaluate((el) => el.muted), true, 'the cue shows only while muted');
      // Muted, it plays.
      await p.waitForFunction(() => document.querySelector('.player video').currentTime > 0.5, null, { timeout: 20 * SECOND });
      return { p, cue, video };
    };
    try {
      const first = await visit();
      await first.p.screenshot({ path: path.join(artifacts, 'unmute-cue.png') });
      // Reachable from the keyboard, and pressing it unmutes.
      await first.cue.focus();
      await first.p.keyboard.press('Enter');
      await first.cue.waitFor({ state: 'hidden' });
      assert.equal(await first.video.evaluate((el) => el.muted || el.paused), false, 'playing with sound');
      // Unmuted another way (the native controls): the cue goes as well.
      const second = await visit();
      await second.video.evaluate((el) => {
        el.muted = false;
      });
      await second.cue.waitFor({ state: 'hidden' });
      assert.deepEqual(errors, []);
    } finally {
      await strict.close();
    }
  });

  await step('the embed page shows the player alone, with a link to the watch page', async () => {
    const channel = await (await context.request.get(`/api/channels/${slug}`)).json();
    tolerated = [/status of 404.*\/master\.m3u8/];
    const response = await page.goto(`/embed/${channel.live_video_id}`);
    assert.equal(response.status(), 200);
    await page.locator('.embed-player video').waitFor();
    await playsFor('.player video', 1);
    assert.equal(await page.locator('.site-header').isVisible(), false, 'no site header in an embed');
    const link = page.getByRole('link', { name: 'Watch on Ferrocast' });
    assert.equal(await link.getAttribute('href'), `/watch/${channel.live_video_id}`);
    assert.equal(await link.getAttribute('target'), '_blank');
    // The player fills the window.
    const box = await page.locator('.embed-player').boundingBox();
    assert.ok(Math.abs(box.width - DEFAULT_VIEWPORT.width) < 2 && Math.abs(box.height - DEFAULT_VIEWPORT.height) < 2, `the player fills the window: ${JSON.stringify(box)}`);
    await page.setViewportSize({ width: 640, height: 360 });
    await page.waitForTimeout(300);
    await page.screenshot({ path: path.join(artifacts, 'embed-640x360.png') });
    await page.setViewportSize(DEFAULT_VIEWPORT);
    tolerated = [];
  });

  await step('a second player (Shaka Player, LL-HLS) plays the same live stream', async () => {
    const channel = await (await context.request.get(`/api/channels/${slug}`)).json();
    assert.ok(channel.live_video_id, 'the channel is live');
    const master = new URL(`/hls/${channel.live_video_id}/master.m3u8`, base).href;
    const shaka = await context.newPage();
    const errors = [];
    shaka.on('pageerror', (error) => errors.push(String(error)));
    // A bare page on the server's own origin (a secure context, as Shaka needs) without the UI's CSP.
    await shaka.goto('/healthz');
    await shaka.setContent('<video id="v" muted autoplay playsinline style="width:640px"></video>');
    await shaka.addScriptTag({ path: path.resolve('node_modules/shaka-player/dist/shaka-player.compiled.js') });
    const result = await shaka.evaluate(async (src) => {
      const video = document.getElementById('v');
      const player = new window.shaka.Player();
      await player.attach(video);
      player.configure({ streaming: { lowLatencyMode: true } });
      const failures = [];
      player.addEventListener('error', (event) => failures.push(`${event.detail.code}`));
      await player.load(src);
      const from = video.currentTime;
      await new Promise((resolve, reject) => {
        const timer = setTimeout(() => reject(new Error(`stuck at ${video.currentTime} (errors: ${failures})`)), 30000);
        video.addEventListener('timeupdate', () => {
          if (video.currentTime > from + 2) {
            clearTimeout(timer);
            resolve();
          }
        });
        video.play().catch(() => {});
      });
      return { live: player.isLive(), variants: player.getVariantTracks().length, height: video.videoHeight, failures };
    }, master);
    await shaka.close();
    assert.deepEqual(errors, [], 'no page errors in the Shaka page');
    assert.ok(result.live && result.variants === 3 && result.height > 0, `Shaka: ${JSON.stringify(result)}`);
    log(`     shaka: live with ${result.variants} variants at ${result.height}p`);
  });

  await step('the header and pages work from the keyboard', async () => {
    await page.goto('/');
    await page.keyboard.press('Tab');
    assert.equal(await page.evaluate(() => document.activeElement.textContent), 'Skip to content');
    await page.keyboard.press('Enter');
    assert.equal(await page.evaluate(() => document.activeElement.id), 'main');
    await page.goto('/');
    await page.locator('#site-search-q').focus();
    await page.keyboard.type('browser');
    await page.keyboard.press('Enter');
    await page.waitForURL('**/search?q=browser');
    // Focus follows navigation to the new page's heading.
    await page.waitForFunction(() => document.activeElement.tagName === 'H1' && document.activeElement.textContent.includes('browser'), null, { timeout: 10 * SECOND });
  });

  await step('stop publishing: the recording plays from its watch page', async () => {
    // The live player has already asked for the next part (the preload hint), which never comes
    // once the publisher is gone: the origin answers 404 (or 503 for a blocking reload that waited
    // its limit), hls.js moves on, and only Chromium's network log notices.
    tolerated = [/status of 404.*-p\d+\.m4s/, /status of 503.*_HLS_msn=/];
    live.ffmpeg.kill('SIGINT');
    const result = await live.exited;
    assert.ok(result.code === 0 || result.code === 255 || result.signal, `ffmpeg: ${result.code} ${result.stderr}`);
    // Once the reconnect grace period is over, the recording is listed under the channel's videos.
    await page.goto(`/c/${slug}`);
    const card = page.locator('#channel-videos ~ .grid .card').first();
    const deadline = Date.now() + 60 * SECOND;
    while (!(await card.count())) {
      assert.ok(Date.now() < deadline, 'the recording was never listed on the channel page');
      await page.waitForTimeout(2 * SECOND);
      await page.reload();
      await page.locator('#channel-videos').waitFor();
    }
    await card.locator('.card-title a').click();
    await page.waitForURL('**/watch/*');
    recordingId = page.url().split('/watch/')[1];
    await page.locator('.player[data-levels="3"]').waitFor({ timeout: 40 * SECOND });
    const played = await playsFor('.player video', 3.5);
    log(`     recording: played to ${played.currentTime.toFixed(1)} s of ${played.duration.toFixed(1)} s`);
    assert.ok(Number.isFinite(played.duration) && played.duration > 5, `a VOD with a duration: ${played.duration}`);
    // Seeking into the middle of the recording plays from there.
    const middle = played.duration / 2;
    await page.locator('.player video').evaluate((el, t) => {
      el.currentTime = t;
    }, middle);
    await page.waitForFunction((t) => {
      const el = document.querySelector('.player video');
      return el.currentTime > t + 1 && !el.paused;
    }, middle, { timeout: 30 * SECOND });
    assert.equal(await page.locator('.live-button').isVisible(), false, 'no LIVE badge on a recording');
    tolerated = [];
    await shot('watch');
    await fitsFirstScreen('watch', ['.player video', '.player-bar', '.quality-field', 'h1.video-title']);
  });

  await step('share a recording: its link and an iframe snippet for the embed page', async () => {
    await page.getByRole('button', { name: 'Share' }).click();
    const dialog = page.getByRole('dialog', { name: 'Share' });
    await dialog.waitFor();
    const origin = new URL(base).origin;
    assert.equal(await dialog.getByLabel('Link', { exact: true }).inputValue(), `${origin}/watch/${recordingId}`);
    assert.equal(
      await dialog.getByLabel('Embed on a website').inputValue(),
      `<iframe src="${origin}/embed/${recordingId}" width="640" height="360" allow="autoplay; fullscreen" allowfullscreen></iframe>`,
    );
    await dialog.getByRole('button', { name: 'Copy embed code' }).waitFor();
    await page.screenshot({ path: path.join(artifacts, 'share.png') });
    await page.keyboard.press('Escape');
    await dialog.waitFor({ state: 'detached' });
    assert.equal(await page.evaluate(() => document.activeElement.textContent), 'Share', 'focus returns to the Share button');
  });

  await step('the home page lists the recording with its thumbnail', async () => {
    await page.goto('/');
    const card = page.locator(`.card a[href="/watch/${recordingId}"]`).first();
    await card.waitFor();
    await page.waitForFunction(() => [...document.querySelectorAll('.card-thumb img')].some((img) => img.complete && img.naturalWidth > 0), null, { timeout: 15 * SECOND });
    // One tab stop per card for the video (the thumbnail is clickable through the title's link).
    const videoLinks = await page.locator('.card').first().evaluate((card) => [...card.querySelectorAll('a[href^="/watch/"]')].filter((a) => a.tabIndex >= 0).length);
    assert.equal(videoLinks, 1, 'one focusable link to the video per card');
    await page.getByRole('heading', { name: 'Recent videos' }).waitFor();
    await shot('home');
    await shotsAtScreens('home');
  });

  await step('phone-sized screen: nothing overflows sideways', async () => {
    await page.setViewportSize({ width: 375, height: 740 });
    for (const url of ['/', `/watch/${recordingId}`, '/dashboard', '/integrations', '/account']) {
      await page.goto(url);
      await page.locator('main h1, main h2').first().waitFor();
      const overflow = await page.evaluate(() => document.documentElement.scrollWidth - window.innerWidth);
      assert.ok(overflow <= 0, `${url} is ${overflow}px wider than the screen`);
    }
    await shot('phone-dashboard');
    await page.setViewportSize({ width: 1280, height: 800 });
  });

  await step('edit a video in the dashboard', async () => {
    await page.goto('/dashboard');
    const row = page.locator(`.video-row[data-id="${recordingId}"]`);
    await row.getByRole('button', { name: /^Edit/ }).click();
    await row.getByLabel('Title').fill('Renamed recording');
    await row.getByLabel('Visibility').selectOption('unlisted');
    await row.getByRole('button', { name: 'Save' }).click();
    await row.locator('.row-title', { hasText: 'Renamed recording' }).waitFor();
    await row.locator('.badge', { hasText: 'unlisted' }).waitFor();
    await row.getByRole('status').filter({ hasText: 'Saved.' }).waitFor();
    // Escape cancels an edit, and nothing changes.
    await row.getByRole('button', { name: /^Edit/ }).click();
    await row.getByLabel('Title').fill('Not kept');
    await page.keyboard.press('Escape');
    await row.locator('form').waitFor({ state: 'detached' });
    await row.locator('.row-title', { hasText: 'Renamed recording' }).waitFor();
    // Unlisted still plays from its link (the playback URL carries a token).
    await page.goto(`/watch/${recordingId}`);
    await playsFor('.player video', 1);
  });

  await step('edit the channel: title, description and the visibility new streams start with', async () => {
    await page.goto('/dashboard');
    const card = page.locator(`article.channel-card[data-slug="${slug}"]`);
    await card.getByRole('button', { name: /^Edit channel/ }).click();
    const form = card.locator('form.channel-form');
    await form.getByLabel('Title', { exact: true }).fill(`${channelTitle} (edited)`);
    await form.getByLabel('Description').fill('Test patterns, live.');
    await form.getByLabel('New live streams start as').selectOption('unlisted');
    await form.getByRole('button', { name: 'Save' }).click();
    await card.getByRole('status').filter({ hasText: 'Saved.' }).waitFor();
    await card.getByRole('heading', { name: `${channelTitle} (edited)` }).waitFor();
    const saved = (await (await page.request.get('/api/channels')).json()).items.find((c) => c.slug === slug);
    assert.equal(saved.description, 'Test patterns, live.');
    assert.equal(saved.default_visibility, 'unlisted');
    // Escape cancels, and hands focus back to the button that opened the form.
    await card.getByRole('button', { name: /^Edit channel/ }).click();
    await form.getByLabel('Title', { exact: true }).fill('Not kept');
    await page.keyboard.press('Escape');
    await form.waitFor({ state: 'detached' });
    assert.equal(await page.evaluate(() => document.activeElement.textContent), 'Edit channel');
    await card.getByRole('heading', { name: `${channelTitle} (edited)` }).waitFor();
    await page.goto(`/c/${slug}`);
    await page.getByText('Test patterns, live.').waitFor();
  });

  await step('delete a channel: the dialog says what goes and wants the address typed', async () => {
    const doomed = `gone-${user}`;
    await page.goto('/dashboard');
    const create = page.locator('form', { has: page.getByRole('button', { name: 'Create channel' }) });
    await create.getByLabel('Title').fill('Doomed channel');
    await create.getByLabel('Address').fill(doomed);
    await create.getByRole('button', { name: 'Create channel' }).click();
    const card = page.locator(`article.channel-card[data-slug="${doomed}"]`);
    await card.getByText('No videos yet').waitFor();
    await card.getByRole('button', { name: /^Delete channel/ }).click();
    const dialog = page.getByRole('dialog', { name: 'Delete the channel “Doomed channel”?' });
    await dialog.waitFor();
    assert.match(await dialog.innerText(), new RegExp(`/c/${doomed}[\\s\\S]*videos[\\s\\S]*uploads`));
    const confirm = dialog.getByRole('button', { name: 'Delete channel and videos' });
    assert.equal(await confirm.isDisabled(), true, 'nothing is deleted before the address is typed');
    await dialog.getByLabel(/Type the channel's address/).fill('wrong');
    assert.equal(await confirm.isDisabled(), true);
    await page.screenshot({ path: path.join(artifacts, 'delete-channel.png') });
    await dialog.getByLabel(/Type the channel's address/).fill(doomed);
    await confirm.click();
    await card.waitFor({ state: 'detached' });
    await page.getByText('Deleted the channel “Doomed channel” and its videos.').waitFor();
    tolerated = [/status of 404/];
    assert.equal((await page.request.get(`/api/channels/${doomed}`)).status(), 404);
    tolerated = [];
    await page.locator(`article.channel-card[data-slug="${slug}"]`).waitFor();
  });

  if (accessTtlSecs > 0) {
    await step('the session outlives the access token (silent refresh)', async () => {
      const wait = accessTtlSecs * SECOND + 5 * SECOND - (Date.now() - started);
      if (wait > 0) {
        log(`     waiting ${Math.round(wait / 1000)} s for the access token to expire`);
        await page.goto('/dashboard');
        await page.waitForTimeout(wait);
      }
      await page.goto('/dashboard');
      await page.locator('article.channel-card').first().waitFor();
      assert.ok(refreshes >= 1, 'the page refreshed the session');
    });
  } else {
    skip('silent refresh', 'FERROCAST_ACCESS_TTL_SECS not set');
  }

  await step('integrations: a token for scripts is shown once, works, and stops when revoked', async () => {
    await page.goto('/dashboard');
    await page.getByRole('link', { name: 'Integrations' }).click();
    await page.getByRole('heading', { name: 'Access tokens' }).waitFor();
    await page.getByLabel('Name').fill('browser script');
    await page.getByLabel(/Upload videos/).check();
    await page.getByRole('button', { name: 'Create token' }).click();
    const token = (await page.locator('.shown-once .secret').innerText()).trim();
    assert.match(token, /^fct_[0-9a-f]{64}$/);
    const row = page.locator('.integration-row', { hasText: 'browser script' });
    await row.locator('.badge', { hasText: 'uploads:write' }).waitFor();
    const asScript = (path) => page.request.get(path, { headers: { authorization: `Bearer ${token}` } });
    assert.equal((await (await asScript('/api/me')).json()).username, user);
    await page.reload();
    await page.getByRole('heading', { name: 'Access tokens' }).waitFor();
    assert.doesNotMatch(await page.content(), new RegExp(token), 'the token is shown only once');
    await row.getByRole('button', { name: /^Revoke/ }).click();
    await page.getByRole('dialog').getByRole('button', { name: 'Revoke' }).click();
    await row.waitFor({ state: 'detached' });
    assert.equal((await asScript('/api/me')).status(), 401);
  });

  await step('integrations: a webhook shows its secret once and logs a test delivery', async () => {
    await page.getByLabel('URL').fill('http://127.0.0.1:9/hook');
    await page.getByRole('button', { name: 'Add webhook' }).click();
    assert.match((await page.locator('.shown-once .secret').innerText()).trim(), /^whsec_[0-9a-f]+$/);
    const row = page.locator('.integration-row', { hasText: 'http://127.0.0.1:9/hook' });
    await row.getByRole('button', { name: 'Send a test' }).click();
    // Nothing listens on port 9: the attempt is logged with its error, and retried later.
    await row.locator('.deliveries-table tr[data-status="pending"]', { hasText: 'webhook.test' }).waitFor({ timeout: 15 * SECOND });
    await shot('integrations');
  });

  await step('change the password from the account page (and back)', async () => {
    await page.locator('.nav-user', { hasText: user }).click();
    await page.getByRole('heading', { name: 'Your account' }).waitFor();
    tolerated = [/status of 401/, /status of 422/];
    await page.getByLabel('Current password').fill('not the password');
    await page.getByLabel('New password').fill('a brand new passphrase');
    await page.getByRole('button', { name: 'Change password' }).click();
    await page.getByText('That is not your current password.').waitFor();
    await page.getByLabel('Current password').fill(password);
    await page.getByLabel('New password').fill('password123');
    await page.getByRole('button', { name: 'Change password' }).click();
    await page.getByText('is one of the most common passwords', { exact: false }).waitFor();
    tolerated = [];
    for (const [from, to] of [[password, 'a brand new passphrase'], ['a brand new passphrase', password]]) {
      await page.getByLabel('Current password').fill(from);
      await page.getByLabel('New password').fill(to);
      await page.getByRole('button', { name: 'Change password' }).click();
      await page.getByText('Password changed. Your other devices are signed out.').waitFor();
      await page.getByRole('status').filter({ hasText: 'Password changed' }).evaluate((el) => el.remove());
    }
  });

  await step('log out, a wrong password is explained, log in again', async () => {
    await page.goto('/dashboard');
    await page.getByRole('button', { name: 'Log out' }).click();
    await page.getByRole('link', { name: 'Log in' }).waitFor();
    await page.goto('/dashboard');
    await page.waitForURL('**/login?next=%2Fdashboard');
    tolerated = [/status of 401/];
    await page.getByLabel('Username or email').fill(user);
    await page.getByLabel('Password').fill('not the password');
    await page.getByRole('button', { name: 'Log in' }).click();
    await page.getByRole('alert').filter({ hasText: 'Wrong username, email or password.' }).waitFor();
    tolerated = [];
    await page.getByLabel('Password').fill(password);
    await page.getByRole('button', { name: 'Log in' }).click();
    await page.waitForURL('**/dashboard');
    // After signing in again the key is hidden; the password shows it again, unchanged.
    const card = page.locator(`article.channel-card[data-slug="${slug}"]`);
    await card.getByText('Hidden.').waitFor();
    await card.getByRole('button', { name: 'Show key…' }).click();
    tolerated = [/status of 401/];
    await card.getByLabel('Your password, to show the key').fill('not the password');
    await card.getByRole('button', { name: 'Show key', exact: true }).click();
    await card.getByText('That is not your password.').waitFor();
    tolerated = [];
    await card.getByLabel('Your password, to show the key').fill(password);
    await card.getByRole('button', { name: 'Show key', exact: true }).click();
    assert.equal((await card.locator('.stream-key').innerText()).trim(), streamKey, 'the same key as before');
  });

  await step('rotate the stream key after confirming; the old key is refused', async () => {
    const card = page.locator(`article.channel-card[data-slug="${slug}"]`);
    await card.getByRole('button', { name: 'Replace key…' }).click();
    await page.getByRole('dialog').getByRole('button', { name: 'Cancel' }).click();
    await card.locator('.stream-key').waitFor();
    await card.getByRole('button', { name: 'Replace key…' }).click();
    await page.getByRole('dialog').getByRole('button', { name: 'Replace key' }).click();
    // The old key is on screen until the new one arrives.
    await card.getByText('New key made. The old one no longer works.').waitFor();
    const key = (await card.locator('.stream-key').innerText()).trim();
    assert.match(key, /^live_[0-9a-f]{40}$/);
    assert.notEqual(key, streamKey);
    const old = publish(`${serverUrl}/${streamKey}`, 3);
    const result = await old.exited;
    assert.notEqual(result.code, 0, 'ffmpeg with the old key must be refused');
  });

  const openapi = await (await page.request.get('/api/openapi.json')).json();
  if (openapi.paths && openapi.paths['/api/uploads']) {
    await uploadSteps();
  } else {
    skip('upload and search', 'this server has no /api/uploads yet');
  }
} catch {
  // The failing step has reported; fall through to the summary.
} finally {
  killChildren();
  await browser.close().catch(() => {});
  rmSync(scratch, { recursive: true, force: true });
  console.log(`browser: ${passed} passed, ${failed} failed${skipped ? `, ${skipped} skipped` : ''}`);
  console.log(`screenshots in ${artifacts}`);
  process.exit(failed ? 1 : 0);
}

async function uploadSteps() {
  const title = 'Sunflower timelapse';
  const file = path.join(scratch, 'sunflower-timelapse.mp4');
  execFileSync('ffmpeg', [
    '-hide_banner', '-loglevel', 'error', '-y',
    '-f', 'lavfi', '-i', 'testsrc2=size=640x360:rate=30,noise=alls=40:allf=t+u', '-f', 'lavfi', '-i', 'sine=frequency=330:sample_rate=48000',
    // ~20 MB (noise does not compress): three parts at the server's default part size, so parts run in parallel and resume.
    '-t', '8', '-c:v', 'libx264', '-preset', 'ultrafast', '-b:v', '20M', '-maxrate', '20M', '-bufsize', '4M',
    '-pix_fmt', 'yuv420p', '-c:a', 'aac', '-movflags', '+faststart', file,
  ]);
  let videoId = null;

  await step('upload: a dropped connection is retried, a reload resumes, progress reaches 100%', async () => {
    const puts = [];
    let dropped = false;
    let hold = true;
    // Part 2 fails once as if the connection dropped; parts above 2 wait until the page reloads.
    await page.route('**/api/uploads/*/parts/*', async (route) => {
      const n = Number(route.request().url().split('/').pop());
      puts.push(n);
      if (n === 2 && !dropped) {
        dropped = true;
        return route.abort('connectionreset');
      }
      if (n > 2 && hold) return; // never answered: the reload cancels it
      return route.continue();
    });
    tolerated = [/ERR_CONNECTION_RESET/, /net::ERR_/];
    await page.goto('/upload');
    await page.locator('#upload-file').setInputFiles(file);
    assert.equal(await page.getByLabel('Title').inputValue(), 'sunflower-timelapse');
    await page.getByLabel('Title').fill(title);
    await page.getByRole('button', { name: 'Upload', exact: true }).click();
    await page.getByText(/Retrying in/).waitFor({ timeout: 20 * SECOND });
    await page.waitForFunction(() => /^[1-9]\d*%$/.test(document.querySelector('.percent')?.textContent || ''), null, { timeout: 20 * SECOND });
    // Both early parts stored on the server before the reload.
    const uploadId = await page.evaluate(() => JSON.parse(localStorage.getItem('ferrocast.uploads') || '[]')[0]?.id);
    assert.ok(uploadId, 'the unfinished upload is remembered in localStorage');
    const partCount = (await (await page.request.get(`/api/uploads/${uploadId}`)).json()).part_count;
    assert.ok(partCount >= 3, `the test file must span at least 3 parts, it has ${partCount}`);
    const stored = async () => (await (await page.request.get(`/api/uploads/${uploadId}`)).json()).parts;
    const until = Date.now() + 30 * SECOND;
    while (!((await stored()).includes(1) && (await stored()).includes(2))) {
      assert.ok(Date.now() < until, 'parts 1 and 2 never reached the server');
      await page.waitForTimeout(500);
    }
    hold = false;
    await page.reload();
    await page.getByRole('heading', { name: 'Unfinished uploads' }).waitFor();
    await page.getByText('sunflower-timelapse.mp4').waitFor();
    const before = puts.length;
    await page.locator('#upload-file').setInputFiles(file);
    await page.getByText('Continuing an earlier upload').waitFor({ timeout: 20 * SECOND });
    // 100% shows only until the server has the parts put together; a fast server is already past it
    // (the first h2 on the page is the hidden "Unfinished uploads": look at every heading).
    await page.waitForFunction(
      () => document.querySelector('.percent')?.textContent === '100%' || [...document.querySelectorAll('main h2')].some((h) => /Processing|Your video is ready/.test(h.textContent)),
      null,
      { timeout: 60 * SECOND },
    );
    const resent = puts.slice(before);
    assert.ok(!resent.includes(1) && !resent.includes(2), `parts already stored were not sent again: ${puts.slice(0, before)} | ${resent}`);
    tolerated = [];
    await page.unroute('**/api/uploads/*/parts/*');
  });

  await step('upload: the transcode progresses to ready and the video plays', async () => {
    const outcome = page.getByRole('heading', { name: /^(Your video is ready|Processing failed)$/ });
    await outcome.waitFor({ timeout: 180 * SECOND });
    if ((await outcome.innerText()) !== 'Your video is ready') throw new Error(`transcode failed: ${await page.locator('.message-error').innerText()}`);
    await page.getByRole('link', { name: 'Watch it' }).click();
    await page.waitForURL('**/watch/*');
    videoId = page.url().split('/watch/')[1];
    await page.getByRole('heading', { name: title }).waitFor();
    const played = await playsFor('.player video', 3);
    log(`     upload: played to ${played.currentTime.toFixed(1)} s of ${played.duration.toFixed(1)} s`);
  });

  await step('search finds the upload despite a typo', async () => {
    await page.goto('/');
    await page.locator('#site-search-q').fill('sunflwer');
    await page.keyboard.press('Enter');
    await page.waitForURL('**/search?q=sunflwer');
    await page.locator(`.card a[href="/watch/${videoId}"]`).first().waitFor({ timeout: 20 * SECOND });
    await shot('search');
  });

  await step('an upload that is not a video fails with a clear message', async () => {
    const junk = path.join(scratch, 'notes.mp4');
    execFileSync('sh', ['-c', `head -c 300000 /dev/urandom > '${junk}'`]);
    await page.goto('/upload');
    await page.locator('#upload-file').setInputFiles(junk);
    await page.getByRole('button', { name: 'Upload', exact: true }).click();
    await page.getByRole('heading', { name: 'Processing failed' }).waitFor({ timeout: 120 * SECOND });
    const text = await page.locator('.message-error').innerText();
    assert.match(text, /could not be processed: \S/, text);
  });
}
