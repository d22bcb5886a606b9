// Integrations: personal access tokens for scripts and webhooks for other systems, for the
// signed-in user. A token and a webhook's signing secret are shown once, right after they are made
// (the server keeps only a hash of a token), with a copy button; the lists show the rest: scopes
// and last use of tokens, and each webhook's recent deliveries with their answers.

import { api, fieldMessage } from '../api.js';
import { h, field, replace, message, setFieldError, clearFieldErrors, confirmDialog, copyText, uid } from '../dom.js';
import { requireUser } from '../components.js';
import { ago } from '../format.js';

const SCOPES = [
  ['read', 'Read your channels, videos, uploads and webhooks (private ones too)'],
  ['uploads:write', 'Upload videos'],
  ['videos:write', 'Edit and delete videos'],
  ['channels:write', 'Create, edit and delete channels, replace stream keys, manage simulcast'],
  ['webhooks:write', 'Create, test and delete webhooks'],
  ['chat:write', 'Write in chats (a chat bot)'],
];
const EXPIRY = [
  ['30', '30 days'],
  ['90', '90 days'],
  ['365', '1 year'],
  ['', 'Never (until revoked)'],
];
const EVENTS = [
  ['stream.started', 'A channel goes live'],
  ['stream.ended', 'A live stream ends'],
  ['video.ready', 'A video can be watched'],
  ['video.failed', 'A video could not be processed'],
  ['upload.completed', 'An upload has arrived'],
];

export async function integrationsPage(main, ctx) {
  if (!requireUser(ctx)) return;
  ctx.title('Integrations');
  const tokens = tokensSection(ctx);
  const webhooks = webhooksSection(ctx);
  replace(
    main,
    h('div', { class: 'page-head' }, h('h1', {}, 'Integrations'), h('a', { href: '/dashboard', class: 'button secondary' }, 'Back to the dashboard')),
    h('p', { class: 'field-hint' }, 'For scripts and other systems: tokens to call the API (see /api/openapi.json), and webhooks that tell your systems when something happens.'),
    tokens.element,
    webhooks.element,
  );
  await Promise.all([tokens.refresh(), webhooks.refresh()]);
}

/** A secret shown once, with a copy button and the warning that it will not be shown again. */
function shownOnce(label, secret) {
  const copy = h('button', { type: 'button', class: 'button small secondary' }, 'Copy');
  copy.addEventListener('click', async () => {
    copy.textContent = (await copyText(secret)) ? 'Copied' : 'Copy failed';
  });
  return h(
    'div',
    { class: 'shown-once', role: 'status' },
    h('p', {}, h('strong', {}, label)),
    h('p', {}, h('code', { class: 'secret' }, secret), ' ', copy),
    h('p', { class: 'field-hint' }, 'Copy it now: it is not shown again.'),
  );
}

function checkboxes(legend, name, options, checked = []) {
  return h(
    'fieldset',
    { class: 'checks field' },
    h('legend', {}, legend),
    options.map(([value, label]) => h('label', { class: 'inline-check' }, h('input', { type: 'checkbox', name, value, checked: checked.includes(value) }), ` ${label} `, h('code', {}, value))),
  );
}

/** Shows a form error on its field when the API named one, else in `status`. */
function showError(form, status, e) {
  if (e.field && setFieldError(form, e.field, fieldMessage(e))) form.elements.namedItem(e.field)?.focus?.();
  else status.append(message('error', e.message));
}

