// Uploading a video: pick or drop a file, a progress bar over the parallel parts (with speed and
// time left), automatic retries when the connection drops, resuming after a reload by picking the
// same file again, then the transcode progress, then a link to watch.

import { api, fieldMessage } from '../api.js';
import { h, field, replace, message, setFieldError, clearFieldErrors, confirmDialog } from '../dom.js';
import { every, requireUser } from '../components.js';
import { bytes } from '../format.js';
import { discardUpload, forget, pendingFor, pendingUploads, uploadFile } from '../uploader.js';

const VIDEO_EXTENSIONS = /\.(mp4|m4v|mov|mkv|webm|avi|flv|ts|mts|m2ts|mpg|mpeg|wmv|3gp|ogv)$/i;

export async function uploadPage(main, ctx) {
  if (!requireUser(ctx)) return;
  ctx.title('Upload');
  const status = h('div', { class: 'status-area' });
  replace(main, h('h1', {}, 'Upload a video'), status);

  let channels;
  try {
    channels = (await api('/api/channels', { signal: ctx.signal })).items;
  } catch (e) {
    if (e.name === 'AbortError') throw e;
    status.append(message('error', `Could not load your channels. ${e.message}`));
    return;
  }
  if (channels.length === 0) {
    status.append(h('p', { class: 'empty' }, 'Videos belong to a channel, and you have none yet. ', h('a', { href: '/dashboard' }, 'Create a channel in your dashboard'), ', then come back.'));
    return;
  }

  const pendingSection = h('section', { class: 'section panel', 'aria-labelledby': 'pending-heading', hidden: true });
  // Empty until an upload starts (style.css hides an empty panel).
  const work = h('section', { class: 'section panel', 'aria-live': 'polite' });
  const form = uploadForm(channels, ctx.query.get('channel'));
  main.append(pendingSection, form.element, work);

  async function showPending() {
    const list = pendingUploads();
    pendingSection.hidden = list.length === 0;
    if (!list.length) return;
    const rows = await Promise.all(
      list.map(async (entry) => {
        try {
          const state = await api(`/api/uploads/${encodeURIComponent(entry.id)}`, { signal: ctx.signal });
          if (state.status !== 'open') {
            forget(entry.id);
            return state.video_id ? pendingRow(entry, { done: state.video_id }) : null;
          }
          const have = state.parts.length / Math.max(1, state.part_count);
          return pendingRow(entry, { have });
        } catch (e) {
          if (e.name === 'AbortError') throw e;
          if (e.status === 404 || e.status === 403) {
            forget(entry.id);
            return null;
          }
          return pendingRow(entry, { error: e.message });
        }
      }),
    );
    const shown = rows.filter(Boolean);
    pendingSection.hidden = shown.length === 0;
    replace(pendingSection, h('h2', { id: 'pending-heading' }, 'Unfinished uploads'), h('p', { class: 'field-hint' }, 'Choose the same file again below to continue where it stopped.'), h('ul', { class: 'pending-list' }, shown));
  }

  function pendingRow(entry, { have, done, error }) {
    const row = h('li', {});
    const discard = h('button', { type: 'button', class: 'button small secondary' }, 'Discard');
    discard.addEventListener('click', async () => {
      const ok = await confirmDialog({ title: 'Discard this upload?', body: `What was sent of “${entry.filename}” is deleted from the server.`, confirm: 'Discard', danger: true });
      if (!ok) return;
      try {
        await discardUpload(entry.id);
        row.remove();
        if (!pendingSection.querySelector('li')) pendingSection.hidden = true;
      } catch (e) {
        row.append(message('error', `Not discarded. ${e.message}`));
      }
    });
    const detail = done
      ? h('a', { href: `/watch/${encodeURIComponent(done)}` }, 'Finished: watch')
      : error
        ? h('span', { class: 'muted' }, error)
        : h('span', { class: 'muted' }, `${Math.floor(have * 100)}% uploaded`);
    replace(row, h('span', { class: 'pending-name' }, entry.filename), ' ', h('span', { class: 'muted' }, bytes(entry.size)), ' · ', detail, ' ', done ? null : discard);
    return row;
  }

  await showPending();

  let running = null;
  ctx.signal.addEventListener('abort', () => running && running.abort());

  form.onSubmit(async ({ file, channel, title, description, visibility }) => {
    running = new AbortController();
    form.element.hidden = true;
    pendingSection.hidden = true;
    const progress = h('progress', { max: 100, value: 0, 'aria-labelledby': 'upload-heading' });
    const percent = h('span', { class: 'percent' }, '0%');
    const detail = h('p', { class: 'meta' }, 'Starting…');
    const note = h('div', { class: 'status-area' });
    const pause = h('button', { type: 'button', class: 'button secondary' }, 'Pause');
    const cancel = h('button', { type: 'button', class: 'button danger' }, 'Cancel upload');
    const actions = h('div', { class: 'actions' }, pause, cancel);
    replace(work, h('h2', { id: 'upload-heading' }, `Uploading “${file.name}”`), h('div', { class: 'progress-line' }, progress, percent), detail, note, actions);
    work.querySelector('h2').setAttribute('tabindex', '-1');
    work.querySelector('h2').focus();

    let uploadId = null;
    const speed = speedometer();
    let lastAnnounced = -10;
    const retrying = new Set();
    const events = {
      started: ({ id, resumed }) => {
        uploadId = id;
        if (resumed) replace(note, message('info', 'Continuing an earlier upload of this file: only the missing parts are sent.'));
      },
      progress: ({ sent, total }) => {
        const pct = total ? Math.floor((sent / total) * 100) : 100;
        progress.value = pct;
        percent.textContent = `${pct}%`;
        const rate = speed(sent);
        const left = rate > 0 ? Math.ceil((total - sent) / rate) : null;
        detail.textContent = `${bytes(sent)} of ${bytes(total)}${rate > 0 ? ` · ${bytes(rate)}/s` : ''}${left !== null && sent < total ? ` · about ${timeLeft(left)} left` : ''}`;
        if (pct - lastAnnounced >= 10 || pct === 100) {
          lastAnnounced = pct;
          progress.setAttribute('aria-valuetext', `${pct}% uploaded`);
        }
      },
      partDone: ({ part }) => {
        if (retrying.delete(part) && retrying.size === 0) replace(note);
      },
      retrying: ({ part, delayMs, error }) => {
        retrying.add(part);
        const why = error.status === 0 ? 'The connection dropped.' : `The server answered: ${error.message}`;
        replace(note, message('warning', `${why} Retrying in ${Math.round(delayMs / 1000)} s… The parts already sent are kept.`));
      },
      completing: () => {
        detail.textContent = 'All parts sent. Putting the file together…';
        pause.disabled = true;
      },
    };

    pause.addEventListener('click', () => running.abort());
    cancel.addEventListener('click', async () => {
      const ok = await confirmDialog({ title: 'Cancel this upload?', body: 'What was sent is deleted from the server.', confirm: 'Cancel upload', danger: true });
      if (!ok) return;
      running.abort();
      if (uploadId) await discardUpload(uploadId).catch(() => {});
      replace(work, message('info', 'Upload cancelled.'));
      form.element.hidden = false;
    });

    let videoId;
    try {
      videoId = await uploadFile(file, { channel, title, description, visibility }, events, running.signal);
    } catch (e) {
      if (ctx.signal.aborted) return;
      if (e.name === 'AbortError') {
        if (!uploadId || !pendingUploads().some((p) => p.id === uploadId)) return;
        replace(
          work,
          h('h2', {}, 'Upload paused'),
          message('info', `“${file.name}” is paused at ${progress.value}%. It continues from there when you resume, even after a reload (choose the same file again).`),
          h('div', { class: 'actions' }, h('button', { type: 'button', class: 'button', onclick: () => form.resubmit(file) }, 'Resume')),
        );
        await showPending();
        return;
      }
      const unreadable = e.name === 'NotReadableError' || e.name === 'NotFoundError';
      const text = unreadable ? 'The file could not be read any more: it may have been moved, renamed or changed. Choose it again.' : e.field === 'size' ? tooLarge(e, file) : e.message;
      replace(work, h('h2', {}, 'Upload stopped'), message('error', text));
      if (e.status === 0 || e.status >= 500) work.append(h('p', {}, 'What was sent is kept: choose the same file again to continue.'));
      form.element.hidden = false;
      if (e.field && e.field !== 'size' && e.field !== 'channel') form.showFieldError(e);
      await showPending();
      return;
    }
    running = null;
    await transcode(work, videoId, ctx);
  });
}

