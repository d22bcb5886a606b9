// The signed-in user's account: who she is, a password change (which signs out every other
// device, so it is also the answer to "I left myself signed in somewhere"), a new e-mail address
// and, in a danger zone, deleting the account with everything it owns. The last two ask for the
// password again.

import { api, fieldMessage } from '../api.js';
import { h, field, replace, message, setFieldError, clearFieldErrors, confirmDialog } from '../dom.js';
import { requireUser } from '../components.js';
import { currentUser, forgetSession } from '../session.js';
import { plural } from '../format.js';

export async function accountPage(main, ctx) {
  if (!requireUser(ctx)) return;
  ctx.title('Your account');
  const user = currentUser();
  const current = h('input', { type: 'password', name: 'current_password', autocomplete: 'current-password', required: true });
  const next = h('input', { type: 'password', name: 'new_password', autocomplete: 'new-password', required: true, minlength: 8 });
  const status = h('div', { class: 'status-area' });
  const submit = h('button', { class: 'button', type: 'submit' }, 'Change password');
  const form = h(
    'form',
    { class: 'form', novalidate: true },
    field('Current password', current),
    field('New password', next, 'At least 8 characters, and not one of the most common passwords. Your other devices are signed out.'),
    status,
    submit,
  );
  form.addEventListener('submit', async (event) => {
    event.preventDefault();
    clearFieldErrors(form);
    replace(status);
    for (const input of [current, next]) {
      if (!input.value) {
        setFieldError(form, input.name, 'Required.');
        input.focus();
        return;
      }
    }
    submit.disabled = true;
    try {
      await api('/api/me/password', { method: 'POST', body: { current_password: current.value, new_password: next.value }, signal: ctx.signal, retry: false });
      form.reset();
      status.append(message('success', 'Password changed. Your other devices are signed out.'));
    } catch (e) {
      if (e.name === 'AbortError') return;
      if (e.code === 'bad_credentials') {
        setFieldError(form, 'current_password', 'That is not your current password.');
        current.focus();
      } else if (e.field && setFieldError(form, e.field, fieldMessage(e))) {
        form.elements.namedItem(e.field).focus();
      } else {
        status.append(message('error', e.message));
      }
    } finally {
      submit.disabled = false;
    }
  });
  const emailFact = h('dd', {}, user.email);
  replace(
    main,
    h('div', { class: 'page-head' }, h('h1', {}, 'Your account')),
    h('dl', { class: 'health-grid account-facts' }, h('dt', {}, 'Username'), h('dd', {}, user.username), h('dt', {}, 'E-mail'), emailFact),
    h('section', { class: 'section panel', 'aria-labelledby': 'change-password' }, h('h2', { id: 'change-password' }, 'Change your password'), form),
    emailSection(ctx, user, (changed) => {
      emailFact.textContent = changed.email;
      user.email = changed.email;
    }),
    deleteSection(ctx, user),
  );
}

/** A new e-mail address (where password-reset links go); the password confirms it is her. */
function emailSection(ctx, user, onChanged) {
  const email = h('input', { type: 'email', name: 'email', autocomplete: 'email', required: true, value: user.email || '' });
  const password = h('input', { type: 'password', name: 'password', autocomplete: 'current-password', required: true });
  const status = h('div', { class: 'status-area' });
  const submit = h('button', { class: 'button', type: 'submit' }, 'Change e-mail');
  const form = h('form', { class: 'form', novalidate: true }, field('New e-mail address', email, 'Links to reset your password are sent here.'), field('Your password', password), status, submit);
  form.addEventListener('submit', async (event) => {
    event.preventDefault();
    clearFieldErrors(form);
    replace(status);
    for (const input of [email, password]) {
      if (!input.value.trim()) {
        setFieldError(form, input.name, 'Required.');
        input.focus();
        return;
      }
    }
    submit.disabled = true;
    try {
      const changed = await api('/api/me/email', { method: 'POST', body: { email: email.value.trim(), password: password.value }, signal: ctx.signal, retry: false });
      password.value = '';
      email.value = changed.email;
      onChanged(changed);
      status.append(message('success', `E-mail changed to ${changed.email}.`));
    } catch (e) {
      if (e.name === 'AbortError') return;
      if (e.code === 'bad_credentials' || e.status === 401) {
        setFieldError(form, 'password', 'That is not your password.');
        password.focus();
      } else if (e.code === 'conflict') {
        setFieldError(form, 'email', 'Another account uses this address.');
        email.focus();
      } else if (e.field && setFieldError(form, e.field, fieldMessage(e))) {
        form.elements.namedItem(e.field).focus();
      } else {
        status.append(message('error', e.message));
      }
    } finally {
      submit.disabled = false;
    }
  });
  return h('section', { class: 'section panel', 'aria-labelledby': 'change-email' }, h('h2', { id: 'change-email' }, 'E-mail'), form);
}

