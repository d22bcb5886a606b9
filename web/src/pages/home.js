// Home: who is live now, then the newest videos, with "load more".

import { api } from '../api.js';
import { h, message, replace } from '../dom.js';
import { videoGrid, videoCard } from '../components.js';
import { followSite } from '../live.js';
import { currentUser } from '../session.js';

export async function homePage(main, ctx) {
  ctx.title('');
  const liveSection = h('section', { 'aria-labelledby': 'live-heading', class: 'section', hidden: true }, h('h2', { id: 'live-heading' }, 'Live now'));
  const recentList = h('ul', { class: 'grid' });
  const more = h('button', { type: 'button', class: 'button secondary', hidden: true }, 'Load more');
  const status = h('div', { class: 'status-area' });
  // The heading shows once there is something under it: alone it reads as a page that broke.
  const recentHeading = h('h2', { id: 'recent-heading', hidden: true }, 'Recent videos');
  replace(main, h('h1', { class: 'visually-hidden' }, 'Ferrocast'), liveSection, h('section', { 'aria-labelledby': 'recent-heading', class: 'section' }, recentHeading, status, recentList, more));

  let cursor = null;
  const seen = new Set();
  async function loadPage() {
    const query = new URLSearchParams({ limit: '24' });
    if (cursor) query.set('cursor', cursor);
    const page = await api(`/api/videos?${query}`, { signal: ctx.signal });
    cursor = page.next_cursor;
    more.hidden = !cursor;
    return page.items;
  }

  function showLive(items) {
    const live = items.filter((v) => v.status === 'live');
    liveSection.hidden = live.length === 0;
    replace(liveSection, h('h2', { id: 'live-heading' }, 'Live now'), videoGrid(live));
  }

  try {
    const items = await loadPage();
    showLive(items);
    const recent = items.filter((v) => v.status !== 'live');
    recent.forEach((v) => seen.add(v.id));
    recentList.append(...recent.map(videoCard));
    recentHeading.hidden = recent.length === 0;
    if (items.length === 0) {
      const user = currentUser();
      status.append(
        h(
          'p',
          { class: 'empty' },
          'Nothing here yet. ',
          user ? h('a', { href: '/dashboard' }, 'Go live from your dashboard') : h('a', { href: '/signup' }, 'Sign up and go live'),
          ' or ',
          h('a', { href: '/upload' }, 'upload a video'),
          '.',
        ),
      );
    }
  } catch (e) {
    if (e.name === 'AbortError') throw e;
    replace(status, message('error', `Could not load videos. ${e.message}`));
  }

  more.addEventListener('click', async () => {
    more.disabled = true;
    try {
      const items = await loadPage();
      const fresh = items.filter((v) => v.status !== 'live' && !seen.has(v.id));
      fresh.forEach((v) => seen.add(v.id));
      recentList.append(...fresh.map(videoCard));
      if (fresh.length) recentHeading.hidden = false;
      replace(status);
    } catch (e) {
      if (e.name !== 'AbortError') replace(status, message('error', `Could not load more videos. ${e.message}`));
    } finally {
      more.disabled = false;
    }
  });

  // Channels go live, end and rename their streams while the page is open: the server says when,
  // and "Live now" is read again (once for a burst of changes).
  followSite(ctx.signal, async () => {
    try {
      const page = await api('/api/videos?limit=24', { signal: ctx.signal });
      showLive(page.items);
    } catch (e) {
      if (e.name !== 'AbortError') console.warn(e);
    }
  });
}
