// The streamer's dashboard: create channels, edit their title, description and the visibility new
// streams start with, delete them (after typing the address); for each, the next stream's title,
// description and visibility (set before going live; while live, saving renames the live video),
// what to paste into OBS
// (server URL and the stream key, revealed on demand, copyable, replaceable after a confirmation),
// whether it is live with the stream's health, where it is simulcast to (restreams.js), and its
// videos to edit or delete.
//
// Stream keys are looked up by hash on the server; a sealed copy lets the owner see the current key
// again after typing her password. A key shown in this visit is kept in memory only (never in
// storage) and forgotten when she signs out.

import { api, fieldMessage } from '../api.js';
import { h, field, replace, message, setFieldError, clearFieldErrors, confirmDialog, copyText, uid } from '../dom.js';
import { copyButton, every, requireUser, statusBadge, thumbnail } from '../components.js';
import { ago, duration, kbps, plural } from '../format.js';
import { onSessionChange } from '../session.js';
import { restreamSection } from './restreams.js';

/** slug → stream key, for keys this visit created or replaced; forgotten when the user signs out. */
const knownKeys = new Map();
onSessionChange((user) => user || knownKeys.clear());

/** What `GET /api/server` said about where to publish: asked once per page load, null until then. */
let serverInfo = null;
let serverInfoRequest = null;

function loadServerInfo() {
  serverInfoRequest ??= api('/api/server').then(
    (info) => {
      serverInfo = info;
    },
    () => {
      serverInfoRequest = null; // asked again next time; meanwhile the port in the page is used
    },
  );
  return serverInfoRequest;
}

/** OBS's Server field: the operator's `rtmp.public_url`, else this host with the bound RTMP port. */
export function rtmpServerUrl() {
  if (serverInfo?.rtmp_url) return serverInfo.rtmp_url;
  const port = String(serverInfo?.rtmp_port ?? document.querySelector('meta[name="ferrocast-rtmp-port"]')?.content ?? '');
  const valid = /^\d+$/.test(port);
  return `rtmp://${location.hostname}${valid ? `:${port}` : ''}/live`;
}

export async function dashboardPage(main, ctx) {
  if (!requireUser(ctx)) return;
  ctx.title('Dashboard');
  const list = h('div', { class: 'channels' });
  const status = h('div', { class: 'status-area' });
  const cards = new Map();
  replace(
    main,
    h(
      'div',
      { class: 'page-head' },
      h('h1', {}, 'Dashboard'),
      h('div', { class: 'row-actions' }, h('a', { href: '/integrations', class: 'button secondary' }, 'Integrations'), h('a', { href: '/upload', class: 'button secondary' }, 'Upload a video')),
    ),
    status,
    list,
    createChannelForm(ctx, (channel) => {
      const card = channelCard(channel, ctx, onDeleted);
      cards.set(channel.slug, card);
      list.prepend(card.element);
      replace(status);
      card.element.querySelector('h2').focus();
    }),
  );

  function onDeleted(channel) {
    cards.get(channel.slug)?.element.remove();
    cards.delete(channel.slug);
    knownKeys.delete(channel.slug);
    replace(status, message('success', `Deleted the channel “${channel.title}” and its videos.`));
    const heading = main.querySelector('h1');
    heading.setAttribute('tabindex', '-1');
    heading.focus();
  }

  const serverInfoLoaded = loadServerInfo();
  let channels;
  try {
    channels = (await api('/api/channels', { signal: ctx.signal })).items;
    await serverInfoLoaded;
  } catch (e) {
    if (e.name === 'AbortError') throw e;
    replace(status, message('error', `Could not load your channels. ${e.message}`));
    return;
  }
  if (channels.length === 0) {
    status.append(h('p', { class: 'empty' }, 'You have no channel yet. Create one below to get a stream key for OBS.'));
  }
  for (const channel of channels) {
    const card = channelCard(channel, ctx, onDeleted);
    cards.set(channel.slug, card);
    list.append(card.element);
  }

  // Live status, health and processing progress, while the dashboard is open.
  every(5_000, ctx.signal, async () => {
    const current = (await api('/api/channels', { signal: ctx.signal })).items;
    for (const channel of current) {
      const card = cards.get(channel.slug);
      if (card) await card.update(channel);
    }
  });
}

