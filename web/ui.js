// Pieces every view shares: URLs of views and how a failed call is shown.

import { ApiError, SessionEnded } from './api.js';
import { h } from './dom.js';

/** The app's own path (`/`, or `/index.html` where a proxy keeps `/` for itself). */
export const base = window.location.pathname;

export function urlFor(params) {
  const q = new URLSearchParams();
  for (const [k, v] of Object.entries(params || {})) {
    if (v !== null && v !== undefined && v !== '') q.set(k, String(v));
  }
  const s = q.toString();
  return s ? `${base}?${s}` : base;
}

/** A failed call, as the user sees it: what went wrong and the request id to quote. */
export function problemBox(err, intro) {
  if (err instanceof SessionEnded) return null;
  const e = err instanceof ApiError ? err : new ApiError(0, { title: 'Unexpected error', detail: String(err) });
  let message = e.message;
  if (e.status === 403) {
    message = e.code === 'forbidden'
      ? `You are not allowed to do this. ${e.problem.detail || ''}`.trim()
      : `The service refused this request (${e.code || 'forbidden'}). ${e.problem.detail || ''}`.trim();
  }
  return h('div', { class: 'problem', role: 'alert', dataset: { status: String(e.status), code: e.code || '' } },
    h('p', { class: 'problem-title' }, intro || e.problem.title || 'Something went wrong'),
    h('p', {}, message),
    e.requestId ? requestIdLine(e.requestId) : null,
  );
}

function requestIdLine(id) {
  const code = h('code', { class: 'request-id' }, id);
  const status = h('span', { class: 'copy-status', role: 'status' });
  const copy = h('button', {
    type: 'button',
    class: 'link',
    onclick: async () => {
      try {
        await navigator.clipboard.writeText(id);
        status.textContent = 'Copied.';
      } catch (e) {
        // No clipboard access (permissions, insecure context): select it for Ctrl+C.
        const range = document.createRange();
        range.selectNodeContents(code);
        const sel = window.getSelection();
        sel.removeAllRanges();
        sel.addRange(range);
        status.textContent = 'Selected: press Ctrl+C to copy.';
      }
    },
  }, 'Copy');
  return h('p', { class: 'request-id-line' }, 'Request id (quote it when you report this): ', code, ' ', copy, ' ', status);
}

