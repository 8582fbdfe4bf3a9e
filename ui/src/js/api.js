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

const UNIT_MS = { ms: 1, s: 1000, m: 60000, h: 3600000, d: 86400000 };
/** The length in ms of a relative time such as "-6h" (a single unit), or null. */
export function relativeMs(since) {
  const m = /^-([0-9]+)(ms|s|m|h|d)$/.exec(String(since));
  return m ? Number(m[1]) * UNIT_MS[m[2]] : null;
}

/**
 * Reads a list that the hub returns oldest first from `since` (decisions, actions) and
 * returns its newest rows, oldest first: at most `pages` pages of `limit`. Rows are
 * deduplicated by `id` (the `since` of the next page is inclusive).
 *
 * One request when the window holds fewer than `limit` rows (the usual case). When it holds
 * more, reading it from its start would give its oldest rows: the window is then read back
 * from now, over one minute, then two, four, … (relative times, so the hub's clock decides),
 * each span page by page to its end, until the span holds the rows wanted or is the whole
 * window. A `since` that is not a relative time ("-6h") is read from its start.
 */
export async function tail(path, key, tsKey, since, limit, pages, extra, signal) {
  const keep = limit * pages;
  const first = await get(path, Object.assign({ since, limit }, extra), signal);
  const rows0 = first[key] || [];
  const window = relativeMs(since);
  if (rows0.length < limit) return rows0;
  // reads [from, end] page by page, keeping the newest `keep` rows; at most 1000 pages
  async function span(from, seen) {
    for (let i = 0; i < 1000; i++) {
      const j = i === 0 && from === since ? first : await get(path, Object.assign({ since: from, limit }, extra), signal);
      const rows = j[key] || [];
      for (const r of rows) {
        seen.delete(r.id);
        seen.set(r.id, r);
      }
      for (const k of seen.keys()) {
        if (seen.size <= keep) break;
        seen.delete(k);
      }
      if (rows.length < limit) return true;
      const last = rows[rows.length - 1][tsKey];
      if (String(last) === String(from)) return true; // a page of one instant: no further
      from = last;
    }
    return false;
  }
  if (window === null) {
    const seen = new Map();
    await span(since, seen);
    return [...seen.values()];
  }
  for (let back = 60000; ; back *= 2) {
    const whole = back >= window;
    const seen = new Map();
    await span(whole ? since : `-${Math.ceil(back / 1000)}s`, seen);
    if (whole || seen.size >= keep) return [...seen.values()];
  }
}
