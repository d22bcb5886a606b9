// The app's entry: the router (History API), the header, and the page lifecycle. Each page is a
// function `(main, ctx)` that fills <main>; `ctx.signal` aborts when the user navigates away, so
// pages stop their polling, players and uploads' UI by listening to it.
//
// The server answers these same paths with this app (src/web.rs `is_page` lists them); keep the
// two lists in step.

import { h, replace, message } from './dom.js';
import { currentUser, loadSession, logOut, onSessionChange } from './session.js';
import { homePage } from './pages/home.js';
import { searchPage } from './pages/search.js';
import { loginPage, signupPage, forgotPasswordPage, resetPasswordPage } from './pages/auth.js';
import { dashboardPage } from './pages/dashboard.js';
import { uploadPage } from './pages/upload.js';
import { integrationsPage } from './pages/integrations.js';
import { accountPage } from './pages/account.js';
import { videoPage, channelPage, embedPage } from './pages/watch.js';

const routes = [
  [/^\/$/, homePage],
  [/^\/search$/, searchPage],
  [/^\/login$/, loginPage],
  [/^\/signup$/, signupPage],
  [/^\/forgot-password$/, forgotPasswordPage],
  // The mailed link: the secret is in the fragment (#token=…), which no server or log sees.
  [/^\/reset-password$/, resetPasswordPage],
  [/^\/dashboard$/, dashboardPage],
  [/^\/upload$/, uploadPage],
  [/^\/integrations$/, integrationsPage],
  [/^\/account$/, accountPage],
  [/^\/watch\/([^/]+)$/, videoPage],
  [/^\/c\/([^/]+)$/, channelPage],
  // The player alone, for other sites' iframes (the share dialog gives the snippet).
  [/^\/embed\/([^/]+)$/, embedPage],
];

const main = document.getElementById('main');
const header = document.querySelector('.site-header');
const nav = document.querySelector('.site-nav');
const searchInput = document.getElementById('site-search-q');
let current = null;
let renderedOnce = false;

// The player is sized so that it, its control bar and the title fit in the first screen; the
// header's height changes with the width (it wraps to two rows on phones), so CSS gets it measured.
new ResizeObserver(() => {
  document.documentElement.style.setProperty('--header-h', `${header.offsetHeight}px`);
}).observe(header);

/** A sentence for the next page to show at its top ("Password changed. Sign in…"). */
let pendingNotice = null;

/** Goes to `url` in the app; `notice` is shown at the top of the page it opens. */
export function navigate(url, { replace: replaceEntry = false, notice = null } = {}) {
  if (replaceEntry) history.replaceState(null, '', url);
  else history.pushState(null, '', url);
  pendingNotice = notice;
  render({ focus: true });
}

function notFoundPage(el, ctx) {
  ctx.title('Page not found');
  replace(
    el,
    h('h1', {}, 'Page not found'),
    h('p', {}, 'There is nothing at this address. It may have moved, or the link is mistyped.'),
    h('p', {}, h('a', { href: '/' }, 'Go to the home page')),
  );
}

async function render({ focus = false } = {}) {
  if (current) current.abort();
  const controller = new AbortController();
  current = controller;
  const url = new URL(location.href);
  let page = notFoundPage;
  let params = [];
  for (const [pattern, handler] of routes) {
    const match = url.pathname.match(pattern);
    if (match) {
      page = handler;
      params = match.slice(1).map(decodeURIComponent);
      break;
    }
  }
  // An embedded player shows nothing of the site around it (style.css hides the header).
  document.body.classList.toggle('embed', page === embedPage);
  // The box shows the search on screen, and is cleared on leaving it; but the first render waits
  // for the session, and what a visitor typed into the box meanwhile stays.
  const shownQuery = url.pathname === '/search' ? url.searchParams.get('q') || '' : '';
  if (shownQuery || renderedOnce) searchInput.value = shownQuery;
  renderedOnce = true;
  updateNav(url.pathname);
  const ctx = {
    signal: controller.signal,
    params,
    query: url.searchParams,
    navigate,
    title: (text) => {
      document.title = text ? `${text} · Ferrocast` : 'Ferrocast';
    },
  };
  const notice = pendingNotice;
  pendingNotice = null;
  main.replaceChildren();
  main.setAttribute('aria-busy', 'true');
  try {
    await page(main, ctx);
    if (notice && !controller.signal.aborted) {
      const heading = main.querySelector('h1');
      const note = message('success', notice);
      if (heading) heading.after(note);
      else main.prepend(note);
    }
  } catch (e) {
    if (e.name === 'AbortError' || controller.signal.aborted) return;
    replace(main, h('h1', {}, 'Something went wrong'), message('error', e.message || String(e)));
    console.error(e);
  } finally {
    if (current === controller) main.removeAttribute('aria-busy');
  }
  if (focus && !controller.signal.aborted) {
    window.scrollTo(0, 0);
    const heading = main.querySelector('h1');
    (heading || main).setAttribute('tabindex', '-1');
    (heading || main).focus({ preventScroll: true });
  }
}

function updateNav(pathname) {
  const user = currentUser();
  const link = (href, text) => h('a', { href, 'aria-current': pathname === href ? 'page' : null }, text);
  if (user) {
    replace(
      nav,
      link('/upload', 'Upload'),
      link('/dashboard', 'Dashboard'),
      h('a', { href: '/account', class: 'nav-user', title: 'Your account', 'aria-current': pathname === '/account' ? 'page' : null }, user.username),
      h(
        'button',
        {
          type: 'button',
          class: 'link-button',
          onclick: async () => {
            await logOut();
            navigate('/');
          },
        },
        'Log out',
      ),
    );
  } else {
    const next = ['/', '/login', '/signup', '/forgot-password', '/reset-password'].includes(pathname) ? '' : `?next=${encodeURIComponent(location.pathname + location.search)}`;
    replace(nav, link('/login', 'Log in'), h('a', { href: `/signup${next}`, class: 'button small' }, 'Sign up'));
    nav.firstChild.href = `/login${next}`;
  }
}

// Links inside the app navigate without reloading; /api and /hls links, new tabs and downloads do not.
document.addEventListener('click', (event) => {
  if (event.defaultPrevented || event.button !== 0 || event.metaKey || event.ctrlKey || event.shiftKey || event.altKey) return;
  const a = event.target.closest('a[href]');
  if (!a || a.target || a.hasAttribute('download')) return;
  const url = new URL(a.href, location.href);
  if (url.origin !== location.origin || /^\/(api|hls)(\/|$)/.test(url.pathname)) return;
  if (url.hash && url.pathname === location.pathname && url.search === location.search) {
    // An in-page link (the skip link): move focus there, not just the scroll position.
    const target = document.getElementById(decodeURIComponent(url.hash.slice(1)));
    if (target) {
      event.preventDefault();
      if (!target.hasAttribute('tabindex')) target.setAttribute('tabindex', '-1');
      target.focus();
    }
    return;
  }
  event.preventDefault();
  if (url.href !== location.href) navigate(url.pathname + url.search + url.hash);
});

document.querySelector('.site-search').addEventListener('submit', (event) => {
  event.preventDefault();
  const q = searchInput.value.trim();
  navigate(q ? `/search?q=${encodeURIComponent(q)}` : '/search');
});

window.addEventListener('popstate', () => render({ focus: true }));
onSessionChange((user) => {
  updateNav(location.pathname);
  // Signed out (here, in another tab, or the session expired): pages that need an account say so.
  if (!user && /^\/(dashboard|upload|integrations|account)$/.test(location.pathname)) render();
});

loadSession().then(() => render());
