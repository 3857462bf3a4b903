/**
 * A failed fdatasync stops the spool (fail-stop): with either fsync mode, nothing more is
 * acknowledged, the sync is not tried again, and what the spool holds can still be drained.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pino } from 'pino';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { failingFs } from '../test/support/failing-fs.js';
import { lineCodec, segmentName, Spool, type SpoolOptions } from './spool.js';
import type { StorageError } from './storage-errors.js';

function recordingLogger() {
  type Line = { level: number; msg: string; [k: string]: unknown };
  const lines: Line[] = [];
  const logger = pino({ level: 'debug' }, { write: (s: string) => lines.push(JSON.parse(s) as Line) });
  return { logger, lines };
}

describe('Spool after a failed fdatasync', () => {
  const dirs: string[] = [];
  const open: Array<Spool<string>> = [];
  afterEach(async () => {
    vi.useRealTimers();
    await Promise.all(open.splice(0).map((s) => s.close()));
    for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true });
  });

  async function openSpool(options: Partial<SpoolOptions>) {
    const dir = mkdtempSync(join(tmpdir(), 'watchpost-spool-fsync-'));
    dirs.push(dir);
    const fs = failingFs();
    const failures: StorageError[] = [];
    const { logger, lines } = recordingLogger();
    const spool = new Spool<string>({ dir, codec: lineCodec, logger, fs, onFail: (err) => failures.push(err) }, options);
    await spool.open();
    open.push(spool);
    const failLog = () => lines.filter((l) => l.msg.startsWith('spool: fdatasync failed'));
    return { dir, spool, fs, failures, failLog, segment: join(dir, segmentName(0)) };
  }

  async function reopened(dir: string): Promise<string[]> {
    const again = new Spool<string>({ dir, codec: lineCodec, logger: recordingLogger().logger });
    await again.open();
    open.push(again);
    return again.peek(1000);
  }

  for (const [path, options] of [
    ['on the event loop', {}],
    ['in the thread pool', { inlineWriteLimit: -1 }],
  ] as const) {
    it(`fsync: always, ${path}: refuses the group and every later append, never syncs again, and drains what it acknowledged`, async () => {
      const { dir, spool, fs, failures, failLog, segment } = await openSpool({ fsync: 'always', ...options });
      // With inlineWriteLimit -1 the first group is found slow: later ones sync in the thread pool.
      expect(await spool.append(['kept'])).toBe(true);

      fs.failing = true;
      const group = await Promise.allSettled([spool.append(['lost-1']), spool.append(['lost-2'])]);
      const expected = new RegExp(`^spool: fdatasync of ${segment} failed: EIO`);
      expect(group.map((g) => g.status)).toEqual(['rejected', 'rejected']);
      for (const g of group) expect(((g as PromiseRejectedResult).reason as Error).message).toMatch(expected);
      expect(failures).toHaveLength(1);
      expect(failures[0]!.message).toMatch(expected);
      expect(spool.failure()).toBe(failures[0]);
      expect(failLog()).toEqual([expect.objectContaining({ level: 50, file: segment, fsync: 'always' })]);

      // The disk answers again: the spool still refuses (a second fdatasync proves nothing) and does not sync.
      fs.failing = false;
      const syncs = fs.segmentSyncs;
      await expect(spool.append(['later'])).rejects.toBe(failures[0]);
      await expect(spool.append(['alert'], { force: true })).rejects.toBe(failures[0]);
      expect(fs.segmentSyncs).toBe(syncs);

      // What was acknowledged is still handed to the backend.
      expect(await spool.peek(10)).toEqual(['kept']);
      await spool.commit(1);
      expect(spool.size()).toBe(0);
      await spool.close();
      expect(fs.segmentSyncs).toBe(syncs);
      expect(failures).toHaveLength(1);

      // The refused group was written before its fdatasync failed: it is in the file and is sent
      // again after a restart (at least once; the devices, not acknowledged, send it too).
      expect(await reopened(dir)).toEqual(['lost-1', 'lost-2']);
    });
  }

  it('fsync: interval: the periodic fdatasync failing stops acknowledgements; it is not retried', async () => {
    vi.useFakeTimers({ toFake: ['setInterval', 'clearInterval'] });
    const { dir, spool, fs, failures, failLog, segment } = await openSpool({ fsync: 'interval', fsyncInterval: 1000 });
    expect(await spool.append(['a', 'b'])).toBe(true);
    await vi.advanceTimersByTimeAsync(1000);
    await vi.waitFor(() => expect(fs.segmentSyncs).toBe(1));
    expect(failures).toEqual([]);

    // Acknowledged after write(), before the next periodic fdatasync, which fails.
    expect(await spool.append(['c'])).toBe(true);
    fs.failing = true;
    await vi.advanceTimersByTimeAsync(1000);
    await vi.waitFor(() => expect(failures).toHaveLength(1));
    expect(failures[0]!.message).toMatch(new RegExp(`^spool: fdatasync of ${segment} failed: EIO`));
    expect(failLog()).toEqual([expect.objectContaining({ level: 50, file: segment, fsync: 'interval' })]);
    await expect(spool.append(['d'])).rejects.toBe(failures[0]);

    // No retry: the timer is gone, and the disk answering again changes nothing.
    fs.failing = false;
    await vi.advanceTimersByTimeAsync(10_000);
    expect(fs.segmentSyncs).toBe(2);
    await expect(spool.append(['e'])).rejects.toBe(failures[0]);

    // Everything acknowledged is still drained; 'c' is the one not known to be on disk.
    expect(await spool.peek(10)).toEqual(['a', 'b', 'c']);
    await spool.close();
    expect(fs.segmentSyncs).toBe(2);
    expect(await reopened(dir)).toEqual(['a', 'b', 'c']);
  });

  it('a failed write (a full disk) refuses only its group; the spool goes on', async () => {
    const { spool, fs, failures } = await openSpool({ fsync: 'always' });
    const writeSync = fs.writeSync.bind(fs);
    fs.writeSync = () => {
      throw Object.assign(new Error('ENOSPC: no space left on device, write'), { code: 'ENOSPC' });
    };
    await expect(spool.append(['full'])).rejects.toThrow(/^spool: write failed: ENOSPC/);
    fs.writeSync = writeSync;
    expect(await spool.append(['room again'])).toBe(true);
    expect(failures).toEqual([]);
    expect(spool.failure()).toBeUndefined();
    expect(await spool.peek(10)).toEqual(['room again']);
  });
});
