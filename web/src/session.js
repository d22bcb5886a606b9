// The signed-in user and the cookie session behind it.
//
// The tokens live in HttpOnly cookies that this code never sees. What it keeps in localStorage is
// only a hint: who is signed in and when the access cookie runs out. With it the app asks the
// server nothing on a visit from someone signed out, refreshes before the access token expires
// (so the user never sees a 401), and, across tabs, refreshes once: refresh tokens are single-use
// and reusing one ends the session, so tabs take a Web Lock and skip a refresh another tab has
// just done.

import { api, parse } from './api.js';

const HINT_KEY = 'ferrocast.session';
const LOCK_NAME = 'ferrocast-refresh';
/** Refresh this long before the access token expires. */
const EARLY_MS = 60_000;

let user = null;
let timer = null;
const listeners = new Set();

function readHint() {
  try {
    const hint = JSON.parse(localStorage.getItem(HINT_KEY) || 'null');
    return hint && typeof hint.expiresAt === 'number' ? hint : null;
  } catch {
    return null;
  }
}

function writeHint(hint) {
  try {
    if (hint) localStorage.setItem(HINT_KEY, JSON.stringify(hint));
    else localStorage.removeItem(HINT_KEY);
  } catch {
    // Private mode without storage: the session still works, only without the hint.
  }
}

export function currentUser() {
  return user;
}

/** Calls `fn(user)` whenever the signed-in user changes; returns the unsubscribe function. */
export function onSessionChange(fn) {
  listeners.add(fn);
  return () => listeners.delete(fn);
}

function setUser(next) {
  const changed = (user && user.id) !== (next && next.id);
  user = next;
  if (changed) for (const fn of listeners) fn(user);
}

/** Finds out who is signed in, at start-up. Asks the server only when the hint says someone was. */
export async function loadSession() {
  const hint = readHint();
  if (!hint) return setUser(null);
  if (hint.expiresAt - Date.now() < EARLY_MS && !(await refreshSession(0))) return setUser(null);
  try {
    setUser(await api('/api/me'));
    writeHint({ ...readHint(), username: user.username });
    schedule();
  } catch (e) {
    if (e.status === 401) {
      writeHint(null);
      setUser(null);
    } else {
      // The server is unreachable: keep the hint and show the user as signed in by name.
      setUser(hint.username ? { id: hint.userId || hint.username, username: hint.username } : null);
    }
  }
}

export async function logIn(usernameOrEmail, password) {
  const tokens = await api('/api/auth/login', { method: 'POST', body: { username_or_email: usernameOrEmail, password } });
  writeHint({ expiresAt: Date.now() + tokens.expires_in * 1000 });
  const me = await api('/api/me');
  writeHint({ expiresAt: Date.now() + tokens.expires_in * 1000, username: me.username, userId: me.id });
  setUser(me);
  schedule();
  return me;
}

export async function signUp(username, email, password) {
  await api('/api/auth/signup', { method: 'POST', body: { username, email, password } });
  return logIn(username, password);
}

export async function logOut() {
  clearTimeout(timer);
  try {
    await fetch('/api/auth/logout', { method: 'POST', credentials: 'same-origin' });
  } finally {
    writeHint(null);
    setUser(null);
  }
}

/** Whether the access cookie has run out or is about to (the scheduled refresh has not happened). */
export function accessExpiresSoon() {
  const hint = readHint();
  return !hint || hint.expiresAt - Date.now() < EARLY_MS;
}

/**
 * Forgets the session here without asking the server: for when the server has already ended it
 * (the account was deleted, or its password reset signed every session out).
 */
export function forgetSession() {
  clearTimeout(timer);
  writeHint(null);
  setUser(null);
}

let inFlight = null;

/**
 * Exchanges the refresh cookie for new cookies. `since` is when the caller's failed request
 * started: if another tab (or call) refreshed after that, the cookies are already new and this
 * only reports success; `null` means "on schedule": skip while the cookie is still fresh.
 * Resolves to whether the session is alive.
 */
export function refreshSession(since = 0) {
  if (!readHint() && since) return Promise.resolve(false);
  if (!inFlight) {
    const run = () => refreshLocked(since);
    const locked = navigator.locks ? navigator.locks.request(LOCK_NAME, run) : run();
    inFlight = locked.finally(() => {
      inFlight = null;
    });
  }
  return inFlight;
}

async function refreshLocked(since) {
  const hint = readHint();
  const fresh = hint && hint.expiresAt - Date.now() > EARLY_MS;
  // On schedule (`since` null), any fresh cookie will do; after a 401, only one renewed since.
  if (fresh && (since === null || (hint.refreshedAt || 0) > since)) {
    schedule();
    return true;
  }
  let response;
  try {
    response = await fetch('/api/auth/refresh', { method: 'POST', credentials: 'same-origin' });
  } catch {
    // Offline: the session may be fine; let the caller report the network problem.
    return false;
  }
  try {
    const tokens = await parse(response);
    const now = Date.now();
    writeHint({ ...readHint(), expiresAt: now + tokens.expires_in * 1000, refreshedAt: now });
    schedule();
    return true;
  } catch {
    writeHint(null);
    setUser(null);
    return false;
  }
}

/** Refreshes a minute before the access token runs out, while the page is open. */
function schedule() {
  clearTimeout(timer);
  const hint = readHint();
  if (!hint) return;
  const wait = Math.max(5_000, hint.expiresAt - Date.now() - EARLY_MS);
  timer = setTimeout(() => refreshSession(null), Math.min(wait, 2 ** 31 - 1));
}

// Another tab logged in or out: follow it.
window.addEventListener('storage', (event) => {
  if (event.key !== HINT_KEY) return;
  const hint = readHint();
  if (!hint) {
    clearTimeout(timer);
    setUser(null);
  } else if (!user) {
    loadSession();
  } else {
    schedule();
  }
});
