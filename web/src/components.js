// Pieces several pages share: video cards and grids, the "log in first" redirect, status badges,
// copy buttons.

import { h, copyText } from './dom.js';
import { ago, duration, plural } from './format.js';
import { currentUser } from './session.js';

/** A thumbnail, or a neutral placeholder when there is none (yet). */
export function thumbnail(url, label = '') {
  const placeholder = () => h('div', { class: 'thumb-placeholder', 'aria-hidden': 'true' }, '▶');
  if (!url) return placeholder();
  const img = h('img', { src: url, alt: label, loading: 'lazy', decoding: 'async', width: 320, height: 180 });
  img.addEventListener('error', () => img.replaceWith(placeholder()), { once: true });
  return img;
}

export function statusBadge(video) {
  switch (video.status) {
    case 'live':
      return h('span', { class: 'badge badge-live' }, 'LIVE');
    case 'processing':
      return h('span', { class: 'badge' }, Number.isFinite(video.progress) ? `Processing ${Math.floor(video.progress)}%` : 'Processing');
    case 'failed':
      return h('span', { class: 'badge badge-error' }, 'Failed');
    default:
      return null;
  }
}

export function videoCard(video) {
  const href = `/watch/${encodeURIComponent(video.id)}`;
  const meta = [];
  if (video.status === 'live' && Number.isFinite(video.viewers)) meta.push(plural(video.viewers, 'viewer'));
  else meta.push(ago(video.created_at));
  return h(
    'li',
    { class: 'card' },
    // One link to the video per card (one tab stop, one link read out): the title's, stretched over
    // the whole card by style.css so that the thumbnail is clickable too. The channel link sits
    // above it and goes elsewhere.
    h(
      'div',
      { class: 'card-thumb' },
      thumbnail(video.thumbnail_url),
      h('span', { class: 'card-badges' }, statusBadge(video), video.status === 'ready' && video.duration_secs ? h('span', { class: 'badge badge-dark' }, duration(video.duration_secs)) : null),
    ),
    h(
      'div',
      { class: 'card-body' },
      h('h3', { class: 'card-title' }, h('a', { href }, video.title)),
      h('p', { class: 'card-meta' }, h('a', { href: `/c/${encodeURIComponent(video.channel.slug)}` }, video.channel.title), ' · ', meta.join(' · ')),
    ),
  );
}

/** "Copy" that copies `getText()` and says "Copied" (or that it failed) for two seconds. */
export function copyButton(label, getText) {
  const button = h('button', { type: 'button', class: 'button small secondary', 'aria-label': `Copy ${label}` }, 'Copy');
  button.addEventListener('click', async () => {
    const ok = await copyText(getText());
    button.textContent = ok ? 'Copied' : 'Copy failed';
    setTimeout(() => {
      button.textContent = 'Copy';
    }, 2000);
  });
  return button;
}

export function videoGrid(videos) {
  return h('ul', { class: 'grid' }, videos.map(videoCard));
}

/** The signed-in user, or null after sending the visitor to log in (and back here afterwards). */
export function requireUser(ctx) {
  const user = currentUser();
  if (!user) ctx.navigate(`/login?next=${encodeURIComponent(location.pathname + location.search)}`, { replace: true });
  return user;
}

/**
 * Runs `fn` every `ms` while the page is open and visible (at once when it becomes visible again).
 * Stops when `signal` aborts or `fn` returns false; errors are logged as warnings and retried.
 */
export function every(ms, signal, fn) {
  let timer = null;
  const tick = async () => {
    timer = null;
    if (signal.aborted) return;
    let again = true;
    if (document.visibilityState === 'visible') {
      try {
        again = (await fn()) !== false;
      } catch (e) {
        if (e.name !== 'AbortError') console.warn(e);
      }
    }
    if (!signal.aborted && again) timer = setTimeout(tick, ms);
    else stop();
  };
  const onVisible = () => {
    if (document.visibilityState === 'visible' && timer) {
      clearTimeout(timer);
      tick();
    }
  };
  const stop = () => {
    clearTimeout(timer);
    timer = null;
    document.removeEventListener('visibilitychange', onVisible);
  };
  document.addEventListener('visibilitychange', onVisible);
  signal.addEventListener('abort', stop);
  timer = setTimeout(tick, ms);
}
