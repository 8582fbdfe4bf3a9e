// Actions and audit: the hub's action ledger (every execution, its guard decision or
// reason, output, verdict), approve / deny for requests waiting for approval, and the
// remediator's audit-chain verification against the ledger's newest checkpoint.

import { h, fill, panel, badge, clock, duration, errorBox, table } from './dom.js';
import { call, get, tail, reportAuthError } from './api.js';
import { ActionBook, statusCell, verdictCell, verdictOf, isFinal } from './views.js';

const STATUSES = ['', 'pending', 'pending_approval', 'succeeded', 'failed', 'timeout', 'refused', 'dry_run'];

export function mount(root, { events }) {
  const ctl = new AbortController();
  const book = new ActionBook();
  const st = { filter: '', checkpoint: null, error: null, audit: null, auditError: null, auditBusy: false, loaded: false, notes: new Map() };
  const el = {
    approvals: h('div', { id: 'approvals' }),
    list: h('div', { id: 'action-list' }),
    audit: h('div', { id: 'audit' }),
    notice: h('div', { id: 'action-notice', 'aria-live': 'polite' }),
  };
  const filter = h('select', { id: 'status-filter', onchange: () => { st.filter = filter.value; render(); } },
    STATUSES.map((s) => h('option', { value: s }, s ? s.replace(/_/g, ' ') : 'all')));
  fill(root,
    h('h1', { class: 'sr-only' }, 'Actions and audit'),
    el.notice,
    panel('Waiting for approval', el.approvals, null, 'pending-approvals'),
    panel('Executions', el.list, h('span', null, h('label', { for: 'status-filter' }, 'Status '), filter), 'executions'),
    panel('Audit chain', el.audit, h('button', { type: 'button', id: 'audit-verify', onclick: verify }, 'Verify again'), 'audit-chain'));

  async function decide(a, verb, btn) {
    const row = btn.closest('tr');
    for (const b of row.querySelectorAll('button')) b.disabled = true;
    try {
      const j = await call('POST', `/v1/actions/${encodeURIComponent(a.id)}/${verb}`);
      st.notes.set(a.id, { ok: true, text: verb === 'approve' ? `approved: ${j.status}` : `denied: ${j.reason || j.status}` });
      if (verb === 'approve') a.status = 'approved';
      fill(el.notice, h('p', { class: 'ok-box', role: 'status' }, badge(verb === 'approve' ? 'approved' : 'refused', verb === 'approve' ? 'approved' : 'denied'), ` ${a.action} on ${a.target} (${a.id})`));
    } catch (e) {
      const msg = e.describe ? e.describe() : e.message;
      st.notes.set(a.id, { ok: false, text: e.status === 403 ? `${msg} (approving needs an admin token)` : msg });
      for (const b of row.querySelectorAll('button')) b.disabled = false;
    }
    render();
    reloadSoon(200);
  }

  function outputCell(a) {
    if (!a.output && !a.reason) return h('span', { class: 'muted' }, '—');
    const out = a.output || '';
    const excerpt = out.length > 80 ? `${out.slice(0, 80)}…` : out;
    return h('details', { class: 'output' },
      h('summary', null, excerpt || h('span', { class: 'muted' }, 'reason')),
      a.reason ? h('p', { class: 'small' }, h('strong', null, 'Requested because: '), a.reason) : null,
      a.series ? h('p', { class: 'small' }, h('strong', null, 'Series: '), h('code', null, a.series)) : null,
      out ? h('pre', null, out) : null,
      a.audit ? h('p', { class: 'small muted' }, `audit row ${a.audit.seq}`) : null);
  }

  function noteOf(a) {
    const n = st.notes.get(a.id);
    return n ? h('p', { class: n.ok ? 'small ok-text' : 'small error-text', role: n.ok ? null : 'alert' }, n.text) : null;
  }

  function render() {
    const rows = book.newest(500);
    const waiting = rows.filter((a) => a.status === 'pending_approval' || (st.notes.has(a.id) && a.status === 'approved'));
    fill(el.approvals, table('Actions waiting for approval', ['Requested', 'Action', 'Target', 'Policy', 'Reason', 'Decide'],
      waiting.map((a) => [
        clock(a.requested),
        h('code', null, a.action),
        a.target,
        a.policy || h('span', { class: 'muted' }, 'manual'),
        h('span', { class: 'reason' }, a.reason || ''),
        h('div', { class: 'buttons' },
          a.status === 'pending_approval' ? [
            h('button', { type: 'button', class: 'primary approve', 'aria-label': `Approve ${a.action} on ${a.target}`, onclick: (e) => decide(a, 'approve', e.currentTarget) }, '✓ Approve'),
            h('button', { type: 'button', class: 'danger deny', 'aria-label': `Deny ${a.action} on ${a.target}`, onclick: (e) => decide(a, 'deny', e.currentTarget) }, '✗ Deny')] : badge(a.status),
          noteOf(a)),
      ]), 'No action is waiting for approval.', (i) => ({ class: 'approval-row', dataset: { actionId: waiting[i].id } })));

    if (st.error) return fill(el.list, errorBox(st.error));
    if (!st.loaded) return fill(el.list, h('p', { class: 'muted' }, 'Loading…'));
    const shown = st.filter ? rows.filter((a) => a.status === st.filter) : rows;
    fill(el.list, table('Executions', ['Requested', 'Action', 'Target', 'Policy', 'Status / guard', 'Verdict', 'Took', 'Output'],
      shown.map((a) => [
        h('span', { title: `${new Date(a.requested).toLocaleString()}\n${a.id}` }, clock(a.requested)),
        h('code', null, a.action || '—'),
        a.target || '—',
        a.policy || h('span', { class: 'muted' }, 'manual'),
        statusCell(a),
        verdictCell(a),
        isFinal(a.status) ? duration(a.duration_ms) : '—',
        outputCell(a),
      ]), st.filter ? `No ${st.filter.replace(/_/g, ' ')} actions.` : 'No actions yet.',
      (i) => ({ class: 'action-row', dataset: { actionId: shown[i].id, status: shown[i].status || 'pending', verdict: verdictOf(shown[i]) } })));
    return renderAudit();
  }

  function renderAudit() {
    if (st.auditBusy && !st.audit) return fill(el.audit, h('p', { class: 'muted' }, 'Verifying…'));
    if (st.auditError) return fill(el.audit, errorBox(st.auditError));
    if (!st.audit) return fill(el.audit, h('p', { class: 'muted' }, 'Not verified yet.'));
    const a = st.audit;
    return fill(el.audit, h('div', { id: 'audit-result', dataset: { ok: String(a.ok) } },
      a.ok ? badge('intact', 'chain intact') : badge('broken', 'chain broken'),
      h('p', null, a.ok
        ? `${a.entries} audit rows verified${a.checkpoint ? `, up to the ledger’s checkpoint (row ${a.checkpoint.seq})` : ''}.`
        : `${a.entries} rows; broken at row ${a.broken_at}: ${a.reason}.`),
      h('p', { class: 'muted small' }, `Checked at ${clock(a.at)} by the remediator (GET /v1/audit/verify).`)));
  }

  async function verify() {
    st.auditBusy = true;
    renderAudit();
    try {
      const cp = st.checkpoint;
      const j = await get('/v1/audit/verify', cp ? { seq: cp.seq, mac: cp.mac } : null, ctl.signal);
      st.audit = Object.assign(j, { at: Date.now(), checkpoint: cp });
      st.auditError = null;
    } catch (e) {
      if (ctl.signal.aborted) return;
      st.auditError = e.status === 403 ? `${e.describe()}: verifying the audit chain needs an admin token.` : e.describe ? e.describe() : `the hub did not answer (${e.message})`;
    }
    st.auditBusy = false;
    renderAudit();
  }

  let busy = false;
  let again = false;
  async function reload() {
    if (busy) {
      again = true;
      return;
    }
    busy = true;
    try {
      const list = await tail('/v1/actions', 'actions', 'requested', '-7d', 1000, 10, null, ctl.signal);
      book.load(list);
      let cp = null;
      for (const a of list) if (a.audit && (!cp || a.audit.seq > cp.seq)) cp = a.audit;
      st.checkpoint = cp;
      st.loaded = true;
      st.error = null;
    } catch (e) {
      if (ctl.signal.aborted) return;
      if (e.auth) reportAuthError(e);
      st.error = e.describe ? e.describe() : `the hub did not answer (${e.message})`;
    }
    busy = false;
    render();
    if (again) {
      again = false;
      reload();
    }
  }
  let soon = null;
  function reloadSoon(ms) {
    clearTimeout(soon);
    soon = setTimeout(reload, ms);
  }

  const off = [
    events.on('action', (a) => {
      book.action(a);
      if (a.status !== 'pending_approval' && a.status !== 'approved') st.notes.delete(a.id);
      render();
      reloadSoon(300);
    }),
    events.on('decision', (d) => {
      if (book.decision(d)) render();
      if (d.action_id) reloadSoon(500);
    }),
    events.on('reconnected', () => reloadSoon(50)),
  ];
  render();
  reload().then(verify);
  const timer = setInterval(reload, 10000);
  return {
    unmount() {
      ctl.abort();
      clearTimeout(soon);
      clearInterval(timer);
      off.forEach((f) => f());
    },
  };
}
