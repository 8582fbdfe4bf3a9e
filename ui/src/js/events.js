// The hub's event stream (GET /v1/events, server-sent events), read with fetch() and a
// ReadableStream rather than EventSource so that the token goes in the Authorization header
// (never in a URL). Reconnects with exponential backoff and jitter; a stream that goes quiet
// for longer than QUIET_MS (the hub sends an `ingest` event every second) is dropped and
// reopened.

import { authHeaders } from './api.js';

const QUIET_MS = 10000;
const BACKOFF_MIN = 500;
const BACKOFF_MAX = 15000;

/**
 * Parses server-sent event frames from text chunks. feed(chunk) returns the complete events
 * ({type, id, data}) seen so far; a partial frame waits for the next chunk.
 */
export class SseParser {
  constructor() {
    this.buf = '';
  }
  feed(chunk) {
    this.buf += chunk;
    const out = [];
    for (;;) {
      const m = /\r\n\r\n|\n\n|\r\r/.exec(this.buf);
      if (!m) break;
      const frame = this.buf.slice(0, m.index);
      this.buf = this.buf.slice(m.index + m[0].length);
      let type = 'message';
      let id = null;
      const data = [];
      for (const line of frame.split(/\r\n|\n|\r/)) {
        if (!line || line[0] === ':') continue;
        const c = line.indexOf(':');
        const field = c < 0 ? line : line.slice(0, c);
        let value = c < 0 ? '' : line.slice(c + 1);
        if (value[0] === ' ') value = value.slice(1);
        if (field === 'event') type = value;
        else if (field === 'data') data.push(value);
        else if (field === 'id') id = value;
      }
      if (data.length) out.push({ type, id, data: data.join('\n') });
    }
    return out;
  }
}

/**
 * The stream: on(type, fn) subscribes to an event type ('ingest', 'decision', 'action',
 * 'drift', 'reconnected' once the stream is back after a loss (nothing is replayed), or '*'
 * for all) with fn(data, type); onState(fn) gets 'connecting', 'live',
 * 'reconnecting' (with the delay) or 'refused' (with the error: 401/403, no retry until
 * restart()).
 */
export class EventStream {
  constructor(path = '/v1/events') {
    this.path = path;
    this.handlers = new Map();
    this.stateFns = new Set();
    this.state = 'connecting';
    this.backoff = BACKOFF_MIN;
    this.ctl = null;
    this.timer = null;
    this.stopped = true;
    this.wasLive = false;
  }
  on(type, fn) {
    if (!this.handlers.has(type)) this.handlers.set(type, new Set());
    this.handlers.get(type).add(fn);
    return () => this.handlers.get(type).delete(fn);
  }
  onState(fn) {
    this.stateFns.add(fn);
    fn(this.state, this.detail);
    return () => this.stateFns.delete(fn);
  }
  setState(state, detail) {
    this.state = state;
    this.detail = detail;
    for (const fn of this.stateFns) fn(state, detail);
  }
  /** (Re)opens the stream now, e.g. after a new token. */
  restart() {
    this.stop();
    this.stopped = false;
    this.backoff = BACKOFF_MIN;
    this.connect();
  }
  stop() {
    this.stopped = true;
    clearTimeout(this.timer);
    if (this.ctl) this.ctl.abort();
    this.ctl = null;
  }
  emit(type, data) {
    for (const key of [type, '*']) {
      const set = this.handlers.get(key);
      if (!set) continue;
      for (const fn of set) {
        try {
          fn(data, type);
        } catch (e) {
          console.error('event handler', type, e);
        }
      }
    }
  }
  retry() {
    if (this.stopped) return;
    const delay = Math.round(this.backoff * (0.75 + Math.random() * 0.5));
    this.backoff = Math.min(this.backoff * 2, BACKOFF_MAX);
    this.setState('reconnecting', delay);
    this.timer = setTimeout(() => this.connect(), delay);
  }
  async connect() {
    if (this.stopped) return;
    const ctl = new AbortController();
    this.ctl = ctl;
    let quiet = null;
    const arm = () => {
      clearTimeout(quiet);
      quiet = setTimeout(() => ctl.abort(), QUIET_MS);
    };
    if (this.state !== 'reconnecting') this.setState('connecting');
    try {
      arm();
      const res = await fetch(this.path, { headers: authHeaders({ Accept: 'text/event-stream' }), signal: ctl.signal, cache: 'no-store' });
      if (res.status === 401 || res.status === 403) {
        clearTimeout(quiet);
        let msg = res.statusText;
        try {
          msg = (await res.json()).error.message;
        } catch {
          /* keep the status text */
        }
        this.setState('refused', { status: res.status, message: msg });
        return;
      }
      if (!res.ok || !res.body) throw new Error(`HTTP ${res.status}`);
      const reader = res.body.pipeThrough(new TextDecoderStream()).getReader();
      const parser = new SseParser();
      let first = true;
      for (;;) {
        const { value, done } = await reader.read();
        if (done) break;
        arm();
        if (first) {
          first = false;
          this.backoff = BACKOFF_MIN;
          this.setState('live');
          // events were missed while the stream was down: pages reload what they show
          if (this.wasLive) this.emit('reconnected', null);
          this.wasLive = true;
        }
        for (const ev of parser.feed(value)) {
          let data;
          try {
            data = JSON.parse(ev.data);
          } catch {
            data = ev.data;
          }
          this.emit(ev.type, data);
        }
      }
    } catch (e) {
      if (this.stopped && this.ctl !== ctl) return;
    } finally {
      clearTimeout(quiet);
    }
    if (this.ctl === ctl && !this.stopped && this.state !== 'refused') this.retry();
  }
}
