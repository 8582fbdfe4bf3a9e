// Small DOM and formatting helpers shared by every page. No framework: elements are built
// with h() and replaced wholesale, which at the sizes the hub returns (at most a few
// thousand rows) is faster than diffing.

/**
 * Builds an element. attrs: plain attributes, plus `class`, `on<event>` handlers, `dataset`
 * objects and boolean attributes (true sets, false/null/undefined omits). children: strings,
 * numbers, nodes, or nested arrays of them (null and false are skipped).
 */
export function h(tag, attrs, ...children) {
  const node = document.createElement(tag);
  if (attrs) {
    for (const [k, v] of Object.entries(attrs)) {
      if (v === null || v === undefined || v === false) continue;
      if (k.startsWith('on') && typeof v === 'function') node.addEventListener(k.slice(2), v);
      else if (k === 'dataset') Object.assign(node.dataset, v);
      else if (k === 'class') node.className = v;
      else if (v === true) node.setAttribute(k, '');
      else node.setAttribute(k, String(v));
    }
  }
  append(node, children);
  return node;
}

function append(node, children) {
  for (const c of children) {
    if (c === null || c === undefined || c === false) continue;
    if (Array.isArray(c)) append(node, c);
    else node.append(c instanceof Node ? c : String(c));
  }
}

/**
 * Replaces the children of `node`. When the focus was on a control inside it, the control
 * of the new content with the same id, or the same aria-label, gets it back, so that a live
 * re-render never throws a keyboard user out of a table.
 */
export function fill(node, ...children) {
  const active = document.activeElement;
  let key = null;
  if (active && active !== node && node.contains(active)) {
    if (active.id) key = `#${CSS.escape(active.id)}`;
    else if (active.getAttribute('aria-label')) key = `${active.tagName.toLowerCase()}[aria-label="${CSS.escape(active.getAttribute('aria-label'))}"]`;
  }
  node.replaceChildren();
  append(node, children);
  if (key) {
    const again = node.querySelector(key);
    if (again) again.focus({ preventScroll: true });
  }
  return node;
}

// Statuses: each is shown by an icon and a word as well as a colour (the icon is
// aria-hidden; the word is what a screen reader says). The icons are plain text symbols
// that common fonts (DejaVu) carry, not emoji.
const STATUS = {
  ok: ['✓', 'good'],
  in_sync: ['✓', 'good'],
  succeeded: ['✓', 'good'],
  remediated: ['✓', 'good'],
  resolved: ['✓', 'good'],
  approved: ['✓', 'good'],
  intact: ['✓', 'good'],
  live: ['●', 'good'],
  active: ['●', 'warn'],
  pending: ['◔', 'warn'],
  running: ['◔', 'warn'],
  pending_approval: ['⌛', 'warn'],
  deferred: ['◔', 'warn'],
  fired: ['▲', 'bad'],
  firing: ['▲', 'bad'],
  escalated: ['▲', 'bad'],
  flapping: ['↯', 'warn'],
  suppressed: ['↯', 'warn'],
  exhausted: ['⊘', 'bad'],
  capped: ['⊘', 'warn'],
  silenced: ['⊝', 'muted'],
  expired: ['–', 'muted'],
  scheduled: ['…', 'muted'],
  dry_run: ['◌', 'muted'],
  redelivered: ['↻', 'warn'],
  reconnecting: ['↻', 'warn'],
  connecting: ['↻', 'muted'],
  stale: ['⚠', 'bad'],
  drifted: ['≠', 'bad'],
  missing: ['∅', 'bad'],
  error: ['✗', 'bad'],
  failed: ['✗', 'bad'],
  timeout: ['◷', 'bad'],
  refused: ['⊘', 'bad'],
  ineffective: ['✗', 'bad'],
  action_failed: ['✗', 'bad'],
  quarantined: ['⊗', 'bad'],
  broken: ['✗', 'bad'],
  offline: ['✗', 'bad'],
};

/** A status badge: icon + text, coloured by class. `label` overrides the text. */
export function badge(status, label) {
  const [icon, tone] = STATUS[status] || ['•', 'muted'];
  return h('span', { class: `badge tone-${tone}`, dataset: { status } },
    h('span', { class: 'badge-icon', 'aria-hidden': 'true' }, icon),
    h('span', { class: 'badge-text' }, label || status.replace(/_/g, ' ')));
}

const pad = (n, w = 2) => String(n).padStart(w, '0');

