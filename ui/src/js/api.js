// The hub's JSON API (docs/http-api.md). The bearer token lives in sessionStorage only:
// it is gone when the tab closes, and never written anywhere else.

const TOKEN_KEY = 'vigil.token';

/** The token of this tab, or "". */
export function getToken() {
  try {
    return sessionStorage.getItem(TOKEN_KEY) || '';
  } catch {
    return '';
  }
}

/** Keeps `token` for this tab ("" forgets it) and tells the listeners. */
export function setToken(token) {
  try {
    if (token) sessionStorage.setItem(TOKEN_KEY, token);
    else sessionStorage.removeItem(TOKEN_KEY);
  } catch {
    /* storage disabled: the token lasts until reload */
  }
  memToken = token;
  for (const fn of tokenListeners) fn(token);
}

let memToken = null;
const tokenListeners = new Set();
/** Calls fn(token) whenever the token changes. */
export function onToken(fn) {
  tokenListeners.add(fn);
}

function token() {
  return memToken !== null ? memToken : getToken();
}

/** An answer of the hub other than 2xx: status, the error's code and message. */
export class ApiError extends Error {
  constructor(status, code, message, path) {
    super(message);
    this.status = status;
    this.code = code;
    this.path = path;
  }
  /** 401 or 403: the token is missing, unknown or lacks a scope. */
  get auth() {
    return this.status === 401 || this.status === 403;
  }
  /** "HTTP 403 forbidden: token "dashboard" lacks the admin scope" */
  describe() {
    return `HTTP ${this.status}${this.code ? ` ${this.code}` : ''}: ${this.message}`;
  }
}

const authListeners = new Set();
/** Calls fn(error) when a read the pages need is refused 401/403. */
export function onAuthError(fn) {
  authListeners.add(fn);
}
/** Reports a refused read (pages call this for their main loads). */
export function reportAuthError(err) {
  for (const fn of authListeners) fn(err);
}

/** Request headers: the bearer token when there is one. */
export function authHeaders(extra) {
  const hdr = Object.assign({}, extra);
  const t = token();
  if (t) hdr.Authorization = `Bearer ${t}`;
  return hdr;
}

async function errorOf(res) {
  let code = '';
  let message = res.statusText || 'request failed';
  let path = '';
  try {
    const j = await res.json();
    if (j && j.error) {
      code = j.error.code || '';
      message = j.error.message || message;
      path = j.error.path || '';
    }
  } catch {
    /* not JSON (a proxy's page): keep the status text */
  }
  return new ApiError(res.status, code, message, path);
}

/**
 * Calls the hub: method, path (with query), optional JSON body. Returns the parsed JSON,
 * or throws ApiError (an HTTP error) or TypeError (the hub is unreachable).
 */
export async function call(method, path, body, signal) {
  const opts = { method, headers: authHeaders({ Accept: 'application/json' }), signal, cache: 'no-store' };
  if (body !== undefined) {
    opts.headers['Content-Type'] = 'application/json';
    opts.body = JSON.stringify(body);
  } else if (method !== 'GET') {
    // a state-changing request without a body needs this header (CSRF guard of the hub)
    opts.headers['X-Vigil-Request'] = 'dashboard';
  }
  const res = await fetch(path, opts);
  if (!res.ok) throw await errorOf(res);
  const text = await res.text();
  return text ? JSON.parse(text) : null;
}

/** GET path with `params` (an object; arrays repeat the key), parsed. */
export function get(path, params, signal) {
  return call('GET', path + query(params), undefined, signal);
}

/** A query string from an object (undefined/null/"" skipped; arrays repeat the key). */
export function query(params) {
  if (!params) return '';
  const q = new URLSearchParams();
  for (const [k, v] of Object.entries(params)) {
    if (v === undefined || v === null || v === '') continue;
    if (Array.isArray(v)) for (const x of v) q.append(k, x);
    else q.append(k, String(v));
  }
  const s = q.toString();
  return s ? `?${s}` : '';
}

/**
 * Reads a list that the hub returns oldest first from `since` (decisions, actions), page by
 * page, and returns its newest rows: at most `pages` pages of `limit`. Rows are deduplicated
 * by `id` (the `since` of the next page is inclusive).
 */
export async function tail(path, key, tsKey, since, limit, pages, extra, signal) {
  const seen = new Map();
  let from = since;
  for (let i = 0; i < pages; i++) {
    const j = await get(path, Object.assign({ since: from, limit }, extra), signal);
    const rows = j[key] || [];
    for (const r of rows) seen.set(r.id, r);
    if (rows.length < limit) break;
    const last = rows[rows.length - 1][tsKey];
    if (String(last) === String(from)) break;
    from = last;
  }
  return [...seen.values()];
}
