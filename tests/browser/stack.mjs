// The whole loop for the browser test, on free loopback ports, in a temporary directory:
// vigil-remediator, vigil-collector (the hub, serving ui/dist) and vigil-agent from
// build/bin, configured from the shipped configs/*.yaml with their ports replaced (as
// tests/integration/test_demo.c does), plus an exec action that needs approval and a
// policy that asks for it. The agent watches vigil-demo-service, which the loop starts.
// Every process is stopped by stop(), also when the test fails.

import { spawn } from 'node:child_process';
import { copyFileSync, chmodSync, mkdirSync, mkdtempSync, openSync, readFileSync, writeFileSync, existsSync, closeSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir, hostname } from 'node:os';
import { join } from 'node:path';

export const TOKENS = {
  VIGIL_INGEST_TOKEN: 'browser-test-ingest-token-0000000',
  VIGIL_READ_TOKEN: 'browser-test-read-token-00000000',
  VIGIL_REMEDIATOR_SECRET: 'browser-test-signing-secret-0000000000',
  VIGIL_REMEDIATOR_HUB_TOKEN: 'browser-test-hub-token-000000000',
  VIGIL_ADMIN_TOKEN: 'browser-test-admin-token-0000000',
};
const SHIPPED = ['7600', '7601', '7680'];
const RESERVED = new Set([7600, 7601, 7602, 7680]);

/** A free loopback TCP port (never one of the shipped ones). */
export async function freePort() {
  for (;;) {
    const port = await new Promise((resolve, reject) => {
      const s = createServer();
      s.once('error', reject);
      s.listen(0, '127.0.0.1', () => {
        const p = s.address().port;
        s.close(() => resolve(p));
      });
    });
    if (!RESERVED.has(port)) return port;
  }
}

/** Polls fn() (truthy ends) every `every` ms until `ms` passed; throws `what` then. */
export async function waitFor(what, ms, fn, every = 25) {
  const end = Date.now() + ms;
  let last;
  for (;;) {
    try {
      const v = await fn();
      if (v) return v;
    } catch (e) {
      last = e;
    }
    if (Date.now() > end) throw new Error(`timed out after ${ms} ms waiting for ${what}${last ? ` (last error: ${last.message})` : ''}`);
    await new Promise((r) => setTimeout(r, every));
  }
}

function withPorts(text, ports) {
  return text.replace(/(?<![0-9])(7600|7601|7680)(?![0-9])/g, (m) => String(ports[SHIPPED.indexOf(m)]));
}

/** Inserts `block` after the line `key:` of a YAML text (a top-level list). */
function insertAfter(text, key, block) {
  const re = new RegExp(`^${key}:[ \\t]*\\n`, 'm');
  if (!re.test(text)) throw new Error(`no top-level "${key}:" in the shipped config`);
  return text.replace(re, (m) => m + block);
}

export class Stack {
  constructor({ src, bin, uiDir, out }) {
    this.src = src;
    this.bin = bin;
    this.uiDir = uiDir;
    this.out = out;
    this.procs = [];
    this.dir = mkdtempSync(join(tmpdir(), 'vigil-browser-'));
  }

  get hub() {
    return `http://127.0.0.1:${this.ports[0]}`;
  }

