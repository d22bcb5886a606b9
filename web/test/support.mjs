// What the end-to-end scripts (browser.mjs, product.mjs) share: publishing a synthetic stream with
// ffmpeg, and ending every process they started.

import { spawn } from 'node:child_process';

const children = [];

/**
 * ffmpeg publishing `seconds` of a test picture and tone in real time to `url` (H.264 High with
 * B-frames, 2 s GOP, AAC: what OBS sends). Returns the process and a promise of how it exited.
 */
export function publish(url, seconds, { size = '1280x720' } = {}) {
  const ffmpeg = spawn(
    'ffmpeg',
    [
      '-hide_banner', '-loglevel', 'error', '-re',
      '-f', 'lavfi', '-i', `testsrc2=size=${size}:rate=30`,
      '-f', 'lavfi', '-i', 'sine=frequency=440:sample_rate=48000',
      '-t', String(seconds),
      '-c:v', 'libx264', '-preset', 'veryfast', '-profile:v', 'high', '-bf', '2', '-g', '60', '-pix_fmt', 'yuv420p',
      '-c:a', 'aac', '-b:a', '128k', '-f', 'flv', url,
    ],
    { stdio: ['ignore', 'ignore', 'pipe'] },
  );
  let stderr = '';
  ffmpeg.stderr.on('data', (chunk) => {
    stderr += chunk;
  });
  const exited = new Promise((resolve) => ffmpeg.on('exit', (code, signal) => resolve({ code, signal, stderr })));
  children.push(ffmpeg);
  return { ffmpeg, exited };
}

/** Kills every process `publish` started that is still running. */
export function killChildren() {
  for (const child of children) if (child.exitCode === null) child.kill('SIGKILL');
}