/** Local wall-clock time of epoch ms: "14:03:07" today, else "2026-12-06 14:03". */
export function clock(ms) {
  if (ms === null || ms === undefined) return '—';
  const d = new Date(ms);
  const now = new Date();
  const hms = `${pad(d.getHours())}:${pad(d.getMinutes())}:${pad(d.getSeconds())}`;
  if (d.toDateString() === now.toDateString()) return hms;
  return `${d.getFullYear()}-${pad(d.getMonth() + 1)}-${pad(d.getDate())} ${hms.slice(0, 5)}`;
}

/** "3 s ago", "in 2 min", from epoch ms relative to now. */
export function ago(ms, now = Date.now()) {
  if (ms === null || ms === undefined) return 'never';
  const d = Math.round((now - ms) / 1000);
  const a = Math.abs(d);
  let s;
  if (a < 2) return 'just now';
  if (a < 90) s = `${a} s`;
  else if (a < 5400) s = `${Math.round(a / 60)} min`;
  else if (a < 172800) s = `${Math.round(a / 3600)} h`;
  else s = `${Math.round(a / 86400)} d`;
  return d >= 0 ? `${s} ago` : `in ${s}`;
}

/** A <time> that keeps saying how long ago `ms` was (see tickTimes()). */
export function timeAgo(ms) {
  if (ms === null || ms === undefined) return h('span', { class: 'muted' }, 'never');
  return h('time', { datetime: new Date(ms).toISOString(), title: new Date(ms).toLocaleString(), dataset: { ago: ms } }, ago(ms));
}

/** Refreshes every timeAgo() text in the document (called once a second). */
export function tickTimes() {
  const now = Date.now();
  for (const t of document.querySelectorAll('time[data-ago]')) {
    const s = ago(Number(t.dataset.ago), now);
    if (t.textContent !== s) t.textContent = s;
  }
}

/** Milliseconds as "31 ms", "1.24 s", "2 min 5 s". */
export function duration(ms) {
  if (ms === null || ms === undefined || ms < 0) return '—';
  if (ms < 1000) return `${ms} ms`;
  if (ms < 60000) return ms % 1000 === 0 ? `${ms / 1000} s` : `${(ms / 1000).toFixed(ms < 10000 ? 2 : 1)} s`;
  const m = Math.floor(ms / 60000);
  return `${m} min ${Math.round((ms % 60000) / 1000)} s`;
}

/** A number with a sensible precision and SI suffix: 0.931, 12.4k, 3.2M. */
export function num(v) {
  if (v === null || v === undefined || Number.isNaN(v)) return '—';
  const a = Math.abs(v);
  if (a >= 1e9) return `${(v / 1e9).toFixed(2)}G`;
  if (a >= 1e6) return `${(v / 1e6).toFixed(2)}M`;
  if (a >= 1e4) return `${(v / 1e3).toFixed(1)}k`;
  if (a >= 100) return v.toFixed(0);
  if (a >= 1) return v.toFixed(2);
  if (a === 0) return '0';
  return v.toPrecision(3);
}

/** Tags as `k=v, k=v` in key order. */
export function tagText(tags) {
  return Object.keys(tags || {}).sort().map((k) => `${k}=${tags[k]}`).join(', ');
}

/** A short commit id. */
export function shortRev(rev) {
  return rev ? String(rev).slice(0, 12) : '—';
}

/** A section with a heading, an optional toolbar and a body. */
export function panel(title, body, tools, id) {
  const hid = `h-${(id || title).replace(/[^a-z0-9]+/gi, '-').toLowerCase()}`;
  return h('section', { class: 'panel', 'aria-labelledby': hid, id: id || null },
    h('header', { class: 'panel-head' }, h('h2', { id: hid }, title), tools ? h('div', { class: 'panel-tools' }, tools) : null),
    h('div', { class: 'panel-body' }, body));
}

/** A table with a visually hidden caption; rows: arrays of cells (nodes or text). */
export function table(caption, heads, rows, empty, rowAttrs) {
  if (!rows.length) return h('p', { class: 'empty' }, empty || 'Nothing yet.');
  return h('div', { class: 'table-wrap' },
    h('table', null,
      h('caption', { class: 'sr-only' }, caption),
      h('thead', null, h('tr', null, heads.map((x) => h('th', { scope: 'col' }, x)))),
      h('tbody', null, rows.map((r, i) => h('tr', rowAttrs ? rowAttrs(i) : null, r.map((c) => h('td', null, c)))))));
}

/** An inline error box. */
export function errorBox(msg) {
  return h('p', { class: 'error-box', role: 'alert' }, h('span', { 'aria-hidden': 'true' }, '✗ '), msg);
}
