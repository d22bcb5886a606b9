// A tiny element builder. Text always goes in as text nodes, never as HTML, so nothing a user
// typed (titles, descriptions, usernames) can become markup.

/**
 * h('a', { href: '/', class: 'x', onclick: fn }, 'text', child…)
 * Attributes: `class`, `dataset` (object), `on<event>` (listener), booleans (`disabled: true`),
 * `null`/`undefined`/`false` values are skipped. Children: nodes, strings, numbers, arrays, null.
 */
export function h(tag, attrs = {}, ...children) {
  const el = document.createElement(tag);
  for (const [key, value] of Object.entries(attrs || {})) {
    if (value === null || value === undefined || value === false) continue;
    if (key === 'dataset') Object.assign(el.dataset, value);
    else if (key.startsWith('on') && typeof value === 'function') el.addEventListener(key.slice(2), value);
    else if (key === 'class') el.className = value;
    else if (key in el && typeof value !== 'string') el[key] = value;
    else el.setAttribute(key, value === true ? '' : String(value));
  }
  append(el, children);
  return el;
}

function append(el, children) {
  for (const child of children) {
    if (child === null || child === undefined || child === false) continue;
    if (Array.isArray(child)) append(el, child);
    else el.append(child instanceof Node ? child : String(child));
  }
}

/** Replaces the contents of `el` with `children`. */
export function replace(el, ...children) {
  el.replaceChildren();
  append(el, children);
  return el;
}

/** A status or error line; `role=alert` for errors so screen readers announce them. */
export function message(kind, text) {
  return h('p', { class: `message message-${kind}`, role: kind === 'error' ? 'alert' : 'status' }, text);
}

let ids = 0;
/** A unique element id for label/aria wiring. */
export function uid(prefix = 'f') {
  ids += 1;
  return `${prefix}-${ids}`;
}

/** A labelled form field; `hint` is shown under it, field errors are set with `setFieldError`. */
export function field(label, input, hint) {
  const id = input.id || uid('field');
  input.id = id;
  const hintEl = hint ? h('p', { class: 'field-hint', id: `${id}-hint` }, hint) : null;
  const errorEl = h('p', { class: 'field-error', id: `${id}-error`, hidden: true });
  input.setAttribute('aria-describedby', [hintEl && hintEl.id, errorEl.id].filter(Boolean).join(' '));
  return h('div', { class: 'field' }, h('label', { for: id }, label), input, hintEl, errorEl);
}

/** Shows `text` under the form field named `name` (or clears it with `null`). */
export function setFieldError(form, name, text) {
  const input = form.elements.namedItem(name);
  if (!input || !input.id) return false;
  const errorEl = document.getElementById(`${input.id}-error`);
  if (!errorEl) return false;
  errorEl.textContent = text || '';
  errorEl.hidden = !text;
  if (text) input.setAttribute('aria-invalid', 'true');
  else input.removeAttribute('aria-invalid');
  return true;
}

export function clearFieldErrors(form) {
  for (const el of form.querySelectorAll('.field-error')) {
    el.hidden = true;
    el.textContent = '';
  }
  for (const el of form.querySelectorAll('[aria-invalid]')) el.removeAttribute('aria-invalid');
}

/**
 * A modal confirmation (`<dialog>`: focus is trapped and Escape cancels). Resolves to true only
 * when the confirm button was pressed. `body` is a sentence or nodes. With `typeToConfirm`
 * (`{label, expected}`), the confirm button stays disabled until `expected` is typed: for what
 * cannot be undone and takes more than its name says.
 */
export function confirmDialog({ title, body, confirm = 'Confirm', danger = false, typeToConfirm = null }) {
  return new Promise((resolve) => {
    const titleId = uid('dialog');
    const confirmButton = h('button', { value: 'confirm', class: danger ? 'button danger' : 'button' }, confirm);
    let typed = null;
    if (typeToConfirm) {
      const input = h('input', { autocomplete: 'off', autocapitalize: 'none', spellcheck: 'false' });
      const matches = () => input.value.trim().toLowerCase() === typeToConfirm.expected.toLowerCase();
      confirmButton.disabled = true;
      input.addEventListener('input', () => {
        confirmButton.disabled = !matches();
      });
      // Enter would press the form's first button, Cancel: it confirms instead, once what was asked
      // is typed.
      input.addEventListener('keydown', (event) => {
        if (event.key !== 'Enter') return;
        event.preventDefault();
        if (matches()) confirmButton.click();
      });
      typed = field(typeToConfirm.label, input);
    }
    const dialog = h(
      'dialog',
      { class: 'dialog', 'aria-labelledby': titleId },
      h(
        'form',
        { method: 'dialog' },
        h('h2', { id: titleId }, title),
        typeof body === 'string' ? h('p', {}, body) : body,
        typed,
        h('div', { class: 'actions' }, h('button', { value: 'cancel', class: 'button secondary', autofocus: true }, 'Cancel'), confirmButton),
      ),
    );
    dialog.addEventListener('close', () => {
      resolve(dialog.returnValue === 'confirm');
      dialog.remove();
    });
    document.body.append(dialog);
    dialog.showModal();
  });
}

/** Copies `text` to the clipboard; falls back to selecting a hidden textarea where the API is missing. */
export async function copyText(text) {
  try {
    await navigator.clipboard.writeText(text);
    return true;
  } catch {
    const area = h('textarea', { class: 'visually-hidden', readonly: true }, text);
    document.body.append(area);
    area.select();
    let ok = false;
    try {
      ok = document.execCommand('copy');
    } catch {
      ok = false;
    }
    area.remove();
    return ok;
  }
}
