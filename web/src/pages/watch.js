// Watching: /watch/{video_id} plays one video (live, recording or upload; while an upload is still
// processing it shows the progress and starts playing when ready), /c/{slug} is a channel: its
// live stream when there is one, its videos below; /embed/{video_id} is the player alone, for
// other sites' iframes.
//
// The player, its control bar and the title fit in the first screen (style.css sizes the player
// from the viewport). A page's `.stage` is a grid holding `.stage-main` (player and details); a
// side column such as a chat is a sibling of `.stage-main` and goes beside it on wide screens,
// below it on phones.

import { api } from '../api.js';
import { h, message, replace, uid } from '../dom.js';
import { mountPlayer } from '../player.js';
import { copyButton, every, videoGrid } from '../components.js';
import { ago, duration, plural } from '../format.js';

export async function videoPage(main, ctx) {
  const [id] = ctx.params;
  let video;
  try {
    video = await api(`/api/videos/${encodeURIComponent(id)}`, { signal: ctx.signal });
  } catch (e) {
    if (e.name === 'AbortError') throw e;
    return unavailable(main, ctx, e, 'This video does not exist, or it is private.');
  }
  ctx.title(video.title);
  const stageMain = h('div', { class: 'stage-main' });
  replace(main, h('div', { class: 'stage' }, stageMain));
  watch(stageMain, video, ctx);
}

export async function channelPage(main, ctx) {
  const [slug] = ctx.params;
  let channel;
  try {
    channel = await api(`/api/channels/${encodeURIComponent(slug)}`, { signal: ctx.signal });
  } catch (e) {
    if (e.name === 'AbortError') throw e;
    return unavailable(main, ctx, e, 'There is no channel at this address.');
  }
  ctx.title(channel.title);
  // The live player (or "Offline") and its details.
  const stage = h('div', { class: 'stage-player' });
  const videosSection = h('section', { class: 'section', 'aria-labelledby': 'channel-videos' }, h('h2', { id: 'channel-videos' }, 'Videos'));
  // The channel's name is one line above the player, in the player's column, so that the player
  // and its controls still fit in the first screen; its description goes below.
  replace(
    main,
    h('div', { class: 'stage channel-stage' }, h('div', { class: 'stage-main' }, h('header', { class: 'channel-header' }, h('h1', {}, channel.title), h('p', { class: 'meta' }, `by ${channel.owner}`)), stage)),
    channel.description ? h('section', { class: 'section channel-about', 'aria-labelledby': 'channel-about' }, h('h2', { id: 'channel-about' }, 'About'), h('p', { class: 'description' }, channel.description)) : null,
    videosSection,
  );

  let liveId = null;
  let liveEnded = false;
  let liveScope = null;
  function showChannel(current) {
    const nextLive = current.live ? current.live_video_id : null;
    if (nextLive === liveId && liveScope) return;
    // A broadcast that ends keeps playing as its recording; the player says so itself.
    if (!nextLive && liveId) return;
    liveId = nextLive;
    liveEnded = false;
    if (liveScope) liveScope.abort();
    liveScope = new AbortController();
    ctx.signal.addEventListener('abort', () => liveScope.abort(), { once: true });
    if (liveId) {
      api(`/api/videos/${encodeURIComponent(liveId)}`, { signal: liveScope.signal })
        .then((video) => watch(stage, video, { ...ctx, signal: liveScope.signal }, { inChannel: true }))
        .catch((e) => e.name === 'AbortError' || replace(stage, message('error', `The live stream could not be loaded. ${e.message}`)));
    } else {
      replace(stage, h('div', { class: 'offline' }, h('p', { class: 'offline-title' }, 'Offline'), h('p', {}, `${current.title} is not live right now. Recordings and uploads are below.`)));
    }
  }
  showChannel(channel);

  async function loadVideos() {
    const page = await api(`/api/channels/${encodeURIComponent(slug)}/videos?limit=48`, { signal: ctx.signal });
    const items = page.items.filter((v) => v.status !== 'live');
    replace(videosSection, h('h2', { id: 'channel-videos' }, 'Videos'), items.length ? videoGrid(items) : h('p', { class: 'empty' }, 'No videos yet.'));
  }
  loadVideos().catch((e) => e.name === 'AbortError' || videosSection.append(message('error', `Could not load the videos. ${e.message}`)));

  // Going live and ending while someone looks at the channel.
  every(10_000, ctx.signal, async () => {
    const current = await api(`/api/channels/${encodeURIComponent(slug)}`, { signal: ctx.signal });
    const wasLive = Boolean(liveId) && !liveEnded;
    showChannel(current);
    if (wasLive && !current.live) {
      liveEnded = true;
      await loadVideos();
    }
  });
}

