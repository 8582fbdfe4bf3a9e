// The dashboard in a real browser (issue 17): Debian's chromium driven by playwright-core
// (pinned in ui/package.json), against the whole loop started on free loopback ports.
//
//   node tests/browser/run.mjs            (make browser-test; part of make test)
//
// Environment: VIGIL_TEST_BUILD (default build: daemons in $BUILD/bin), CHROMIUM (default
// /usr/bin/chromium), VIGIL_BROWSER_OUT (default build/test-output/browser: screenshots
// and logs). Skips (exit 0, with the reason) only when chromium is not installed.

import { existsSync, mkdirSync, rmSync } from 'node:fs';
import { createRequire } from 'node:module';
import { join, resolve, dirname } from 'node:path';
import { fileURLToPath } from 'node:url';
import { Stack, TOKENS, waitFor } from './stack.mjs';
import { unit, unitStream } from './unit.mjs';

const root = resolve(dirname(fileURLToPath(import.meta.url)), '..', '..');
const build = resolve(root, process.env.VIGIL_TEST_BUILD || 'build');
const bin = join(build, 'bin');
const out = resolve(root, process.env.VIGIL_BROWSER_OUT || join('build', 'test-output', 'browser'));
const chromiumPath = process.env.CHROMIUM || '/usr/bin/chromium';
const uiDist = join(root, 'ui', 'dist');

if (!existsSync(chromiumPath)) {
  console.log(`browser-test: SKIPPED: ${chromiumPath} is not installed (apt-get install chromium, or set CHROMIUM)`);
  process.exit(0);
}
for (const b of ['vigil-collector', 'vigil-remediator', 'vigil-agent', 'vigil-demo-service']) {
  if (!existsSync(join(bin, b))) {
    console.error(`browser-test: ${join(bin, b)} is missing; run make first`);
    process.exit(1);
  }
}
if (!existsSync(join(uiDist, 'index.html'))) {
  console.error('browser-test: ui/dist/index.html is missing; run make ui first');
  process.exit(1);
}
const require = createRequire(join(root, 'ui', 'package.json'));
const { chromium } = require('playwright-core');

rmSync(out, { recursive: true, force: true });
mkdirSync(out, { recursive: true });

let passed = 0;
const t0 = Date.now();
function ok(msg) {
  passed++;
  console.log(`browser-test: ok ${passed} - ${msg} (${((Date.now() - t0) / 1000).toFixed(1)} s)`);
}
function assert(cond, msg) {
  if (!cond) throw new Error(`assertion failed: ${msg}`);
}

const stack = new Stack({ src: root, bin, uiDir: process.env.VIGIL_UI_DEV_PROXY ? null : uiDist, out });
let browser = null;
let proxy = null;
const onExit = () => stack.killNow();
process.on('exit', onExit);
for (const sig of ['SIGINT', 'SIGTERM']) {
  process.on(sig, () => {
    stack.killNow();
    process.exit(130);
  });
}

const problems = []; // console errors, CSP violations, page errors, failed requests

// expected: console messages of this page that are not problems (a refused request)
async function newPage(ctx, label, expected) {
  const page = await ctx.newPage();
  page.on('console', (m) => {
    if (m.type() === 'error' && !(expected && expected.test(m.text()))) problems.push(`${label}: console: ${m.text()}`);
  });
  page.on('pageerror', (e) => problems.push(`${label}: page error: ${e.message}`));
  return page;
}

async function shot(page, name) {
  await page.screenshot({ path: join(out, `${name}.png`), fullPage: true });
}