function tooLarge(error, file) {
  const limit = Number((error.message.match(/(\d+)-byte/) || [])[1]);
  return Number.isFinite(limit) && limit > 0 ? `This file is ${bytes(file.size)}; this server accepts files up to ${bytes(limit)}.` : fieldMessage(error);
}

function timeLeft(secs) {
  if (secs < 60) return `${secs} s`;
  if (secs < 3600) return `${Math.ceil(secs / 60)} min`;
  return `${(secs / 3600).toFixed(1)} h`;
}

/** Bytes per second over the last few seconds. */
function speedometer() {
  const samples = [];
  return (sent) => {
    const now = performance.now();
    samples.push([now, sent]);
    while (samples.length > 2 && now - samples[0][0] > 5000) samples.shift();
    const [t0, s0] = samples[0];
    return now - t0 > 500 ? ((sent - s0) * 1000) / (now - t0) : 0;
  };
}

/** After the upload: the transcode's progress, then a link to the video (or why it failed). */
async function transcode(work, videoId, ctx) {
  const watchHref = `/watch/${encodeURIComponent(videoId)}`;
  const progress = h('progress', { max: 100, 'aria-label': 'Processing' });
  const percent = h('span', { class: 'percent' }, '');
  const detail = h('p', { class: 'meta' }, 'Waiting for the transcoder…');
  replace(work, h('h2', {}, 'Uploaded. Processing…'), h('div', { class: 'progress-line' }, progress, percent), detail, h('p', {}, 'You can leave this page: processing continues, and the video appears on your ', h('a', { href: '/dashboard' }, 'dashboard'), '.'));
  every(2_000, ctx.signal, async () => {
    const video = await api(`/api/videos/${encodeURIComponent(videoId)}`, { signal: ctx.signal });
    if (video.status === 'processing') {
      if (Number.isFinite(video.progress)) {
        progress.value = video.progress;
        percent.textContent = `${Math.floor(video.progress)}%`;
        detail.textContent = 'Encoding the quality levels…';
      }
      return true;
    }
    if (video.status === 'ready') {
      replace(work, h('h2', {}, 'Your video is ready'), message('success', `“${video.title}” has been processed.`), h('p', {}, h('a', { href: watchHref, class: 'button' }, 'Watch it')), h('p', {}, h('a', { href: '/upload' }, 'Upload another')));
      work.querySelector('a').focus();
    } else if (video.status === 'failed') {
      replace(work, h('h2', {}, 'Processing failed'), message('error', video.error ? `The video could not be processed: ${video.error}` : 'The video could not be processed.'), h('p', {}, h('a', { href: '/upload' }, 'Try another file')));
    }
    return false;
  });
}

