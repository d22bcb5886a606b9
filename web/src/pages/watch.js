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
import { followChannel, followLiveVideo } from '../live.js';
import { chatReplay, liveChat } from '../chat.js';

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
  const stage = h('div', { class: 'stage' }, stageMain);
  replace(main, stage);
  const view = watch(stageMain, video, ctx);
  if (video.status === 'live') {
    // People watching a broadcast talk about it in its channel's chat.
    stage.append(liveChat(video.channel.slug, ctx.signal));
    followLiveVideo(video, ctx.signal, {
      onUpdate: (live) => {
        view.update(live);
        if (live.title) ctx.title(live.title);
      },
      onEnded: (current) => view.end(current),
    });
  } else if (video.status === 'ready' && video.kind !== 'upload') {
    // A recording replays the chat of its broadcast beside the picture, as playback reaches it.
    chatReplay(video.id, ctx.signal)
      .then((replay) => {
        if (!replay || ctx.signal.aborted || !view.player) return;
        stage.append(replay.element);
        replay.attach(view.player.video);
      })
      .catch((e) => e.name === 'AbortError' || console.warn(e));
  }
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
  const heading = h('h1', {}, channel.title);
  const videosSection = h('section', { class: 'section', 'aria-labelledby': 'channel-videos' }, h('h2', { id: 'channel-videos' }, 'Videos'));
  // The chat is there offline too: people talk while they wait for the stream.
  const chatScope = new AbortController();
  ctx.signal.addEventListener('abort', () => chatScope.abort(), { once: true });
  // The channel's name is one line above the player, in the player's column, so that the player
  // and its controls still fit in the first screen; its description goes below.
  replace(
    main,
    h(
      'div',
      { class: 'stage channel-stage' },
      h('div', { class: 'stage-main' }, h('header', { class: 'channel-header' }, heading, h('p', { class: 'meta' }, `by ${channel.owner}`)), stage),
      liveChat(slug, chatScope.signal),
    ),
    channel.description ? h('section', { class: 'section channel-about', 'aria-labelledby': 'channel-about' }, h('h2', { id: 'channel-about' }, 'About'), h('p', { class: 'description' }, channel.description)) : null,
    videosSection,
  );

  // What the stage shows: the live video's id (null: offline), its view once loaded, and the
  // scope its player lives in.
  let liveId = null;
  let liveView = null;
  let liveScope = null;
  let latestLive = null;
  let title = channel.title;

  function mountLive(id) {
    if (liveScope) liveScope.abort();
    liveId = id;
    liveView = null;
    const scope = new AbortController();
    liveScope = scope;
    ctx.signal.addEventListener('abort', () => scope.abort(), { once: true });
    api(`/api/videos/${encodeURIComponent(id)}`, { signal: scope.signal })
      .then((video) => {
        if (scope.signal.aborted) return;
        liveView = watch(stage, video, { ...ctx, signal: scope.signal }, { inChannel: true });
        if (latestLive && latestLive.video_id === id) liveView.update(latestLive);
      })
      .catch((e) => e.name === 'AbortError' || replace(stage, message('error', `The live stream could not be loaded. ${e.message}`)));
  }

  function showOffline(endedId = null) {
    if (liveScope) liveScope.abort();
    liveScope = null;
    liveId = null;
    liveView = null;
    replace(
      stage,
      h(
        'div',
        { class: 'offline', dataset: { ended: endedId ? 'true' : 'false' } },
        h('p', { class: 'offline-title' }, 'Offline'),
        endedId
          ? [h('p', {}, 'The broadcast has ended.'), h('p', {}, h('a', { href: `/watch/${encodeURIComponent(endedId)}` }, 'Watch the recording'))]
          : h('p', {}, `${title} is not live right now. Recordings and uploads are below.`),
      ),
    );
  }

  if (channel.live) mountLive(channel.live_video_id);
  else showOffline();

  async function loadVideos() {
    const page = await api(`/api/channels/${encodeURIComponent(slug)}/videos?limit=48`, { signal: ctx.signal });
    const items = page.items.filter((v) => v.status !== 'live');
    replace(videosSection, h('h2', { id: 'channel-videos' }, 'Videos'), items.length ? videoGrid(items) : h('p', { class: 'empty' }, 'No videos yet.'));
  }
  loadVideos().catch((e) => e.name === 'AbortError' || videosSection.append(message('error', `Could not load the videos. ${e.message}`)));

  // The stage shows a video the channel's public state does not (an unlisted stream shown to its
  // owner, or the broadcast just ended): the video itself says which.
  let checking = null;
  async function checkShown() {
    const id = liveId;
    if (!id || checking === id) return;
    checking = id;
    try {
      const video = await api(`/api/videos/${encodeURIComponent(id)}`, { signal: ctx.signal });
      if (liveId === id && video.status !== 'live') {
        showOffline(id);
        await loadVideos();
      }
    } catch (e) {
      if (e.name === 'AbortError') return;
      if (e.status === 404 && liveId === id) showOffline();
      else console.warn(e);
    } finally {
      checking = null;
    }
  }

  // Going live, ending, titles and viewers, pushed by the server while someone looks.
  followChannel(slug, ctx.signal, {
    onState: (state) => {
      title = state.title;
      heading.textContent = state.title;
      ctx.title(state.title);
      latestLive = state.live;
      if (state.live) {
        if (state.live.video_id !== liveId) mountLive(state.live.video_id);
        else if (liveView) liveView.update(state.live);
      } else if (liveId) {
        checkShown();
      }
    },
    onDeleted: () => {
      chatScope.abort();
      if (liveScope) liveScope.abort();
      ctx.title('Channel deleted');
      replace(main, h('h1', {}, 'Channel deleted'), message('info', 'This channel has just been deleted by its owner.'), h('p', {}, h('a', { href: '/' }, 'Go to the home page')));
    },
  });
}

