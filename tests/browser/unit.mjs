// Node-only checks of the dashboard's pure parts (no browser): the server-sent events
// parser, the hub's glob semantics, series keys. Run by tests/browser/run.mjs first.
import assert from 'node:assert/strict';
import { SseParser } from '../../ui/src/js/events.js';
import { glob, seriesTags, ActionBook } from '../../ui/src/js/views.js';

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
