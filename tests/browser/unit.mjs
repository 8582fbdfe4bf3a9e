// Node-only checks of the dashboard's pure parts (no browser): the server-sent events
// parser, the hub's glob semantics, series keys. Run by tests/browser/run.mjs first.
import assert from 'node:assert/strict';
import { SseParser, EventStream } from '../../ui/src/js/events.js';
import { glob, seriesTags, ActionBook } from '../../ui/src/js/views.js';

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
  b.load([{ id: 'y', requested: 20, status: 'failed' }, { id: 'x', requested: 10, status: 'succeeded' }]);
  assert.deepEqual(b.newest(5).map((a) => a.id), ['y', 'x']);
}