function unavailable(main, ctx, error, notFoundText) {
  ctx.title(error.status === 404 ? 'Not found' : 'Unavailable');
  replace(main, h('h1', {}, error.status === 404 ? 'Not found' : 'Unavailable'), message('error', error.status === 404 ? notFoundText : error.message), h('p', {}, h('a', { href: '/' }, 'Go to the home page')));
}

/**
 * Player (or processing/failed state) and the video's details. A processing video is re-read
 * until it plays; a live one is kept current by the caller through `update(live)` (title,
 * description, viewers from the channel's events) and `end(video)` when the broadcast is over.
 */
function watch(stage, video, ctx, { inChannel = false } = {}) {
  const playerBox = h('div', { class: 'player-box' });
  const info = h('div', { class: 'video-info' });
  replace(stage, playerBox, info);
  let player = null;
  let shown = null;
  let titleEl = null;
  let viewersEl = null;
  let descriptionEl = null;
  let whenEl = null;
  let described = video;
  const whenText = (v) => (v.status === 'live' ? `Started ${ago(v.created_at)}` : ago(v.created_at));

  function showInfo(v) {
    described = v;
    whenEl = h('span', {}, whenText(v));
    titleEl = inChannel ? h('h2', { class: 'video-title' }, v.title) : h('h1', { class: 'video-title' }, v.title);
    viewersEl = h('span', { class: 'viewers', hidden: !(v.status === 'live' && Number.isFinite(v.viewers)) }, Number.isFinite(v.viewers) ? plural(v.viewers, 'viewer') : '');
    descriptionEl = h('p', { class: 'description', hidden: !v.description }, v.description || '');
    // A private video's link works for its owner only: nothing to share.
    const share = v.visibility === 'public' || v.visibility === 'unlisted' ? h('button', { type: 'button', class: 'button small secondary share-button', 'aria-haspopup': 'dialog', onclick: () => shareDialog(v) }, 'Share') : null;
    replace(
      info,
      h('div', { class: 'video-head' }, titleEl, share),
      h(
        'p',
        { class: 'meta' },
        v.status === 'live' ? h('span', { class: 'badge badge-live' }, 'LIVE') : null,
        v.status === 'live' ? viewersEl : null,
        inChannel ? null : h('a', { href: `/c/${encodeURIComponent(v.channel.slug)}` }, v.channel.title),
        whenEl,
        v.status === 'ready' && v.duration_secs ? h('span', {}, duration(v.duration_secs)) : null,
        v.visibility !== 'public' ? h('span', { class: 'badge' }, v.visibility === 'private' ? 'Private' : 'Unlisted') : null,
        v.owned ? h('a', { href: '/dashboard' }, 'Edit in dashboard') : null,
      ),
      descriptionEl,
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
  // "Started 3 minutes ago" stays true while the page is open.
  const clock = setInterval(() => {
    if (whenEl) whenEl.textContent = whenText(described);
  }, 30_000);
  ctx.signal.addEventListener('abort', () => clearInterval(clock), { once: true });
  // Processing: progress until it plays.
  if (video.status === 'processing') {
    every(2_000, ctx.signal, async () => {
      const v = await api(`/api/videos/${encodeURIComponent(video.id)}`, { signal: ctx.signal });
      showInfo(v);
      showMedia(v);
      return v.status === 'processing';
    });
  }

  return {
    get player() {
      return player;
    },
    /** New title, description or viewer count of the live video, changed in place. */
    update(live) {
      if (shown !== 'live') return;
      if (typeof live.title === 'string' && titleEl.textContent !== live.title) titleEl.textContent = live.title;
      if (typeof live.description === 'string') {
        descriptionEl.textContent = live.description;
        descriptionEl.hidden = !live.description;
      }
      if (Number.isFinite(live.viewers)) {
        viewersEl.textContent = plural(live.viewers, 'viewer');
        viewersEl.hidden = false;
      }
    },
    /** The broadcast is over: `current` is the video as the API now has it (null: deleted). */
    end(current) {
      if (!current) {
        if (player) player.ended();
        info.before(message('info', 'The broadcast has ended, and its recording is no longer available.'));
        return;
      }
      showInfo(current);
      showMedia(current);
    },
  };
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
  // The page learns that a live broadcast ended from the channel's events too (a player that is
  // paused does not load the playlist that says so).
  if (video.status === 'live') {
    followLiveVideo(video, ctx.signal, { onUpdate: () => {}, onEnded: () => player.ended() });
  }
}