/** What a channel's address may be (the API's slug rule), said the same way everywhere. */
const ADDRESS_RULE = '3–48 lowercase letters, digits and “-”';

const VISIBILITY_LABELS = { public: 'Public: listed and searchable', unlisted: 'Unlisted: anyone with the link', private: 'Private: only you' };

function visibilitySelect(name, current) {
  return h(
    'select',
    { name },
    Object.entries(VISIBILITY_LABELS).map(([value, label]) => h('option', { value, selected: current === value }, label)),
  );
}

/** Escape in a form cancels it, as Cancel does (unless a dialog or an open menu took the key). */
function cancelOnEscape(form, cancel) {
  form.addEventListener('keydown', (event) => {
    if (event.key !== 'Escape' || event.defaultPrevented || event.isComposing) return;
    event.preventDefault();
    cancel();
  });
}

function createChannelForm(ctx, onCreated) {
  const titleInput = h('input', { name: 'title', required: true, maxlength: 120, autocomplete: 'off' });
  const slugInput = h('input', { name: 'slug', required: true, minlength: 3, maxlength: 48, pattern: '[a-z0-9-]{3,48}', autocapitalize: 'none', spellcheck: 'false', autocomplete: 'off' });
  let slugEdited = false;
  titleInput.addEventListener('input', () => {
    if (!slugEdited) {
      slugInput.value = titleInput.value
        .toLowerCase()
        .normalize('NFKD')
        .replace(/[^a-z0-9]+/g, '-')
        .replace(/^-+|-+$/g, '')
        .slice(0, 48);
    }
  });
  slugInput.addEventListener('input', () => {
    slugEdited = true;
    // Addresses are lowercase (the server would lowercase it anyway): show what it will be.
    if (slugInput.value !== slugInput.value.toLowerCase()) {
      const caret = slugInput.selectionStart;
      slugInput.value = slugInput.value.toLowerCase();
      slugInput.setSelectionRange(caret, caret);
    }
  });
  const status = h('div', { class: 'status-area' });
  const button = h('button', { class: 'button', type: 'submit' }, 'Create channel');
  const form = h(
    'form',
    { class: 'form', novalidate: true },
    field('Title', titleInput),
    field('Address', slugInput, `Your channel's page will be ${location.origin}/c/your-address (${ADDRESS_RULE}). It cannot be changed later.`),
    field('Description (optional)', h('textarea', { name: 'description', rows: 2, maxlength: 5000 })),
    status,
    button,
  );
  form.addEventListener('submit', async (event) => {
    event.preventDefault();
    clearFieldErrors(form);
    replace(status);
    const values = Object.fromEntries(new FormData(form));
    for (const name of ['title', 'slug']) {
      if (!values[name].trim()) {
        setFieldError(form, name, 'Required.');
        form.elements.namedItem(name).focus();
        return;
      }
    }
    if (!/^[a-z0-9-]{3,48}$/.test(values.slug.trim())) {
      setFieldError(form, 'slug', `Use ${ADDRESS_RULE}.`);
      slugInput.focus();
      return;
    }
    button.disabled = true;
    try {
      const created = await api('/api/channels', { method: 'POST', body: { title: values.title.trim(), slug: values.slug.trim(), description: values.description.trim() }, signal: ctx.signal });
      knownKeys.set(created.slug, created.stream_key);
      form.reset();
      slugEdited = false;
      onCreated(created);
    } catch (e) {
      if (e.name === 'AbortError') return;
      // The server's rule for the slug is the same as the hint's, in its own words: say it the
      // hint's way.
      const text = e.field === 'slug' && e.code !== 'conflict' ? `Use ${ADDRESS_RULE}.` : fieldMessage(e);
      if (e.field && setFieldError(form, e.field, text)) form.elements.namedItem(e.field).focus();
      else status.append(message('error', e.message));
    } finally {
      button.disabled = false;
    }
  });
  return h('section', { class: 'section panel', 'aria-labelledby': 'create-channel' }, h('h2', { id: 'create-channel' }, 'Create a channel'), form);
}

