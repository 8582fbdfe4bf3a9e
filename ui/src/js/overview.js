// Overview: agents, policies and their states, recent decisions and actions, drift, and
// the ingest rate, all kept current by the event stream.

import { h, fill, panel, badge, num, errorBox, timeAgo, shortRev } from './dom.js';
import { get, tail, reportAuthError } from './api.js';
import { ActionBook, IngestRate, actionsTable, decisionsTable, policiesTable, agentsTable } from './views.js';
import { sparkline } from './charts.js';

const RATE_POINTS = 180;

// The ingest rate of the last RATE_POINTS events, kept across page changes (the stream
// stays open), so the overview shows it at once when it is opened again.
const rateX = [];
const rateY = [];
const RATE_MEAN = 10;
const rates = new IngestRate(RATE_MEAN * 1000);
let lastRate = null;
let following = false;
function followRate(events) {
  if (following) return;
  following = true;
  events.on('ingest', (r) => {
    const { mean, hubs } = rates.add(r, Date.now());
    // the other figures (series, totals, queue) are this hub's
    lastRate = Object.assign({}, typeof r.hub !== 'string' || !lastRate ? r : lastRate, { mean, hubs });
    rateX.push(r.ts / 1000);
    rateY.push(mean);
    if (rateX.length > RATE_POINTS) {
      rateX.shift();
      rateY.shift();
    }
  });
}

