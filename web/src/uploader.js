// The resumable upload protocol, without any UI: create → parts (a few in parallel, each with its
// SHA-256 in a Content-Digest header, retried with backoff when the connection drops) → complete.
// Unfinished uploads are remembered in localStorage, so after a reload the same file picked again
// continues where it stopped: the server says which parts it already has.

import { ApiError, api, errorFrom } from './api.js';
import { refreshSession } from './session.js';

const STORE_KEY = 'ferrocast.uploads';
const PARALLEL_PARTS = 3;
/** Backoff between attempts at one part, capped; a part is given up after this many attempts. */
const RETRY_DELAYS_MS = [1000, 2000, 4000, 8000, 15000, 30000];
const MAX_ATTEMPTS = 12;

// ---- what this browser remembers about unfinished uploads ----

export function pendingUploads() {
  try {
    const list = JSON.parse(localStorage.getItem(STORE_KEY) || '[]');
    return Array.isArray(list) ? list : [];
  } catch {
    return [];
  }
}

function savePending(list) {
  try {
    localStorage.setItem(STORE_KEY, JSON.stringify(list));
  } catch {
    // No storage (private mode, quota): the upload still works, it just cannot resume after a reload.
  }
}

function remember(entry) {
  savePending([...pendingUploads().filter((e) => e.id !== entry.id), entry]);
}

export function forget(id) {
  savePending(pendingUploads().filter((e) => e.id !== id));
}

/** The remembered upload this file continues, if any. */
export function pendingFor(file) {
  return pendingUploads().find((e) => e.filename === file.name && e.size === file.size && e.lastModified === file.lastModified) || null;
}

// ---- hashing ----

let nobleSha256 = null;

/** `sha-256=:…:` for the bytes. WebCrypto needs a secure context (https or localhost); elsewhere a JS SHA-256. */
async function contentDigest(buffer) {
  let digest;
  if (globalThis.crypto && crypto.subtle && globalThis.isSecureContext) {
    digest = new Uint8Array(await crypto.subtle.digest('SHA-256', buffer));
  } else {
    if (!nobleSha256) ({ sha256: nobleSha256 } = await import('@noble/hashes/sha2.js'));
    digest = nobleSha256(new Uint8Array(buffer));
  }
  let binary = '';
  for (const byte of digest) binary += String.fromCharCode(byte);
  return `sha-256=:${btoa(binary)}:`;
}

// ---- one part over XHR (fetch cannot report upload progress) ----

function putPart(url, buffer, digest, onProgress, signal) {
  return new Promise((resolve, reject) => {
    const xhr = new XMLHttpRequest();
    xhr.open('PUT', url);
    xhr.setRequestHeader('content-type', 'application/octet-stream');
    xhr.setRequestHeader('content-digest', digest);
    xhr.upload.onprogress = (event) => onProgress(event.loaded);
    xhr.onload = () => {
      let data = null;
      try {
        data = JSON.parse(xhr.responseText);
      } catch {
        data = null;
      }
      if (xhr.status >= 200 && xhr.status < 300) resolve(data);
      else reject(errorFrom(xhr.status, data, xhr.getResponseHeader('retry-after')));
    };
    xhr.onerror = () => reject(new ApiError(0, 'network', 'The connection to the server was lost.'));
    xhr.ontimeout = xhr.onerror;
    const abort = () => xhr.abort();
    xhr.onabort = () => reject(new DOMException('Upload paused', 'AbortError'));
    signal.addEventListener('abort', abort, { once: true });
    xhr.onloadend = () => signal.removeEventListener('abort', abort);
    xhr.send(buffer);
  });
}

function retryable(error, attempt) {
  // A 400 means the bytes arrived damaged (length or digest): worth sending again, but not forever.
  if (error.status === 400) return attempt < 3;
  return error.status === 0 || error.status === 408 || error.status === 429 || error.status >= 500;
}

function sleep(ms, signal) {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(done, ms);
    const onOnline = () => done();
    function done() {
      clearTimeout(timer);
      window.removeEventListener('online', onOnline);
      signal.removeEventListener('abort', onAbort);
      resolve();
    }
    function onAbort() {
      clearTimeout(timer);
      window.removeEventListener('online', onOnline);
      reject(new DOMException('Upload paused', 'AbortError'));
    }
    // Back online: try again at once instead of sitting out the backoff.
    window.addEventListener('online', onOnline);
    signal.addEventListener('abort', onAbort, { once: true });
  });
}

/**
 * Uploads `file`, or continues a remembered upload of it. Reports through `events`:
 *   started({id, partCount, resumed}), progress({sent, total}), retrying({part, delayMs, error}), partDone({part}),
 *   completing(), done({videoId}).
 * Resolves to the video id; rejects with ApiError (or AbortError when `signal` aborts: the upload
 * stays on the server and in the list of unfinished uploads).
 */
