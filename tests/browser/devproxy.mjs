// Development helper only (not used by `make test` once the hub serves ui/dist): serves
// ui/dist and passes every other request (/v1/*, /metrics, /readyz) through to the hub.
//   node tests/browser/devproxy.mjs http://127.0.0.1:7600 8088
import { createServer, request } from 'node:http';
import { readFile } from 'node:fs/promises';
import { extname, join, normalize } from 'node:path';
import { fileURLToPath } from 'node:url';

const TYPES = { '.html': 'text/html; charset=utf-8', '.js': 'text/javascript; charset=utf-8', '.css': 'text/css; charset=utf-8', '.svg': 'image/svg+xml', '.png': 'image/png' };
const CSP = "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'";

export function devProxy(hub, dist, port) {
  const target = new URL(hub);
  const srv = createServer(async (req, res) => {
    const path = decodeURIComponent(req.url.split('?')[0]);
    if (req.method === 'GET' && !/^\/(v1|metrics|readyz|healthz)(\/|$)/.test(path)) {
      const rel = normalize(path === '/' ? '/index.html' : path).replace(/^(\.\.[/\\])+/, '');
      try {
        const body = await readFile(join(dist, rel));
        res.writeHead(200, { 'Content-Type': TYPES[extname(rel)] || 'application/octet-stream', 'Content-Security-Policy': CSP, 'X-Content-Type-Options': 'nosniff' });
        res.end(body);
      } catch {
        res.writeHead(404).end();
      }
      return;
    }
    const up = request({ host: target.hostname, port: target.port, method: req.method, path: req.url, headers: Object.assign({}, req.headers, { host: target.host }) }, (r) => {
      res.writeHead(r.statusCode, r.headers);
      r.pipe(res);
    });
    up.on('error', () => res.writeHead(502).end());
    req.pipe(up);
  });
  return new Promise((resolve) => srv.listen(port, '127.0.0.1', () => resolve(srv)));
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  const dist = join(fileURLToPath(new URL('.', import.meta.url)), '..', '..', 'ui', 'dist');
  await devProxy(process.argv[2] || 'http://127.0.0.1:7600', dist, Number(process.argv[3] || 8088));
  console.log(`devproxy: http://127.0.0.1:${process.argv[3] || 8088}/`);
}
