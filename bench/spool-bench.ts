/**
 * `npm run bench -- spool`: the durable spool on this machine's disk.
 *
 * - append: readings/s when C appends (one 110-byte line each) are in flight at once, with
 *   fsync: always (group commit: one write + fdatasync per group) and fsync: interval; and the
 *   appends per fdatasync that group commit achieved.
 * - drain: records/s read back and committed in batches of 5000 (what the writer does after an
 *   outage, without the network).
 * Environment: BENCH_SECONDS (default 3 per case), DRAIN_RECORDS (default 1,000,000).
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { silentLogger } from '../lib/logger.js';
import { lineCodec, Spool, type SpoolOptions } from '../ingest/spool.js';
import { env, printTable } from './harness.js';

const LINE = 'strain,asset_id=lg-bridge-001,asset_type=bridge,sensor_id=strain-01,street=longcheng value=123.4 1764295200123';

async function appendCase(fsync: SpoolOptions['fsync'], concurrency: number, seconds: number) {
  const dir = mkdtempSync(join(tmpdir(), 'watchpost-spool-bench-'));
  let syncs = 0;
  const spool = new Spool<string>({ dir, codec: lineCodec, logger: silentLogger(), onSync: () => syncs++ }, { fsync, maxBytes: 8 * 1024 ** 3 });
  await spool.open();
  let done = 0;
  const deadline = performance.now() + seconds * 1000;
  const worker = async () => {
    while (performance.now() < deadline) {
      if (!(await spool.append([LINE]))) throw new Error('refused');
      done++;
    }
  };
  const started = performance.now();
  await Promise.all(Array.from({ length: concurrency }, worker));
  const elapsed = (performance.now() - started) / 1000;
  const size = spool.size();
  await spool.close();
  rmSync(dir, { recursive: true, force: true });
  return { perSecond: Math.round(done / elapsed), perSync: Math.round((done / Math.max(1, syncs)) * 10) / 10, size };
}

async function drainCase(records: number) {
  const dir = mkdtempSync(join(tmpdir(), 'watchpost-spool-bench-'));
  const spool = new Spool<string>({ dir, codec: lineCodec, logger: silentLogger() }, { fsync: 'interval', maxBytes: 8 * 1024 ** 3 });
  await spool.open();
  const batch = Array.from({ length: 1000 }, () => LINE);
  for (let i = 0; i < records / 1000; i++) await spool.append(batch);
  await spool.close();
  const reopened = new Spool<string>({ dir, codec: lineCodec, logger: silentLogger() }, { fsync: 'always' });
  const openStarted = performance.now();
  await reopened.open();
  const openMs = performance.now() - openStarted;
  const started = performance.now();
  let read = 0;
  while (reopened.size() > 0) {
    const got = await reopened.peek(5000);
    read += got.length;
    await reopened.commit(got.length);
  }
  const elapsed = (performance.now() - started) / 1000;
  await reopened.close();
  rmSync(dir, { recursive: true, force: true });
  return { perSecond: Math.round(read / elapsed), openMs: Math.round(openMs) };
}

export async function main(): Promise<void> {
  const seconds = env('BENCH_SECONDS', 3);
  const rows: Array<[string, unknown]> = [];
  const figures: Record<string, number | string> = { scenario: 'spool' };
  for (const fsync of ['always', 'interval'] as const) {
    for (const c of [1, 10, 100, 1000]) {
      const r = await appendCase(fsync, c, seconds);
      rows.push([`append ${fsync} c=${c}`, `${r.perSecond.toLocaleString('en-US')} /s  (${r.perSync} per sync)`]);
      figures[`append_${fsync}_c${c}_per_s`] = r.perSecond;
    }
  }
  const records = env('DRAIN_RECORDS', 1_000_000);
  const d = await drainCase(records);
  rows.push([`drain ${records.toLocaleString('en-US')} records`, `${d.perSecond.toLocaleString('en-US')} /s (open ${d.openMs} ms)`]);
  figures.drain_per_s = d.perSecond;
  figures.drain_open_ms = d.openMs;
  printTable(rows);
  process.stdout.write(`${JSON.stringify(figures)}\n`);
}
