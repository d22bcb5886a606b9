// The chat beside the player: `liveChat` talks to a channel's chat over a WebSocket
// (`/api/channels/{slug}/chat`, protocol in docs/api.md), `chatReplay` shows a recording's chat as
// playback reaches each message. Both are an `<aside class="chat">` that the watch pages put beside
// `.stage-main` (style.css: a column on wide screens, below the player on phones).
//
// Messages are text nodes only (dom.js's `h`), never HTML. A message shows when the server sends
// it back, the sender's own too: what is on screen is what was stored. The list follows new
// messages only while the reader is at its bottom; scrolled up, a button says there are new ones.

import { api } from './api.js';
import { h, message, replace, uid, confirmDialog } from './dom.js';
import { duration } from './format.js';
import { accessExpiresSoon, currentUser, onSessionChange, refreshSession } from './session.js';

const RECONNECT_MIN_MS = 1_000;
const RECONNECT_MAX_MS = 30_000;
/** The counter shows once this few characters are left. */
const COUNTER_FROM = 50;
/** Kept in the list at most; older ones are dropped from the top. */
const MAX_SHOWN = 500;

const clock = typeof Intl !== 'undefined' ? new Intl.DateTimeFormat(undefined, { hour: '2-digit', minute: '2-digit', hourCycle: 'h23' }) : null;

/** 14:05, in the reader's time zone. */
function hhmm(iso) {
  const date = new Date(iso);
  if (Number.isNaN(date.getTime())) return '';
  return clock ? clock.format(date) : `${String(date.getHours()).padStart(2, '0')}:${String(date.getMinutes()).padStart(2, '0')}`;
}

/** Characters as the server counts them (code points, not UTF-16 units). */
function length(text) {
  return [...text].length;
}

/**
 * The scrolling message list with "follow the bottom" and the "New messages" button. `items` are
 * `<li>`s made by the caller.
 */
function messageList(label) {
  const list = h('ol', { class: 'chat-list', role: 'log', 'aria-live': 'polite', 'aria-label': label, tabindex: '0' });
  const more = h('button', { type: 'button', class: 'chat-more button small', hidden: true }, 'New messages ↓');
  const atBottom = () => list.scrollHeight - list.scrollTop - list.clientHeight < 24;
  const toBottom = () => {
    list.scrollTop = list.scrollHeight;
    more.hidden = true;
  };
  more.addEventListener('click', () => {
    toBottom();
    list.focus({ preventScroll: true });
  });
  list.addEventListener('scroll', () => {
    if (atBottom()) more.hidden = true;
  });
  return {
    list,
    more,
    element: h('div', { class: 'chat-scroller' }, list, more),
    /** Adds `items` at the end, following them if the reader was at the bottom. */
    append(items, { follow = false } = {}) {
      if (!items.length) return;
      const was = atBottom();
      list.append(...items);
      while (list.childElementCount > MAX_SHOWN) list.firstElementChild.remove();
      if (was || follow) toBottom();
      else more.hidden = false;
    },
    /** Replaces everything (a reconnect resends the history) and goes to the bottom. */
    reset(items = []) {
      list.replaceChildren(...items);
      toBottom();
    },
    toBottom,
  };
}

/**
 * A channel's live chat. `slug` is the channel's address; the socket reconnects (1 s doubling to
 * 30 s) until `signal` aborts. Moderators (the channel's owner) get Delete and Ban on messages.
 */
