// Metrics explorer: a metric and tag filters, a time range, and a chart of /v1/query with
// a step fitted to the chart's width (one point per pixel or so: per second over 15 min).
// Drag across the chart to zoom into that range; live-follow appends the newest points
// every step (every second at 1 s steps) without refetching the whole range.

import { h, fill, panel, errorBox, num, tagText, clock } from './dom.js';
import { get, reportAuthError } from './api.js';
import { timeChart } from './charts.js';

const RANGES = { '5m': 300e3, '15m': 900e3, '1h': 3600e3, '6h': 6 * 3600e3, '24h': 86400e3 };
const STEPS = [1, 2, 5, 10, 15, 30, 60, 120, 300, 600, 900, 1800, 3600, 7200, 21600, 86400];
const MAX_SERIES = 24;

/** The step (seconds) giving at most about `points` points over `spanMs`. */
export function pickStep(spanMs, points) {
  const want = spanMs / 1000 / Math.max(60, points);
  return STEPS.find((s) => s >= want) || STEPS[STEPS.length - 1];
}

function toLocalInput(ms) {
  const d = new Date(ms - new Date(ms).getTimezoneOffset() * 60000);
  return d.toISOString().slice(0, 19);
}

export function mount(root, { events, params }) {
  const ctl = new AbortController();
  const st = {
    name: params.get('name') || 'cpu_usage',
    match: params.getAll('match'),
    range: params.get('range') || '15m',
    from: Number(params.get('from')) || 0,
    to: Number(params.get('to')) || 0,
    follow: params.get('follow') !== '0',
    series: [], // {key, label, tags, pts: [[ms, v]]}
    step: 1,
    catalog: null, // all series (name → [tags])
  };
  if (st.range === 'custom' && !(st.from && st.to && st.to > st.from)) st.range = '15m';
  if (st.range === 'custom') st.follow = false;

  const nameInput = h('input', { id: 'metric-name', type: 'text', list: 'metric-names', value: st.name, autocomplete: 'off', spellcheck: 'false', 'aria-describedby': 'metric-help' });
  const names = h('datalist', { id: 'metric-names' });
  const filters = h('div', { class: 'filters', id: 'metric-filters' });
  const rangeBtns = h('div', { class: 'seg', role: 'group', 'aria-label': 'Time range' });
  const custom = h('div', { class: 'custom-range', id: 'custom-range' });
  const follow = h('input', { type: 'checkbox', id: 'metric-follow', checked: st.follow });
  const info = h('p', { class: 'muted small', id: 'metric-info', 'aria-live': 'polite' });
  const chartHost = h('div', { class: 'chart', id: 'metric-chart', role: 'img', 'aria-label': 'chart' });
  const status = h('div', { id: 'metric-status' });
  const latest = h('div', { id: 'metric-latest' });
  let chart = null;
  let chartKeys = '';

  const form = h('form', { class: 'explorer-form', id: 'metric-form' },
    h('div', { class: 'field' }, h('label', { for: 'metric-name' }, 'Metric'), nameInput, names,
      h('span', { id: 'metric-help', class: 'muted small' }, 'A name, or a glob (cpu_*)')),
    filters,
    h('div', { class: 'field' }, h('span', { class: 'label', id: 'range-label' }, 'Range'), rangeBtns),
    h('div', { class: 'field' }, h('span', { class: 'label' }, 'Live'), h('label', { class: 'check' }, follow, ' follow')),
    h('button', { type: 'submit', class: 'primary' }, 'Show'));
  fill(root,
    h('h1', { class: 'sr-only' }, 'Metrics explorer'),
    panel('Metrics explorer', [form, custom, status, info, chartHost, h('p', { class: 'muted small hint' }, 'Drag across the chart to zoom into a range; double-click or “Reset zoom” to go back.')],
      h('button', { type: 'button', id: 'zoom-reset', onclick: resetZoom }, 'Reset zoom'), 'explorer'),
    panel('Latest values', latest, null, 'latest'));

  function renderRange() {
    fill(rangeBtns, [...Object.keys(RANGES), 'custom'].map((r) =>
      h('button', { type: 'button', class: 'seg-btn', 'aria-pressed': String(st.range === r), dataset: { range: r }, onclick: () => setRange(r) }, r)));
    if (st.range !== 'custom') return fill(custom);
    const now = Date.now();
    const f = h('input', { type: 'datetime-local', id: 'range-from', step: '1', value: toLocalInput(st.from || now - 3600e3) });
    const t = h('input', { type: 'datetime-local', id: 'range-to', step: '1', value: toLocalInput(st.to || now) });
    return fill(custom, h('label', { for: 'range-from' }, 'From'), f, h('label', { for: 'range-to' }, 'To'), t,
      h('button', { type: 'button', onclick: () => {
        const a = new Date(f.value).getTime();
        const b = new Date(t.value).getTime();
        if (!(a < b)) return fill(status, errorBox('“From” must be before “To”.'));
        st.from = a;
        st.to = b;
        return apply();
      } }, 'Apply'));
  }

  function setRange(r) {
    st.range = r;
    if (r === 'custom') {
      const [a, b] = window_();
      st.from = a;
      st.to = b;
      st.follow = false;
      follow.checked = false;
    } else {
      st.follow = true;
      follow.checked = true;
    }
    renderRange();
    apply();
  }

  let zoomBack = null;
  function resetZoom() {
    if (!zoomBack) {
      load(); // uPlot's own double-click reset: back to the range asked for
      return;
    }
    Object.assign(st, zoomBack);
    follow.checked = st.follow;
    zoomBack = null;
    renderRange();
    apply();
  }

  function window_() {
    if (st.range === 'custom') return [st.from, st.to];
    const now = Date.now();
    return [now - RANGES[st.range], now];
  }

  function renderFilters() {
    const list = st.catalog ? st.catalog.filter((s) => nameMatches(s.name)) : [];
    const keys = new Map();
    for (const s of list) for (const [k, v] of Object.entries(s.tags)) {
      if (!keys.has(k)) keys.set(k, new Set());
      keys.get(k).add(v);
    }
    const chosen = new Map(st.match.map((m) => [m.slice(0, m.indexOf(':')), m.slice(m.indexOf(':') + 1)]));
    fill(filters, [...keys.keys()].sort().map((k) => {
      const id = `tag-${k}`;
      const vals = [...keys.get(k)].sort();
      const cur = chosen.get(k) || '';
      const sel = h('select', { id, dataset: { tag: k }, onchange: () => {
        st.match = [...filters.querySelectorAll('select')].filter((x) => x.value).map((x) => `${x.dataset.tag}:${x.value}`);
        apply();
      } }, h('option', { value: '' }, 'any'), vals.map((v) => h('option', { value: v, selected: v === cur }, v)),
        cur && !vals.includes(cur) ? h('option', { value: cur, selected: true }, cur) : null);
      return h('div', { class: 'field' }, h('label', { for: id }, k), sel);
    }));
  }

  function nameMatches(n) {
    if (!/[*?[]/.test(st.name)) return n === st.name;
    const re = new RegExp(`^${st.name.replace(/[.+^${}()|\\]/g, '\\$&').replace(/\*/g, '.*').replace(/\?/g, '.')}$`);
    return re.test(n);
  }

  async function loadCatalog() {
    try {
      const j = await get('/v1/series', null, ctl.signal);
      st.catalog = j.series;
      const set = [...new Set(j.series.map((s) => s.name))].sort();
      fill(names, set.map((n) => h('option', { value: n })));
      renderFilters();
      renderLatest();
    } catch (e) {
      if (ctl.signal.aborted) return;
      if (e.auth) reportAuthError(e);
      // too many series to list: names are typed instead
      st.catalog = [];
    }
  }

  function renderLatest() {
    const list = (st.catalog || []).filter((s) => nameMatches(s.name) && st.match.every((m) => {
      const k = m.slice(0, m.indexOf(':'));
      return s.tags[k] === m.slice(m.indexOf(':') + 1);
    })).slice(0, 50);
    if (!list.length) return fill(latest, h('p', { class: 'empty' }, 'No series match.'));
    return fill(latest, h('ul', { class: 'plain latest' }, list.map((s) => h('li', null,
      h('code', null, s.name), h('span', { class: 'muted' }, ` {${tagText(s.tags)}} `),
      h('strong', null, s.latest.value === null ? (s.latest.error || 'error') : num(s.latest.value)),
      h('span', { class: 'muted' }, ` at ${clock(s.latest.ts)}`)))));
  }

  function apply() {
    const q = new URLSearchParams();
    q.set('name', st.name);
    for (const m of st.match) q.append('match', m);
    q.set('range', st.range);
    if (st.range === 'custom') {
      q.set('from', st.from);
      q.set('to', st.to);
    }
    if (!st.follow) q.set('follow', '0');
    const hash = `#/metrics?${q}`;
    if (location.hash !== hash) history.replaceState(null, '', hash);
    load();
  }

  let seq = 0;
  let loading = false;
  async function load() {
    const my = ++seq;
    const [from, to] = window_();
    st.step = pickStep(to - from, Math.min(1500, Math.max(300, chartHost.clientWidth || 900)));
    const t0 = performance.now();
    loading = true;
    try {
      const j = await get('/v1/query', { name: st.name, match: st.match, from, to, step: `${st.step}s`, agg: 'mean' }, ctl.signal);
      if (my !== seq) return;
      fill(status);
      st.series = j.series.slice(0, MAX_SERIES).map((s) => ({ key: `${s.name}{${tagText(s.tags)}}`, name: s.name, tags: s.tags, pts: s.points }));
      st.total = j.series.length;
      st.fetchMs = Math.round(performance.now() - t0);
      draw(from, to);
    } catch (e) {
      if (ctl.signal.aborted || my !== seq) return;
      if (e.auth) reportAuthError(e);
      fill(status, errorBox(e.describe ? e.describe() : `the hub did not answer (${e.message})`));
    } finally {
      if (my === seq) loading = false;
    }
  }

  // Live-follow: the points since the last one (minus a step, whose mean may still change).
  async function follow_() {
    if (!st.follow || loading || st.range === 'custom' || !st.series.length) return;
    const my = seq;
    const [from, to] = window_();
    let last = 0;
    for (const s of st.series) if (s.pts.length) last = Math.max(last, s.pts[s.pts.length - 1][0]);
    const since = Math.max(from, (last || from) - st.step * 1000);
    try {
      const j = await get('/v1/query', { name: st.name, match: st.match, from: since, to, step: `${st.step}s`, agg: 'mean' }, ctl.signal);
      if (my !== seq) return;
      const byKey = new Map(st.series.map((s) => [s.key, s]));
      let added = false;
      for (const s of j.series) {
        const key = `${s.name}{${tagText(s.tags)}}`;
        let cur = byKey.get(key);
        if (!cur) {
          if (st.series.length >= MAX_SERIES) continue;
          cur = { key, name: s.name, tags: s.tags, pts: [] };
          st.series.push(cur);
          added = true;
        }
        const first = s.points.length ? s.points[0][0] : Infinity;
        cur.pts = cur.pts.filter((p) => p[0] < first && p[0] >= from).concat(s.points);
      }
      for (const s of st.series) s.pts = s.pts.filter((p) => p[0] >= from);
      if (added) chartKeys = '';
      draw(from, to);
    } catch (e) {
      if (!ctl.signal.aborted && e.auth) reportAuthError(e);
    }
  }

  function aligned() {
    const xs = new Set();
    for (const s of st.series) for (const p of s.pts) xs.add(p[0]);
    const x = [...xs].sort((a, b) => a - b);
    const at = new Map(x.map((t, i) => [t, i]));
    const ys = st.series.map((s) => {
      const y = new Array(x.length).fill(null);
      for (const [t, v] of s.pts) y[at.get(t)] = v;
      return y;
    });
    return [x.map((t) => t / 1000), ...ys];
  }

  function draw(from, to) {
    const data = aligned();
    let points = 0;
    for (let i = 1; i < data.length; i++) for (const v of data[i]) if (v !== null) points++;
    chartHost.dataset.points = String(points);
    chartHost.dataset.series = String(st.series.length);
    chartHost.setAttribute('aria-label', `${st.name}: ${st.series.length} series, ${points} points from ${clock(from)} to ${clock(to)}`);
    info.textContent = `${st.total > MAX_SERIES ? `${MAX_SERIES} of ${st.total}` : st.series.length} series · ${points.toLocaleString()} points · step ${st.step} s · ${clock(from)} – ${clock(to)} · fetched in ${st.fetchMs} ms`;
    const keys = st.series.map((s) => s.key).join('\n');
    if (!st.series.length) {
      if (chart) chart.destroy();
      chart = null;
      chartKeys = '';
      fill(chartHost, h('p', { class: 'empty' }, `No samples of ${st.name} in this range.`));
      return;
    }
    if (chart && keys === chartKeys) {
      chart.setData(data);
      chart.plot.setScale('x', { min: from / 1000, max: to / 1000 });
      return;
    }
    if (chart) chart.destroy();
    fill(chartHost);
    const common = commonTags();
    chart = timeChart(chartHost, st.series.map((s) => ({ label: labelOf(s, common) || s.name })), data, {
      onZoom: (a, b) => {
        if (!zoomBack) zoomBack = { range: st.range, from: st.from, to: st.to, follow: st.follow };
        st.range = 'custom';
        st.from = a;
        st.to = b;
        st.follow = false;
        follow.checked = false;
        renderRange();
        apply();
      },
    });
    chart.plot.setScale('x', { min: from / 1000, max: to / 1000 });
    chartKeys = keys;
  }

  // Tags every series shares are left out of the legend labels.
  function commonTags() {
    const c = Object.assign({}, st.series[0] ? st.series[0].tags : {});
    for (const s of st.series) for (const k of Object.keys(c)) if (s.tags[k] !== c[k]) delete c[k];
    return c;
  }
  function labelOf(s, common) {
    const names = new Set(st.series.map((x) => x.name));
    const t = Object.keys(s.tags).filter((k) => !(k in common)).sort().map((k) => `${k}=${s.tags[k]}`).join(' ');
    return names.size > 1 ? `${s.name} ${t}`.trim() : t;
  }

  form.addEventListener('submit', (e) => {
    e.preventDefault();
    const n = nameInput.value.trim();
    if (!n) return;
    if (n !== st.name) st.match = [];
    st.name = n;
    renderFilters();
    renderLatest();
    apply();
  });
  nameInput.addEventListener('change', () => form.requestSubmit());
  chartHost.addEventListener('dblclick', resetZoom);
  follow.addEventListener('change', () => {
    st.follow = follow.checked;
    if (st.follow && st.range === 'custom') setRange('15m');
    else apply();
  });

  // Each second (the hub's ingest event), append new points when a step has passed.
  let lastFollow = 0;
  const off = events.on('ingest', () => {
    const now = Date.now();
    if (now - lastFollow >= st.step * 1000 - 50) {
      lastFollow = now;
      follow_();
    }
  });
  // Without the event stream, poll.
  const timer = setInterval(() => {
    if (events.state !== 'live' && Date.now() - lastFollow >= Math.max(1000, st.step * 1000)) {
      lastFollow = Date.now();
      follow_();
    }
  }, 1000);
  const catTimer = setInterval(loadCatalog, 15000);

  renderRange();
  loadCatalog();
  load();

  return {
    update(p) {
      const n = p.get('name');
      if (n && n !== st.name) {
        st.name = n;
        st.match = p.getAll('match');
        nameInput.value = n;
        renderFilters();
        apply();
      }
    },
    unmount() {
      ctl.abort();
      off();
      clearInterval(timer);
      clearInterval(catTimer);
      if (chart) chart.destroy();
    },
  };
}