/**
 * The next broadcast's title and description (empty: the channel's) and the visibility it starts
 * with. While the channel is live, saving renames the live video at once.
 */
function streamSetup(channel, ctx) {
  const headingId = uid('stream-setup');
  const title = h('input', { name: 'stream_title', value: channel.stream_title || '', maxlength: 120, autocomplete: 'off', placeholder: channel.title });
  const description = h('textarea', { name: 'stream_description', rows: 2, maxlength: 5000, placeholder: channel.description || '' }, channel.stream_description || '');
  const visibility = visibilitySelect('default_visibility', channel.default_visibility || 'public');
  const liveNote = h('p', { class: 'field-hint live-note', hidden: true }, 'You are live: saving also renames the stream that is on now.');
  const status = h('div', { class: 'status-area' });
  const save = h('button', { class: 'button small', type: 'submit' }, 'Save stream setup');
  const form = h(
    'form',
    { class: 'form stream-setup-form', novalidate: true, 'aria-labelledby': headingId },
    field('Stream title', title, 'Empty: the channel’s title.'),
    field('Stream description', description, 'Empty: the channel’s description.'),
    field('Visibility', visibility, 'Each video can be changed afterwards.'),
    liveNote,
    status,
    save,
  );
  form.addEventListener('input', () => replace(status));
  form.addEventListener('submit', async (event) => {
    event.preventDefault();
    clearFieldErrors(form);
    replace(status);
    save.disabled = true;
    try {
      const updated = await api(`/api/channels/${encodeURIComponent(channel.slug)}`, {
        method: 'PATCH',
        body: { stream_title: title.value.trim(), stream_description: description.value.trim(), default_visibility: visibility.value },
        signal: ctx.signal,
      });
      Object.assign(channel, updated);
      title.value = channel.stream_title || '';
      description.value = channel.stream_description || '';
      status.append(message('success', 'Saved.'));
    } catch (e) {
      if (e.name === 'AbortError') return;
      if (e.field && setFieldError(form, e.field, fieldMessage(e))) form.elements.namedItem(e.field)?.focus();
      else status.append(message('error', `Not saved. ${e.message}`));
    } finally {
      save.disabled = false;
    }
  });
  const element = h('section', { class: 'stream-setup', 'aria-labelledby': headingId }, h('h3', { id: headingId }, 'Next stream'), form);
  return {
    element,
    setLive(live) {
      liveNote.hidden = !live;
    },
    /** The edit form saved another visibility: show it here too. */
    showVisibility(value) {
      visibility.value = value;
    },
  };
}

