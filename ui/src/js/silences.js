// Silences (list, add with matchers and a duration, expire) and the targets the remediator
// quarantined (from the `quarantined` decisions), each with a release button.

import { h, fill, panel, badge, clock, errorBox, timeAgo, table } from './dom.js';
import { call, get, tail, reportAuthError } from './api.js';

const KEY_RE = /^[a-zA-Z_:][a-zA-Z0-9_:]*$/;

export function mount(root, { events }) {
  const ctl = new AbortController();
  const st = { silences: null, error: null, decisions: [], qError: null, notes: new Map() };
  const list = h('div', { id: 'silence-list' });
  const quar = h('div', { id: 'quarantine-list' });
  const formMsg = h('div', { id: 'silence-form-msg', 'aria-live': 'polite' });
  const matchers = h('div', { class: 'matchers', id: 'matchers' });
  const dur = h('input', { id: 'silence-duration', type: 'text', value: '1h', required: true, pattern: '([0-9]+(ms|s|m|h|d))+', 'aria-describedby': 'dur-help', size: 8 });
  const comment = h('input', { id: 'silence-comment', type: 'text', maxlength: 4096 });
  const by = h('input', { id: 'silence-by', type: 'text', maxlength: 128, placeholder: 'dashboard' });
  let rowN = 0;

  function matcherRow(k = '', v = '') {
    const n = ++rowN;
    const row = h('div', { class: 'matcher row' },
      h('label', { for: `mk-${n}` }, 'Key'),
      h('input', { id: `mk-${n}`, class: 'mk', type: 'text', list: 'matcher-keys', value: k, required: true, size: 10 }),
      h('label', { for: `mv-${n}` }, 'equals (glob)'),
      h('input', { id: `mv-${n}`, class: 'mv', type: 'text', value: v, required: true, size: 18 }),
      h('button', { type: 'button', 'aria-label': 'Remove this matcher', onclick: () => { if (matchers.children.length > 1) row.remove(); } }, '✗'));
    return row;
  }
  matchers.append(matcherRow('policy', ''));

  const form = h('form', { id: 'silence-form', class: 'stack-form' },
    h('fieldset', null, h('legend', null, 'Matchers (all must match)'), matchers,
      h('datalist', { id: 'matcher-keys' }, ['policy', 'target', 'host', 'process', 'check'].map((x) => h('option', { value: x }))),
      h('button', { type: 'button', id: 'add-matcher', onclick: () => matchers.append(matcherRow()) }, '+ Matcher')),
    h('div', { class: 'row' },
      h('label', { for: 'silence-duration' }, 'Duration'), dur, h('span', { id: 'dur-help', class: 'muted small' }, 'e.g. 30m, 2h, 1d'),
      h('label', { for: 'silence-comment' }, 'Comment'), comment,
      h('label', { for: 'silence-by' }, 'By'), by,
      h('button', { type: 'submit', class: 'primary' }, 'Add silence')),
    formMsg);

  form.addEventListener('submit', async (e) => {
    e.preventDefault();
    const m = {};
    for (const row of matchers.querySelectorAll('.matcher')) {
      const k = row.querySelector('.mk').value.trim();
      const v = row.querySelector('.mv').value;
      if (!KEY_RE.test(k)) return fill(formMsg, errorBox(`“${k}” is not a key: policy, target or a tag key ([a-zA-Z_:][a-zA-Z0-9_:]*).`));
      if (k in m) return fill(formMsg, errorBox(`The key “${k}” is given twice.`));
      m[k] = v;
    }
    const body = { matchers: m, duration: dur.value.trim(), created_by: by.value.trim() || 'dashboard' };
    if (comment.value.trim()) body.comment = comment.value.trim();
    try {
      const j = await call('POST', '/v1/silences', body);
      fill(formMsg, h('p', { class: 'ok-box', role: 'status' }, badge('silenced', 'silence added'), ` ${j.id}`));
      load();
    } catch (err) {
      fill(formMsg, errorBox(err.describe ? err.describe() : err.message));
    }
    return null;
  });

  fill(root, h('h1', { class: 'sr-only' }, 'Silences'),
    panel('Silences', list, null, 'silences'),
    panel('Add a silence', form, null, 'add-silence'),
    panel('Quarantined targets', quar, null, 'quarantine'));

  function stateOf(s, now) {
    if (now < s.starts) return 'scheduled';
    if (now >= s.ends) return 'expired';
    return 'active';
  }

  async function expire(s, btn) {
    btn.disabled = true;
    try {
      await call('DELETE', `/v1/silences/${encodeURIComponent(s.id)}`);
      st.notes.set(s.id, null);
    } catch (e) {
      btn.disabled = false;
      st.notes.set(s.id, e.describe ? e.describe() : e.message);
    }
    load();
  }

  function render() {
    const now = Date.now();
    if (st.error) fill(list, errorBox(st.error));
    else if (!st.silences) fill(list, h('p', { class: 'muted' }, 'Loading…'));
    else {
      const rows = [...st.silences].sort((a, b) => (stateOf(a, now) === 'expired') - (stateOf(b, now) === 'expired') || b.starts - a.starts);
      fill(list, table('Silences', ['State', 'Matchers', 'Starts', 'Ends', 'By', 'Comment', ''], rows.map((s) => {
        const state = stateOf(s, now);
        return [
          badge(state),
          h('span', null, Object.entries(s.matchers).map(([k, v]) => h('code', { class: 'matcher-chip' }, `${k}=${v}`))),
          clock(s.starts),
          h('span', null, clock(s.ends), ' ', h('span', { class: 'muted small' }, '(', timeAgo(s.ends), ')')),
          s.created_by,
          s.comment || '',
          h('div', null, state !== 'expired' ? h('button', { type: 'button', class: 'expire', 'aria-label': `Expire silence ${s.id}`, onclick: (e) => expire(s, e.currentTarget) }, 'Expire') : null,
            st.notes.get(s.id) ? h('p', { class: 'small error-text', role: 'alert' }, st.notes.get(s.id)) : null),
        ];
      }), 'No silences.', (i) => ({ class: 'silence-row', dataset: { id: rows[i].id, state: stateOf(rows[i], now) } })));
    }
    renderQuarantine();
  }

  // A target is shown while its newest decision is `quarantined`.
  function quarantined() {
    const last = new Map();
    for (const d of st.decisions) if (d.target) last.set(d.target, d);
    return [...last.values()].filter((d) => d.decision === 'quarantined');
  }

  async function release(target, btn) {
    btn.disabled = true;
    try {
      const j = await call('POST', `/v1/targets/${encodeURIComponent(target)}/release`);
      st.notes.set(`q:${target}`, { ok: true, text: j.released ? 'released: the policy asks again on its next evaluation' : 'was not quarantined (already released or expired)' });
    } catch (e) {
      btn.disabled = false;
      st.notes.set(`q:${target}`, { ok: false, text: e.status === 403 ? `${e.describe()} (releasing needs an admin token)` : e.describe ? e.describe() : e.message });
    }
    renderQuarantine();
  }

  function renderQuarantine() {
    if (st.qError) return fill(quar, errorBox(st.qError));
    const q = quarantined();
    return fill(quar, table('Quarantined targets', ['Target', 'Since', 'Policy', 'Reason', ''], q.map((d) => {
      const note = st.notes.get(`q:${d.target}`);
      return [
        h('code', null, d.target), timeAgo(d.ts), d.policy, h('span', { class: 'reason' }, d.reason),
        h('div', null, h('button', { type: 'button', class: 'release', 'aria-label': `Release ${d.target}`, onclick: (e) => release(d.target, e.currentTarget) }, 'Release'),
          note ? h('p', { class: note.ok ? 'small ok-text' : 'small error-text', role: note.ok ? 'status' : 'alert' }, note.text) : null),
      ];
    }), 'No target is quarantined.', (i) => ({ class: 'quarantine-row', dataset: { target: q[i].target } })));
  }

  async function load() {
    try {
      st.silences = (await get('/v1/silences', null, ctl.signal)).silences;
      st.error = null;
    } catch (e) {
      if (ctl.signal.aborted) return;
      if (e.auth) reportAuthError(e);
      st.error = e.describe ? e.describe() : `the hub did not answer (${e.message})`;
    }
    try {
      st.decisions = (await tail('/v1/decisions', 'decisions', 'ts', '-1d', 1000, 10, null, ctl.signal)).sort((a, b) => a.ts - b.ts || a.id - b.id);
      st.qError = null;
    } catch (e) {
      if (ctl.signal.aborted) return;
      st.qError = e.describe ? e.describe() : e.message;
    }
    render();
  }
  const offs = [
    events.on('decision', (d) => {
      if (!st.decisions.some((x) => x.id === d.id)) st.decisions.push(d);
      renderQuarantine();
    }),
    events.on('reconnected', load),
  ];
  const off = () => offs.forEach((f) => f());
  render();
  load();
  // Re-render when a silence starts or ends (not otherwise: the focus stays where it is).
  let shape = '';
  const timer = setInterval(() => {
    const now = Date.now();
    const next = (st.silences || []).map((s) => stateOf(s, now)).join();
    if (next !== shape) {
      shape = next;
      render();
    }
  }, 1000);
  return {
    unmount() {
      ctl.abort();
      off();
      clearInterval(timer);
    },
  };
}
