// Views shared by several pages: actions, decisions, policies and their states.

import { h, badge, clock, timeAgo, duration, table } from './dom.js';

const FINAL = new Set(['succeeded', 'failed', 'timeout', 'refused', 'dry_run']);

/** True for a final action status. */
export function isFinal(status) {
  return FINAL.has(status);
}

/**
 * Keeps the hub's action ledger in memory and applies the live events to it, so that a
 * new action (from its `fired` decision) or a new status (from its `action` event) shows
 * at once; the periodic reload then brings the full row (output, verdict, audit).
 */
export class ActionBook {
  constructor() {
    this.rows = new Map();
  }
  /** Replaces the known rows with a reload, keeping rows the reload has not seen yet. */
  load(list) {
    const next = new Map();
    for (const a of list) next.set(a.id, a);
    for (const [id, a] of this.rows) if (!next.has(id) && a.live) next.set(id, a);
    this.rows = next;
  }
  /** A `decision` event: a request it made is a new pending row; a verdict is recorded. */
  decision(d) {
    if (!d || !d.action_id) return false;
    let a = this.rows.get(d.action_id);
    if ((d.decision === 'fired' || d.decision === 'escalated' || d.decision === 'redelivered') && !a) {
      a = { id: d.action_id, requested: d.ts, updated: d.ts, action: d.action, target: d.target, policy: d.policy, series: d.series, reason: d.reason, status: 'pending', result_reason: null, output: null, duration_ms: null, verdict: null, live: true };
      this.rows.set(a.id, a);
      return true;
    }
    if (a && (d.decision === 'remediated' || d.decision === 'ineffective')) {
      a.verdict = { decision: d.decision, reason: d.reason, ts: d.ts };
      return true;
    }
    return false;
  }
  /** An `action` event: the row's new status. */
  action(e) {
    if (!e || !e.id) return false;
    let a = this.rows.get(e.id);
    if (!a) {
      a = { id: e.id, requested: e.ts, action: e.action, target: e.target, policy: e.policy, verdict: null, output: null, live: true };
      this.rows.set(e.id, a);
    }
    a.status = e.status;
    a.result_reason = e.reason;
    a.updated = e.ts;
    if (e.duration_ms !== undefined) a.duration_ms = e.duration_ms;
    return true;
  }
  /** The rows, newest request first. */
  newest(n) {
    return [...this.rows.values()].sort((x, y) => (y.requested - x.requested) || (x.id < y.id ? 1 : -1)).slice(0, n);
  }
}

/** The status cell of an action: its status and, when final, the guard or reason. */
export function statusCell(a) {
  return h('span', { class: 'stack' }, badge(a.status || 'pending'),
    a.result_reason ? h('span', { class: 'muted small guard', title: 'guard or reason' }, a.result_reason) : null);
}

/** The verdict of an action (remediated / ineffective), or a dash. */
export function verdictCell(a) {
  // the verdict is the newest decision naming the action: only these two judge it
  if (!a.verdict || (a.verdict.decision !== 'remediated' && a.verdict.decision !== 'ineffective')) {
    return h('span', { class: 'muted', title: 'no verdict: the policy has not judged this action (yet)' }, '—');
  }
  return h('span', { title: a.verdict.reason || '' }, badge(a.verdict.decision));
}

/** The verdict word of an action: remediated, ineffective or "". */
export function verdictOf(a) {
  const d = a.verdict ? a.verdict.decision : '';
  return d === 'remediated' || d === 'ineffective' ? d : '';
}

/** The compact actions table of the overview. */
export function actionsTable(list, caption) {
  return table(caption || 'Recent actions', ['Requested', 'Action', 'Target', 'Policy', 'Status', 'Verdict', 'Took'],
    list.map((a) => [
      h('span', { title: new Date(a.requested).toLocaleString() }, clock(a.requested)),
      h('code', null, a.action || '—'),
      a.target || '—',
      a.policy || h('span', { class: 'muted' }, 'manual'),
      statusCell(a),
      verdictCell(a),
      isFinal(a.status) ? duration(a.duration_ms) : '—',
    ]), 'No actions yet.', (i) => ({ class: 'action-row', dataset: { actionId: list[i].id, status: list[i].status || 'pending', verdict: verdictOf(list[i]) } }));
}

/** The decisions table, newest first. */
export function decisionsTable(list) {
  return table('Recent decisions', ['Time', 'Decision', 'Policy', 'Target', 'Reason'],
    list.map((d) => [
      h('span', { title: new Date(d.ts).toLocaleString() }, clock(d.ts)),
      badge(d.decision),
      d.policy,
      d.target || '—',
      h('span', { class: 'reason' }, d.reason || ''),
    ]), 'No decisions yet.', (i) => ({ class: 'decision-row', dataset: { decision: list[i].decision } }));
}

const RANK = { firing: 6, exhausted: 5, flapping: 4, pending: 3, silenced: 2, resolved: 1, ok: 0 };

/**
 * The state of each series of a policy, overlaid with what the decisions say: a firing
 * series whose latest decision is `silenced` or `exhausted` shows that instead, and a policy
 * an active silence names is `silenced`. Returns [{series, state, value, since}] and the
 * policy's overall state (the worst of its series).
 */