function unavailable(main, ctx, error, notFoundText) {
  ctx.title(error.status === 404 ? 'Not found' : 'Unavailable');
  replace(main, h('h1', {}, error.status === 404 ? 'Not found' : 'Unavailable'), message('error', error.status === 404 ? notFoundText : error.message), h('p', {}, h('a', { href: '/' }, 'Go to the home page')));
}

/** Player (or processing/failed state) and the video's details, kept current while open. */
function watch(stage, video, ctx, { inChannel = false } = {}) {
  const playerBox = h('div', { class: 'player-box' });
  const info = h('div', { class: 'video-info' });
  replace(stage, playerBox, info);
  let player = null;
  let shown = null;

  function showInfo(v) {
    const when = v.status === 'live' ? `Started ${ago(v.created_at)}` : ago(v.created_at);
    const title = inChannel ? h('h2', { class: 'video-title' }, v.title) : h('h1', { class: 'video-title' }, v.title);
    // A private video's link works for its owner only: nothing to share.
    const share = v.visibility === 'public' || v.visibility === 'unlisted' ? h('button', { type: 'button', class: 'button small secondary share-button', 'aria-haspopup': 'dialog', onclick: () => shareDialog(v) }, 'Share') : null;
    replace(
      info,
      h('div', { class: 'video-head' }, title, share),
      h(
        'p',
        { class: 'meta' },
        v.status === 'live' ? h('span', { class: 'badge badge-live' }, 'LIVE') : null,
        v.status === 'live' && Number.isFinite(v.viewers) ? h('span', { class: 'viewers', 'aria-live': 'polite' }, plural(v.viewers, 'viewer')) : null,
        inChannel ? null : h('a', { href: `/c/${encodeURIComponent(v.channel.slug)}` }, v.channel.title),
        h('span', {}, when),
        v.status === 'ready' && v.duration_secs ? h('span', {}, duration(v.duration_secs)) : null,
        v.visibility !== 'public' ? h('span', { class: 'badge' }, v.visibility === 'private' ? 'Private' : 'Unlisted') : null,
        v.owned ? h('a', { href: '/dashboard' }, 'Edit in dashboard') : null,
      ),
      v.description ? h('p', { class: 'description' }, v.description) : null,
    );
  }

  function showMedia(v) {
    if (v.status === 'live' || v.status === 'ready') {
      if (player) {
        if (v.status === 'ready' && shown === 'live') {
          player.ended();
          info.before(message('info', 'The broadcast has ended. You are watching the recording.'));
        }
        shown = v.status;
        return;
      }
      shown = v.status;
      player = mountPlayer(playerBox, { src: v.playback_url, live: v.status === 'live', title: v.title, poster: v.status === 'ready' ? v.thumbnail_url : null, signal: ctx.signal });
    } else if (v.status === 'processing') {
      const pct = Number.isFinite(v.progress) ? Math.floor(v.progress) : null;
      replace(
        playerBox,
        h(
          'div',
          { class: 'processing' },
          h('p', {}, 'This video is being processed. It will play here as soon as it is ready.'),
          h('progress', { max: 100, value: pct ?? undefined, 'aria-label': 'Processing' }),
          h('p', { class: 'meta' }, pct === null ? 'Processing…' : `${pct}%`),
        ),
      );
    } else if (v.status === 'failed') {
      replace(playerBox, h('div', { class: 'processing' }, message('error', v.error ? `This video could not be processed: ${v.error}` : 'This video could not be processed.')));
    }
  }

  showInfo(video);
  showMedia(video);
  // Live: viewers and the end of the broadcast; processing: progress until it plays.
  if (video.status === 'live' || video.status === 'processing') {
    every(video.status === 'live' ? 10_000 : 2_000, ctx.signal, async () => {
      const v = await api(`/api/videos/${encodeURIComponent(video.id)}`, { signal: ctx.signal });
      showInfo(v);
      showMedia(v);
      return v.status === 'live' || v.status === 'processing';
    });
  }
}