/**
 * Deleting the account: the password here, then a dialog that says what goes (her channels by
 * name, their videos and files) and wants her username typed.
 */
function deleteSection(ctx, user) {
  const password = h('input', { type: 'password', name: 'password', autocomplete: 'current-password', required: true });
  const status = h('div', { class: 'status-area' });
  const submit = h('button', { class: 'button danger', type: 'submit' }, 'Delete my account…');
  const form = h(
    'form',
    { class: 'form', novalidate: true },
    h('p', {}, 'Your channels, their videos, recordings, uploads and chat, your access tokens and webhooks are deleted with it, for good.'),
    field('Your password, to delete the account', password),
    status,
    submit,
  );
  form.addEventListener('submit', async (event) => {
    event.preventDefault();
    clearFieldErrors(form);
    replace(status);
    if (!password.value) {
      setFieldError(form, 'password', 'Required.');
      password.focus();
      return;
    }
    let channels = null;
    try {
      channels = (await api('/api/channels', { signal: ctx.signal })).items;
    } catch (e) {
      if (e.name === 'AbortError') return;
      channels = null; // the dialog says "all your channels" instead of naming them
    }
    const names = channels && channels.length ? channels.map((c) => h('li', {}, `“${c.title}” (`, h('code', {}, `/c/${c.slug}`), ') with all its videos and their files')) : null;
    const confirmed = await confirmDialog({
      title: 'Delete your account?',
      body: h(
        'div',
        {},
        h('p', {}, `This deletes the account ${user.username}, for good, with:`),
        h(
          'ul',
          { class: 'delete-list' },
          channels === null ? h('li', {}, 'all your channels, with their videos and files') : channels.length ? [h('li', {}, `your ${plural(channels.length, 'channel')}:`, h('ul', {}, names))] : h('li', {}, 'no channels (you have none)'),
          h('li', {}, 'your unfinished uploads and simulcast targets'),
          h('li', {}, 'your chat messages, access tokens and webhooks'),
        ),
        channels && channels.some((c) => c.live) ? h('p', { class: 'warn' }, 'You are live now: the stream is cut off.') : null,
        h('p', {}, 'Every device signed in to it is signed out. This cannot be undone.'),
      ),
      typeToConfirm: { label: `Type your username, ${user.username}, to confirm`, expected: user.username },
      confirm: 'Delete my account',
      danger: true,
    });
    if (!confirmed) return;
    submit.disabled = true;
    try {
      await api('/api/me', { method: 'DELETE', body: { password: password.value }, signal: ctx.signal, retry: false });
      // The server has ended every session: nothing to sign out of there.
      forgetSession();
      ctx.navigate('/', { replace: true, notice: 'Your account and everything it owned have been deleted.' });
    } catch (e) {
      if (e.name === 'AbortError') return;
      if (e.code === 'bad_credentials' || e.status === 401) {
        setFieldError(form, 'password', 'That is not your password. Nothing was deleted.');
        password.focus();
      } else {
        status.append(message('error', `Nothing was deleted. ${e.message}`));
      }
    } finally {
      submit.disabled = false;
    }
  });
  return h('section', { class: 'section panel danger-zone', 'aria-labelledby': 'delete-account' }, h('h2', { id: 'delete-account' }, 'Delete account'), form);
}
