// Live state pushed by the server (Server-Sent Events): a channel's state as it changes
// (`/api/channels/{slug}/events`) and "some channel changed" for the home page (`/api/events`).
// EventSource reconnects by itself after a dropped connection; after a refused one (a proxy's 502
// while the server restarts) it gives up, so we open a new one with a growing delay. Where the
// browser has no EventSource, a slow poll of the REST API stands in.
//
// Everything stops when the page's `signal` aborts; nothing here touches the DOM.

import { api } from './api.js';
import { every } from './components.js';

/** Without EventSource: how often the REST API is read instead. */
const FALLBACK_POLL_MS = 60_000;
const RETRY_MIN_MS = 1_000;
const RETRY_MAX_MS = 30_000;

/**
 * Opens `url` as an EventSource calling `handlers[eventName](data)` with the parsed JSON of each
 * event, until `signal` aborts (or a handler returns false). Returns false when EventSource is
 * missing, so the caller can poll instead.
 */
function subscribe(url, signal, handlers) {
  if (typeof EventSource === 'undefined') return false;
  let source = null;
  let retryMs = RETRY_MIN_MS;
  let timer = null;
  const stop = () => {
    clearTimeout(timer);
    if (source) source.close();
    source = null;
  };
  const open = () => {
    if (signal.aborted) return;
    source = new EventSource(url);
    source.addEventListener('open', () => {
      retryMs = RETRY_MIN_MS;
    });
    for (const [name, handler] of Object.entries(handlers)) {
      source.addEventListener(name, (event) => {
        let data = null;
        try {
          data = JSON.parse(event.data);
        } catch {
          return;
        }
        if (handler(data) === false) stop();
      });
    }
    source.addEventListener('error', () => {
      // CONNECTING: the browser is already retrying. CLOSED: it gave up (an error status).
      if (!source || source.readyState !== EventSource.CLOSED) return;
      source = null;
      timer = setTimeout(open, retryMs);
      retryMs = Math.min(retryMs * 2, RETRY_MAX_MS);
    });
  };
  signal.addEventListener('abort', stop, { once: true });
  open();
  return true;
}

/**
 * Follows a channel: `onState({title, description, live})` at once and on every change (`live` is
 * null or `{video_id, title, description, viewers, started_at}`; only a public, playable stream
 * shows there), `onDeleted()` when the channel is deleted.
 */
export function followChannel(slug, signal, { onState, onDeleted = () => {} }) {
  const path = `/api/channels/${encodeURIComponent(slug)}`;
  const pushed = subscribe(`${path}/events`, signal, {
    state: (state) => onState(state),
    deleted: () => {
      onDeleted();
      return false;
    },
  });
  if (pushed) return;
  const poll = async () => {
    let channel;
    try {
      channel = await api(path, { signal });
    } catch (e) {
      if (e.status === 404) {
        onDeleted();
        return false;
      }
      throw e;
    }
    const live = channel.live ? { video_id: channel.live_video_id, title: null, description: null, viewers: channel.viewers ?? null, started_at: null } : null;
    onState({ title: channel.title, description: channel.description, live });
    return true;
  };
  poll().catch((e) => e.name === 'AbortError' || console.warn(e));
  every(FALLBACK_POLL_MS, signal, poll);
}

/** Calls `onChange()` (at most once per `debounceMs`) whenever any channel goes live, ends or is renamed. */
export function followSite(signal, onChange, { debounceMs = 300 } = {}) {
  let timer = null;
  const later = () => {
    clearTimeout(timer);
    timer = setTimeout(() => {
      if (!signal.aborted) onChange();
    }, debounceMs);
  };
  signal.addEventListener('abort', () => clearTimeout(timer), { once: true });
  if (!subscribe('/api/events', signal, { changed: later })) every(FALLBACK_POLL_MS, signal, onChange);
}

/**
 * Follows a live video through its channel's events: `onUpdate(live)` with the title, description
 * and viewers whenever they change, `onEnded(video)` once the broadcast is over (with the video as
 * the API now describes it). A stream that is not public never shows in the channel's public
 * state, so a state without this video is checked against the video itself before it counts as
 * ended; such streams are also re-read every `privatePollMs` for their viewer count.
 */
export function followLiveVideo(video, signal, { onUpdate, onEnded, privatePollMs = 10_000 }) {
  const scope = new AbortController();
  signal.addEventListener('abort', () => scope.abort(), { once: true });
  let checking = false;
  let done = false;
  const finish = (current) => {
    if (done) return;
    done = true;
    scope.abort();
    onEnded(current);
  };
  const check = async () => {
    if (checking || done) return;
    checking = true;
    try {
      const current = await api(`/api/videos/${encodeURIComponent(video.id)}`, { signal: scope.signal });
      if (current.status !== 'live') finish(current);
      else onUpdate({ video_id: current.id, title: current.title, description: current.description, viewers: current.viewers ?? null });
    } catch (e) {
      if (e.name === 'AbortError') return;
      if (e.status === 404) finish(null);
      else console.warn(e);
    } finally {
      checking = false;
    }
  };
  followChannel(video.channel.slug, scope.signal, {
    onState: (state) => {
      if (state.live && state.live.video_id === video.id) onUpdate(state.live);
      else check();
    },
    onDeleted: () => finish(null),
  });
  if (video.visibility !== 'public') {
    every(privatePollMs, scope.signal, async () => {
      await check();
      return !done;
    });
  }
}