/** The page's link and an iframe snippet for /embed/{id}, each with a copy button. */
function shareDialog(video) {
  const origin = location.origin;
  const link = `${origin}${location.pathname}`;
  const snippet = `<iframe src="${origin}/embed/${encodeURIComponent(video.id)}" width="640" height="360" allow="autoplay; fullscreen" allowfullscreen></iframe>`;
  const titleId = uid('share');
  const linkId = uid('share-link');
  const embedId = uid('share-embed');
  // Read-only fields: the text can be selected by hand too, where the clipboard is not allowed.
  const selectAll = (event) => event.target.select();
  const dialog = h(
    'dialog',
    { class: 'dialog share-dialog', 'aria-labelledby': titleId },
    h(
      'form',
      { method: 'dialog' },
      h('h2', { id: titleId }, 'Share'),
      h(
        'div',
        { class: 'field' },
        h('label', { for: linkId }, 'Link'),
        h('div', { class: 'copy-row' }, h('input', { id: linkId, class: 'share-link', readonly: true, value: link, onfocus: selectAll }), copyButton('link', () => link)),
      ),
      h(
        'div',
        { class: 'field' },
        h('label', { for: embedId }, 'Embed on a website'),
        h('textarea', { id: embedId, class: 'share-embed', readonly: true, rows: 3, onfocus: selectAll }, snippet),
        h('div', { class: 'copy-row' }, h('p', { class: 'field-hint' }, 'Paste this HTML into your page.'), copyButton('embed code', () => snippet)),
      ),
      video.visibility === 'unlisted' ? h('p', { class: 'field-hint' }, 'This video is unlisted: anyone with the link or on a page that embeds it can watch it.') : null,
      h('div', { class: 'actions' }, h('button', { value: 'close', class: 'button secondary' }, 'Close')),
    ),
  );
  const opener = document.activeElement;
  dialog.addEventListener('close', () => {
    dialog.remove();
    if (opener && opener.isConnected) opener.focus();
  });
  document.body.append(dialog);
  dialog.showModal();
}

/** /embed/{id}: the player filling the window and a link to the watch page, nothing else. */
export async function embedPage(main, ctx) {
  const [id] = ctx.params;
  const watchHref = `/watch/${encodeURIComponent(id)}`;
  const watchLink = (text) => h('a', { href: watchHref, target: '_blank', rel: 'noopener', class: 'embed-link' }, text, h('span', { class: 'visually-hidden' }, ' (opens in a new tab)'));
  const notice = (text) => replace(main, h('div', { class: 'embed-notice' }, h('p', {}, text), watchLink('Watch on Ferrocast')));
  let video;
  try {
    video = await api(`/api/videos/${encodeURIComponent(id)}`, { signal: ctx.signal });
  } catch (e) {
    if (e.name === 'AbortError') throw e;
    ctx.title('Unavailable');
    return notice(e.status === 404 ? 'This video is not available.' : e.message);
  }
  ctx.title(video.title);
  if (video.status === 'processing') return notice('This video is being processed. It will play here when it is ready.');
  if (video.status === 'failed') return notice('This video could not be processed.');
  const player = mountPlayer(main, {
    src: video.playback_url,
    live: video.status === 'live',
    title: video.title,
    poster: video.status === 'ready' ? video.thumbnail_url : null,
    signal: ctx.signal,
    actions: watchLink('Watch on Ferrocast'),
  });
  player.element.classList.add('embed-player');
  // The page learns that a live broadcast ended from the API too (a player that is paused does not
  // load the playlist that says so).
  if (video.status === 'live') {
    every(15_000, ctx.signal, async () => {
      const v = await api(`/api/videos/${encodeURIComponent(id)}`, { signal: ctx.signal });
      if (v.status === 'live') return true;
      player.ended();
      return false;
    });
  }
}
