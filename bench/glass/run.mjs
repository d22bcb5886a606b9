// glass.sh's browser side: headless Chromium (Debian's) opens page.html as a file:// URL, hls.js
// plays the stream, and the page samples the burnt-in clock every 200 ms. After the run this prints
// one JSON object with the latency samples taken after the warm-up and their median / p90.
//
//   node run.mjs --src URL [--epoch MS] [--until MS] [--config JSON] [--warmup S] [--samples N] [--seconds S] [--label L]
//   node run.mjs --file RECORDING.mp4 --offset S [--seconds S]
//       validates the page's decoder on a recording of clock.py's test clock (T = S + N / 30): each
//       decoded code must be that of the frame at currentTime, give or take one frame
//
// --warmup: seconds after the first decoded frame before samples count (10); --samples: stop once
// this many steady samples are in (0: run for --seconds); --seconds: hard limit from page load (60);
// --until: epoch ms after which no sample counts (before the publisher stops).
// playwright-core comes from web/node_modules (`make web`). Environment: CHROMIUM (/usr/bin/chromium).
import { createRequire } from 'node:module';
import { copyFileSync, mkdirSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';

const here = path.dirname(fileURLToPath(import.meta.url));
const repo = path.resolve(here, '../..');
const require = createRequire(path.join(repo, 'web/package.json'));
const { chromium } = require('playwright-core');

const args = { warmup: 10, samples: 0, seconds: 60, config: '{}', epoch: 0, label: '' };
for (let i = 2; i < process.argv.length; i += 2) args[process.argv[i].replace(/^--/, '')] = process.argv[i + 1];
const workDir = path.resolve(process.env.BENCH_WORK_DIR || path.join(repo, 'bench/work'), 'glass-page');
mkdirSync(workDir, { recursive: true });
copyFileSync(path.join(here, 'page.html'), path.join(workDir, 'page.html'));
copyFileSync(path.join(repo, 'web/node_modules/hls.js/dist/hls.min.js'), path.join(workDir, 'hls.min.js'));
const hlsVersion = require('hls.js/package.json').version;

const query = new URLSearchParams({ epoch: String(args.epoch), config: args.config });
if (args.file) query.set('file', pathToFileURL(path.resolve(args.file)).href);
else query.set('src', args.src);

const browser = await chromium.launch({
  executablePath: process.env.CHROMIUM || '/usr/bin/chromium',
  headless: true,
  args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking',
    '--disable-component-update', '--disable-sync', '--autoplay-policy=no-user-gesture-required',
    '--allow-file-access-from-files', '--disable-background-timer-throttling', '--disable-renderer-backgrounding'],
});
const pageErrors = [];
const requests = { blocking: 0, playlist: 0, media: 0 };
let result;
try {
  const page = await (await browser.newContext({ viewport: { width: 1280, height: 800 } })).newPage();
  page.on('pageerror', (e) => pageErrors.push(String(e)));
  // What hls.js asks for: blocking reloads (LL-HLS), other playlist loads, media.
  page.on('request', (r) => {
    const url = r.url();
    if (url.includes('_HLS_msn=')) requests.blocking += 1;
    else if (url.includes('.m3u8')) requests.playlist += 1;
    else if (/\.(m4s|mp4|ts)(\?|$)/.test(url)) requests.media += 1;
  });
  const loaded = Date.now();
  await page.goto(`${pathToFileURL(path.join(workDir, 'page.html')).href}?${query}`);
  const until = Number(args.until || 0) || Infinity;
  const deadline = Math.min(loaded + Number(args.seconds) * 1000, until);
  const warmupMs = Number(args.warmup) * 1000;
  const wanted = Number(args.samples);
  let glass;
  while (Date.now() < deadline) {
    await new Promise((r) => setTimeout(r, 1000));
    glass = await page.evaluate(() => window.glass);
    if (wanted && glass.firstFrameAt !== null) {
      const steady = glass.samples.filter((s) => s.now >= glass.firstFrameAt + warmupMs && s.code !== null);
      if (steady.length >= wanted) break;
    }
  }
  glass = await page.evaluate(() => window.glass);
  glass.samples = glass.samples.filter((s) => s.now <= until);
  result = summarise(glass, warmupMs);
} finally {
  await browser.close();
}
result.label = args.label;
result.chromium = browser.version();
result.hls_js = hlsVersion;
result.page_errors = pageErrors;
result.requests = requests;
console.log(JSON.stringify(result));

