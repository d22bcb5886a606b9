// A channel's simulcast targets, inside its dashboard card: where the live stream is also pushed
// (YouTube, Twitch, another server), each with its state as the server reports it (live with the
// bitrate, retrying with the error), a switch to pause it and a delete. The URL holds the other
// service's stream key, so after it is added the server only ever shows it masked.

import { api, fieldMessage } from '../api.js';
import { h, field, replace, message, setFieldError, clearFieldErrors, confirmDialog, uid } from '../dom.js';
import { ago, kbps } from '../format.js';

const STATE_LABELS = { idle: 'Waiting for you to go live', connecting: 'Connecting…', live: 'Live', retrying: 'Retrying' };

/** The section for channel `slug`; `refresh()` re-reads the states (called by the dashboard's poll). */
export function restreamSection(slug, ctx) {
  const base = `/api/channels/${encodeURIComponent(slug)}/restreams`;
  const headingId = uid('restreams');
  const list = h('ul', { class: 'restream-rows' });
  const status = h('div', { class: 'status-area' });
  const urlInput = h('input', { name: 'url', type: 'text', required: true, autocomplete: 'off', spellcheck: 'false', placeholder: 'rtmp://a.rtmp.youtube.com/live2/your-stream-key' });
  const addButton = h('button', { class: 'button small', type: 'submit' }, 'Add target');
  const form = h(
    'form',
    { class: 'form restream-form', novalidate: true },
    field('Server URL with the stream key', urlInput, 'From the other service’s stream settings: its server URL, a “/”, then its stream key. Pushed as you send it, no re-encoding.'),
    addButton,
  );
  const element = h(
    'section',
    { class: 'restreams', 'aria-labelledby': headingId },
    h('h3', { id: headingId }, 'Simulcast'),
    h('p', { class: 'field-hint' }, 'While you are live here, the same stream also goes to these services.'),
    status,
    list,
    form,
  );

  form.addEventListener('submit', async (event) => {
    event.preventDefault();
    clearFieldErrors(form);
    replace(status);
    if (!urlInput.value.trim()) {
      setFieldError(form, 'url', 'Required.');
      urlInput.focus();
      return;
    }
    addButton.disabled = true;
    try {
      await api(base, { method: 'POST', body: { url: urlInput.value.trim() }, signal: ctx.signal });
      form.reset();
      status.append(message('success', 'Target added. Its stream key is hidden from now on.'));
      await refresh();
    } catch (e) {
      if (e.name === 'AbortError') return;
      if (e.field && setFieldError(form, e.field, fieldMessage(e))) urlInput.focus();
      else status.append(message('error', e.message));
    } finally {
      addButton.disabled = false;
    }
  });

  function row(target) {
    const toggle = h('input', { type: 'checkbox', checked: target.enabled });
    toggle.addEventListener('change', async () => {
      toggle.disabled = true;
      try {
        await api(`${base}/${encodeURIComponent(target.id)}`, { method: 'PATCH', body: { enabled: toggle.checked }, signal: ctx.signal });
        await refresh();
      } catch (e) {
        if (e.name === 'AbortError') return;
        toggle.checked = !toggle.checked;
        status.append(message('error', `Not changed. ${e.message}`));
      } finally {
        toggle.disabled = false;
      }
    });
    const remove = h('button', { type: 'button', class: 'button small secondary' }, 'Delete…');
    remove.setAttribute('aria-label', `Delete the target ${target.url}`);
    remove.addEventListener('click', async () => {
      const confirmed = await confirmDialog({ title: 'Delete this target?', body: `${target.url} stops receiving your stream within seconds.`, confirm: 'Delete', danger: true });
      if (!confirmed) return;
      try {
        await api(`${base}/${encodeURIComponent(target.id)}`, { method: 'DELETE', signal: ctx.signal });
        await refresh();
      } catch (e) {
        if (e.name !== 'AbortError') status.append(message('error', `Not deleted. ${e.message}`));
      }
    });
    const state = target.enabled ? target.state : 'idle';
    const details = [STATE_LABELS[state] ?? state];
    if (state === 'live' && target.bitrate_kbps) details.push(kbps(target.bitrate_kbps));
    if (!target.enabled) details[0] = 'Paused';
    return h(
      'li',
      { class: 'restream-row', dataset: { id: target.id, state: target.enabled ? target.state : 'paused' } },
      h('code', { class: 'restream-url' }, target.url),
      h('span', { class: state === 'live' ? 'badge badge-live' : state === 'retrying' ? 'badge badge-warn' : 'badge' }, details.join(' · ')),
      target.last_error && (state === 'retrying' || state === 'connecting')
        ? h('p', { class: 'field-error restream-error' }, `${target.last_error}${target.state_at ? ` (${ago(target.state_at)})` : ''}`)
        : null,
      h('label', { class: 'inline-check' }, toggle, ' Push while live'),
      remove,
    );
  }

  async function refresh() {
    let targets;
    try {
      targets = (await api(base, { signal: ctx.signal })).items;
    } catch (e) {
      if (e.name === 'AbortError') throw e;
      replace(status, message('error', `Could not load the simulcast targets. ${e.message}`));
      return;
    }
    replace(list, targets.map(row));
  }

  return { element, refresh };
}
