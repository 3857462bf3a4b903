import { appendFileSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, truncateSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { crc32 } from 'node:zlib';
import { pino } from 'pino';
import { afterEach, describe, expect, it } from 'vitest';
import { lineCodec, segmentName, Spool, SPOOL_CHECKPOINT_FILE, type SpoolOptions } from './spool.js';

/** A logger that keeps what it logs, to assert on warnings. */
function recordingLogger() {
  const lines: Array<{ level: number; msg: string; [k: string]: unknown }> = [];
  const logger = pino({ level: 'debug' }, { write: (s: string) => lines.push(JSON.parse(s)) });
  return { logger, lines };
}

const HEADER = 16; // length + crc + append time

describe('Spool', () => {
  const dirs: string[] = [];
  const open: Array<Spool<string>> = [];
  afterEach(async () => {
    await Promise.all(open.splice(0).map((s) => s.close()));
    for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true });
  });

  function tempDir(): string {
    const dir = mkdtempSync(join(tmpdir(), 'watchpost-spool-'));
    dirs.push(dir);
    return dir;
  }

  async function openSpool(dir: string, options: Partial<SpoolOptions> = {}, extra: { onCorrupt?: (n: number) => void; onSync?: (ms: number, n: number) => void; now?: () => number } = {}) {
    const { logger, lines } = recordingLogger();
    const spool = new Spool<string>({ dir, codec: lineCodec, logger, ...extra }, options);
    await spool.open();
    open.push(spool);
    return { spool, lines };
  }

  async function closeSpool(spool: Spool<string>) {
    await spool.close();
    open.splice(open.indexOf(spool), 1);
  }

  /** Everything in the spool, oldest first, without committing. */
  async function contents(spool: Spool<string>): Promise<string[]> {
    return spool.peek(1_000_000);
  }

  it('keeps appended points across a restart, oldest first, until they are committed', async () => {
    const dir = tempDir();
    const { spool } = await openSpool(dir);
    expect(await spool.append(['a', 'b'])).toBe(true);
    expect(await spool.append(['c'])).toBe(true);
    expect(spool.size()).toBe(3);
    expect(await spool.peek(2)).toEqual(['a', 'b']);
    await spool.commit(2);
    expect(spool.size()).toBe(1);
    await closeSpool(spool);

    const { spool: again } = await openSpool(dir);
    expect(again.size()).toBe(1);
    expect(await contents(again)).toEqual(['c']);
    expect(await again.append(['d'])).toBe(true);
    expect(await contents(again)).toEqual(['c', 'd']);
  });

  it('resends exactly the peeked but uncommitted batch after a restart', async () => {
    const dir = tempDir();
    const { spool } = await openSpool(dir);
    await spool.append(['1', '2', '3', '4', '5']);
    expect(await spool.peek(2)).toEqual(['1', '2']);
    await spool.commit(2);
    expect(await spool.peek(2)).toEqual(['3', '4']);
    // no commit: the process "dies" here
    await closeSpool(spool);
    const { spool: again } = await openSpool(dir);
    expect(await contents(again)).toEqual(['3', '4', '5']);
  });

  it('resolves appends in order, in one group commit per batch of concurrent appends', async () => {
    const syncs: number[] = [];
    const { spool } = await openSpool(tempDir(), {}, { onSync: (_ms, n) => syncs.push(n) });
    const order: number[] = [];
    const appends = Array.from({ length: 500 }, (_, i) => spool.append([`p${i}`]).then((ok) => (ok ? order.push(i) : undefined)));
    await Promise.all(appends);
    expect(order).toEqual(Array.from({ length: 500 }, (_, i) => i));
    expect(syncs).toEqual([500]);
    expect(await spool.append(['after'])).toBe(true);
    expect(syncs).toEqual([500, 1]);
  });

  it('refuses appends past max_bytes until points are committed; forced appends still go in', async () => {
    const line = 'x'.repeat(84); // 100 bytes with the record header
    const { spool } = await openSpool(tempDir(), { maxBytes: 1000, segmentBytes: 64 * 1024 });
    const items = Array.from({ length: 10 }, () => line);
    expect(await spool.append(items)).toBe(true);
    expect(spool.stats()).toMatchObject({ depth: 10, bytes: 1000, capacityBytes: 1000 });
    expect(await spool.append([line])).toBe(false);
    expect(spool.size()).toBe(10);
    expect(await spool.append(['alert'], { force: true })).toBe(true);
    expect(spool.size()).toBe(11);
    await spool.peek(2);
    await spool.commit(2);
    expect(await spool.append([line])).toBe(true);
    expect(spool.size()).toBe(10);
  });

  it('cuts a torn tail (a record cut short) and keeps every whole record before it', async () => {
    const dir = tempDir();
    const { spool } = await openSpool(dir);
    await spool.append(['first', 'second', 'third']);
    await closeSpool(spool);
    const seg = join(dir, segmentName(0));
    const whole = statSync(seg).size;
    expect(whole).toBe(3 * HEADER + 'first'.length + 'second'.length + 'third'.length);
    truncateSync(seg, whole - 3); // the last record loses its last 3 bytes

    const { spool: again, lines } = await openSpool(dir);
    expect(await contents(again)).toEqual(['first', 'second']);
    expect(statSync(seg).size).toBe(2 * HEADER + 'first'.length + 'second'.length);
    expect(lines.find((l) => l.msg.startsWith('spool: cut a torn tail'))).toMatchObject({ level: 40, bytes: HEADER + 'third'.length - 3 });
    // New records follow the cut and are read back normally.
    expect(await again.append(['fourth'])).toBe(true);
    await closeSpool(again);
    const { spool: third } = await openSpool(dir);
    expect(await contents(third)).toEqual(['first', 'second', 'fourth']);
  });

  it('cuts a tail whose checksum does not match, and garbage after the last record', async () => {
    const dir = tempDir();
    const { spool } = await openSpool(dir);
    await spool.append(['aaaa', 'bbbb', 'cccc']);
    await closeSpool(spool);
    const seg = join(dir, segmentName(0));
    const bytes = readFileSync(seg);
    bytes[bytes.length - 1]! ^= 0x01; // flip a bit of the last payload
    writeFileSync(seg, bytes);
    appendFileSync(seg, Buffer.from([0x05, 0, 0, 0, 1, 2, 3]));

    const { spool: again, lines } = await openSpool(dir);
    expect(await contents(again)).toEqual(['aaaa', 'bbbb']);
    expect(lines.some((l) => l.msg.startsWith('spool: cut a torn tail'))).toBe(true);
  });

  it('rolls over to new segments and deletes a segment once it is drained', async () => {
    const dir = tempDir();
    const { spool } = await openSpool(dir, { segmentBytes: 64 * 1024, maxBytes: 10 * 1024 * 1024 });
    const line = (i: number) => `p${i}-`.padEnd(1000, '.');
    for (let i = 0; i < 200; i++) expect(await spool.append([line(i)])).toBe(true);
    const segments = () =>
      readdirSync(dir)
        .filter((f) => f.endsWith('.seg'))
        .sort();
    // 200 records of 1016 bytes, 65 per 64 KiB segment (the 65th goes over): 4 segments.
    expect(segments()).toEqual([segmentName(0), segmentName(65), segmentName(130), segmentName(195)]);
    expect((await spool.peek(70)).map((l) => l.slice(0, 4))).toEqual(Array.from({ length: 70 }, (_, i) => line(i).slice(0, 4)));
    await spool.commit(70);
    // Deleted once the checkpoint past it is written, which commit does not wait for.
    await expect.poll(segments).toEqual([segmentName(65), segmentName(130), segmentName(195)]);
    await closeSpool(spool);

    const { spool: again } = await openSpool(dir, { segmentBytes: 64 * 1024, maxBytes: 10 * 1024 * 1024 });
    expect(again.size()).toBe(130);
    const rest = await contents(again);
    expect(rest.map((l) => l.split('-')[0])).toEqual(Array.from({ length: 130 }, (_, i) => `p${i + 70}`));
  });

  it('skips the rest of a closed segment whose records are corrupt, and counts exactly what is lost', async () => {
    const dir = tempDir();
    const lost: number[] = [];
    const options = { segmentBytes: 64 * 1024, maxBytes: 10 * 1024 * 1024 };
    const { spool } = await openSpool(dir, options);
    const line = (i: number) => `p${i}-`.padEnd(1000, '.');
    for (let i = 0; i < 100; i++) await spool.append([line(i)]);
    await closeSpool(spool);
    // Damage record 10 of the first segment (65 records).
    const seg = join(dir, segmentName(0));
    const bytes = readFileSync(seg);
    bytes[10 * 1016 + 500]! ^= 0xff;
    writeFileSync(seg, bytes);

    const { spool: again, lines } = await openSpool(dir, options, { onCorrupt: (n) => lost.push(n) });
    const got = await contents(again);
    expect(got.map((l) => l.split('-')[0])).toEqual([...Array.from({ length: 10 }, (_, i) => `p${i}`), ...Array.from({ length: 35 }, (_, i) => `p${i + 65}`)]);
    expect(lost).toEqual([55]);
    expect(lines.find((l) => l.msg.startsWith('spool: corrupt record skipped'))).toMatchObject({ level: 50, lost: 55 });
    await again.commit(got.length);
    expect(again.size()).toBe(0);
  });

  it('sends the head segment again when the checkpoint is unreadable', async () => {
    const dir = tempDir();
    const { spool } = await openSpool(dir);
    await spool.append(['a', 'b', 'c']);
    await spool.peek(2);
    await spool.commit(2);
    await closeSpool(spool);
    writeFileSync(join(dir, SPOOL_CHECKPOINT_FILE), Buffer.alloc(64, 0xab));
    const { spool: again } = await openSpool(dir);
    expect(await contents(again)).toEqual(['a', 'b', 'c']);
  });

  it('reports the age of the oldest point and its bytes', async () => {
    let now = 1_000_000;
    const { spool } = await openSpool(tempDir(), {}, { now: () => now });
    expect(spool.stats()).toEqual({ depth: 0, bytes: 0, capacityBytes: 2 * 1024 ** 3, oldestAppendedAt: undefined });
    await spool.append(['a']);
    now += 5000;
    await spool.append(['bb']);
    expect(spool.stats()).toEqual({ depth: 2, bytes: 2 * HEADER + 3, capacityBytes: 2 * 1024 ** 3, oldestAppendedAt: 1_000_000 });
    await spool.peek(1);
    await spool.commit(1);
    expect(spool.stats().oldestAppendedAt).toBe(1_005_000);
  });

  it('writes records in the documented layout, with a CRC-32 of the length field and body, and reads such records back', async () => {
    const dir = tempDir();
    const { spool } = await openSpool(dir, {}, { now: () => 1_764_300_000_123 });
    const payload = 'load,asset_id=坂田-1 value=1.5 1764300000000';
    expect(await spool.append([payload])).toBe(true);
    await closeSpool(spool);
    // u32 LE body length | u32 LE CRC-32 of (length bytes + body) | body = f64 LE append time | payload
    const body = Buffer.concat([Buffer.alloc(8), Buffer.from(payload, 'utf8')]);
    body.writeDoubleLE(1_764_300_000_123, 0);
    const length = Buffer.alloc(4);
    length.writeUInt32LE(body.length, 0);
    const crc = Buffer.alloc(4);
    crc.writeUInt32LE(crc32(body, crc32(length)), 0);
    const record = Buffer.concat([length, crc, body]);
    expect(readFileSync(join(dir, segmentName(0)))).toEqual(record);

    // A record made by hand in that layout (as an older build wrote it) is read back.
    appendFileSync(join(dir, segmentName(0)), record);
    const { spool: again } = await openSpool(dir);
    expect(await contents(again)).toEqual([payload, payload]);
  });

  it('hands a caught-up reader the groups it writes without reading them back, up to writeThroughLimit records', async () => {
    // The records on disk are overwritten behind the spool's back: what peek returns shows where it read from.
    const scribble = (dir: string, from: string, to: string) => {
      const path = join(dir, segmentName(0));
      writeFileSync(path, readFileSync(path, 'latin1').replace(from, to), 'latin1');
    };
    const dir = tempDir();
    const { spool } = await openSpool(dir, { writeThroughLimit: 3 });
    expect(await contents(spool)).toEqual([]);
    expect(await Promise.all([spool.append(['aaa', 'bbb']), spool.append(['ccc'])])).toEqual([true, true]);
    // Three records fit the cache; the fourth would exceed it and stays on disk only.
    expect(await spool.append(['ddd'])).toBe(true);
    scribble(dir, 'bbb', 'xxx');
    scribble(dir, 'ddd', 'yyy');
    const onCorrupt = await contents(spool);
    expect(onCorrupt.slice(0, 3)).toEqual(['aaa', 'bbb', 'ccc']);
    // Read from disk: the checksum no longer matches, so it is not handed out as data.
    expect(onCorrupt).not.toContain('yyy');
    expect(onCorrupt).not.toContain('ddd');
  });

  it('writes groups on the event loop while the disk is fast, moves to the thread pool for a while when it is slow, and keeps every point either way', async () => {
    const dir = tempDir();
    let now = 1_000_000;
    // A limit no group can meet: the first group is written inline and found slow.
    const { spool, lines } = await openSpool(dir, { inlineWriteLimit: -1, threadPoolPeriod: 60_000 }, { now: () => now });
    const slow = () => lines.filter((l) => l.msg.startsWith('spool: groups take too long'));
    expect(await spool.append(['inline-1'])).toBe(true);
    expect(slow()).toHaveLength(1);
    expect(slow()[0]).toMatchObject({ limit_ms: -1, for_ms: 60_000 });
    // Within the period: thread pool, so no new measurement and no new warning.
    expect(await Promise.all([spool.append(['pool-1']), spool.append(['pool-2'])])).toEqual([true, true]);
    expect(slow()).toHaveLength(1);
    // After it: inline again (and, with this limit, slow again).
    now += 60_000;
    expect(await spool.append(['inline-2'])).toBe(true);
    expect(slow()).toHaveLength(2);
    await closeSpool(spool);

    const { spool: again, lines: quiet } = await openSpool(dir, { inlineWriteLimit: 10_000 }, { now: () => now });
    expect(await contents(again)).toEqual(['inline-1', 'pool-1', 'pool-2', 'inline-2']);
    expect(await again.append(['fast'])).toBe(true);
    expect(quiet.filter((l) => l.msg.startsWith('spool: groups take too long'))).toEqual([]);
    expect(await contents(again)).toEqual(['inline-1', 'pool-1', 'pool-2', 'inline-2', 'fast']);
  });

  it('with fsync: interval, appends resolve and survive a close', async () => {
    const dir = tempDir();
    const { spool } = await openSpool(dir, { fsync: 'interval', fsyncInterval: 50 });
    expect(await spool.append(['x', 'y'])).toBe(true);
    await closeSpool(spool);
    const { spool: again } = await openSpool(dir);
    expect(await contents(again)).toEqual(['x', 'y']);
  });

  it('refuses appends after close instead of losing them', async () => {
    const { spool } = await openSpool(tempDir());
    await closeSpool(spool);
    expect(await spool.append(['late'])).toBe(false);
  });

  it('ignores unknown files and refuses a point larger than a record may be', async () => {
    const dir = tempDir();
    writeFileSync(join(dir, 'README'), 'hello');
    const { spool, lines } = await openSpool(dir);
    expect(lines.some((l) => l.msg === 'spool: ignoring a file that is not a segment' && l.file === 'README')).toBe(true);
    await expect(spool.append(['x'.repeat(17 * 1024 * 1024)])).rejects.toThrow(/exceeds the record limit/);
    expect(spool.size()).toBe(0);
  });
});
