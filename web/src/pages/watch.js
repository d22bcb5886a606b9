// Watching: /watch/{video_id} plays one video (live, recording or upload; while an upload is still
// processing it shows the progress and starts playing when ready), /c/{slug} is a channel: its
// live stream when there is one, its videos below.

import { api } from '../api.js';
import { h, message, replace } from '../dom.js';
import { mountPlayer } from '../player.js';
import { every, videoGrid } from '../components.js';
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
  const stage = h('div', { class: 'stage' });
  replace(main, stage);
  watch(stage, video, ctx);
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
  const stage = h('div', { class: 'stage' });
  const videosSection = h('section', { class: 'section', 'aria-labelledby': 'channel-videos' }, h('h2', { id: 'channel-videos' }, 'Videos'));
  replace(
    main,
    h(
      'header',
      { class: 'channel-header' },
      h('h1', {}, channel.title),
      h('p', { class: 'meta' }, `by ${channel.owner}`),
      channel.description ? h('p', { class: 'description' }, channel.description) : null,
    ),
    stage,
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
    replace(
      info,
      title,
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