export function liveChat(slug, signal) {
  const headingId = uid('chat');
  const status = h('p', { class: 'chat-status', role: 'status' });
  const bans = h('details', { class: 'chat-bans', hidden: true }, h('summary', {}, 'Banned users'), h('div', { class: 'chat-bans-body' }));
  const view = messageList('Chat messages');
  const input = h('input', { type: 'text', name: 'text', class: 'chat-input', autocomplete: 'off', enterkeyhint: 'send', placeholder: 'Say something…' });
  const inputId = uid('chat-input');
  input.id = inputId;
  const counter = h('span', { class: 'chat-counter', id: `${inputId}-count`, 'aria-live': 'polite', hidden: true });
  const error = h('p', { class: 'chat-error', id: `${inputId}-error`, role: 'alert', hidden: true });
  input.setAttribute('aria-describedby', `${counter.id} ${error.id}`);
  const send = h('button', { type: 'submit', class: 'button small' }, 'Send');
  const form = h(
    'form',
    { class: 'chat-form', novalidate: true },
    h('label', { for: inputId, class: 'visually-hidden' }, 'Chat message'),
    h('div', { class: 'chat-input-row' }, input, send),
    h('div', { class: 'chat-form-foot' }, error, counter),
  );
  const signIn = h('p', { class: 'chat-signin', hidden: true });
  const element = h(
    'aside',
    { class: 'chat', 'aria-labelledby': headingId },
    h('div', { class: 'chat-head' }, h('h2', { id: headingId }, 'Chat'), status),
    bans,
    view.element,
    form,
    signIn,
  );

  let socket = null;
  let welcome = null;
  let retryMs = RECONNECT_MIN_MS;
  let timer = null;
  let lastSent = null;
  let refreshedOnce = false;
  let connectedAt = 0;

  function showStatus(text) {
    status.textContent = text || '';
    status.hidden = !text;
  }

  function showError(text) {
    error.textContent = text || '';
    error.hidden = !text;
    if (text) input.setAttribute('aria-invalid', 'true');
    else input.removeAttribute('aria-invalid');
  }

  function updateCounter() {
    const max = welcome ? welcome.max_message_chars : 500;
    const left = max - length(input.value);
    counter.hidden = left > COUNTER_FROM;
    counter.textContent = left >= 0 ? `${left} left` : `${-left} too many`;
    counter.classList.toggle('over', left < 0);
  }

  function showWho() {
    const signedIn = Boolean(welcome && welcome.username);
    form.hidden = !signedIn;
    signIn.hidden = signedIn;
    if (!signedIn && currentUser()) {
      // Signed in here, yet the server did not take the session for the chat (its cookie
      // expired and could not be renewed, or this page is open under another address than the
      // server's public one).
      replace(signIn, 'The chat could not confirm that you are signed in. ', h('button', { type: 'button', class: 'link-button', onclick: () => location.reload() }, 'Reload the page'), ' to chat.');
    } else if (!signedIn) {
      const next = encodeURIComponent(location.pathname + location.search);
      replace(signIn, h('a', { href: `/login?next=${next}` }, 'Sign in to chat'), ' or ', h('a', { href: `/signup?next=${next}` }, 'create an account'), '.');
    } else if (welcome.banned) {
      showError("The channel's owner has banned you from this chat.");
    }
    bans.hidden = !(welcome && welcome.moderator);
  }

  function line(m) {
    const li = h(
      'li',
      { class: 'chat-msg', dataset: { id: m.id, username: m.username } },
      h('time', { datetime: m.at, class: 'chat-time' }, hhmm(m.at)),
      ' ',
      h('span', { class: 'chat-user' }, m.username),
      h('span', { class: 'visually-hidden' }, ':'),
      ' ',
      h('span', { class: 'chat-text' }, m.text),
    );
    if (welcome && welcome.moderator) {
      const actions = h(
        'span',
        { class: 'chat-actions' },
        h('button', { type: 'button', class: 'chat-action', 'aria-label': `Delete message from ${m.username}`, onclick: () => removeMessage(m, li) }, 'Delete'),
        m.username !== welcome.username ? h('button', { type: 'button', class: 'chat-action danger', 'aria-label': `Ban ${m.username}`, onclick: () => banUser(m.username) }, 'Ban') : null,
      );
      li.append(' ', actions);
    }
    return li;
  }

  async function removeMessage(m, li) {
    try {
      await api(`/api/channels/${encodeURIComponent(slug)}/chat/messages/${encodeURIComponent(m.id)}`, { method: 'DELETE', signal });
      // Everyone (this page too) is sent `deleted`; the list drops it then.
    } catch (e) {
      if (e.name === 'AbortError') return;
      if (e.status === 404) li.remove();
      else showStatus(`Not deleted. ${e.message}`);
    }
  }

  async function banUser(username) {
    const confirmed = await confirmDialog({
      title: `Ban ${username} from this chat?`,
      body: `${username} can still watch, but every message they send here is refused. Their earlier messages stay unless you delete them. You can lift the ban under “Banned users”.`,
      confirm: `Ban ${username}`,
      danger: true,
    });
    if (!confirmed) return;
    try {
      await api(`/api/channels/${encodeURIComponent(slug)}/chat/bans/${encodeURIComponent(username)}`, { method: 'PUT', signal });
      showStatus(`${username} is banned from this chat.`);
      if (bans.open) loadBans();
    } catch (e) {
      if (e.name !== 'AbortError') showStatus(`Not banned. ${e.message}`);
    }
  }

  async function loadBans() {
    const body = bans.querySelector('.chat-bans-body');
    try {
      const { items } = await api(`/api/channels/${encodeURIComponent(slug)}/chat/bans`, { signal });
      replace(
        body,
        items.length
          ? h(
              'ul',
              { class: 'chat-ban-list' },
              items.map((b) =>
                h(
                  'li',
                  {},
                  h('span', {}, b.username),
                  h(
                    'button',
                    {
                      type: 'button',
                      class: 'chat-action',
                      'aria-label': `Lift the ban on ${b.username}`,
                      onclick: async () => {
                        try {
                          await api(`/api/channels/${encodeURIComponent(slug)}/chat/bans/${encodeURIComponent(b.username)}`, { method: 'DELETE', signal });
                          loadBans();
                        } catch (e) {
                          if (e.name !== 'AbortError') body.append(message('error', `The ban was not lifted. ${e.message}`));
                        }
                      },
                    },
                    'Unban',
                  ),
                ),
              ),
            )
          : h('p', { class: 'muted' }, 'Nobody is banned.'),
      );
    } catch (e) {
      if (e.name !== 'AbortError') replace(body, message('error', `Could not load the bans. ${e.message}`));
    }
  }
  bans.addEventListener('toggle', () => bans.open && loadBans());

  function onFrame(frame) {
    switch (frame.type) {
      case 'welcome':
        welcome = frame;
        retryMs = RECONNECT_MIN_MS;
        showStatus('');
        // The access cookie ran out just before (a laptop waking up): refresh once and come back
        // signed in.
        if (!frame.username && currentUser() && !refreshedOnce && accessExpiresSoon()) {
          refreshedOnce = true;
          refreshSession(connectedAt).then((alive) => alive && reconnect());
        }
        showWho();
        updateCounter();
        view.reset();
        break;
      case 'message':
        view.append([line(frame)], { follow: Boolean(welcome && frame.username === welcome.username) });
        break;
      case 'deleted':
        for (const li of view.list.querySelectorAll('.chat-msg')) if (li.dataset.id === frame.id) li.remove();
        break;
      case 'error':
        showError(frame.message || 'Your message was not sent.');
        if (frame.code === 'banned' && welcome) welcome.banned = true;
        if (lastSent !== null && !input.value) {
          // Not sent: give the text back so it can be sent again.
          input.value = lastSent;
          updateCounter();
        }
        lastSent = null;
        break;
      default:
        break;
    }
  }

  function connect() {
    timer = null;
    if (signal.aborted) return;
    const scheme = location.protocol === 'https:' ? 'wss:' : 'ws:';
    connectedAt = Date.now();
    const ws = new WebSocket(`${scheme}//${location.host}/api/channels/${encodeURIComponent(slug)}/chat`);
    socket = ws;
    ws.addEventListener('message', (event) => {
      if (socket !== ws) return;
      let frame;
      try {
        frame = JSON.parse(event.data);
      } catch {
        return;
      }
      onFrame(frame);
    });
    ws.addEventListener('close', () => {
      if (socket !== ws) return;
      socket = null;
      if (signal.aborted) return;
      showStatus('Reconnecting…');
      timer = setTimeout(connect, retryMs);
      retryMs = Math.min(retryMs * 2, RECONNECT_MAX_MS);
    });
  }

  function reconnect() {
    clearTimeout(timer);
    const old = socket;
    socket = null;
    if (old) old.close();
    retryMs = RECONNECT_MIN_MS;
    connect();
  }

  input.addEventListener('input', () => {
    updateCounter();
    if (!error.hidden) showError('');
  });
  form.addEventListener('submit', (event) => {
    event.preventDefault();
    const text = input.value.trim();
    if (!text) return;
    const max = welcome ? welcome.max_message_chars : 500;
    if (length(text) > max) {
      showError(`Messages are at most ${max} characters.`);
      return;
    }
    if (!socket || socket.readyState !== WebSocket.OPEN) {
      showError('Not connected. Reconnecting…');
      return;
    }
    showError('');
    socket.send(JSON.stringify({ type: 'send', text }));
    lastSent = text;
    input.value = '';
    updateCounter();
    input.focus();
  });

  // Signing in or out elsewhere changes who writes: come back as the new user.
  const unsubscribe = onSessionChange(() => {
    refreshedOnce = false;
    reconnect();
  });
  signal.addEventListener(
    'abort',
    () => {
      unsubscribe();
      clearTimeout(timer);
      if (socket) socket.close();
      socket = null;
    },
    { once: true },
  );
  form.hidden = true;
  showStatus('Connecting…');
  connect();
  return element;
}

