// Node-only checks of the dashboard's pure parts (no browser): the server-sent events
// parser, the hub's glob semantics, series keys. Run by tests/browser/run.mjs first.
import assert from 'node:assert/strict';
import { SseParser, EventStream } from '../../ui/src/js/events.js';
import { glob, seriesTags, ActionBook, IngestRate } from '../../ui/src/js/views.js';
import { tail, relativeMs } from '../../ui/src/js/api.js';
import { quarantinedTargets } from '../../ui/src/js/silences.js';

function streamOf(chunks, status = 200, body = null) {
  if (body !== null) return new Response(body, { status, headers: { 'Content-Type': 'application/json' } });
  const enc = new TextEncoder();
  return new Response(new ReadableStream({
    start(c) {
      for (const x of chunks) c.enqueue(enc.encode(x));
      c.close(); // the hub went away
    },
  }), { status, headers: { 'Content-Type': 'text/event-stream' } });
}

async function until(what, ms, fn) {
  const end = Date.now() + ms;
  while (!fn()) {
    if (Date.now() > end) throw new Error(`unit: timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 5));
  }
}

/**
 * EventStream against a fake fetch: the header carries the token, a stream that ends is
 * opened again after a backoff and announces 'reconnected', a 401 stops it with the hub's
 * message.
 */
export async function unitStream() {
  const calls = [];
  const answers = [
    () => streamOf([': connected\nretry: 2000\n\n', 'event: ingest\ndata: {"samples":5}\n\n']),
    () => streamOf(['event: action\ndata: {"id":"a1","status":"succeeded"}\n\n']),
    () => streamOf([], 401, JSON.stringify({ error: { code: 'unauthorized', message: 'invalid token' } })),
  ];
  const realFetch = globalThis.fetch;
  globalThis.sessionStorage = new Map([['vigil.token', 'tok-1']]);
  globalThis.sessionStorage.getItem = globalThis.sessionStorage.get;
  globalThis.fetch = async (path, opts) => {
    calls.push({ path, auth: opts.headers.Authorization, at: Date.now() });
    return answers[calls.length - 1]();
  };
  try {
    const es = new EventStream();
    const seen = [];
    const states = [];
    es.on('*', (d, type) => seen.push([type, d]));
    es.onState((s, detail) => states.push([s, detail]));
    es.restart();
    await until('the refusal', 5000, () => es.state === 'refused');
    assert.deepEqual(seen, [['ingest', { samples: 5 }], ['reconnected', null], ['action', { id: 'a1', status: 'succeeded' }]]);
    assert.equal(calls.length, 3);
    assert.ok(calls.every((c) => c.path === '/v1/events' && c.auth === 'Bearer tok-1'), 'the token goes in the header');
    assert.ok(calls[1].at - calls[0].at >= 300, `a backoff before reconnecting (${calls[1].at - calls[0].at} ms)`);
    const names = states.map((x) => x[0]);
    assert.deepEqual(names.filter((n, i) => n !== names[i - 1]), ['connecting', 'live', 'reconnecting', 'live', 'reconnecting', 'refused']);
    assert.deepEqual(states[states.length - 1][1], { status: 401, message: 'invalid token' });
    await new Promise((r) => setTimeout(r, 100));
    assert.equal(calls.length, 3, 'no retry after a refusal');
    es.stop();
  } finally {
    globalThis.fetch = realFetch;
    delete globalThis.sessionStorage;
  }
}

/**
 * tail() against a fake hub that lists rows oldest first from `since` (epoch ms or relative
 * to its clock), `limit` at a time: the newest rows come back, not the oldest of the window,
 * whatever the number of rows; one request when the window holds fewer than a page.
 */
export async function unitTail() {
  const now = 1_000_000_000;
  const hub = (rows) => {
    const calls = [];
    globalThis.fetch = async (path) => {
      const u = new URL(path, 'http://hub');
      const s = u.searchParams.get('since');
      const limit = Number(u.searchParams.get('limit'));
      const since = s.startsWith('-') ? now - relativeMs(s) : Number(s);
      calls.push(s);
      const out = rows.filter((r) => r.ts >= since).slice(0, limit);
      return new Response(JSON.stringify({ decisions: out }), { status: 200 });
    };
    return calls;
  };
  const realFetch = globalThis.fetch;
  try {
    assert.equal(relativeMs('-6h'), 6 * 3600000);
    assert.equal(relativeMs('-90s'), 90000);
    assert.equal(relativeMs('1732650000000'), null);
    // a few rows: one request, all of them
    let calls = hub([{ id: 1, ts: now - 5000 }, { id: 2, ts: now - 10 }]);
    assert.deepEqual((await tail('/v1/decisions', 'decisions', 'ts', '-6h', 100, 5)).map((r) => r.id), [1, 2]);
    assert.deepEqual(calls, ['-6h']);
    // 5,000 rows over 6 h, one every 4.32 s, pages of 100, at most 3 pages: the newest 300
    const many = Array.from({ length: 5000 }, (_, i) => ({ id: i + 1, ts: now - 6 * 3600000 + Math.floor((i + 1) * 4320) }));
    calls = hub(many);
    let got = await tail('/v1/decisions', 'decisions', 'ts', '-6h', 100, 3);
    assert.deepEqual(got.map((r) => r.id), many.slice(-300).map((r) => r.id));
    assert.ok(calls.length <= 20, `requests: ${calls.length} (${calls.join(' ')})`);
    // a burst: 2,000 rows within one second an hour ago and 10 since: the 10, then the burst's newest
    const burst = Array.from({ length: 2000 }, (_, i) => ({ id: i + 1, ts: now - 3600000 + Math.floor(i / 2) }))
      .concat(Array.from({ length: 10 }, (_, i) => ({ id: 5000 + i, ts: now - 1000 + i })));
    calls = hub(burst);
    got = await tail('/v1/decisions', 'decisions', 'ts', '-6h', 100, 2);
    assert.equal(got.length, 200);
    assert.deepEqual(got.slice(-10).map((r) => r.id), burst.slice(-10).map((r) => r.id));
    assert.deepEqual(got.slice(0, 190).map((r) => r.id), burst.slice(1810, 2000).map((r) => r.id));
    // an absolute since: read from there to the end, the newest kept
    calls = hub(many);
    got = await tail('/v1/decisions', 'decisions', 'ts', String(now - 3600000), 100, 2);
    assert.deepEqual(got.map((r) => r.id), many.slice(-200).map((r) => r.id));
  } finally {
    globalThis.fetch = realFetch;
  }
}

export function unit() {
  // SSE: frames split anywhere, CRLF and LF, comments, multi-line data, ids
  const p = new SseParser();
  assert.deepEqual(p.feed(': connected\nretry: 2000\n\n'), []);
  assert.deepEqual(p.feed('id: 4'), []);
  assert.deepEqual(p.feed('2\nevent: decision\ndata: {"a":'), []);
  assert.deepEqual(p.feed('1}\n\n'), [{ type: 'decision', id: '42', data: '{"a":1}' }]);
  assert.deepEqual(p.feed('event: action\r\ndata: x\r\ndata:y\r\n\r\ndata: z\n\n'), [
    { type: 'action', id: null, data: 'x\ny' }, { type: 'message', id: null, data: 'z' }]);
  assert.deepEqual(p.feed('event: ingest\ndata: {}\n'), []);
  assert.deepEqual(p.feed('\n'), [{ type: 'ingest', id: null, data: '{}' }]);

  // globs as the hub reads them: * ? [a-z] [^a-z], case-sensitive, no escapes
  assert.equal(glob('demo', 'demo'), true);
  assert.equal(glob('demo', 'demo2'), false);
  assert.equal(glob('web-*', 'web-01'), true);
  assert.equal(glob('web-*', 'Web-01'), false);
  assert.equal(glob('h?', 'h1'), true);
  assert.equal(glob('h?', 'h12'), false);
  assert.equal(glob('[a-c]x', 'bx'), true);
  assert.equal(glob('[^a-c]x', 'bx'), false);
  assert.equal(glob('[^a-c]x', 'dx'), true);
  assert.equal(glob('a.b', 'axb'), false);
  assert.equal(glob('(x)+', '(x)+'), true);

  assert.deepEqual(seriesTags('process_up{host="h1",process="demo"}'), { host: 'h1', process: 'demo' });
  assert.deepEqual(seriesTags('m{k="a \\"q\\" b"}'), { k: 'a "q" b' });
  assert.deepEqual(seriesTags('drift/h1/File/motd'), {});

  // the action book: a fired decision makes a pending row, the action event its status,
  // the remediated decision its verdict; a reload keeps rows it has not seen yet
  const b = new ActionBook();
  assert.equal(b.decision({ id: 1, ts: 10, policy: 'p', decision: 'fired', action: 'a', action_id: 'x', target: 't' }), true);
  assert.equal(b.newest(5)[0].status, 'pending');
  b.load([]);
  assert.equal(b.newest(5).length, 1);
  b.action({ id: 'x', status: 'succeeded', reason: null, duration_ms: 7, ts: 11 });
  b.decision({ id: 2, ts: 12, policy: 'p', decision: 'remediated', action_id: 'x' });
  const row = b.newest(5)[0];
  assert.equal(row.status, 'succeeded');
  assert.equal(row.duration_ms, 7);
  assert.equal(row.verdict.decision, 'remediated');
  // quarantine from the ledger: the newest result per target; since the run's first refusal
  const Q = (id, target, t, policy = 'drift') => ({ id, target, requested: t, updated: t, status: 'refused', result_reason: 'quarantined', policy });
  const qs = quarantinedTargets([
    { id: 'a1', target: 'demo', requested: 1, updated: 2, status: 'succeeded' },
    Q('a2', 'demo', 5, 'demo_down'), Q('a3', 'demo', 15), Q('a4', 'demo', 25),
    Q('b1', 'web', 3), { id: 'b2', target: 'web', requested: 9, updated: 10, status: 'succeeded' },
    Q('c1', 'db', 30), { id: 'c2', target: 'db', requested: 31, status: 'pending' },
    { id: 'd1', target: 'x', requested: 4, updated: 6, status: 'refused', result_reason: 'cooldown' },
  ]);
  assert.deepEqual(qs.map((x) => [x.a.target, x.a.id, x.since]), [['demo', 'a4', 5], ['db', 'c1', 30]]);
  b.load([{ id: 'y', requested: 20, status: 'failed' }, { id: 'x', requested: 10, status: 'succeeded' }]);
  assert.deepEqual(b.newest(5).map((a) => a.id), ['y', 'x']);
  // the ingest rate: each hub's mean from its own totals, summed; a hub unheard of for the
  // span drops out; one hub's totals are never set against another's
  const ir = new IngestRate(10000);
  assert.deepEqual(ir.add({ ts: 1000, samples: 100, samples_per_second: 50 }, 0), { mean: 50, hubs: 1 });
  assert.deepEqual(ir.add({ ts: 2000, samples: 300 }, 1000), { mean: 200, hubs: 1 });
  // another hub with a far larger running total and its own clock
  assert.deepEqual(ir.add({ hub: 'hub-b', ts: 900000, samples: 1000000, samples_per_second: 70 }, 1100), { mean: 270, hubs: 2 });
  assert.deepEqual(ir.add({ hub: 'hub-b', ts: 901000, samples: 1000500 }, 2100), { mean: 700, hubs: 2 });
  assert.deepEqual(ir.add({ ts: 3000, samples: 600 }, 3000), { mean: 750, hubs: 2 });
  // hub-b silent for longer than the span: only this hub's rate
  assert.deepEqual(ir.add({ ts: 14000, samples: 600 }, 14000), { mean: 0, hubs: 1 });
}
