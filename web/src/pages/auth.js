// Log in and sign up, and a forgotten password. Log-in and sign-up end signed in (cookies set by
// the server) and go back where the user came from (`?next=`), or to the dashboard after a
// sign-up. A forgotten password is reset by a mailed link to /reset-password#token=…: the secret
// rides in the fragment, which browsers never send to a server or put in a Referer.

import { h, field, replace, message, setFieldError, clearFieldErrors } from '../dom.js';
import { api, fieldMessage } from '../api.js';
import { currentUser, forgetSession, logIn, signUp } from '../session.js';

/** Only paths inside this app: never an absolute URL someone put in a link. */
function nextPath(ctx, fallback) {
  const next = ctx.query.get('next') || '';
  return next.startsWith('/') && !next.startsWith('//') && !next.startsWith('/api/') ? next : fallback;
}

function authForm(main, ctx, { title, intro, fields, after = null, submit, switchText, switchHref, switchLink, onSubmit }) {
  ctx.title(title);
  const status = h('div', { class: 'status-area' });
  const button = h('button', { class: 'button', type: 'submit' }, submit);
  const form = h('form', { class: 'form narrow', novalidate: true }, fields, after, status, button);
  form.addEventListener('submit', async (event) => {
    event.preventDefault();
    clearFieldErrors(form);
    replace(status);
    const values = Object.fromEntries(new FormData(form));
    const missing = [...form.querySelectorAll('[required]')].filter((input) => !input.value.trim());
    if (missing.length) {
      for (const input of missing) setFieldError(form, input.name, 'Required.');
      missing[0].focus();
      return;
    }
    button.disabled = true;
    button.textContent = `${submit}…`;
    try {
      await onSubmit(values);
    } catch (e) {
      if (e.field && setFieldError(form, e.field, fieldMessage(e))) {
        form.elements.namedItem(e.field).focus();
      } else {
        status.append(message('error', e.message));
      }
    } finally {
      button.disabled = false;
      button.textContent = submit;
    }
  });
  const switchQuery = ctx.query.get('next') ? `?next=${encodeURIComponent(ctx.query.get('next'))}` : '';
  replace(main, h('div', { class: 'narrow' }, h('h1', {}, title), intro ? h('p', {}, intro) : null, form, h('p', { class: 'switch' }, switchText, ' ', h('a', { href: switchHref + switchQuery }, switchLink))));
}

export function loginPage(main, ctx) {
  if (currentUser()) return ctx.navigate(nextPath(ctx, '/dashboard'), { replace: true });
  authForm(main, ctx, {
    title: 'Log in',
    fields: [
      field('Username or email', h('input', { name: 'username_or_email', autocomplete: 'username', required: true, autocapitalize: 'none', spellcheck: 'false' })),
      field('Password', h('input', { name: 'password', type: 'password', autocomplete: 'current-password', required: true })),
    ],
    after: h('p', { class: 'form-aside' }, h('a', { href: '/forgot-password' }, 'Forgot your password?')),
    submit: 'Log in',
    switchText: 'New here?',
    switchHref: '/signup',
    switchLink: 'Create an account',
    onSubmit: async (values) => {
      await logIn(values.username_or_email.trim(), values.password);
      ctx.navigate(nextPath(ctx, '/dashboard'), { replace: true });
    },
  });
}

export function signupPage(main, ctx) {
  if (currentUser()) return ctx.navigate(nextPath(ctx, '/dashboard'), { replace: true });
  authForm(main, ctx, {
    title: 'Create your account',
    intro: 'An account lets you go live, upload videos and manage your channels.',
    fields: [
      field(
        'Username',
        h('input', { name: 'username', autocomplete: 'username', required: true, autocapitalize: 'none', spellcheck: 'false', minlength: 3, maxlength: 32, pattern: '[A-Za-z0-9_-]{3,32}' }),
        '3 to 32 letters, digits, “_” or “-”.',
      ),
      field('Email', h('input', { name: 'email', type: 'email', autocomplete: 'email', required: true })),
      field('Password', h('input', { name: 'password', type: 'password', autocomplete: 'new-password', required: true, minlength: 8 }), 'At least 8 characters.'),
    ],
    submit: 'Sign up',
    switchText: 'Already have an account?',
    switchHref: '/login',
    switchLink: 'Log in',
    onSubmit: async (values) => {
      await signUp(values.username.trim(), values.email.trim(), values.password);
      ctx.navigate(nextPath(ctx, '/dashboard'), { replace: true });
    },
  });
}