/**
 * A recording's chat, shown as playback passes each message (`offset_secs` ≤ the video's
 * position) and hidden again after a seek back. Resolves to null when the recording has no chat.
 */
export async function chatReplay(videoId, signal) {
  const path = `/api/videos/${encodeURIComponent(videoId)}/chat`;
  const first = await api(`${path}?limit=500`, { signal });
  if (!first.items.length) return null;
  const items = [...first.items];
  const headingId = uid('chat');
  const view = messageList('Chat replay');
  const note = h('p', { class: 'chat-status' }, 'Messages appear as the video reaches them.');
  const element = h('aside', { class: 'chat chat-replay', 'aria-labelledby': headingId }, h('div', { class: 'chat-head' }, h('h2', { id: headingId }, 'Chat replay'), note), view.element);
  let video = null;
  let shown = 0;

  // The rest of a long chat, page by page, while the first page already plays.
  (async () => {
    let cursor = first.next_cursor;
    while (cursor && !signal.aborted) {
      const page = await api(`${path}?limit=500&after=${encodeURIComponent(cursor)}`, { signal });
      items.push(...page.items);
      cursor = page.next_cursor;
      sync();
    }
  })().catch((e) => e.name === 'AbortError' || console.warn(e));

  function line(m) {
    return h(
      'li',
      { class: 'chat-msg', dataset: { id: m.id, username: m.username } },
      // Where in the video it was said; pressing it plays from there.
      h(
        'button',
        { type: 'button', class: 'chat-time chat-seek', title: `Sent at ${hhmm(m.at)}`, 'aria-label': `Play from ${duration(m.offset_secs)}`, onclick: () => video && (video.currentTime = m.offset_secs) },
        duration(m.offset_secs),
      ),
      ' ',
      h('span', { class: 'chat-user' }, m.username),
      h('span', { class: 'visually-hidden' }, ':'),
      ' ',
      h('span', { class: 'chat-text' }, m.text),
    );
  }

  /** How many messages were sent before `t` (items are in time order). */
  function countBefore(t) {
    let lo = 0;
    let hi = items.length;
    while (lo < hi) {
      const mid = (lo + hi) >> 1;
      if (items[mid].offset_secs <= t) lo = mid + 1;
      else hi = mid;
    }
    return lo;
  }

  function sync() {
    if (!video) return;
    const n = countBefore(video.currentTime);
    if (n > shown && n - shown <= MAX_SHOWN) view.append(items.slice(shown, n).map(line));
    // A seek back (what has not been said yet at this point goes) or far ahead: rebuilt.
    else if (n !== shown) view.reset(items.slice(Math.max(0, n - MAX_SHOWN), n).map(line));
    shown = n;
    note.hidden = n > 0;
  }

  return {
    element,
    /** Follows `videoElement`'s position from now on. */
    attach(videoElement) {
      video = videoElement;
      for (const event of ['timeupdate', 'seeked', 'seeking', 'loadedmetadata']) video.addEventListener(event, sync);
      sync();
    },
  };
}
