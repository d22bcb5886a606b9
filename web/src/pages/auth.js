// Log in and sign up. Both end signed in (cookies set by the server) and go back where the user
// came from (`?next=`), or to the dashboard after a sign-up.

import { h, field, replace, message, setFieldError, clearFieldErrors } from '../dom.js';
import { fieldMessage } from '../api.js';
import { currentUser, logIn, signUp } from '../session.js';

/** Only paths inside this app: never an absolute URL someone put in a link. */
function nextPath(ctx, fallback) {
  const next = ctx.query.get('next') || '';
  return next.startsWith('/') && !next.startsWith('//') && !next.startsWith('/api/') ? next : fallback;
}

function authForm(main, ctx, { title, intro, fields, submit, switchText, switchHref, switchLink, onSubmit }) {
  ctx.title(title);
  const status = h('div', { class: 'status-area' });
  const button = h('button', { class: 'button', type: 'submit' }, submit);
  const form = h('form', { class: 'form narrow', novalidate: true }, fields, status, button);
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