function quantile(sorted, q) {
  return sorted.length ? sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))] : null;
}

function summarise(glass, warmupMs) {
  const out = {
    samples_taken: glass.samples.length,
    unreadable: glass.samples.filter((s) => s.code === null).length,
    suspect: glass.samples.filter((s) => s.suspect).length,
    errors: glass.errors.slice(0, 20),
    error_count: glass.errors.length,
    // Level switches and errors, in order, in seconds after the first decoded frame.
    events: glass.events.slice(0, 40).map((e) => ({ ...e, at: glass.firstFrameAt === null ? null : +((e.at - glass.firstFrameAt) / 1000).toFixed(2) })),
    first_frame_s: glass.firstFrameAt === null ? null : +((glass.firstFrameAt - glass.loadedAt) / 1000).toFixed(2),
  };
  if (glass.firstFrameAt === null) return out;
  const steady = glass.samples.filter((s) => s.now >= glass.firstFrameAt + warmupMs && s.code !== null && !s.suspect);
  const lat = steady.map((s) => s.latencyMs).sort((a, b) => a - b);
  out.steady_samples = lat.length;
  out.median_s = lat.length ? +(quantile(lat, 0.5) / 1000).toFixed(3) : null;
  out.p90_s = lat.length ? +(quantile(lat, 0.9) / 1000).toFixed(3) : null;
  out.min_s = lat.length ? +(lat[0] / 1000).toFixed(3) : null;
  out.max_s = lat.length ? +(lat[lat.length - 1] / 1000).toFixed(3) : null;
  const hlsLat = steady.map((s) => s.hlsLatency).filter((v) => v != null).sort((a, b) => a - b);
  out.hls_latency_median_s = hlsLat.length ? quantile(hlsLat, 0.5) : null;
  out.heights = [...new Set(steady.map((s) => s.height))];
  out.levels = [...new Set(steady.map((s) => `${glass.levelNames && s.level >= 0 ? glass.levelNames[s.level] + ' ' : ''}${s.height}p`))];
  const targets = steady.map((s) => s.hlsTarget).filter((v) => v != null).sort((a, b) => a - b);
  out.hls_target_latency_s = targets.length ? [targets[0], targets[targets.length - 1]] : null;
  out.rates = [...new Set(steady.map((s) => s.rate))];
  // Stalls: consecutive steady samples showing the same frame while 200 ms passed.
  out.frozen_samples = steady.filter((s, i) => i > 0 && s.code === steady[i - 1].code).length;
  if (args.file) {
    // Validation against the test clock: frame N carries floor((offset + N / 30) * 100) mod 65536.
    const offset = Number(args.offset);
    const expected = (n) => Math.floor((offset + n / 30) * 100) % 65536;
    const decoded = glass.samples.filter((s) => s.code !== null && s.t < glass.duration - 0.1);
    const right = decoded.filter((s) => [-1, 0, 1].some((d) => expected(Math.round(s.t * 30) + d) === s.code));
    out.validation = { samples: glass.samples.filter((s) => s.t < glass.duration - 0.1).length, decoded: decoded.length, right: right.length,
      wrong: decoded.filter((s) => !right.includes(s)).map((s) => ({ t: s.t, code: s.code, expected: expected(Math.round(s.t * 30)) })).slice(0, 5) };
  }
  return out;
}
