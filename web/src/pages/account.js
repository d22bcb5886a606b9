// The signed-in user's account: who she is, and a password change (which signs out every other
// device, so it is also the answer to "I left myself signed in somewhere").

import { api, fieldMessage } from '../api.js';
import { h, field, replace, message, setFieldError, clearFieldErrors } from '../dom.js';
import { requireUser } from '../components.js';
import { currentUser } from '../session.js';

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
  replace(
    main,
    h('div', { class: 'page-head' }, h('h1', {}, 'Your account')),
    h('dl', { class: 'health-grid account-facts' }, h('dt', {}, 'Username'), h('dd', {}, user.username), h('dt', {}, 'E-mail'), h('dd', {}, user.email)),
    h('section', { class: 'section panel', 'aria-labelledby': 'change-password' }, h('h2', { id: 'change-password' }, 'Change your password'), form),
  );
}