export function mount(root, { events }) {
  const book = new ActionBook();
  followRate(events);
  const st = { agents: null, now: Date.now(), policies: null, decisions: [], silences: [], drift: null, rate: lastRate, errors: {} };
  const ctl = new AbortController();

  const el = {
    stats: h('div', { class: 'stats', id: 'ov-stats' }),
    agents: h('div', { id: 'ov-agents' }),
    policies: h('div', { id: 'ov-policies' }),
    actions: h('div', { id: 'ov-actions' }),
    decisions: h('div', { id: 'ov-decisions' }),
    drift: h('div', { id: 'ov-drift' }),
    spark: h('div', { class: 'spark', 'aria-hidden': 'true' }),
  };
  fill(root,
    h('h1', { class: 'sr-only' }, 'Overview'),
    el.stats,
    h('div', { class: 'grid-2' },
      panel('Agents', el.agents, null, 'agents'),
      panel('Policies', el.policies, null, 'policies')),
    panel('Recent actions', el.actions, h('a', { href: '#/actions' }, 'All actions →'), 'recent-actions'),
    h('div', { class: 'grid-2' },
      panel('Recent decisions', el.decisions, null, 'recent-decisions'),
      panel('Drift', el.drift, h('a', { href: '#/drift' }, 'Details →'), 'drift-summary')));

  let spark = null;

  function lastDecisions() {
    const m = new Map();
    for (const d of st.decisions) m.set(`${d.policy}\u0000${d.series}`, d);
    return m;
  }

  function renderStats() {
    const agents = st.agents || [];
    const stale = agents.filter((a) => a.stale).length;
    const pols = st.policies || [];
    const firing = pols.filter((p) => (p.series || []).some((s) => s.state === 'firing')).length;
    const pendingApproval = [...book.rows.values()].filter((a) => a.status === 'pending_approval').length;
    const drifted = st.drift ? st.drift.drifted : null;
    const driftErrors = st.drift ? (st.drift.drift || []).filter((d) => d.status === 'error').length : 0;
    const card = (label, value, extra, id) => h('div', { class: 'stat', id }, h('div', { class: 'stat-label' }, label), h('div', { class: 'stat-value' }, value), extra || null);
    const rate = st.rate;
    fill(el.stats,
      card('Ingest', h('span', { title: `${rate ? num(rate.samples_per_second) : '—'} samples in the last second` }, h('span', { id: 'ingest-rate' }, rate ? num(rate.mean) : '—'), h('span', { class: 'unit' }, ` samples/s (${RATE_MEAN} s mean${rate && rate.hubs > 1 ? `, ${rate.hubs} hubs` : ''})`)),
        h('div', null, el.spark, h('div', { class: 'stat-sub muted' }, rate ? `${rate.series.toLocaleString('en')} series · ${rate.samples.toLocaleString('en')} samples since start · queue ${rate.queue}` : 'waiting for the event stream')), 'stat-ingest'),
      card('Agents', h('span', null, String(agents.length)), stale ? badge('stale', `${stale} stale`) : badge('ok', 'all reporting'), 'stat-agents'),
      card('Policies', h('span', null, String(pols.length)), firing ? badge('firing', `${firing} firing`) : badge('ok', 'none firing'), 'stat-policies'),
      card('Approvals', h('span', null, String(pendingApproval)), pendingApproval ? h('a', { href: '#/actions' }, badge('pending_approval', 'waiting')) : badge('ok', 'none waiting'), 'stat-approvals'),
      card('Drift', h('span', null, drifted === null ? '—' : String(drifted)), drifted ? badge('drifted', 'drifted') : driftErrors ? badge('error', `${driftErrors} in error`) : badge('in_sync', 'in sync'), 'stat-drift'));
    if (!spark && el.spark.isConnected) spark = sparkline(el.spark, [rateX, rateY]);
  }

  function render() {
    const now = Date.now();
    renderStats();
    fill(el.agents, st.errors.agents ? errorBox(st.errors.agents) : st.agents ? agentsTable(st.agents) : h('p', { class: 'muted' }, 'Loading…'));
    if (st.agents && !performance.getEntriesByName('vigil:agents').length) performance.mark('vigil:agents');
    fill(el.policies, st.errors.policies ? errorBox(st.errors.policies) : st.policies ? policiesTable(st.policies, lastDecisions(), st.silences, now) : h('p', { class: 'muted' }, 'Loading…'));
    fill(el.actions, st.errors.actions ? errorBox(st.errors.actions) : actionsTable(book.newest(10)));
    fill(el.decisions, st.errors.decisions ? errorBox(st.errors.decisions) : decisionsTable(st.decisions.slice(-12).reverse()));
    renderDrift();
  }

  function renderDrift() {
    if (st.errors.drift) return fill(el.drift, errorBox(st.errors.drift));
    if (!st.drift) return fill(el.drift, h('p', { class: 'muted' }, 'Loading…'));
    const items = st.drift.drift || [];
    if (!items.length) return fill(el.drift, h('p', { class: 'empty' }, 'No drift reports (vigil-gitopsd sends them).'));
    const bad = items.filter((d) => d.status !== 'in_sync');
    const shown = (bad.length ? bad : items).slice(0, 8);
    return fill(el.drift,
      h('p', null, `${items.length} resources, ${st.drift.drifted} drifted${bad.length > st.drift.drifted ? `, ${bad.length - st.drift.drifted} in error` : ''}.`),
      h('ul', { class: 'plain' }, shown.map((d) => h('li', { class: 'drift-item' }, badge(d.status), ' ', h('code', null, d.target), h('span', { class: 'muted' }, ` · ${shortRev(d.revision)} · `), timeAgo(d.updated)))));
  }

  const fail = (key, e) => {
    if (ctl.signal.aborted) return;
    if (e.auth) reportAuthError(e);
    st.errors[key] = e.describe ? e.describe() : `the hub did not answer (${e.message})`;
  };

  async function loadAgents() {
    try {
      const j = await get('/v1/agents', null, ctl.signal);
      st.agents = j.agents;
      st.now = j.now;
      delete st.errors.agents;
    } catch (e) {
      fail('agents', e);
    }
  }
  async function loadPolicies() {
    try {
      const [p, s] = await Promise.all([get('/v1/policies', null, ctl.signal), get('/v1/silences', null, ctl.signal)]);
      st.policies = p.policies;
      st.silences = s.silences;
      delete st.errors.policies;
    } catch (e) {
      fail('policies', e);
    }
  }
  async function loadDecisions() {
    try {
      st.decisions = (await tail('/v1/decisions', 'decisions', 'ts', '-6h', 1000, 5, null, ctl.signal)).sort((a, b) => a.ts - b.ts || a.id - b.id);
      delete st.errors.decisions;
    } catch (e) {
      fail('decisions', e);
    }
  }
  async function loadActions() {
    try {
      book.load(await tail('/v1/actions', 'actions', 'requested', '-24h', 1000, 5, null, ctl.signal));
      delete st.errors.actions;
    } catch (e) {
      fail('actions', e);
    }
  }
  async function loadDrift() {
    try {
      st.drift = await get('/v1/drift', null, ctl.signal);
      delete st.errors.drift;
    } catch (e) {
      fail('drift', e);
    }
  }

  // Reloads are coalesced: at most one of each kind in flight, and one more after it.
  const loaders = { agents: loadAgents, policies: loadPolicies, decisions: loadDecisions, actions: loadActions, drift: loadDrift };
  const busy = {};
  async function reload(kind) {
    if (busy[kind]) {
      busy[kind] = 'again';
      return;
    }
    busy[kind] = true;
    await loaders[kind]();
    if (!ctl.signal.aborted) render();
    const again = busy[kind] === 'again';
    busy[kind] = false;
    if (again && !ctl.signal.aborted) reload(kind);
  }
  const soon = {};
  function reloadSoon(kind, ms = 250) {
    clearTimeout(soon[kind]);
    soon[kind] = setTimeout(() => reload(kind), ms);
  }

  const off = [
    events.on('ingest', () => {
      st.rate = lastRate; // (set by followRate, subscribed first)
      renderStats();
      if (spark) spark.setData([rateX, rateY]);
    }),
    events.on('decision', (d) => {
      if (!st.decisions.some((x) => x.id === d.id)) st.decisions.push(d);
      book.decision(d);
      render();
      reloadSoon('policies');
      reloadSoon('actions', 500);
    }),
    events.on('action', (a) => {
      book.action(a);
      render();
      reloadSoon('actions', 300);
    }),
    events.on('drift', () => reloadSoon('drift', 100)),
    events.on('reconnected', () => Object.keys(loaders).forEach((k) => reloadSoon(k, 50))),
  ];

  render();
  // each part shows as soon as its answer is in
  for (const k of Object.keys(loaders)) reload(k);
  const timer = setInterval(() => {
    reload('agents');
    reload('policies');
  }, 5000);

  return {
    unmount() {
      ctl.abort();
      clearInterval(timer);
      for (const k of Object.keys(soon)) clearTimeout(soon[k]);
      off.forEach((f) => f());
      if (spark) spark.destroy();
    },
  };
}
