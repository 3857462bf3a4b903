// Builds the duty console into dist/console (served by server/console/static.ts): one script and
// one stylesheet with content hashes in their names, and index.html naming them. Run by `npm run build`.
import { mkdirSync, readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { basename, dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { build } from 'esbuild';

const here = dirname(fileURLToPath(import.meta.url));
const final = join(here, '..', 'dist', 'console');
// Built beside and moved in place, so a running server never finds the folder half written.
const out = `${final}.tmp-${process.pid}`;
rmSync(out, { recursive: true, force: true });
mkdirSync(join(out, 'assets'), { recursive: true });

const result = await build({
  entryPoints: { app: join(here, 'src', 'main.tsx') },
  bundle: true,
  minify: true,
  sourcemap: 'linked',
  format: 'esm',
  target: ['es2020', 'chrome100', 'firefox100', 'safari15'],
  jsx: 'automatic',
  jsxImportSource: 'preact',
  outdir: join(out, 'assets'),
  entryNames: '[name]-[hash]',
  assetNames: '[name]-[hash]',
  metafile: true,
  legalComments: 'linked',
  logLevel: 'warning',
});

const outputs = Object.keys(result.metafile.outputs).map((f) => basename(f));
const script = outputs.find((f) => f.endsWith('.js'));
const style = outputs.find((f) => f.endsWith('.css'));
if (!script || !style) throw new Error(`the console build wrote no script or stylesheet: ${outputs.join(', ')}`);
const html = readFileSync(join(here, 'index.html'), 'utf8').replace('%SCRIPT%', `/console/assets/${script}`).replace('%STYLE%', `/console/assets/${style}`);
writeFileSync(join(out, 'index.html'), html);
rmSync(final, { recursive: true, force: true });
renameSync(out, final);
const bytes = Object.entries(result.metafile.outputs)
  .filter(([f]) => !f.endsWith('.map'))
  .reduce((n, [, o]) => n + o.bytes, 0);
console.log(`console: dist/console (${outputs.filter((f) => !f.endsWith('.map')).join(', ')}; ${(bytes / 1024).toFixed(0)} KiB)`);
