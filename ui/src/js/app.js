// The dashboard's shell: navigation (hash routes), the token form, the live indicator, and
// the page that is showing. Each page module exports mount(root, ctx) returning an object
// with unmount(); ctx.events is the shared event stream.

import { h, fill, badge, tickTimes } from './dom.js';
import { ApiError, getToken, setToken, onAuthError } from './api.js';
import { EventStream } from './events.js';
import * as overview from './overview.js';

// The overview is the landing page and comes with this module (index.html preloads its
// modules); the other pages load on first use, and once the first page is up they are
// fetched while the browser is idle, so switching is instant.
const PAGES = [
  { path: 'overview', title: 'Overview', load: () => overview },
  { path: 'metrics', title: 'Metrics', load: () => import('./metrics.js') },
  { path: 'actions', title: 'Actions & audit', load: () => import('./actions.js') },
  { path: 'drift', title: 'Drift', load: () => import('./drift.js') },
  { path: 'silences', title: 'Silences', load: () => import('./silences.js') },
];

const events = new EventStream();
const main = document.getElementById('main');
const nav = document.getElementById('nav');
const liveEl = document.getElementById('live');
const tokenBtn = document.getElementById('token-button');
let current = null;
let currentPath = '';
let refused = null;

let routeSeq = 0;
async function route() {
  const my = ++routeSeq;
  const m = /^#\/([a-z]+)(?:\?(.*))?$/.exec(location.hash);
  const page = PAGES.find((p) => m && p.path === m[1]);
  if (!page) {
    location.replace('#/overview');
    return;
  }
  const params = new URLSearchParams(m[2] || '');
  if (current && currentPath === page.path && current.update) {
    current.update(params);
    return;
  }
  if (current) current.unmount();
  current = null;
  currentPath = page.path;
  for (const a of nav.querySelectorAll('a')) {
    if (a.dataset.page === page.path) a.setAttribute('aria-current', 'page');
    else a.removeAttribute('aria-current');
  }
  document.title = `${page.title} · Vigil`;
  document.body.dataset.page = page.path;
  const root = h('div', { class: 'page', id: `page-${page.path}` });
  fill(main, root);
  if (refused) {
    showTokenForm(refused);
    current = null;
    return;
  }
  const mod = page.path === 'overview' ? overview : await page.load();
  if (my !== routeSeq || refused) return;
  current = mod.mount(root, { events, params, navigate });
}

function navigate(hash) {
  if (location.hash === hash) route();
  else location.hash = hash;
}

/** The token form, in place of the page, with the reason the hub gave (if any). */
function showTokenForm(err) {
  if (current) {
    current.unmount();
    current = null;
  }
  const had = getToken();
  const input = h('input', { id: 'token-input', type: 'password', name: 'token', autocomplete: 'off', spellcheck: 'false', required: true, 'aria-describedby': 'token-help' });
  const form = h('form', { class: 'token-form', id: 'token-form' },
    h('h2', null, 'Hub token'),
    err ? h('p', { class: 'error-box', role: 'alert', id: 'token-error' },
      h('span', { 'aria-hidden': 'true' }, '✗ '),
      had ? 'The hub refused this token' : 'The hub needs a token',
      ` (${err instanceof ApiError ? err.describe() : `HTTP ${err.status}: ${err.message}`}).`) : null,
    h('p', { id: 'token-help' },
      'Paste a bearer token with the read scope (admin to approve, deny, release and verify the audit chain). ',
      'It is kept in this tab’s session storage only and sent to this hub alone.'),
    h('div', { class: 'row' },
      h('label', { for: 'token-input' }, 'Token'),
      input,
      h('button', { type: 'submit', class: 'primary' }, 'Use token'),
      had ? h('button', { type: 'button', onclick: () => { setToken(''); refused = null; events.restart(); route(); } }, 'Forget token') : null));
  form.addEventListener('submit', (e) => {
    e.preventDefault();
    const t = input.value.trim();
    if (!t) return;
    setToken(t);
    refused = null;
    events.restart();
    currentPath = '';
    route();
  });
  fill(main, h('div', { class: 'page', id: 'page-token' }, form));
  input.focus();
}

onAuthError((err) => {
  if (refused) return;
  refused = err;
  showTokenForm(err);
});

tokenBtn.addEventListener('click', () => showTokenForm(refused));

events.onState((state, detail) => {
  let label = state;
  if (state === 'reconnecting') label = `reconnecting in ${(detail / 1000).toFixed(1)} s`;
  if (state === 'refused') {
    label = 'offline';
    onAuthErrorFromStream(detail);
  }
  fill(liveEl, badge(state === 'refused' ? 'offline' : state, label === 'live' ? 'live' : label));
  liveEl.title = state === 'live' ? 'receiving /v1/events' : `event stream: ${label}`;
});

function onAuthErrorFromStream(detail) {
  if (refused) return;
  refused = new ApiError(detail.status, detail.status === 401 ? 'unauthorized' : 'forbidden', detail.message);
  showTokenForm(refused);
}

window.addEventListener('hashchange', route);
setInterval(tickTimes, 1000);
for (const p of PAGES) {
  nav.append(h('a', { href: `#/${p.path}`, dataset: { page: p.path } }, p.title));
}
events.restart();
route().then(() => {
  const idle = window.requestIdleCallback || ((fn) => setTimeout(fn, 200));
  idle(() => PAGES.forEach((p) => Promise.resolve(p.load()).catch(() => {})));
});
