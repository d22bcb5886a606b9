// The video player: hls.js (loaded only when a page plays something) over a native <video>, with
// automatic quality plus a menu listing the renditions, and for live streams a LIVE badge that
// doubles as "go to live". Live plays in hls.js's low-latency mode (LL-HLS parts, blocking
// reloads), about a second behind the streamer; the badge dims when the player has fallen well
// behind that target. Safari and other browsers with HLS built in play it natively. Recoverable
// hls.js errors are retried; anything else is said in words under the video.

import { h, replace } from './dom.js';

// How far behind its target latency the player may drift before the badge offers "Go to live".
const BEHIND_TARGET_SLACK_SECS = 2;

/**
 * Mounts a player for `src` (an HLS master playlist URL) into `container`. `live` says whether the
 * video is streaming now. Stops and frees everything when `signal` aborts.
 */
export function mountPlayer(container, { src, live, title, poster, signal, actions = null }) {
  const video = h('video', { controls: true, playsinline: true, preload: 'auto', poster: poster || null, 'aria-label': title ? `Video: ${title}` : 'Video' });
  const liveButton = h('button', { type: 'button', class: 'live-button', hidden: !live, 'aria-label': 'Live' }, 'LIVE');
  const qualityId = `quality-${Math.random().toString(36).slice(2, 8)}`;
  const quality = h('select', { id: qualityId, class: 'quality', disabled: true }, h('option', { value: '-1' }, 'Auto'));
  const qualityField = h('span', { class: 'quality-field' }, h('label', { for: qualityId }, 'Quality'), quality);
  const problem = h('div', { class: 'player-problem', role: 'alert', hidden: true });
  // Shown over the picture when the browser allowed autoplay only without sound (see start()).
  const unmuteButton = h('button', { type: 'button', class: 'unmute-button', hidden: true, 'aria-label': 'Click to unmute the video' }, mutedIcon(), 'Click to unmute');
  const root = h(
    'div',
    { class: 'player', dataset: { state: 'loading', levels: '0' } },
    h('div', { class: 'player-frame' }, video, unmuteButton),
    h('div', { class: 'player-bar' }, liveButton, actions, qualityField),
    problem,
  );
  replace(container, root);

  let hls = null;
  let isLive = Boolean(live);
  const cleanups = [];
  const setState = (state) => {
    root.dataset.state = state;
  };

  function fail(text, retry) {
    setState('error');
    problem.hidden = false;
    replace(problem, h('p', {}, text), retry ? h('button', { type: 'button', class: 'button secondary', onclick: retry }, 'Try again') : null);
  }

  function clearProblem() {
    problem.hidden = true;
    problem.replaceChildren();
  }

  async function start() {
    // Autoplay with sound is often refused until the user has interacted; then play muted and say
    // so over the picture (a muted video looks broken otherwise), and if even that is refused the
    // user presses play.
    try {
      await video.play();
    } catch (e) {
      if (e.name !== 'NotAllowedError') return;
      video.muted = true;
      unmuteButton.hidden = false;
      try {
        await video.play();
      } catch {
        // Left paused: the cue's click (a gesture) plays with sound, the native controls muted.
      }
    }
  }

  unmuteButton.addEventListener('click', () => {
    video.muted = false;
    if (video.volume === 0) video.volume = 1;
    unmuteButton.hidden = true;
    // Unmuting counts as the user's gesture, so a video that was paused can play with sound now.
    if (video.paused) video.play().catch(() => {});
    video.focus();
  });
  // Unmuted another way (the native controls, a keyboard shortcut): the cue has done its job.
  video.addEventListener('volumechange', () => {
    if (!video.muted && video.volume > 0) unmuteButton.hidden = true;
  });

  // Where "live" is: hls.js's position at its target latency (PART-HOLD-BACK from the playlist),
  // or the end of what a native player can seek to.
  function liveEdge() {
    if (hls && Number.isFinite(hls.liveSyncPosition)) return hls.liveSyncPosition;
    const ranges = video.seekable;
    return ranges.length ? ranges.end(ranges.length - 1) : NaN;
  }

  // Seconds behind where live playback should be.
  function behindLive() {
    if (hls && Number.isFinite(hls.latency) && Number.isFinite(hls.targetLatency)) return hls.latency - hls.targetLatency;
    const edge = liveEdge();
    return Number.isFinite(edge) ? edge - video.currentTime : NaN;
  }

  function updateLiveButton() {
    liveButton.hidden = !isLive;
    if (!isLive) return;
    const behind = video.paused || behindLive() > BEHIND_TARGET_SLACK_SECS;
    liveButton.classList.toggle('behind', behind);
    liveButton.textContent = behind ? 'Go to live' : 'LIVE';
    liveButton.setAttribute('aria-label', behind ? 'Go to the live edge' : 'Playing live');
  }

  liveButton.addEventListener('click', () => {
    const edge = liveEdge();
    if (Number.isFinite(edge)) video.currentTime = edge;
    start();
  });
  for (const event of ['timeupdate', 'pause', 'play', 'seeked']) video.addEventListener(event, updateLiveButton);
  video.addEventListener('playing', () => {
    setState('playing');
    clearProblem();
  });

  function showLevels(levels) {
    const options = levels
      .map((level, index) => ({ index, height: level.height, bitrate: level.bitrate }))
      .sort((a, b) => b.height - a.height || b.bitrate - a.bitrate)
      .map((l) => h('option', { value: String(l.index) }, l.height ? `${l.height}p` : `${Math.round(l.bitrate / 1000)} kbit/s`));
    replace(quality, h('option', { value: '-1' }, 'Auto'), options);
    quality.disabled = levels.length < 2;
    root.dataset.levels = String(levels.length);
  }

  function showAutoLevel() {
    if (!hls) return;
    // The menu follows hls.js's list even if MANIFEST_PARSED was missed (a reload after a retry).
    if (root.dataset.levels !== String(hls.levels.length)) showLevels(hls.levels);
    if (hls.autoLevelEnabled === false) return;
    const level = hls.levels[hls.currentLevel];
    quality.options[0].textContent = level && level.height ? `Auto (${level.height}p)` : 'Auto';
  }

  quality.addEventListener('change', () => {
    if (!hls) return;
    const index = Number(quality.value);
    hls.currentLevel = index;
    if (index === -1) showAutoLevel();
    else quality.options[0].textContent = 'Auto';
  });

  async function attachHls() {
    let Hls;
    try {
      ({ default: Hls } = await import('hls.js/light'));
    } catch {
      fail('The player could not be loaded. Check your connection and reload the page.', () => location.reload());
      return;
    }
    if (signal.aborted) return;
    if (!Hls.isSupported()) {
      if (video.canPlayType('application/vnd.apple.mpegurl')) return attachNative();
      fail('This browser cannot play HLS video. Try a current Chrome, Firefox, Edge or Safari.');
      return;
    }
    // Low-latency mode follows the playlist's PART-HOLD-BACK; a player that fell behind (a stall, a
    // background tab) catches up by playing up to 1.25x instead of jumping.
    hls = new Hls({ capLevelToPlayerSize: true, backBufferLength: 60, enableWorker: true, lowLatencyMode: true, maxLiveSyncPlaybackRate: 1.25 });
    let networkRetries = 0;
    let manifestRetries = 0;
    hls.on(Hls.Events.MANIFEST_PARSED, (_event, data) => {
      showLevels(data.levels);
      start();
    });
    hls.on(Hls.Events.LEVEL_SWITCHED, showAutoLevel);
    hls.on(Hls.Events.LEVEL_LOADED, (_event, data) => {
      networkRetries = 0;
      if (isLive && !data.details.live) {
        // The playlist got ENDLIST: the broadcast is over and this is now the recording.
        isLive = false;
        root.dispatchEvent(new CustomEvent('live-ended', { bubbles: true }));
      }
      updateLiveButton();
    });
    hls.on(Hls.Events.ERROR, (_event, data) => {
      if (!data.fatal) return;
      const manifestMissing = data.details === Hls.ErrorDetails.MANIFEST_LOAD_ERROR && data.response && data.response.code === 404;
      if (isLive && manifestMissing && manifestRetries < 15) {
        // A stream that has just gone live has no playlist until its first segments are written.
        manifestRetries += 1;
        setState('starting');
        problem.hidden = false;
        replace(problem, h('p', {}, 'The stream is starting…'));
        setTimeout(() => hls && hls.loadSource(src), 2000);
      } else if (data.type === Hls.ErrorTypes.NETWORK_ERROR && !manifestMissing && networkRetries < 5) {
        networkRetries += 1;
        setTimeout(() => hls && hls.startLoad(), 1000 * networkRetries);
      } else if (data.type === Hls.ErrorTypes.MEDIA_ERROR) {
        hls.recoverMediaError();
      } else {
        const notFound = data.response && (data.response.code === 404 || data.response.code === 403);
        hls.destroy();
        hls = null;
        fail(
          notFound ? 'This video is not available (it may have been removed, or its link expired). Reload the page to try again.' : 'The video stopped loading. Check your connection and try again.',
          () => {
            clearProblem();
            setState('loading');
            attachHls();
          },
        );
      }
    });
    hls.loadSource(src);
    hls.attachMedia(video);
  }

  function attachNative() {
    quality.replaceChildren(h('option', { value: '-1' }, 'Auto'));
    quality.disabled = true;
    video.addEventListener('loadedmetadata', () => start(), { once: true });
    video.addEventListener('error', () => fail('The video could not be played. Reload the page to try again.'));
    video.src = src;
  }

  const timer = setInterval(updateLiveButton, 1000);
  cleanups.push(() => clearInterval(timer));
  signal.addEventListener('abort', () => {
    cleanups.forEach((fn) => fn());
    if (hls) hls.destroy();
    hls = null;
    video.removeAttribute('src');
    video.load();
  });

  if (typeof MediaSource === 'undefined' && typeof ManagedMediaSource === 'undefined' && video.canPlayType('application/vnd.apple.mpegurl')) attachNative();
  else attachHls();

  return {
    element: root,
    video,
    /** Marks the stream as no longer live (the page learnt it from the API). */
    ended() {
      isLive = false;
      updateLiveButton();
    },
  };
}

/** A loudspeaker with a cross: drawn, not an emoji, so that it looks the same without emoji fonts. */
function mutedIcon() {
  const ns = 'http://www.w3.org/2000/svg';
  const svg = document.createElementNS(ns, 'svg');
  svg.setAttribute('viewBox', '0 0 24 24');
  svg.setAttribute('aria-hidden', 'true');
  svg.setAttribute('focusable', 'false');
  const path = document.createElementNS(ns, 'path');
  path.setAttribute('d', 'M3 9h4l5-4v14l-5-4H3z M16 9l5 6 M21 9l-5 6');
  svg.append(path);
  return svg;
}