export async function uploadFile(file, { channel, title, description, visibility }, events, signal) {
  let entry = pendingFor(file);
  let upload;
  if (entry) {
    try {
      upload = await api(`/api/uploads/${encodeURIComponent(entry.id)}`, { signal });
    } catch (e) {
      if (e.status !== 404 && e.status !== 403) throw e;
      forget(entry.id);
      entry = null;
    }
    if (upload && upload.status !== 'open') {
      forget(entry.id);
      if (upload.video_id) {
        events.done?.({ videoId: upload.video_id });
        return upload.video_id;
      }
      entry = null;
      upload = null;
    }
  }
  if (!entry) {
    const created = await api('/api/uploads', {
      method: 'POST',
      body: { channel, filename: file.name, size: file.size, title, description, visibility },
      signal,
    });
    entry = { id: created.id, filename: file.name, size: file.size, lastModified: file.lastModified, channel, title, startedAt: Date.now() };
    remember(entry);
    upload = { ...created, parts: [] };
  }
  events.started?.({ id: entry.id, partCount: upload.part_count, resumed: upload.parts.length > 0 });

  const partSize = upload.part_size;
  const partLength = (n) => Math.min(partSize, file.size - (n - 1) * partSize);
  const received = new Set(upload.parts);
  let sent = [...received].reduce((sum, n) => sum + partLength(n), 0);
  const inFlight = new Map();
  const report = () => {
    let loaded = sent;
    for (const value of inFlight.values()) loaded += value;
    events.progress?.({ sent: Math.min(loaded, file.size), total: file.size });
  };
  report();

  // One part failing for good stops the others; the caller's signal stops them all.
  const stop = new AbortController();
  const onAbort = () => stop.abort();
  signal.addEventListener('abort', onAbort, { once: true });
  const queue = [];
  for (let n = 1; n <= upload.part_count; n += 1) if (!received.has(n)) queue.push(n);
  const url = (n) => `/api/uploads/${encodeURIComponent(entry.id)}/parts/${n}`;

  async function sendPart(n) {
    const start = (n - 1) * partSize;
    const buffer = await file.slice(start, start + partLength(n)).arrayBuffer();
    const digest = await contentDigest(buffer);
    for (let attempt = 1; ; attempt += 1) {
      const started = Date.now();
      try {
        await putPart(url(n), buffer, digest, (loaded) => {
          inFlight.set(n, loaded);
          report();
        }, stop.signal);
        inFlight.delete(n);
        sent += buffer.byteLength;
        report();
        events.partDone?.({ part: n });
        return;
      } catch (e) {
        inFlight.delete(n);
        report();
        if (e.name === 'AbortError') throw e;
        if (e.status === 401 && attempt < MAX_ATTEMPTS && (await refreshSession(started))) continue;
        if (e.status === 404) {
          forget(entry.id);
          throw new ApiError(404, 'not_found', 'This upload no longer exists on the server (unfinished uploads expire). Start it again.');
        }
        if (!retryable(e, attempt) || attempt >= MAX_ATTEMPTS) throw e;
        const delayMs = RETRY_DELAYS_MS[Math.min(attempt - 1, RETRY_DELAYS_MS.length - 1)];
        events.retrying?.({ part: n, delayMs, error: e });
        await sleep(delayMs, stop.signal);
      }
    }
  }

  async function worker() {
    while (queue.length) {
      const n = queue.shift();
      await sendPart(n);
    }
  }
  const workers = Array.from({ length: Math.min(PARALLEL_PARTS, queue.length) }, worker);
  try {
    await Promise.all(workers);
  } catch (e) {
    // What the parts sent is kept on the server for a resume.
    queue.length = 0;
    stop.abort();
    throw e;
  } finally {
    signal.removeEventListener('abort', onAbort);
  }

  events.completing?.();
  let videoId;
  try {
    ({ video_id: videoId } = await api(`/api/uploads/${encodeURIComponent(entry.id)}/complete`, { method: 'POST', signal }));
  } catch (e) {
    // A completion whose answer was lost: the upload is closed and knows its video.
    if (e.status !== 409) throw e;
    const state = await api(`/api/uploads/${encodeURIComponent(entry.id)}`, { signal });
    if (!state.video_id) throw e;
    videoId = state.video_id;
  }
  forget(entry.id);
  events.done?.({ videoId });
  return videoId;
}

/** Deletes an unfinished upload on the server and forgets it here. */
export async function discardUpload(id) {
  try {
    await api(`/api/uploads/${encodeURIComponent(id)}`, { method: 'DELETE' });
  } catch (e) {
    if (e.status !== 404 && e.status !== 409) throw e;
  } finally {
    forget(id);
  }
}