/** /forgot-password: asks for the account's e-mail; the answer is the same whether one uses it. */
export function forgotPasswordPage(main, ctx) {
  ctx.title('Reset your password');
  const email = h('input', { name: 'email', type: 'email', autocomplete: 'email', required: true });
  const status = h('div', { class: 'status-area' });
  const button = h('button', { class: 'button', type: 'submit' }, 'Send the link');
  const form = h('form', { class: 'form narrow', novalidate: true }, field('Email', email, 'The address your account uses.'), status, button);
  const box = h('div', { class: 'narrow' }, h('h1', {}, 'Reset your password'), h('p', {}, 'We will e-mail you a link to choose a new password.'), form, h('p', { class: 'switch' }, 'Remembered it? ', h('a', { href: '/login' }, 'Log in')));
  form.addEventListener('submit', async (event) => {
    event.preventDefault();
    clearFieldErrors(form);
    replace(status);
    const value = email.value.trim();
    if (!value) {
      setFieldError(form, 'email', 'Required.');
      email.focus();
      return;
    }
    button.disabled = true;
    try {
      await api('/api/auth/password-reset', { method: 'POST', body: { email: value }, signal: ctx.signal });
      const sent = h(
        'div',
        { class: 'sent' },
        message('success', 'If an account uses this address, a link to reset its password is on its way.'),
        h('p', {}, 'It can take a minute to arrive; look in the spam folder too. The link works once.'),
      );
      form.replaceWith(sent);
      sent.querySelector('.message').setAttribute('tabindex', '-1');
      sent.querySelector('.message').focus();
    } catch (e) {
      if (e.name === 'AbortError') return;
      if (e.field === 'email' && setFieldError(form, 'email', fieldMessage(e))) email.focus();
      else status.append(message('error', e.message));
    } finally {
      button.disabled = false;
    }
  });
  replace(main, box);
}

/** /reset-password#token=…: a new password, twice; then every session is signed out. */
export function resetPasswordPage(main, ctx) {
  ctx.title('Choose a new password');
  const token = new URLSearchParams(location.hash.slice(1)).get('token') || '';
  const again = h('p', {}, h('a', { href: '/forgot-password' }, 'Ask for a new link'));
  if (!token) {
    replace(main, h('div', { class: 'narrow' }, h('h1', {}, 'Choose a new password'), message('error', 'This link is incomplete. Open the whole link from the e-mail, or ask for a new one.'), again));
    return;
  }
  const password = h('input', { name: 'new_password', type: 'password', autocomplete: 'new-password', required: true, minlength: 8 });
  const repeat = h('input', { name: 'repeat', type: 'password', autocomplete: 'new-password', required: true });
  const status = h('div', { class: 'status-area' });
  const button = h('button', { class: 'button', type: 'submit' }, 'Set the new password');
  const form = h(
    'form',
    { class: 'form narrow', novalidate: true },
    field('New password', password, 'At least 8 characters, and not one of the most common passwords.'),
    field('New password again', repeat),
    status,
    button,
  );
  form.addEventListener('submit', async (event) => {
    event.preventDefault();
    clearFieldErrors(form);
    replace(status);
    if (!password.value) {
      setFieldError(form, 'new_password', 'Required.');
      password.focus();
      return;
    }
    if (password.value !== repeat.value) {
      setFieldError(form, 'repeat', 'The two passwords differ.');
      repeat.focus();
      return;
    }
    button.disabled = true;
    try {
      await api('/api/auth/password-reset/confirm', { method: 'POST', body: { token, new_password: password.value }, signal: ctx.signal });
      // Every session of the account has ended, this browser's too if it had one.
      if (currentUser()) forgetSession();
      ctx.navigate('/login', { replace: true, notice: 'Password changed. Sign in with your new password.' });
    } catch (e) {
      if (e.name === 'AbortError') return;
      if (e.field === 'new_password' && setFieldError(form, 'new_password', fieldMessage(e))) password.focus();
      else status.append(message('error', e.message), e.status === 400 ? again : null);
    } finally {
      button.disabled = false;
    }
  });
  replace(main, h('div', { class: 'narrow' }, h('h1', {}, 'Choose a new password'), form));
  password.focus();
}