function tokensSection(ctx) {
  const headingId = uid('tokens');
  const list = h('ul', { class: 'integration-rows' });
  const status = h('div', { class: 'status-area' });
  const created = h('div');
  const name = h('input', { name: 'name', required: true, maxlength: 80, autocomplete: 'off', placeholder: 'CI upload script' });
  const scopes = checkboxes('What it may do', 'scopes', SCOPES, ['read']);
  const expiry = h('select', { name: 'expires_in_days' }, EXPIRY.map(([value, label]) => h('option', { value, selected: value === '90' }, label)));
  const submit = h('button', { class: 'button', type: 'submit' }, 'Create token');
  const form = h('form', { class: 'form', novalidate: true }, field('Name', name), scopes, field('Expires', expiry), submit);

  form.addEventListener('submit', async (event) => {
    event.preventDefault();
    clearFieldErrors(form);
    replace(status);
    replace(created);
    const chosen = [...form.querySelectorAll('input[name=scopes]:checked')].map((i) => i.value);
    if (!name.value.trim()) {
      setFieldError(form, 'name', 'Required.');
      name.focus();
      return;
    }
    if (chosen.length === 0) {
      status.append(message('error', 'Choose at least one thing the token may do.'));
      return;
    }
    submit.disabled = true;
    try {
      const body = { name: name.value.trim(), scopes: chosen };
      if (expiry.value) body.expires_in_days = Number(expiry.value);
      const token = await api('/api/tokens', { method: 'POST', body, signal: ctx.signal });
      form.reset();
      replace(created, shownOnce(`Token “${token.name}” created. Send it as Authorization: Bearer …`, token.token));
      await refresh();
    } catch (e) {
      if (e.name !== 'AbortError') showError(form, status, e);
    } finally {
      submit.disabled = false;
    }
  });

  function row(token) {
    const revoke = h('button', { type: 'button', class: 'button small secondary' }, 'Revoke…');
    revoke.setAttribute('aria-label', `Revoke the token ${token.name}`);
    revoke.addEventListener('click', async () => {
      const ok = await confirmDialog({ title: 'Revoke this token?', body: `Scripts using “${token.name}” stop working at once.`, confirm: 'Revoke', danger: true });
      if (!ok) return;
      try {
        await api(`/api/tokens/${encodeURIComponent(token.id)}`, { method: 'DELETE', signal: ctx.signal });
        await refresh();
      } catch (e) {
        if (e.name !== 'AbortError') status.append(message('error', `Not revoked. ${e.message}`));
      }
    });
    const facts = [
      `${token.token_hint}…`,
      `created ${ago(token.created_at)}`,
      token.last_used_at ? `last used ${ago(token.last_used_at)}` : 'never used',
      token.expires_at ? `expires ${new Date(token.expires_at).toLocaleDateString()}` : 'never expires',
    ];
    return h(
      'li',
      { class: 'integration-row', dataset: { id: token.id } },
      h('div', { class: 'row-main' }, h('strong', {}, token.name), h('p', { class: 'meta' }, token.scopes.map((s) => h('span', { class: 'badge' }, s))), h('p', { class: 'field-hint' }, facts.join(' · '))),
      revoke,
    );
  }

  async function refresh() {
    try {
      const { items } = await api('/api/tokens', { signal: ctx.signal });
      replace(list, items.length ? items.map(row) : h('li', { class: 'empty' }, 'No tokens yet.'));
    } catch (e) {
      if (e.name === 'AbortError') throw e;
      replace(status, message('error', `Could not load your tokens. ${e.message}`));
    }
  }

  const element = h(
    'section',
    { class: 'section panel', 'aria-labelledby': headingId },
    h('h2', { id: headingId }, 'Access tokens'),
    h('p', { class: 'field-hint' }, 'For scripts: each token may do only what you tick, and can never change your password or make other tokens.'),
    list,
    created,
    status,
    form,
  );
  return { element, refresh };
}

