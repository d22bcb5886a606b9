// Search results for ?q=… (the API is typo tolerant), newest matches first, with "load more".

import { api } from '../api.js';
import { h, message, replace } from '../dom.js';
import { videoCard } from '../components.js';
import { plural } from '../format.js';

export async function searchPage(main, ctx) {
  const q = (ctx.query.get('q') || '').trim();
  ctx.title(q ? `Search: ${q}` : 'Search');
  const status = h('div', { class: 'status-area', 'aria-live': 'polite' });
  const results = h('ul', { class: 'grid' });
  const more = h('button', { type: 'button', class: 'button secondary', hidden: true }, 'More results');
  replace(main, h('h1', {}, q ? `Results for “${q}”` : 'Search'), status, results, more);
  if (!q) {
    // The search box is in the header, on every page.
    status.append(h('p', { class: 'empty' }, 'Type what you are looking for in the search box above: titles, descriptions and channel names are searched, and small typos are forgiven.'));
    document.getElementById('site-search-q').focus();
    return;
  }

  let cursor = null;
  async function load() {
    const query = new URLSearchParams({ q, limit: '24' });
    if (cursor) query.set('cursor', cursor);
    const page = await api(`/api/videos?${query}`, { signal: ctx.signal });
    cursor = page.next_cursor;
    more.hidden = !cursor;
    results.append(...page.items.map(videoCard));
    return page.items.length;
  }
  try {
    status.append(message('info', 'Searching…'));
    const found = await load();
    replace(status, found ? h('p', { class: 'visually-hidden' }, cursor ? `${found} or more results` : plural(found, 'result')) : h('p', { class: 'empty' }, `No videos match “${q}”. Try fewer or different words.`));
  } catch (e) {
    if (e.name === 'AbortError') throw e;
    replace(status, message('error', `Search failed. ${e.message}`));
  }
  more.addEventListener('click', async () => {
    more.disabled = true;
    try {
      await load();
    } catch (e) {
      if (e.name !== 'AbortError') replace(status, message('error', `Could not load more results. ${e.message}`));
    } finally {
      more.disabled = false;
    }
  });
}