function uploadForm(channels, preferredChannel) {
  // The native file input is visually hidden (it would say "No file chosen" a second time, in the
  // browser's words); its label is the visible button and takes its focus ring, and fileInfo says
  // what was picked.
  const fileInput = h('input', { type: 'file', name: 'file', accept: 'video/*,.mkv,.flv,.ts,.mts', class: 'file-input visually-hidden', id: 'upload-file' });
  const fileInfo = h('p', { class: 'file-info', id: 'upload-file-info' }, 'No file chosen.');
  const fileError = h('p', { class: 'field-error', id: 'upload-file-error', hidden: true });
  const drop = h(
    'div',
    { class: 'drop-zone' },
    fileInput,
    h('label', { for: 'upload-file', class: 'button secondary drop-label' }, 'Choose a video file'),
    h('span', { class: 'muted' }, 'or drop it here'),
    fileInfo,
    fileError,
  );
  fileInput.setAttribute('aria-describedby', 'upload-file-info upload-file-error');
  const channelSelect = h('select', { name: 'channel' }, channels.map((c) => h('option', { value: c.slug, selected: c.slug === preferredChannel }, c.title)));
  const titleInput = h('input', { name: 'title', required: true, maxlength: 120 });
  const visibility = h(
    'select',
    { name: 'visibility' },
    h('option', { value: 'public' }, 'Public: listed and searchable'),
    h('option', { value: 'unlisted' }, 'Unlisted: anyone with the link'),
    h('option', { value: 'private' }, 'Private: only you'),
  );
  const submit = h('button', { class: 'button', type: 'submit' }, 'Upload');
  const formEl = h(
    'form',
    { class: 'form', novalidate: true },
    drop,
    field('Channel', channelSelect),
    field('Title', titleInput),
    field('Description (optional)', h('textarea', { name: 'description', rows: 3, maxlength: 5000 })),
    field('Visibility', visibility),
    submit,
  );
  const element = h('section', { class: 'section panel', 'aria-label': 'New upload' }, formEl);
  let file = null;
  let handler = null;
  let titleTouched = false;
  titleInput.addEventListener('input', () => {
    titleTouched = true;
  });

  function setFileError(text) {
    fileError.textContent = text || '';
    fileError.hidden = !text;
    if (text) fileInput.setAttribute('aria-invalid', 'true');
    else fileInput.removeAttribute('aria-invalid');
  }

  function choose(next, { autoResume = true } = {}) {
    file = next;
    setFileError(null);
    if (!file) {
      fileInfo.textContent = 'No file chosen.';
      return;
    }
    const pending = pendingFor(file);
    const looksLikeVideo = file.type.startsWith('video/') || VIDEO_EXTENSIONS.test(file.name);
    fileInfo.textContent = `${file.name} · ${bytes(file.size)}${pending ? ' · continues an unfinished upload' : ''}`;
    if (file.size === 0) setFileError('This file is empty.');
    else if (!looksLikeVideo) setFileError('This does not look like a video file. You can still try: the server will say if it cannot use it.');
    if (pending) {
      titleInput.value = pending.title || titleInput.value;
      if (pending.channel) channelSelect.value = pending.channel;
    } else if (!titleTouched || !titleInput.value) {
      titleInput.value = file.name.replace(/\.[^.]+$/, '').replace(/[_]+/g, ' ').slice(0, 120);
    }
    // Picking the file of an unfinished upload continues it straight away.
    if (pending && handler && autoResume) formEl.requestSubmit();
  }

  fileInput.addEventListener('change', () => choose(fileInput.files[0] || null));
  for (const type of ['dragenter', 'dragover']) {
    drop.addEventListener(type, (event) => {
      event.preventDefault();
      drop.classList.add('dragging');
    });
  }
  for (const type of ['dragleave', 'drop']) drop.addEventListener(type, () => drop.classList.remove('dragging'));
  drop.addEventListener('drop', (event) => {
    event.preventDefault();
    const dropped = event.dataTransfer.files[0];
    if (dropped) choose(dropped);
  });

  formEl.addEventListener('submit', (event) => {
    event.preventDefault();
    clearFieldErrors(formEl);
    if (!file) {
      setFileError('Choose a file to upload.');
      fileInput.focus();
      return;
    }
    if (file.size === 0) {
      setFileError('This file is empty.');
      fileInput.focus();
      return;
    }
    const title = titleInput.value.trim();
    if (!title) {
      setFieldError(formEl, 'title', 'Required.');
      titleInput.focus();
      return;
    }
    const values = new FormData(formEl);
    handler({ file, channel: values.get('channel'), title, description: String(values.get('description') || '').trim(), visibility: values.get('visibility') });
  });

  return {
    element,
    onSubmit(fn) {
      handler = fn;
    },
    resubmit(sameFile) {
      choose(sameFile, { autoResume: false });
      formEl.requestSubmit();
    },
    showFieldError(error) {
      setFieldError(formEl, error.field, fieldMessage(error));
    },
  };
}
