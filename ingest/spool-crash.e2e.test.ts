/**
 * The spool under kill -9: a child process appends as fast as it can (groups of varied size,
 * fsync: always) and prints the last sequence number whose append resolved; it is killed with
 * SIGKILL at an arbitrary moment, several times over on the same directory. Every resolved
 * append must survive, the spool must hold exactly the sequence 0..n in order (a torn tail cut,
 * never read as data), and the next run must carry on after it.
 *
 * Runs the built spool (dist/, `npm run build`; `npm test` builds first).
 */
import { spawn } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { pathToFileURL } from 'node:url';
import { afterAll, describe, expect, it } from 'vitest';
import { silentLogger } from '../lib/logger.js';
import { lineCodec, Spool } from './spool.js';

const BUILT = resolve(import.meta.dirname, '..', 'dist', 'ingest', 'spool.js');

const CHILD = `
import { Spool, lineCodec } from ${JSON.stringify(pathToFileURL(BUILT).href)};
const quiet = { info() {}, warn(o, msg) { process.stderr.write(msg + '\\n'); }, error() {}, debug() {}, child() { return quiet; } };
const spool = new Spool({ dir: process.argv[2], codec: lineCodec, logger: quiet }, { segmentBytes: 256 * 1024 });
await spool.open();
let seq = spool.size();
const item = (n) => 'p' + n + '-' + 'x'.repeat((n * 7919) % 3000);
for (;;) {
  const group = [];
  // A few appends in flight at once, so they are committed together.
  for (let k = 0; k < 1 + (seq % 5); k++) {
    const items = [];
    for (let i = 0; i < 1 + (seq % 40); i++) items.push(item(seq++));
    group.push(spool.append(items));
  }
  const results = await Promise.all(group);
  if (results.some((ok) => !ok)) throw new Error('append refused');
  process.stdout.write(String(seq - 1) + '\\n');
}
`;

describe.skipIf(!existsSync(BUILT))('spool under kill -9', () => {
  const root = mkdtempSync(join(tmpdir(), 'watchpost-spool-crash-'));
  afterAll(() => rmSync(root, { recursive: true, force: true }));

  it('keeps every acknowledged append, in order, across repeated SIGKILLs', async () => {
    const script = join(root, 'child.mjs');
    writeFileSync(script, CHILD);
    const dir = join(root, 'spool');
    let acknowledged = -1;
    let tornTails = 0;
    for (let round = 0; round < 4; round++) {
      const child = spawn(process.execPath, [script, dir], { stdio: ['ignore', 'pipe', 'pipe'] });
      let out = '';
      let err = '';
      child.stdout.on('data', (d: Buffer) => (out += d.toString()));
      child.stderr.on('data', (d: Buffer) => (err += d.toString()));
      const exited = new Promise<void>((r) => child.once('exit', () => r()));
      // Wait until it has made progress beyond what earlier rounds acknowledged, then kill it mid-flight.
      const started = Date.now();
      while (!out.split('\n').some((l) => l !== '' && Number(l) > acknowledged + 2000)) {
        if (child.exitCode !== null) throw new Error(`child exited: ${err}`);
        if (Date.now() - started > 20_000) throw new Error(`no progress: ${err}`);
        await new Promise((r) => setTimeout(r, 20));
      }
      await new Promise((r) => setTimeout(r, 37 * round));
      child.kill('SIGKILL');
      await exited;
      tornTails += err.split('\n').filter((l) => l.startsWith('spool: cut a torn tail')).length;
      const printed = out.split('\n').filter(Boolean).map(Number);
      acknowledged = Math.max(acknowledged, ...printed);
    }

    const spool = new Spool<string>({ dir, codec: lineCodec, logger: silentLogger() }, { segmentBytes: 256 * 1024 });
    await spool.open();
    try {
      const all = await spool.peek(10_000_000);
      expect(all.length).toBeGreaterThan(acknowledged);
      console.info(`spool kill -9: ${all.length} records after 4 kills (${acknowledged + 1} acknowledged), ${tornTails} torn tails cut on restart`);
      all.forEach((item, n) => {
        if (item !== `p${n}-${'x'.repeat((n * 7919) % 3000)}`) throw new Error(`record ${n} is not what was appended: ${item.slice(0, 40)}`);
      });
    } finally {
      await spool.close();
    }
  }, 120_000);
});
