// Talking to the REST API: JSON in and out, the session cookie sent by the browser, a silent
// refresh and one retry when the access token has expired, and every failure turned into an
// ApiError whose `message` can be shown to the user as it is.

import { refreshSession } from './session.js';

export class ApiError extends Error {
  constructor(status, code, message, field = null, retryAfter = null) {
    super(message);
    this.name = 'ApiError';
    this.status = status;
    this.code = code;
    this.field = field;
    this.retryAfter = retryAfter;
  }
}

const NETWORK_MESSAGE = 'Cannot reach the server. Check your connection and try again.';

/**
 * `api('/api/videos')`, `api('/api/channels', { method: 'POST', body: {...} })`.
 * Resolves to the parsed JSON (or null for 204); rejects with ApiError.
 */
export async function api(path, { method = 'GET', body, signal, retry = true } = {}) {
  const started = Date.now();
  const headers = { accept: 'application/json' };
  if (body !== undefined) headers['content-type'] = 'application/json';
  let response;
  try {
    response = await fetch(path, {
      method,
      headers,
      body: body === undefined ? undefined : JSON.stringify(body),
      credentials: 'same-origin',
      signal,
    });
  } catch (e) {
    if (e.name === 'AbortError') throw e;
    throw new ApiError(0, 'network', NETWORK_MESSAGE);
  }
  if (response.status === 401 && retry && !path.startsWith('/api/auth/') && (await refreshSession(started))) {
    return api(path, { method, body, signal, retry: false });
  }
  return parse(response);
}

/** The JSON of a response, or the ApiError it describes. */
export async function parse(response) {
  if (response.status === 204) return null;
  let data = null;
  try {
    data = await response.json();
  } catch {
    data = null;
  }
  if (response.ok) return data;
  throw errorFrom(response.status, data, response.headers.get('retry-after'));
}

/** An ApiError from a status and the `{error: {code, message, field}}` body the API answers with. */
export function errorFrom(status, data, retryAfter = null) {
  const error = data && data.error ? data.error : {};
  const code = error.code || `http_${status}`;
  return new ApiError(status, code, friendly(status, code, error.message, retryAfter), error.field || null, retryAfter);
}

function friendly(status, code, serverMessage, retryAfter) {
  switch (code) {
    case 'bad_credentials':
      return 'Wrong username, email or password.';
    case 'unauthorized':
      return 'Your session has ended. Please log in again.';
    case 'forbidden':
      return 'You are not allowed to do that.';
    case 'not_found':
      return 'Not found: it may have been deleted, or the address is wrong.';
    case 'rate_limited': {
      const secs = Number.parseInt(retryAfter || '', 10);
      return Number.isFinite(secs) ? `Too many attempts. Try again in ${waitText(secs)}.` : 'Too many attempts. Try again later.';
    }
    case 'payload_too_large':
      return 'That is too large for this server.';
    case 'request_timeout':
      return 'The server took too long to answer. Try again.';
    case 'unavailable':
      // Said by the server about itself ("this server does not send e-mail…"): worth showing.
      return serverMessage ? sentence(serverMessage) : 'This is not available on this server right now.';
    case 'internal':
      return 'Something went wrong on the server. Try again in a moment.';
    default:
      if (status >= 500) return 'Something went wrong on the server. Try again in a moment.';
      return serverMessage ? sentence(serverMessage) : `The request failed (HTTP ${status}).`;
  }
}

/**
 * The server's messages are lowercase clauses ("the video is live; stop the stream…"); the pages
 * show them after a sentence of their own ("Not deleted. The video is live…"), so they get a
 * capital and a full stop.
 */
export function sentence(text) {
  const trimmed = text.trim();
  if (!trimmed) return trimmed;
  const capital = trimmed.charAt(0).toUpperCase() + trimmed.slice(1);
  return /[.!?…]$/.test(capital) ? capital : `${capital}.`;
}

function waitText(secs) {
  if (secs < 90) return `${secs} second${secs === 1 ? '' : 's'}`;
  const minutes = Math.ceil(secs / 60);
  return `${minutes} minutes`;
}

/** What the pages call a field whose API name says something else to a person. */
const FIELD_WORDS = { slug: 'address' };

/** A message for a field error: the server's text names the field ("slug: must be…"), the form shows it beside the field. */
export function fieldMessage(error) {
  if (!error.field) return error.message;
  if (error.code === 'conflict') return `This ${FIELD_WORDS[error.field] || error.field.replace(/_/g, ' ')} is already taken.`;
  const prefix = `${error.field}: `;
  const text = error.message.toLowerCase().startsWith(prefix.toLowerCase()) ? error.message.slice(prefix.length) : error.message;
  return sentence(text);
}