export function policyState(p, lastDecision, silences, now) {
  const series = (p.series || []).map((s) => {
    let state = s.state;
    const d = lastDecision.get(`${p.name}\u0000${s.series}`);
    if (d && (state === 'firing' || state === 'pending') && (d.decision === 'silenced' || d.decision === 'exhausted')) state = d.decision;
    if (state === 'firing' && silencedBy(p.name, s.series, silences, now)) state = 'silenced';
    return Object.assign({}, s, { state });
  });
  let state = 'ok';
  for (const s of series) if ((RANK[s.state] || 0) > (RANK[state] || 0)) state = s.state;
  if (state === 'resolved') state = 'ok';
  if (state === 'ok' && silencedBy(p.name, null, silences, now)) state = 'silenced';
  return { state, series };
}

/** Glob match as the hub does it: * ? [a-z] [^a-z], case-sensitive, no escapes. */
export function glob(pattern, text) {
  let re = '^';
  for (let i = 0; i < pattern.length; i++) {
    const c = pattern[i];
    if (c === '*') re += '.*';
    else if (c === '?') re += '.';
    else if (c === '[') {
      const end = pattern.indexOf(']', i + 2);
      if (end < 0) {
        re += '\\[';
        continue;
      }
      let body = pattern.slice(i + 1, end);
      if (body[0] === '^') body = `^${body.slice(1).replace(/[\\\]]/g, '\\$&')}`;
      else body = body.replace(/[\\\]^]/g, '\\$&');
      re += `[${body}]`;
      i = end;
    } else re += c.replace(/[.+^${}()|\\\]]/g, '\\$&');
  }
  try {
    return new RegExp(`${re}$`).test(text);
  } catch {
    return false;
  }
}

/** Parses a series key `name{k="v",…}` into its tags. */
export function seriesTags(key) {
  const tags = {};
  const m = /\{(.*)\}$/.exec(key || '');
  if (!m) return tags;
  const re = /([a-zA-Z_][a-zA-Z0-9_:]*)="((?:[^"\\]|\\.)*)"/g;
  let x;
  while ((x = re.exec(m[1]))) tags[x[1]] = x[2].replace(/\\(.)/g, '$1');
  return tags;
}

function silencedBy(policy, seriesKey, silences, now) {
  const tags = seriesKey ? seriesTags(seriesKey) : null;
  return silences.some((s) => {
    if (!(s.starts <= now && now < s.ends)) return false;
    const m = s.matchers || {};
    if (!('policy' in m) && !tags) return false;
    return Object.keys(m).every((k) => {
      if (k === 'policy') return glob(m[k], policy);
      if (k === 'target') return true; // not known here: the `silenced` decisions tell
      return tags ? k in tags && glob(m[k], tags[k]) : false;
    });
  });
}

/** The policies table. */
export function policiesTable(policies, lastDecision, silences, now) {
  const rows = policies.map((p) => ({ p, st: policyState(p, lastDecision, silences, now) }));
  return table('Policies', ['Policy', 'State', 'Metric', 'Action', 'Series'],
    rows.map(({ p, st }) => {
      const counts = {};
      for (const s of st.series) counts[s.state] = (counts[s.state] || 0) + 1;
      return [
        h('strong', null, p.name),
        badge(st.state),
        p.metric ? h('a', { href: `#/metrics?name=${encodeURIComponent(p.metric)}` }, p.metric) : h('span', { class: 'muted' }, p.kind),
        p.action ? h('code', null, p.action) : '—',
        st.series.length ? h('span', { class: 'muted', title: st.series.map((s) => `${s.series}: ${s.state}`).join('\n') },
          Object.entries(counts).map(([k, n]) => `${n} ${k}`).join(', ')) : h('span', { class: 'muted' }, 'no series yet'),
      ];
    }), 'No policies are loaded.', (i) => ({ class: 'policy-row', dataset: { policy: rows[i].p.name, state: rows[i].st.state } }));
}

/** The agents table. */
export function agentsTable(agents) {
  return table('Agents', ['Agent', 'State', 'Last seen', 'Heartbeat', 'Series'],
    agents.map((a) => [
      h('strong', null, a.id),
      a.stale ? badge('stale') : badge('live', 'up'),
      timeAgo(a.last_seen),
      a.interval_ms ? `every ${duration(a.interval_ms >= 1000 ? Math.round(a.interval_ms / 100) * 100 : a.interval_ms)}` : '—',
      a.series,
    ]), 'No agent has sent samples yet.', (i) => ({ class: 'agent-row', dataset: { agent: agents[i].id, stale: agents[i].stale ? 'true' : 'false' } }));
}

// The ingest rate of the "ingest" events: per hub ('' is the hub this page talks to; the
// others' rates arrive through Redis with "hub": their id), the mean over the last `spanMs`
// from that hub's own running totals (never one hub's total against another's); add()
// answers the sum over the hubs heard from within `spanMs` (of `nowMs`, this browser's clock:
// the hubs' clocks may differ) and how many they are.
export class IngestRate {
  constructor(spanMs) {
    this.spanMs = spanMs;
    this.hubs = new Map();
  }

  add(r, nowMs) {
    const key = typeof r.hub === 'string' ? r.hub : '';
    let e = this.hubs.get(key);
    if (!e) {
      e = { totals: [], mean: 0, seen: 0 };
      this.hubs.set(key, e);
    }
    e.totals.push([r.ts, r.samples]);
    while (e.totals.length > 2 && r.ts - e.totals[0][0] > this.spanMs) e.totals.shift();
    const [t0, s0] = e.totals[0];
    e.mean = r.ts > t0 ? ((r.samples - s0) * 1000) / (r.ts - t0) : r.samples_per_second;
    e.seen = nowMs;
    let mean = 0;
    let hubs = 0;
    for (const v of this.hubs.values()) {
      if (nowMs - v.seen > this.spanMs) continue;
      mean += v.mean;
      hubs++;
    }
    return { mean, hubs };
  }
}