function webhooksSection(ctx) {
  const headingId = uid('webhooks');
  const list = h('ul', { class: 'integration-rows' });
  const status = h('div', { class: 'status-area' });
  const created = h('div');
  const url = h('input', { name: 'url', type: 'url', required: true, autocomplete: 'off', placeholder: 'https://example.com/ferrocast-hook' });
  const events = checkboxes('Events', 'events', EVENTS, ['stream.started', 'stream.ended']);
  const channel = h('select', { name: 'channel' }, h('option', { value: '' }, 'All my channels'));
  const submit = h('button', { class: 'button', type: 'submit' }, 'Add webhook');
  const form = h('form', { class: 'form', novalidate: true }, field('URL', url, 'Receives a signed JSON POST for each event (header Ferrocast-Signature).'), events, field('Channel', channel), submit);
  let channels = [];

  form.addEventListener('submit', async (event) => {
    event.preventDefault();
    clearFieldErrors(form);
    replace(status);
    replace(created);
    const chosen = [...form.querySelectorAll('input[name=events]:checked')].map((i) => i.value);
    if (!url.value.trim()) {
      setFieldError(form, 'url', 'Required.');
      url.focus();
      return;
    }
    if (chosen.length === 0) {
      status.append(message('error', 'Choose at least one event.'));
      return;
    }
    submit.disabled = true;
    try {
      const body = { url: url.value.trim(), events: chosen };
      if (channel.value) body.channel = channel.value;
      const webhook = await api('/api/webhooks', { method: 'POST', body, signal: ctx.signal });
      form.reset();
      replace(created, shownOnce('Webhook added. Its signing secret:', webhook.secret));
      await refresh();
    } catch (e) {
      if (e.name !== 'AbortError') showError(form, status, e);
    } finally {
      submit.disabled = false;
    }
  });

  function row(webhook) {
    const deliveries = h('div', { class: 'deliveries', hidden: true });
    const show = h('button', { type: 'button', class: 'button small secondary', 'aria-expanded': 'false' }, 'Deliveries');
    const loadDeliveries = async () => {
      const { items } = await api(`/api/webhooks/${encodeURIComponent(webhook.id)}/deliveries`, { signal: ctx.signal });
      replace(
        deliveries,
        items.length
          ? h(
              'table',
              { class: 'deliveries-table' },
              h('thead', {}, h('tr', {}, ['Event', 'Status', 'Attempts', 'Answer', 'When'].map((c) => h('th', { scope: 'col' }, c)))),
              h(
                'tbody',
                {},
                items.map((d) =>
                  h(
                    'tr',
                    { dataset: { status: d.status } },
                    h('td', {}, d.event),
                    h('td', {}, d.status),
                    h('td', {}, String(d.attempts)),
                    h('td', {}, d.last_status_code ? `HTTP ${d.last_status_code}${d.last_latency_ms != null ? ` in ${d.last_latency_ms} ms` : ''}` : d.last_error || '—'),
                    h('td', {}, ago(d.created_at)),
                  ),
                ),
              ),
            )
          : h('p', { class: 'empty' }, 'Nothing delivered yet.'),
      );
    };
    show.addEventListener('click', async () => {
      const open = deliveries.hidden;
      deliveries.hidden = !open;
      show.setAttribute('aria-expanded', String(open));
      if (open) {
        try {
          await loadDeliveries();
        } catch (e) {
          if (e.name !== 'AbortError') replace(deliveries, message('error', `Could not load the deliveries. ${e.message}`));
        }
      }
    });
    const test = h('button', { type: 'button', class: 'button small secondary' }, 'Send a test');
    test.addEventListener('click', async () => {
      try {
        await api(`/api/webhooks/${encodeURIComponent(webhook.id)}/test`, { method: 'POST', signal: ctx.signal });
        test.textContent = 'Test queued';
        deliveries.hidden = false;
        show.setAttribute('aria-expanded', 'true');
        setTimeout(() => loadDeliveries().catch(() => {}), 1500);
      } catch (e) {
        if (e.name !== 'AbortError') status.append(message('error', `No test sent. ${e.message}`));
      }
    });
    const remove = h('button', { type: 'button', class: 'button small secondary' }, 'Delete…');
    remove.setAttribute('aria-label', `Delete the webhook ${webhook.url}`);
    remove.addEventListener('click', async () => {
      const ok = await confirmDialog({ title: 'Delete this webhook?', body: `${webhook.url} gets no more events, and its pending deliveries are dropped.`, confirm: 'Delete', danger: true });
      if (!ok) return;
      try {
        await api(`/api/webhooks/${encodeURIComponent(webhook.id)}`, { method: 'DELETE', signal: ctx.signal });
        await refresh();
      } catch (e) {
        if (e.name !== 'AbortError') status.append(message('error', `Not deleted. ${e.message}`));
      }
    });
    const scope = webhook.channel_id ? channels.find((c) => c.id === webhook.channel_id)?.title ?? 'one channel' : 'all channels';
    return h(
      'li',
      { class: 'integration-row', dataset: { id: webhook.id } },
      h('div', { class: 'row-main' }, h('code', { class: 'restream-url' }, webhook.url), h('p', { class: 'meta' }, webhook.events.map((e) => h('span', { class: 'badge' }, e))), h('p', { class: 'field-hint' }, `${scope} · added ${ago(webhook.created_at)}`)),
      h('div', { class: 'row-actions' }, test, show, remove),
      deliveries,
    );
  }

  async function refresh() {
    try {
      const [hooks, mine] = await Promise.all([api('/api/webhooks', { signal: ctx.signal }), api('/api/channels', { signal: ctx.signal })]);
      channels = mine.items;
      const selected = channel.value;
      replace(channel, h('option', { value: '' }, 'All my channels'), channels.map((c) => h('option', { value: c.slug, selected: c.slug === selected }, c.title)));
      replace(list, hooks.items.length ? hooks.items.map(row) : h('li', { class: 'empty' }, 'No webhooks yet.'));
    } catch (e) {
      if (e.name === 'AbortError') throw e;
      replace(status, message('error', `Could not load your webhooks. ${e.message}`));
    }
  }

  const element = h(
    'section',
    { class: 'section panel', 'aria-labelledby': headingId },
    h('h2', { id: headingId }, 'Webhooks'),
    list,
    created,
    status,
    form,
  );
  return { element, refresh };
}