function channelCard(channel, ctx, onDeleted) {
  const headingId = uid('channel');
  const heading = h('h2', { id: headingId, tabindex: '-1' }, channel.title);
  const liveBadge = h('span', { class: 'badge' });
  const editButton = h('button', { type: 'button', class: 'button small secondary', 'aria-label': `Edit channel “${channel.title}”`, onclick: () => editChannel() }, 'Edit channel');
  const deleteButton = h('button', { type: 'button', class: 'button small danger', 'aria-label': `Delete channel “${channel.title}”…`, onclick: () => deleteChannel() }, 'Delete channel…');
  const settingsArea = h('div', { class: 'channel-settings' });
  const health = h('div', { class: 'health', 'aria-live': 'polite' });
  const keyArea = h('div', { class: 'key-area' });
  const videos = h('div', { class: 'channel-videos' });
  const videosStatus = h('div', { class: 'status-area' });
  const restreams = restreamSection(channel.slug, ctx);
  const setup = streamSetup(channel, ctx);
  const element = h(
    'article',
    { class: 'channel-card panel', 'aria-labelledby': headingId, dataset: { slug: channel.slug } },
    h(
      'header',
      { class: 'channel-card-head' },
      heading,
      liveBadge,
      h('a', { href: `/c/${encodeURIComponent(channel.slug)}` }, `/c/${channel.slug}`),
      h('div', { class: 'row-actions channel-actions' }, editButton, deleteButton),
    ),
    settingsArea,
    setup.element,
    h(
      'section',
      { class: 'obs' },
      h('h3', {}, 'Stream with OBS'),
      h('p', { class: 'field-hint' }, 'In OBS: Settings → Stream → Service “Custom…”, then paste these two.'),
      h('dl', { class: 'settings' }, h('dt', {}, 'Server'), h('dd', {}, h('code', { class: 'server-url' }, rtmpServerUrl()), copyButton('server URL', rtmpServerUrl)), h('dt', {}, 'Stream key'), h('dd', {}, keyArea)),
    ),
    health,
    restreams.element,
    h('section', { class: 'videos-section' }, h('h3', {}, 'Videos'), videosStatus, videos),
  );

  function showKey({ revealed = false } = {}) {
    const key = knownKeys.get(channel.slug);
    const rotate = h('button', { type: 'button', class: 'button small secondary', onclick: rotateKey }, key ? 'Replace key…' : 'Get a new key…');
    if (!key) {
      const reveal = h('button', { type: 'button', class: 'button small secondary', onclick: askPassword }, 'Show key…');
      replace(keyArea, h('span', { class: 'muted' }, 'Hidden.'), reveal, rotate);
      return;
    }
    const code = h('code', { class: 'stream-key', dataset: { revealed: String(revealed) } }, revealed ? key : '•'.repeat(24));
    const toggle = h('button', { type: 'button', class: 'button small secondary', 'aria-pressed': String(revealed) }, revealed ? 'Hide' : 'Reveal');
    toggle.addEventListener('click', () => {
      showKey({ revealed: !revealed });
      keyArea.querySelector('button').focus();
    });
    replace(keyArea, code, toggle, copyButton('stream key', () => knownKeys.get(channel.slug)), rotate, h('p', { class: 'field-hint' }, 'Keep it secret: anyone with this key can stream to your channel. To see it again later, you will be asked for your password.'));
  }

  // The key is kept sealed on the server; seeing it again takes the account's password.
  function askPassword() {
    const input = h('input', { type: 'password', name: 'password', autocomplete: 'current-password', required: true });
    const status = h('div', { class: 'status-area' });
    const form = h(
      'form',
      { class: 'form reveal-form', novalidate: true },
      field('Your password, to show the key', input),
      status,
      h('div', { class: 'actions' }, h('button', { class: 'button small', type: 'submit' }, 'Show key'), h('button', { class: 'button small secondary', type: 'button', onclick: () => showKey() }, 'Cancel')),
    );
    form.addEventListener('submit', async (event) => {
      event.preventDefault();
      replace(status);
      try {
        const { stream_key: key } = await api(`/api/channels/${encodeURIComponent(channel.slug)}/stream-key/reveal`, { method: 'POST', body: { password: input.value }, signal: ctx.signal, retry: false });
        knownKeys.set(channel.slug, key);
        showKey({ revealed: true });
      } catch (e) {
        if (e.name === 'AbortError') return;
        status.append(message('error', e.code === 'bad_credentials' ? 'That is not your password.' : e.message));
        input.focus();
      }
    });
    replace(keyArea, form);
    input.focus();
  }

  async function rotateKey() {
    const confirmed = await confirmDialog({
      title: 'Replace the stream key?',
      body: 'The current key stops working at once: a stream using it cannot reconnect, and OBS needs the new key.',
      confirm: 'Replace key',
      danger: true,
    });
    if (!confirmed) return;
    try {
      const { stream_key: key } = await api(`/api/channels/${encodeURIComponent(channel.slug)}/stream-key`, { method: 'POST', signal: ctx.signal });
      knownKeys.set(channel.slug, key);
      showKey({ revealed: true });
      keyArea.prepend(message('success', 'New key made. The old one no longer works.'));
    } catch (e) {
      if (e.name !== 'AbortError') keyArea.append(message('error', `The key was not replaced. ${e.message}`));
    }
  }

  /** Title, description and default visibility, edited in place; the address stays. */
  function editChannel() {
    const status = h('div', { class: 'status-area' });
    const form = h(
      'form',
      { class: 'form channel-form', novalidate: true, 'aria-label': `Edit channel “${channel.title}”` },
      field('Title', h('input', { name: 'title', value: channel.title, required: true, maxlength: 120, autocomplete: 'off' })),
      field('Description', h('textarea', { name: 'description', rows: 3, maxlength: 5000 }, channel.description || '')),
      field('New live streams start as', visibilitySelect('default_visibility', channel.default_visibility || 'public'), 'You can change each video afterwards.'),
      h('p', { class: 'field-hint' }, 'The address ', h('code', {}, `/c/${channel.slug}`), ' cannot be changed.'),
      status,
      h('div', { class: 'actions' }, h('button', { class: 'button', type: 'submit' }, 'Save'), h('button', { type: 'button', class: 'button secondary', onclick: () => close() }, 'Cancel')),
    );
    function close(saved = false) {
      replace(settingsArea, saved ? message('success', 'Saved.') : null);
      editButton.hidden = false;
      editButton.focus();
    }
    cancelOnEscape(form, () => close());
    form.addEventListener('submit', async (event) => {
      event.preventDefault();
      clearFieldErrors(form);
      replace(status);
      const values = Object.fromEntries(new FormData(form));
      if (!values.title.trim()) {
        setFieldError(form, 'title', 'Required.');
        form.elements.namedItem('title').focus();
        return;
      }
      try {
        const updated = await api(`/api/channels/${encodeURIComponent(channel.slug)}`, {
          method: 'PATCH',
          body: { title: values.title.trim(), description: values.description.trim(), default_visibility: values.default_visibility },
          signal: ctx.signal,
        });
        Object.assign(channel, updated);
        setup.showVisibility(channel.default_visibility);
        heading.textContent = channel.title;
        editButton.setAttribute('aria-label', `Edit channel “${channel.title}”`);
        deleteButton.setAttribute('aria-label', `Delete channel “${channel.title}”…`);
        close(true);
      } catch (e) {
        if (e.name === 'AbortError') return;
        if (e.field && setFieldError(form, e.field, fieldMessage(e))) return;
        status.append(message('error', `Not saved. ${e.message}`));
      }
    });
    editButton.hidden = true;
    replace(settingsArea, form);
    form.elements.namedItem('title').focus();
  }

  /** Deleting takes the videos and uploads with it: the dialog says so and asks for the address. */
  async function deleteChannel() {
    const count =
      videoCount === null ? 'all its videos' : videoCount.total === 0 ? 'its videos (it has none now)' : `its ${videoCount.more ? `${videoCount.total} or more videos` : plural(videoCount.total, 'video')}`;
    const kinds = videoCount && videoCount.total ? ` (${[videoCount.recordings ? plural(videoCount.recordings, 'recording') : null, videoCount.uploads ? plural(videoCount.uploads, 'upload') : null].filter(Boolean).join(', ')})` : '';
    const confirmed = await confirmDialog({
      title: `Delete the channel “${channel.title}”?`,
      body: h(
        'div',
        {},
        h('p', {}, 'This deletes, for good:'),
        h(
          'ul',
          { class: 'delete-list' },
          h('li', {}, 'the channel and its page ', h('code', {}, `/c/${channel.slug}`), ', and its stream key'),
          h('li', {}, `${count}${kinds}, with their files`),
          h('li', {}, 'its unfinished uploads and simulcast targets'),
        ),
        lastLive ? h('p', { class: 'warn' }, 'It is live now: the stream is cut off.') : null,
        h('p', {}, 'This cannot be undone.'),
      ),
      typeToConfirm: { label: `Type the channel's address, ${channel.slug}, to confirm`, expected: channel.slug },
      confirm: 'Delete channel and videos',
      danger: true,
    });
    if (!confirmed) return;
    try {
      await api(`/api/channels/${encodeURIComponent(channel.slug)}`, { method: 'DELETE', signal: ctx.signal });
      onDeleted(channel);
    } catch (e) {
      if (e.name !== 'AbortError') replace(settingsArea, message('error', `Not deleted. ${e.message}`));
    }
  }

  let lastLive; // undefined until the first update, so that one always loads the videos
  let editing = 0;
  async function update(current) {
    if (editButton.hidden === false) Object.assign(channel, current);
    const live = current.live ? current.live_video_id : null;
    setup.setLive(Boolean(live));
    liveBadge.textContent = live ? 'LIVE' : 'Offline';
    liveBadge.className = live ? 'badge badge-live' : 'badge';
    if (live) {
      try {
        const video = await api(`/api/videos/${encodeURIComponent(live)}`, { signal: ctx.signal });
        showHealth(video, current);
      } catch (e) {
        if (e.name === 'AbortError') throw e;
        replace(health, message('error', `Could not read the stream's health. ${e.message}`));
      }
    } else {
      replace(health);
    }
    await restreams.refresh();
    if (live !== lastLive || videosNeedRefresh) {
      lastLive = live;
      if (!editing) await loadVideos();
    }
  }

  function showHealth(video, current) {
    const m = video.health;
    const rows = [['Watch', h('a', { href: `/watch/${encodeURIComponent(video.id)}` }, video.title)], ['Viewers', String(current.viewers ?? video.viewers ?? 0)]];
    if (m) {
      rows.push(
        ['Input', `${m.input_width}×${m.input_height} at ${Number(m.input_fps).toFixed(m.input_fps % 1 ? 2 : 0)} fps`],
        ['Bitrate', kbps(m.input_bitrate_kbps)],
        ['Codecs', [m.video_codec, m.audio_codec].filter(Boolean).join(' / ') || 'unknown'],
        ['Dropped frames', h('span', { class: m.dropped_frames > 0 ? 'warn' : null }, String(m.dropped_frames))],
        ['Live for', duration(m.uptime_secs)],
      );
      if (m.encoder) rows.push(['Encoder', m.encoder]);
      if (m.shed_rungs?.length) {
        const names = m.shed_rungs.join(', ');
        rows.push(['Renditions paused', h('span', { class: 'warn', title: 'This server cannot encode every rendition in real time; the paused ones show the next lower picture until it can.' }, `${names} (server busy)`)]);
      }
    }
    replace(
      health,
      h('h3', {}, 'Live now'),
      h(
        'dl',
        { class: 'health-grid' },
        rows.map(([k, v]) => [h('dt', {}, k), h('dd', {}, v)]),
      ),
    );
  }

  let videosNeedRefresh = false;
  /** What the last listing counted, for the delete dialog; null until it loaded. */
  let videoCount = null;
  async function loadVideos() {
    let page;
    try {
      page = await api(`/api/channels/${encodeURIComponent(channel.slug)}/videos?limit=50`, { signal: ctx.signal });
    } catch (e) {
      if (e.name === 'AbortError') throw e;
      replace(videosStatus, message('error', `Could not load the videos. ${e.message}`));
      return;
    }
    replace(videosStatus);
    videoCount = {
      total: page.items.length,
      more: Boolean(page.next_cursor),
      recordings: page.items.filter((v) => v.kind !== 'upload').length,
      uploads: page.items.filter((v) => v.kind === 'upload').length,
    };
    videosNeedRefresh = page.items.some((v) => v.status === 'processing' || v.status === 'live');
    replace(videos, page.items.length ? h('ul', { class: 'video-rows' }, page.items.map(videoRow)) : h('p', { class: 'empty' }, 'No videos yet: go live, or upload one.'));
  }

  function videoRow(video) {
    const row = h('li', { class: 'video-row', dataset: { id: video.id } });
    const show = (v) => {
      replace(
        row,
        h('a', { href: `/watch/${encodeURIComponent(v.id)}`, class: 'row-thumb', tabindex: '-1', 'aria-hidden': 'true' }, thumbnail(v.thumbnail_url)),
        h(
          'div',
          { class: 'row-main' },
          h('a', { href: `/watch/${encodeURIComponent(v.id)}`, class: 'row-title' }, v.title),
          h(
            'p',
            { class: 'meta' },
            statusBadge(v),
            h('span', { class: 'badge' }, v.visibility),
            h('span', {}, v.kind === 'upload' ? 'Upload' : 'Recording'),
            h('span', {}, ago(v.created_at)),
            v.duration_secs ? h('span', {}, duration(v.duration_secs)) : null,
          ),
          v.status === 'failed' && v.error ? message('error', v.error) : null,
        ),
        h(
          'div',
          { class: 'row-actions' },
          h('button', { type: 'button', class: 'button small secondary', onclick: () => edit(v), 'aria-label': `Edit “${v.title}”` }, 'Edit'),
          h('button', { type: 'button', class: 'button small danger', onclick: () => remove(v), 'aria-label': `Delete “${v.title}”` }, 'Delete'),
        ),
      );
    };
    const edit = (v) => {
      editing += 1;
      const visibility = visibilitySelect('visibility', v.visibility);
      const status = h('div', { class: 'status-area' });
      const form = h(
        'form',
        { class: 'form edit-form', novalidate: true },
        field('Title', h('input', { name: 'title', value: v.title, required: true, maxlength: 120 })),
        field('Description', h('textarea', { name: 'description', rows: 3, maxlength: 5000 }, v.description)),
        field('Visibility', visibility),
        status,
        h('div', { class: 'actions' }, h('button', { class: 'button', type: 'submit' }, 'Save'), h('button', { type: 'button', class: 'button secondary', onclick: done }, 'Cancel')),
      );
      function done(next) {
        editing -= 1;
        show(next && next.id ? next : v);
        if (next && next.id) row.querySelector('.row-main').append(message('success', 'Saved.'));
        row.querySelector('.row-title').focus();
      }
      cancelOnEscape(form, () => done());
      form.addEventListener('submit', async (event) => {
        event.preventDefault();
        clearFieldErrors(form);
        replace(status);
        const values = Object.fromEntries(new FormData(form));
        if (!values.title.trim()) {
          setFieldError(form, 'title', 'Required.');
          return;
        }
        try {
          const updated = await api(`/api/videos/${encodeURIComponent(v.id)}`, { method: 'PATCH', body: { title: values.title.trim(), description: values.description.trim(), visibility: values.visibility }, signal: ctx.signal });
          done(updated);
        } catch (e) {
          if (e.name === 'AbortError') return;
          if (e.field && setFieldError(form, e.field, fieldMessage(e))) return;
          status.append(message('error', `Not saved. ${e.message}`));
        }
      });
      replace(row, form);
      form.elements.namedItem('title').focus();
    };
    const remove = async (v) => {
      const confirmed = await confirmDialog({ title: 'Delete this video?', body: `“${v.title}” and its files will be deleted for good.`, confirm: 'Delete', danger: true });
      if (!confirmed) return;
      try {
        await api(`/api/videos/${encodeURIComponent(v.id)}`, { method: 'DELETE', signal: ctx.signal });
        const next = row.nextElementSibling || row.previousElementSibling;
        row.remove();
        videosStatus.append(message('success', `Deleted “${v.title}”.`));
        (next ? next.querySelector('.row-title') : element.querySelector('h2')).focus();
      } catch (e) {
        if (e.name !== 'AbortError') row.append(message('error', `Not deleted. ${e.message}`));
      }
    };
    show(video);
    return row;
  }

  showKey({ revealed: false });
  update(channel).catch((e) => e.name === 'AbortError' || console.warn(e));
  return { element, update };
}

