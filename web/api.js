// The one way the page talks to the service: fetch on the public /v1 API, same origin, with
// the ALB session cookie. Errors become `ApiError`s carrying the problem document and the
// request id; an ended session sends the browser back through the login.

export class ApiError extends Error {
  constructor(status, problem, requestId) {
    super((problem && (problem.detail || problem.title)) || `HTTP ${status}`);
    this.status = status;
    this.problem = problem || {};
    this.code = this.problem.code || null;
    this.requestId = requestId || this.problem.request_id || null;
    /** `[{field, code, message}]` of a validation failure. */
    this.fieldErrors = Array.isArray(this.problem.errors) ? this.problem.errors : [];
  }
}

/** Thrown when the session is over; the page is already on its way to the login. */
export class SessionEnded extends Error {}

const REAUTH_KEY = 'players.reauth-at';
const REAUTH_GUARD_MS = 30_000;

let onSessionProblem = () => {};
/** Called with a message when the session ended but going to the login would loop. */
export function setSessionProblemHandler(fn) {
  onSessionProblem = fn;
}

function sessionEnded() {
  // Loading the page again is what logs in: the ALB (or the local stand-in) answers an
  // unauthenticated page request with its login. Once per 30 s at most, so a service that
  // keeps refusing a fresh login shows a message instead of reloading forever.
  const last = Number(sessionStorage.getItem(REAUTH_KEY) || 0);
  if (Date.now() - last > REAUTH_GUARD_MS) {
    sessionStorage.setItem(REAUTH_KEY, String(Date.now()));
    window.location.assign(window.location.href);
  } else {
    onSessionProblem();
  }
  throw new SessionEnded('session ended');
}

/**
 * request('PATCH', '/v1/players/1', {body, contentType, headers}) →
 * {status, data, etag, requestId, headers}
 */
export async function request(method, path, opts = {}) {
  const headers = { Accept: 'application/json', ...(opts.headers || {}) };
  const init = {
    method,
    headers,
    credentials: 'same-origin',
    // An expired ALB session answers with a redirect to the login; see it, do not follow it.
    redirect: 'manual',
    cache: 'no-store',
  };
  if (opts.body !== undefined) {
    init.body = JSON.stringify(opts.body);
    headers['Content-Type'] = opts.contentType || 'application/json';
  }
  let res;
  try {
    res = await fetch(path, init);
  } catch (e) {
    throw new ApiError(0, {
      title: 'The service could not be reached',
      detail: 'Check your connection and try again.',
    });
  }
  if (res.type === 'opaqueredirect') sessionEnded();
  const requestId = res.headers.get('x-request-id');
  let data = null;
  const type = res.headers.get('content-type') || '';
  if (res.status !== 204 && res.status !== 304 && type.includes('json')) {
    try {
      data = await res.json();
    } catch (e) {
      data = null;
    }
  }
  if (res.status === 401) sessionEnded();
  if (!res.ok) {
    throw new ApiError(
      res.status,
      data || { title: `HTTP ${res.status}`, detail: 'The service answered with an error.' },
      requestId,
    );
  }
  sessionStorage.removeItem(REAUTH_KEY);
  return { status: res.status, data, etag: res.headers.get('etag'), requestId, headers: res.headers };
}

export const get = (path) => request('GET', path);

/** `?a=1&b=2` from an object, leaving out empty values. */
export function query(params) {
  const q = new URLSearchParams();
  for (const [k, v] of Object.entries(params)) {
    if (v !== null && v !== undefined && v !== '') q.set(k, String(v));
  }
  const s = q.toString();
  return s ? `?${s}` : '';
}