  /** Writes the configurations and starts remediator, hub and agent; waits until ready. */
  async start() {
    const d = this.dir;
    this.ports = [await freePort(), await freePort(), await freePort()];
    while (new Set(this.ports).size < 3) this.ports[2] = await freePort();
    mkdirSync(join(d, 'var'));
    mkdirSync(join(d, 'build', 'bin'), { recursive: true });
    // the remediator refuses a program others may write: a copy of our own, 0755
    const demo = join(d, 'build', 'bin', 'vigil-demo-service');
    copyFileSync(join(this.bin, 'vigil-demo-service'), demo);
    chmodSync(demo, 0o755);
    this.marker = join(d, 'var', 'approved.marker');

    let rem = withPorts(readFileSync(join(this.src, 'configs', 'remediator.yaml'), 'utf8'), this.ports);
    rem = insertAfter(rem, 'actions', [
      '  - name: ui_touch_marker          # (browser test) runs only once approved',
      '    type: exec',
      `    argv: ["/usr/bin/touch", "${this.marker}"]`,
      '    targets: "^ui-check$"',
      '    timeout: 10s',
      '    approval: {required: true, expires: 15m}',
      '',
    ].join('\n'));
    let hub = withPorts(readFileSync(join(this.src, 'configs', 'collector.yaml'), 'utf8'), this.ports);
    hub = insertAfter(hub, 'policies', [
      '  - name: ui_needs_approval        # (browser test) asks once for an action needing approval',
      '    kind: threshold',
      '    metric: process_up',
      '    match: {process: demo}',
      '    window: 1s',
      '    aggregate: last',
      '    op: ">="',
      '    threshold: 0',
      '    for: 0s',
      '    action: ui_touch_marker',
      '    target: ui-check',
      '',
    ].join('\n'));
    // the dashboard from the tree's ui/dist (the shipped file names ./ui/dist, relative to
    // the working directory, which is the temporary one here)
    if (this.uiDir) {
      if (/^ui:[ \t]*\n[ \t]+dir:.*$/m.test(hub)) hub = hub.replace(/^(ui:[ \t]*\n[ \t]+dir:)[^#\n]*/m, `$1 ${JSON.stringify(this.uiDir)} `);
      else hub += `\nui:\n  dir: ${JSON.stringify(this.uiDir)}\n`;
    }
    let agent = withPorts(readFileSync(join(this.src, 'configs', 'agent.yaml'), 'utf8'), this.ports);
    agent = agent.replace(/^interval: 10s/m, 'interval: 1s').replace(/^heartbeat: 10s/m, 'heartbeat: 1s');
    writeFileSync(join(d, 'remediator.yaml'), rem);
    writeFileSync(join(d, 'collector.yaml'), hub);
    writeFileSync(join(d, 'agent.yaml'), agent);

    this.env = Object.assign({}, process.env, TOKENS, { VIGIL_INGEST_AGENTS: '*' });
    this.spawn('vigil-remediator', ['--config', join(d, 'remediator.yaml')]);
    await waitFor('vigil-remediator to listen', 15000, () => this.logHas('vigil-remediator', 'msg=listening'));
    this.spawn('vigil-collector', ['--config', join(d, 'collector.yaml')]);
    await waitFor('the hub to be ready', 15000, async () => (await fetch(`${this.hub}/readyz`)).ok);
    this.spawn('vigil-agent', ['--config', join(d, 'agent.yaml')]);
    this.agentId = hostname();
  }

  spawn(name, args) {
    const log = join(this.out, `${name}.log`);
    const fd = openSync(log, 'w');
    const p = spawn(join(this.bin, name), args, { cwd: this.dir, env: this.env, stdio: ['ignore', fd, fd] });
    closeSync(fd);
    p.name = name;
    p.log = log;
    p.exited = new Promise((r) => p.once('exit', (code, sig) => r({ code, sig })));
    this.procs.push(p);
    return p;
  }

  logHas(name, text) {
    const p = this.procs.find((x) => x.name === name);
    if (p.exitCode !== null) throw new Error(`${name} exited (${p.exitCode}); see ${p.log}`);
    return readFileSync(p.log, 'utf8').includes(text);
  }

  /** The live vigil-demo-service's pid from var/demo.pid, or 0. */
  demoPid() {
    try {
      const pid = Number(readFileSync(join(this.dir, 'var', 'demo.pid'), 'utf8').split(/\s/)[0]);
      if (!(pid > 0)) return 0;
      const comm = readFileSync(`/proc/${pid}/comm`, 'utf8').trim();
      return comm === 'vigil-demo-serv' ? pid : 0;
    } catch {
      return 0;
    }
  }

  /** GET/POST on the hub with a token; parsed JSON, or throws with the status. */
  async api(method, path, body, token = TOKENS.VIGIL_ADMIN_TOKEN) {
    const headers = { Authorization: `Bearer ${token}` };
    if (body !== undefined) headers['Content-Type'] = 'application/json';
    else if (method !== 'GET') headers['X-Vigil-Request'] = 'test';
    const res = await fetch(this.hub + path, { method, headers, body: body === undefined ? undefined : JSON.stringify(body) });
    const text = await res.text();
    if (!res.ok) throw new Error(`${method} ${path}: HTTP ${res.status} ${text}`);
    return text ? JSON.parse(text) : null;
  }

  /**
   * Stops every process (TERM, then KILL after 10 s), the demo service included. Returns
   * [name, {code, sig}] of each daemon.
   */
  async stop() {
    const exits = [];
    for (const p of [...this.procs].reverse()) {
      if (p.exitCode === null && p.signalCode === null) {
        p.kill('SIGTERM');
        const t = setTimeout(() => p.kill('SIGKILL'), 10000);
        await p.exited;
        clearTimeout(t);
      }
      exits.push([p.name, await p.exited]);
    }
    const demo = this.demoPid();
    if (demo) {
      try {
        process.kill(demo, 'SIGCONT');
        process.kill(demo, 'SIGTERM');
        await waitFor('vigil-demo-service to stop', 10000, () => !existsSync(`/proc/${demo}`) || this.demoPid() !== demo);
      } catch {
        try {
          process.kill(demo, 'SIGKILL');
        } catch {
          /* gone */
        }
      }
    }
    return exits;
  }

  /** Synchronous last resort (process exit): SIGKILL whatever still runs. */
  killNow() {
    for (const p of this.procs) {
      if (p.exitCode === null && p.signalCode === null) {
        try {
          p.kill('SIGKILL');
        } catch {
          /* gone */
        }
      }
    }
    const demo = this.demoPid();
    if (demo) {
      try {
        process.kill(demo, 'SIGKILL');
      } catch {
        /* gone */
      }
    }
  }
}
