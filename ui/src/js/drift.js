// Drift: per source (host), the commit it applied and when it last reported, and per
// resource and field the desired value (from git) against the observed one.

import { h, fill, panel, badge, errorBox, timeAgo, shortRev, table } from './dom.js';
import { get, reportAuthError } from './api.js';

const STATUSES = ['', 'drifted', 'missing', 'error', 'in_sync'];

function scalar(v) {
  if (v === null || v === undefined) return h('span', { class: 'muted' }, 'null');
  return h('code', null, typeof v === 'string' ? v : JSON.stringify(v));
}

export function mount(root, { events }) {
  const ctl = new AbortController();
  const st = { drift: null, error: null, filter: '' };
  const body = h('div', { id: 'drift-body' });
  const filter = h('select', { id: 'drift-filter', onchange: () => { st.filter = filter.value; render(); } },
    STATUSES.map((s) => h('option', { value: s }, s ? s.replace('_', ' ') : 'all')));
  fill(root, h('h1', { class: 'sr-only' }, 'Drift'),
    panel('Drift: desired (git) against observed', body, h('span', null, h('label', { for: 'drift-filter' }, 'Status '), filter), 'drift'));

  function render() {
    if (st.error) return fill(body, errorBox(st.error));
    if (!st.drift) return fill(body, h('p', { class: 'muted' }, 'Loading…'));
    const items = st.drift.drift || [];
    if (!items.length) return fill(body, h('p', { class: 'empty' }, 'No drift reports yet: vigil-gitopsd sends one per sync (POST /v1/drift).'));
    const sources = new Map();
    for (const d of items) {
      const s = sources.get(d.source) || { source: d.source, revision: d.revision, updated: 0, n: 0, drifted: 0 };
      if (d.updated >= s.updated) {
        s.updated = d.updated;
        s.revision = d.revision;
      }
      s.n++;
      if (d.status !== 'in_sync') s.drifted++;
      sources.set(d.source, s);
    }
    const src = [...sources.values()];
    const shown = st.filter ? items.filter((d) => d.status === st.filter) : items;
    const rows = [];
    for (const d of shown) {
      const diff = d.diff && d.diff.length ? d.diff : [null];
      diff.forEach((f, i) => rows.push({ d, f, first: i === 0 }));
    }
    return fill(body,
      table('Sources', ['Source', 'Commit', 'Last sync', 'Resources', 'Drifted'], src.map((s) => [
        h('strong', null, s.source), h('code', { title: s.revision }, shortRev(s.revision)), timeAgo(s.updated), s.n,
        s.drifted ? badge('drifted', String(s.drifted)) : badge('in_sync', '0')])),
      table('Resources and fields', ['Resource', 'Kind', 'Status', 'Field', 'Desired', 'Observed', 'Self-heal', 'Reported'], rows.map(({ d, f, first }) => [
        first ? h('code', null, d.target) : '',
        first ? d.kind : '',
        first ? badge(d.status) : '',
        f ? h('code', null, f.field) : (d.error ? h('span', { class: 'error-text' }, d.error) : h('span', { class: 'muted' }, '—')),
        f ? scalar(f.desired) : '',
        f ? scalar(f.observed) : '',
        first ? (d.selfHeal ? 'yes' : 'no') : '',
        first ? timeAgo(d.updated) : '',
      ]), st.filter ? `No resource is ${st.filter.replace('_', ' ')}.` : 'No resources.',
      (i) => ({ class: 'drift-row', dataset: { target: rows[i].d.target, status: rows[i].d.status } })));
  }

  async function load() {
    try {
      st.drift = await get('/v1/drift', null, ctl.signal);
      st.error = null;
    } catch (e) {
      if (ctl.signal.aborted) return;
      if (e.auth) reportAuthError(e);
      st.error = e.describe ? e.describe() : `the hub did not answer (${e.message})`;
    }
    render();
  }
  let soon = null;
  const later = () => {
    clearTimeout(soon);
    soon = setTimeout(load, 100);
  };
  const offs = [events.on('drift', later), events.on('reconnected', later)];
  const off = () => offs.forEach((f) => f());
  render();
  load();
  const timer = setInterval(load, 15000);
  return {
    unmount() {
      ctl.abort();
      off();
      clearTimeout(soon);
      clearInterval(timer);
    },
  };
}