async function main() {
  unit();
  await unitStream();
  ok('SSE parser, event stream (token header, reconnect with backoff, refusal), globs, series keys, the live action book (node)');
  await stack.start();
  let base = stack.hub;
  if (process.env.VIGIL_UI_DEV_PROXY) {
    const { devProxy } = await import('./devproxy.mjs');
    const { freePort } = await import('./stack.mjs');
    const port = await freePort();
    proxy = await devProxy(stack.hub, uiDist, port);
    base = `http://127.0.0.1:${port}`;
  }
  console.log(`browser-test: hub ${stack.hub}, dashboard ${base}/, files in ${stack.dir}, output in ${out}`);
  await waitFor('the loop to start vigil-demo-service', 30000, () => stack.demoPid());
  ok(`the loop started vigil-demo-service (pid ${stack.demoPid()})`);

  // a drift report, as vigil-gitopsd sends one, for the drift page (selfHeal off: no heal)
  const rev = 'c0ffee1234567890abcdef1234567890abcdef12';
  await stack.api('POST', '/v1/drift', {
    source: stack.agentId, revision: rev, items: [
      { target: `${stack.agentId}/File/motd`, kind: 'File', name: 'motd', status: 'drifted', selfHeal: false, diff: [{ field: 'sha256', desired: 'ab12cd34', observed: 'ef56ab78' }, { field: 'mode', desired: '0644', observed: '0666' }] },
      { target: `${stack.agentId}/Service/demo`, kind: 'Service', name: 'demo', status: 'in_sync', selfHeal: true, diff: [] },
    ],
  });

  browser = await chromium.launch({ executablePath: chromiumPath, args: process.getuid && process.getuid() === 0 ? ['--no-sandbox'] : [] });
  console.log(`browser-test: chromium ${browser.version()}, playwright-core ${require('playwright-core/package.json').version}`);
  const ctx = await browser.newContext({ viewport: { width: 1280, height: 800 } });
  const page = await newPage(ctx, 'main');

  // 1. no token: the form says the hub needs one; a wrong token: a clear error, not an empty page
  await page.goto(`${base}/#/overview`);
  await page.locator('#token-form').waitFor({ timeout: 10000 });
  await page.fill('#token-input', 'not-the-right-token');
  await page.press('#token-input', 'Enter');
  const err = page.locator('#token-error');
  await err.waitFor({ timeout: 10000 });
  const errText = await err.innerText();
  assert(/the hub refused this token/i.test(errText) && /401/.test(errText) && /invalid token/.test(errText), `the error names the refusal: "${errText}"`);
  assert(!(await page.evaluate(() => sessionStorage.length === 0)), 'the token is in sessionStorage');
  assert(await page.evaluate(() => localStorage.length === 0), 'nothing in localStorage');
  await shot(page, 'token-refused');
  ok(`a wrong token shows "${errText.replace(/\s+/g, ' ').trim()}"`);
  // the browser logs each refused request (401) as an error: expected until here
  problems.length = 0;

  // 2. the admin token: the overview lists the demo agent and its policies
  await page.fill('#token-input', TOKENS.VIGIL_ADMIN_TOKEN);
  await page.press('#token-input', 'Enter');
  await page.locator(`.agent-row[data-agent="${stack.agentId}"]`).waitFor({ timeout: 15000 });
  for (const p of ['demo_down', 'demo_hung', 'ui_needs_approval']) await page.locator(`.policy-row[data-policy="${p}"]`).waitFor({ timeout: 10000 });
  const agentText = await page.locator(`.agent-row[data-agent="${stack.agentId}"]`).innerText();
  assert(/up/.test(agentText), `the agent is up: ${agentText}`);
  await page.locator('#live [data-status="live"]').waitFor({ timeout: 10000 });
  await waitFor('an ingest rate on the overview', 10000, async () => /^[0-9.]+[kMG]?$/.test(await page.locator('#ingest-rate').innerText()));
  ok(`the overview lists agent ${stack.agentId} and policies demo_down, demo_hung, ui_needs_approval; the event stream is live`);

  // 3. the explorer draws cpu_usage
  await page.click('nav a[data-page="metrics"]');
  await page.locator('#metric-name').waitFor();
  await page.fill('#metric-name', 'cpu_usage');
  await page.press('#metric-name', 'Enter');
  const chartEl = page.locator('#metric-chart[data-points]');
  await waitFor('cpu_usage points in the chart', 15000, async () => Number(await chartEl.getAttribute('data-points', { timeout: 1000 })) >= 2, 100);
  const pts = Number(await chartEl.getAttribute('data-points'));
  const canvas = page.locator('#metric-chart canvas');
  assert(await canvas.count() === 1, 'one uPlot canvas');
  const drawn = await canvas.evaluate((c) => {
    const d = c.getContext('2d').getImageData(0, 0, c.width, c.height).data;
    let coloured = 0;
    for (let i = 0; i < d.length; i += 4) if (d[i + 3] > 0 && !(d[i] === d[i + 1] && d[i + 1] === d[i + 2])) coloured++;
    return coloured;
  });
  assert(drawn > 50, `the canvas has coloured (series) pixels: ${drawn}`);
  // live-follow: more points arrive without a reload
  await waitFor('live-follow to add points', 10000, async () => Number(await chartEl.getAttribute('data-points')) > pts, 100);
  await shot(page, 'metrics');
  ok(`the explorer draws cpu_usage (${pts} points, ${drawn} series pixels) and follows it live`);

  // drag across the chart: the range becomes that selection (custom, follow off), asked again
  const over = await page.locator('#metric-chart .u-over').boundingBox();
  const y = over.y + over.height / 2;
  await page.mouse.move(over.x + over.width * 0.5, y);
  await page.mouse.down();
  await page.mouse.move(over.x + over.width * 0.75, y, { steps: 8 });
  await page.mouse.up();
  await page.locator('.seg-btn[data-range="custom"][aria-pressed="true"]').waitFor({ timeout: 5000 });
  assert(!(await page.locator('#metric-follow').isChecked()), 'follow is off after a zoom');
  assert(/range=custom&from=[0-9]+&to=[0-9]+/.test(page.url()), `the zoomed range is in the address: ${page.url()}`);
  await page.click('#zoom-reset');
  await page.locator('.seg-btn[data-range="15m"][aria-pressed="true"]').waitFor({ timeout: 5000 });
  assert(await page.locator('#metric-follow').isChecked(), 'follow is on again after Reset zoom');
  ok('dragging across the chart zooms into that range; Reset zoom goes back to 15m, following');

  // 4. approval: the pending action of ui_needs_approval is approved from the UI and runs
  await page.click('nav a[data-page="actions"]');
  const approveRow = page.locator('.approval-row').filter({ hasText: 'ui_touch_marker' }).first();
  await approveRow.waitFor({ timeout: 15000 });
  const approveId = await approveRow.getAttribute('data-action-id');
  assert(!existsSync(stack.marker), 'the action did not run before its approval');
  await page.locator('#audit-result').waitFor({ timeout: 10000 });
  assert(await page.locator('#audit-result').getAttribute('data-ok') === 'true', 'the audit chain verifies');
  await shot(page, 'actions-pending-approval');
  await approveRow.locator('button.approve').focus();
  await page.keyboard.press('Enter'); // keyboard, as a person without a mouse would
  const doneRow = page.locator(`#action-list .action-row[data-action-id="${approveId}"][data-status="succeeded"]`);
  await doneRow.waitFor({ timeout: 15000 });
  assert(existsSync(stack.marker), `the approved action ran (${stack.marker})`);
  await page.click('#audit-verify');
  await waitFor('the audit verification again', 10000, async () => /rows verified/.test(await page.locator('#audit-result').innerText()));
  await shot(page, 'actions');
  ok(`approving ${approveId} from the UI executed it (status succeeded, marker file written, audit chain intact)`);

  // 5. killing the demo: a new action row appears live within 3 s, then shows remediated
  await page.click('nav a[data-page="overview"]');
  await page.locator('#ov-actions').waitFor();
  await page.locator(`.agent-row[data-agent="${stack.agentId}"]`).waitFor({ timeout: 10000 });
  await page.evaluate(() => { window.__noReload = 1; });
  const before = new Set(await page.locator('#ov-actions .action-row').evaluateAll((rows) => rows.map((r) => r.dataset.actionId)));
  const demo = stack.demoPid();
  assert(demo, 'the demo runs');
  process.kill(demo, 'SIGKILL');
  const killed = Date.now();
  const newRow = await waitFor('a new action row after the kill', 3000, async () => {
    const ids = await page.locator('#ov-actions .action-row').evaluateAll((rows) => rows.map((r) => [r.dataset.actionId, r.textContent]));
    const n = ids.find(([id, text]) => !before.has(id) && /restart_demo/.test(text));
    return n ? n[0] : null;
  }, 20);
  const appeared = Date.now() - killed;
  await page.locator(`#ov-actions .action-row[data-action-id="${newRow}"][data-verdict="remediated"]`).waitFor({ timeout: 20000 });
  const remediated = Date.now() - killed;
  assert(await page.evaluate(() => window.__noReload === 1), 'the page was not reloaded');
  await shot(page, 'overview');
  ok(`kill -9 of the demo: action ${newRow} appeared live after ${appeared} ms, remediated after ${remediated} ms (no reload)`);

  // 6. drift and silences
  await page.click('nav a[data-page="drift"]');
  await page.locator(`.drift-row[data-target="${stack.agentId}/File/motd"]`).first().waitFor({ timeout: 10000 });
  assert(/c0ffee123456/.test(await page.locator('#drift-body').innerText()), 'the commit id is shown');
  await shot(page, 'drift');
  ok('the drift page shows desired against observed, with the commit');

  await page.click('nav a[data-page="silences"]');
  await page.locator('#silence-form').waitFor();
  await page.fill('#matchers .mv', 'demo_hung');
  await page.fill('#silence-duration', '2h');
  await page.fill('#silence-comment', 'browser test');
  await page.click('#silence-form button[type="submit"]');
  const silRow = page.locator('.silence-row[data-state="active"]').filter({ hasText: 'policy=demo_hung' });
  await silRow.waitFor({ timeout: 10000 });
  await shot(page, 'silences');
  await silRow.locator('button.expire').click();
  await waitFor('the silence to expire', 10000, async () => (await page.locator('.silence-row[data-state="active"]').count()) === 0);
  ok('a silence is added from the form and expired');

  // 7. a narrow window (a phone): nothing needs a horizontal scroll of the page
  const narrow = await browser.newContext({ viewport: { width: 390, height: 800 } });
  await narrow.addInitScript((t) => sessionStorage.setItem('vigil.token', t), TOKENS.VIGIL_READ_TOKEN);
  const small = await newPage(narrow, 'narrow', /status of 403 \(Forbidden\)/);
  await small.goto(`${base}/#/overview`);
  await small.locator(`.agent-row[data-agent="${stack.agentId}"]`).waitFor({ timeout: 10000 });
  const overflow = await small.evaluate(() => document.documentElement.scrollWidth - window.innerWidth);
  assert(overflow <= 0, `no horizontal page scroll at 390 px (${overflow} px too wide)`);
  await shot(small, 'overview-narrow');
  ok('the overview fits a 390 px window');
  // the read token may look but not verify the audit chain: the page says why
  await small.click('nav a[data-page="actions"]');
  await waitFor('the audit panel to refuse the read token', 10000, async () => /403.*lacks the admin scope.*needs an admin token/.test(await small.locator('#audit').innerText()));
  await small.locator('#action-list .action-row').first().waitFor({ timeout: 10000 });
  await narrow.close();
  ok('with a read token the actions page lists the executions and says the audit check needs admin (403)');

  // 8. load time from a warm hub: navigation timing, printed (not asserted)
  const warm = await browser.newContext({ viewport: { width: 1280, height: 800 } });
  await warm.addInitScript((t) => sessionStorage.setItem('vigil.token', t), TOKENS.VIGIL_READ_TOKEN);
  const loads = [];
  const ready = [];
  for (let i = 0; i < 6; i++) {
    const p = await newPage(warm, `warm-${i}`);
    await p.goto(`${base}/#/overview`, { waitUntil: 'load' });
    await p.locator(`.agent-row[data-agent="${stack.agentId}"]`).waitFor({ timeout: 10000 });
    const t = await p.evaluate(() => {
      const n = performance.getEntriesByType('navigation')[0];
      const m = performance.getEntriesByName('vigil:agents')[0];
      return { load: n.loadEventEnd - n.startTime, dcl: n.domContentLoadedEventEnd - n.startTime, data: m ? m.startTime : NaN };
    });
    if (i > 0) { // the first warms the hub's and browser's caches
      loads.push(t.load);
      ready.push(t.data);
    }
    await p.close();
  }
  await warm.close();
  const med = (a) => a.slice().sort((x, y) => x - y)[Math.floor(a.length / 2)];
  console.log(`browser-test: page load (navigation timing, loadEventEnd) on a warm hub: median ${med(loads).toFixed(1)} ms, max ${Math.max(...loads).toFixed(1)} ms over ${loads.length} loads; agents table filled (performance mark) after ${med(ready).toFixed(1)} ms (median)`);

  assert(problems.length === 0, `no console errors, CSP violations or page errors:\n  ${problems.join('\n  ')}`);
  ok('no console errors, CSP violations or page errors');
}

let failed = false;
try {
  await main();
} catch (e) {
  failed = true;
  console.error(`browser-test: FAILED: ${e.stack || e}`);
  console.error(`browser-test: logs and screenshots in ${out}`);
} finally {
  try {
    if (browser) await browser.close();
  } catch {
    /* already gone */
  }
  if (proxy) proxy.close();
  const exits = await stack.stop();
  for (const [name, how] of exits) {
    if (how.code !== 0 && !failed) {
      failed = true;
      console.error(`browser-test: FAILED: ${name} exited with ${how.code === null ? `signal ${how.sig}` : `status ${how.code}`} on SIGTERM; see ${join(out, `${name}.log`)}`);
    }
  }
  if (!failed) rmSync(stack.dir, { recursive: true, force: true });
}
console.log(failed ? 'browser-test: FAILED' : `browser-test: all ${passed} checks passed; screenshots in ${out}`);
process.exit(failed ? 1 : 0);
