// `npm run build`: writes dist/ for the hub to serve: src/ as it is (ES modules, no
// bundler), and uPlot's minified build and stylesheet from node_modules into dist/vendor/.
// Refuses inline scripts and style attributes, which the hub's Content-Security-Policy
// would block.
import { cpSync, mkdirSync, readFileSync, readdirSync, rmSync, statSync, writeFileSync, existsSync } from 'node:fs';
import { dirname, join, relative } from 'node:path';
import { fileURLToPath } from 'node:url';

const here = dirname(fileURLToPath(import.meta.url));
const src = join(here, 'src');
const dist = join(here, 'dist');
const uplot = join(here, 'node_modules', 'uplot', 'dist');

function fail(msg) {
  console.error(`ui build: ${msg}`);
  process.exit(1);
}

if (!existsSync(join(uplot, 'uPlot.iife.min.js'))) fail(`${relative(process.cwd(), uplot)}/uPlot.iife.min.js is missing: run npm ci first`);

function* files(dir) {
  for (const name of readdirSync(dir).sort()) {
    const p = join(dir, name);
    if (statSync(p).isDirectory()) yield* files(p);
    else yield p;
  }
}

for (const f of files(src)) {
  if (!f.endsWith('.html')) continue;
  const html = readFileSync(f, 'utf8');
  if (/<script(?![^>]*\bsrc=)[^>]*>/i.test(html)) fail(`${relative(here, f)}: an inline <script> (the CSP allows script-src 'self' only)`);
  if (/\sstyle=/i.test(html) || /<style[\s>]/i.test(html)) fail(`${relative(here, f)}: inline style (the CSP allows style-src 'self' only)`);
  if (/\son[a-z]+=/i.test(html)) fail(`${relative(here, f)}: an inline event handler`);
}

rmSync(dist, { recursive: true, force: true });
mkdirSync(join(dist, 'vendor'), { recursive: true });
cpSync(src, dist, { recursive: true });
// uPlot's minified build (51 KB against 145 KB for uPlot.esm.js) made an ES module: the
// IIFE defines `var uPlot` (module-local here), exported as the default, as uPlot.esm.js does.
const iife = readFileSync(join(uplot, 'uPlot.iife.min.js'), 'utf8');
if (!/^(\/\*[^]*?\*\/\s*)?var uPlot\s*=/.test(iife)) fail('uPlot.iife.min.js does not start with "var uPlot =": check the uplot version');
writeFileSync(join(dist, 'vendor', 'uPlot.min.js'), `${iife.trimEnd()}\nexport default uPlot;\n`);
cpSync(join(uplot, 'uPlot.min.css'), join(dist, 'vendor', 'uPlot.min.css'));
cpSync(join(uplot, '..', 'LICENSE'), join(dist, 'vendor', 'uPlot.LICENSE'));
const version = JSON.parse(readFileSync(join(here, 'node_modules', 'uplot', 'package.json'), 'utf8')).version;
writeFileSync(join(dist, 'vendor', 'VERSIONS'), `uplot ${version} (MIT, https://github.com/leeoniya/uPlot)\n`);

// The modules of the first page preloaded from index.html: the browser fetches them at once
// instead of discovering them import by import.
// Those of the first page, that is: the other pages' modules load on demand.
const LAZY = new Set(['metrics.js', 'actions.js', 'drift.js', 'silences.js', 'app.js']);
const mods = [...files(join(dist, 'js'))].map((f) => relative(dist, f)).filter((f) => f.endsWith('.js') && !LAZY.has(f.slice(3)));
const index = join(dist, 'index.html');
const html = readFileSync(index, 'utf8').replace(/^<link rel="modulepreload"[^>]*>\n/gm, '');
const links = ['vendor/uPlot.min.js', ...mods].map((m) => `<link rel="modulepreload" href="${m}">`).join('\n');
writeFileSync(index, html.replace('<script type="module"', `${links}\n<script type="module"`));

let n = 0;
let bytes = 0;
for (const f of files(dist)) {
  n++;
  bytes += statSync(f).size;
}
console.log(`ui build: ${n} files, ${(bytes / 1024).toFixed(1)} KiB in ${relative(process.cwd(), dist) || '.'}`);
