import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { silentLogger } from '../lib/logger.js';
import { MetricsRegistry } from '../lib/metrics.js';
import { BatchWriter, type BatchSink, type BatchWriterOptions, type Quarantine } from './batch-writer.js';
import { MemoryPointQueue } from './point-queue.js';
import { STORAGE_ERROR_CODES, StorageError, httpStorageError } from './storage-errors.js';

type Outcome = 'ok' | StorageError | Promise<void>;

/** A sink that records every call (with the fake clock's time) and answers from a script. */
function scriptedSink(script: Outcome[] = []) {
  const calls: Array<{ at: number; batch: string[] }> = [];
  const sink: BatchSink<string> = {
    async write(batch) {
      calls.push({ at: Date.now(), batch: [...batch] });
      const outcome = script.shift() ?? 'ok';
      if (outcome instanceof StorageError) throw outcome;
      if (outcome !== 'ok') await outcome;
    },
  };
  return { sink, calls };
}

const networkDown = () => new StorageError(STORAGE_ERROR_CODES.NETWORK, 'cannot reach InfluxDB: ECONNREFUSED');

describe('BatchWriter', () => {
  let metrics: MetricsRegistry;
  const writers: Array<BatchWriter<string>> = [];

  beforeEach(() => {
    vi.useFakeTimers({ now: 0 });
    metrics = new MetricsRegistry();
  });
  afterEach(async () => {
    await Promise.all(writers.splice(0).map((w) => w.stop()));
    vi.useRealTimers();
  });

  function make(sink: BatchSink<string>, options: Partial<BatchWriterOptions> = {}, capacity = 100) {
    const writer = new BatchWriter<string>(
      { sink, queue: new MemoryPointQueue<string>(capacity), logger: silentLogger(), metrics, random: () => 0.5 },
      { batchSize: 3, flushInterval: 1000, timeout: 500, minRetryDelay: 100, maxRetryDelay: 1000, ...options },
    );
    writers.push(writer);
    void writer.start();
    return writer;
  }

  const counter = (name: string, labels?: Record<string, string>) => metrics.counter(`watchpost_storage_${name}_total`, '').get(labels);

  it('sends a full batch at once and the rest on the flush interval, oldest first', async () => {
    const { sink, calls } = scriptedSink();
    const writer = make(sink);
    void writer.append(['a', 'b']);
    await vi.advanceTimersByTimeAsync(10);
    expect(calls).toEqual([]);
    void writer.append(['c', 'd']);
    await vi.advanceTimersByTimeAsync(0);
    expect(calls).toEqual([{ at: 10, batch: ['a', 'b', 'c'] }]);
    await vi.advanceTimersByTimeAsync(1000);
    expect(calls).toEqual([
      { at: 10, batch: ['a', 'b', 'c'] },
      { at: 1000, batch: ['d'] },
    ]);
    expect(counter('written')).toBe(4);
    expect(await metrics.render()).toContain('watchpost_spool_depth 0\n');
  });

  it('on the flush interval sends what was pending then; points appended while it is sent wait for a full batch or the next interval', async () => {
    let release!: () => void;
    const slow = new Promise<void>((resolve) => (release = resolve));
    const { sink, calls } = scriptedSink([slow]);
    const writer = make(sink, { batchSize: 10, concurrency: 2 });
    void writer.append(['a', 'b']);
    await vi.advanceTimersByTimeAsync(1000);
    expect(calls.map((c) => c.batch)).toEqual([['a', 'b']]);
    // A steady trickle while the flush is in flight: not a request per handful of points.
    void writer.append(['c']);
    await vi.advanceTimersByTimeAsync(10);
    void writer.append(['d']);
    release();
    await vi.advanceTimersByTimeAsync(10);
    expect(calls.map((c) => c.batch)).toEqual([['a', 'b']]);
    await vi.advanceTimersByTimeAsync(1000);
    expect(calls.map((c) => c.batch)).toEqual([
      ['a', 'b'],
      ['c', 'd'],
    ]);
    expect(counter('written')).toBe(4);
  });
  it('keeps `concurrency` requests in flight and commits them oldest first', async () => {
    let releaseFirst!: () => void;
    const first = new Promise<void>((resolve) => (releaseFirst = resolve));
    const { sink, calls } = scriptedSink([first, 'ok', 'ok']);
    const writer = make(sink, { concurrency: 2 });
    void writer.append(['a', 'b', 'c', 'd', 'e', 'f', 'g', 'h', 'i']);
    await vi.advanceTimersByTimeAsync(10);
    // Two in flight; the second is confirmed but cannot be committed ahead of the first.
    expect(calls.map((c) => c.batch)).toEqual([
      ['a', 'b', 'c'],
      ['d', 'e', 'f'],
    ]);
    expect(await metrics.render()).toContain('watchpost_spool_depth 9\n');
    releaseFirst();
    await vi.advanceTimersByTimeAsync(10);
    expect(calls.map((c) => c.batch)).toEqual([
      ['a', 'b', 'c'],
      ['d', 'e', 'f'],
      ['g', 'h', 'i'],
    ]);
    expect(counter('written')).toBe(9);
    expect(await metrics.render()).toContain('watchpost_spool_depth 0\n');
  });

  it('with requests in flight, a failed oldest batch sends the later ones again after the backoff', async () => {
    let failFirst!: (err: StorageError) => void;
    const first = new Promise<void>((_, reject) => (failFirst = reject));
    first.catch(() => undefined);
    const { sink, calls } = scriptedSink([first, 'ok']);
    const writer = make(sink, { concurrency: 2 });
    void writer.append(['a', 'b', 'c', 'd', 'e', 'f']);
    await vi.advanceTimersByTimeAsync(10);
    failFirst(networkDown());
    await vi.advanceTimersByTimeAsync(10);
    expect(writer.status()).toMatchObject({ state: 'degraded', reason: 'unreachable', pending: 6 });
    await vi.advanceTimersByTimeAsync(100);
    // Nothing was committed out of order: both batches go again, in order.
    expect(calls.map((c) => c.batch)).toEqual([
      ['a', 'b', 'c'],
      ['d', 'e', 'f'],
      ['a', 'b', 'c'],
      ['d', 'e', 'f'],
    ]);
    expect(writer.status()).toMatchObject({ state: 'ok', pending: 0 });
    // The discarded confirmation is not counted: each point counts once, when it is committed.
    expect(counter('written')).toBe(6);
  });

  it('has one request in flight at a time', async () => {
    let release!: () => void;
    const slow = new Promise<void>((resolve) => (release = resolve));
    const { sink, calls } = scriptedSink([slow]);
    const writer = make(sink);
    void writer.append(['a', 'b', 'c']);
    void writer.append(['d', 'e', 'f']);
    void writer.append(['g']);
    await vi.advanceTimersByTimeAsync(5000);
    expect(calls.map((c) => c.batch)).toEqual([['a', 'b', 'c']]);
    expect(await metrics.render()).toContain('watchpost_spool_depth 7\n');
    release();
    await vi.advanceTimersByTimeAsync(0);
    expect(calls.map((c) => c.batch)).toEqual([['a', 'b', 'c'], ['d', 'e', 'f'], ['g']]);
  });

  it('retries with exponential backoff and jitter, capped, resending the oldest batch first', async () => {
    const { sink, calls } = scriptedSink([networkDown(), networkDown(), networkDown(), networkDown(), networkDown()]);
    const writer = make(sink, { minRetryDelay: 100, maxRetryDelay: 600 });
    void writer.append(['a']);
    await vi.advanceTimersByTimeAsync(1000);
    expect(writer.status()).toEqual({
      state: 'degraded',
      reason: 'unreachable',
      pending: 1,
      accepting: true,
      failingSince: 1000,
      lastError: 'cannot reach InfluxDB: ECONNREFUSED',
      spool: { bytes: 1, capacityBytes: 100, usagePercent: 1, oldestAgeSeconds: 1 },
    });
    void writer.append(['b']);
    await vi.advanceTimersByTimeAsync(5000);
    // Steps 100, 200, 400, 600 (cap); equal jitter with random 0.5 waits 3/4 of each, the cap at most.
    expect(calls.map((c) => c.at)).toEqual([1000, 1075, 1225, 1525, 1975, 2425]);
    expect(calls.map((c) => c.batch.join(''))).toEqual(['a', 'ab', 'ab', 'ab', 'ab', 'ab']);
    expect(counter('retries')).toBe(5);
    expect(counter('written')).toBe(2);
    expect(writer.status()).toEqual({ state: 'ok', pending: 0, accepting: true, spool: { bytes: 0, capacityBytes: 100, usagePercent: 0, oldestAgeSeconds: 0 } });
  });

  it('sends a backlog in full batches back to back, degraded (draining) until less than a batch is left', async () => {
    let release!: () => void;
    const held = new Promise<void>((resolve) => (release = resolve));
    const { sink, calls } = scriptedSink([networkDown(), 'ok', held]);
    const writer = make(sink, { minRetryDelay: 100, maxRetryDelay: 100 });
    for (const p of ['a', 'b', 'c', 'd', 'e', 'f', 'g']) void writer.append([p]);
    await vi.advanceTimersByTimeAsync(0);
    expect(calls.map((c) => c.batch.join(''))).toEqual(['abc']);
    expect(writer.status()).toMatchObject({ state: 'degraded', reason: 'unreachable', pending: 7, failingSince: 0 });
    await vi.advanceTimersByTimeAsync(75);
    // The retry went through; the next batch followed at once and is in flight.
    expect(calls.map((c) => [c.at, c.batch.join('')])).toEqual([
      [0, 'abc'],
      [75, 'abc'],
      [75, 'def'],
    ]);
    expect(writer.status()).toMatchObject({ state: 'degraded', reason: 'draining', pending: 4 });
    expect(writer.status().failingSince).toBeUndefined();
    release();
    await vi.advanceTimersByTimeAsync(0);
    // No flush interval waited for: the rest went at once, and the writer is ok again.
    expect(calls.map((c) => [c.at, c.batch.join('')])).toEqual([
      [0, 'abc'],
      [75, 'abc'],
      [75, 'def'],
      [75, 'g'],
    ]);
    expect(writer.status()).toMatchObject({ state: 'ok', pending: 0 });
    expect(writer.status().reason).toBeUndefined();
  });

  it('waits as long as Retry-After asks, within the cap', async () => {
    const { sink, calls } = scriptedSink([httpStorageError(429, 'slow down', '0.5'), httpStorageError(503, 'busy', '120')]);
    const writer = make(sink, { minRetryDelay: 100, maxRetryDelay: 2000 });
    void writer.append(['a']);
    await vi.advanceTimersByTimeAsync(10_000);
    expect(calls.map((c) => c.at)).toEqual([1000, 1500, 3500]);
  });

  it('without a quarantine, drops the points refused for their content, counts them, and goes on with the next batch', async () => {
    const calls: string[][] = [];
    const sink: BatchSink<string> = {
      async write(batch) {
        calls.push([...batch]);
        if (batch.includes('b')) throw httpStorageError(400, "unable to parse 'b': bad timestamp");
      },
    };
    const writer = make(sink);
    void writer.append(['a', 'b', 'c', 'd']);
    await vi.advanceTimersByTimeAsync(1000);
    // Halves until b is alone; a and c are written, then the next batch.
    expect(calls).toEqual([['a', 'b', 'c'], ['a', 'b'], ['c'], ['a'], ['b'], ['d']]);
    expect(counter('failed', { reason: 'parse_error' })).toBe(1);
    expect(counter('written')).toBe(3);
    expect(counter('retries')).toBe(0);
  });

  describe('a batch refused for its content', () => {
    /** A backend that refuses the points starting with "x" (a field type conflict), InfluxDB 1.x style: it writes the rest. */
    function conflictingSink(options: { split?: boolean } = {}) {
      const calls: string[][] = [];
      const sink: BatchSink<string> = {
        async write(batch) {
          calls.push([...batch]);
          const bad = batch.filter((p) => p.startsWith('x')).length;
          if (bad > 0) throw httpStorageError(400, `partial write: field type conflict: input field "value" on measurement "x" is type string, already exists as type float dropped=${bad}`);
        },
        ...(options.split ? { split: (batch) => [batch.filter((p) => !p.startsWith('x')), batch.filter((p) => p.startsWith('x'))] } : {}),
      };
      return { sink, calls };
    }

    function quarantine() {
      const added: Array<{ points: string[]; reason: string; error: string }> = [];
      let failing: Error | undefined;
      const q: Quarantine<string> = {
        location: '/data/quarantine.jsonl',
        async add(points, reason, error) {
          if (failing) throw failing;
          added.push({ points: [...points], reason, error });
        },
      };
      return { q, added, fail: (err: Error | undefined) => (failing = err) };
    }

    function makeWith(sink: BatchSink<string>, q: Quarantine<string>, options: Partial<BatchWriterOptions> = {}) {
      const writer = new BatchWriter<string>(
        { sink, queue: new MemoryPointQueue<string>(100), logger: silentLogger(), metrics, random: () => 0.5, quarantine: q },
        { batchSize: 8, flushInterval: 1000, timeout: 500, minRetryDelay: 100, maxRetryDelay: 1000, ...options },
      );
      writers.push(writer);
      void writer.start();
      return writer;
    }

    it('is split until only the refused points are left; they go to the quarantine, the rest is written', async () => {
      const { sink, calls } = conflictingSink();
      const { q, added } = quarantine();
      const writer = makeWith(sink, q);
      void writer.append(['a', 'x1', 'b', 'c', 'd', 'e', 'f', 'g']);
      await vi.advanceTimersByTimeAsync(0);
      expect(calls).toEqual([
        ['a', 'x1', 'b', 'c', 'd', 'e', 'f', 'g'],
        ['a', 'x1', 'b', 'c'],
        ['d', 'e', 'f', 'g'],
        ['a', 'x1'],
        ['b', 'c'],
        // [a, x1] answered dropped=1 of 2: split once more; x1 alone is refused for good.
        ['a'],
        ['x1'],
      ]);
      expect(added).toEqual([
        {
          points: ['x1'],
          reason: 'field_type_conflict',
          error: 'HTTP 400: partial write: field type conflict: input field "value" on measurement "x" is type string, already exists as type float dropped=1',
        },
      ]);
      expect(counter('written')).toBe(7);
      expect(metrics.counter('watchpost_storage_quarantined_total', '').get({ reason: 'field_type_conflict' })).toBe(1);
      expect(counter('failed', { reason: 'field_type_conflict' })).toBe(0);
      expect(writer.status()).toMatchObject({ state: 'ok', pending: 0 });
      expect(writer.status().lastError).toMatch(/field type conflict/);
    });

    it("uses the sink's split, and quarantines a part the backend dropped entirely without splitting it further", async () => {
      const { sink, calls } = conflictingSink({ split: true });
      const { q, added } = quarantine();
      const writer = makeWith(sink, q);
      void writer.append(['a', 'x1', 'b', 'x2', 'x3', 'c']);
      await writer.flush();
      expect(calls).toEqual([
        ['a', 'x1', 'b', 'x2', 'x3', 'c'],
        ['a', 'b', 'c'],
        ['x1', 'x2', 'x3'],
      ]);
      expect(added.map((a) => [a.points, a.reason])).toEqual([[['x1', 'x2', 'x3'], 'field_type_conflict']]);
      expect(counter('written')).toBe(3);
      expect(writer.status()).toMatchObject({ state: 'ok', pending: 0 });
    });

    it('stays in the queue, retried, while the quarantine cannot be written', async () => {
      const { sink } = conflictingSink({ split: true });
      const { q, added, fail } = quarantine();
      fail(new Error('ENOSPC: no space left on device'));
      const writer = makeWith(sink, q);
      void writer.append(['a', 'x1']);
      await writer.flush();
      expect(writer.status()).toMatchObject({
        state: 'degraded',
        reason: 'quarantine_failed',
        pending: 2,
        lastError: 'cannot keep refused points in the quarantine: ENOSPC: no space left on device',
      });
      fail(undefined);
      await vi.advanceTimersByTimeAsync(100);
      expect(added.map((a) => a.points)).toEqual([['x1']]);
      expect(writer.status()).toMatchObject({ state: 'ok', pending: 0 });
    });

    it('is retried whole when a part fails for another reason (the backend went away meanwhile)', async () => {
      const script: Outcome[] = [httpStorageError(400, "unable to parse 'x': invalid field format"), networkDown()];
      const { sink, calls } = scriptedSink(script);
      const { q, added } = quarantine();
      const writer = makeWith(sink, q);
      void writer.append(['a', 'b']);
      await writer.flush();
      expect(writer.status()).toMatchObject({ state: 'degraded', reason: 'unreachable', pending: 2 });
      await vi.advanceTimersByTimeAsync(100);
      expect(calls.map((c) => c.batch)).toEqual([['a', 'b'], ['a'], ['a', 'b']]);
      expect(added).toEqual([]);
      expect(writer.status()).toMatchObject({ state: 'ok', pending: 0 });
    });
  });

  for (const [status, message, reason] of [
    [401, 'authorization failed', 'unauthorized'],
    [403, '"writer" user is not authorized to write to database "telemetry"', 'forbidden'],
    [404, 'database not found: "telemetry"', 'database_not_found'],
    [404, 'bucket "telemetry" not found', 'bucket_not_found'],
  ] as const) {
    it(`keeps the batch and retries it after HTTP ${status} (${reason}), with the reason on status`, async () => {
      const { sink, calls } = scriptedSink([httpStorageError(status, message), httpStorageError(status, message)]);
      const writer = make(sink);
      void writer.append(['a', 'b']);
      await vi.advanceTimersByTimeAsync(1000);
      expect(writer.status()).toMatchObject({ state: 'degraded', reason, pending: 2, failingSince: 1000, lastError: `HTTP ${status}: ${message}` });
      await vi.advanceTimersByTimeAsync(1000);
      expect(calls.map((c) => c.batch)).toEqual([
        ['a', 'b'],
        ['a', 'b'],
        ['a', 'b'],
      ]);
      expect(writer.status()).toMatchObject({ state: 'ok', pending: 0 });
      expect(counter('written')).toBe(2);
      expect(counter('retries')).toBe(2);
    });
  }

  it('refuses an append that does not fit, all or nothing', async () => {
    const { sink } = scriptedSink([networkDown()]);
    const writer = make(sink, { batchSize: 10 }, 4);
    expect(await writer.append(['a', 'b', 'c'])).toBe(true);
    expect(await writer.append(['d', 'e'])).toBe(false);
    expect(writer.status()).toMatchObject({ pending: 3, accepting: false });
    expect(await writer.append(['d'])).toBe(true);
    await vi.advanceTimersByTimeAsync(1000);
    expect(writer.status()).toMatchObject({ state: 'degraded', pending: 4 });
    await vi.advanceTimersByTimeAsync(1000);
    expect(writer.status()).toMatchObject({ state: 'ok', pending: 0, accepting: true });
    expect(await writer.append(['e'], { force: true })).toBe(true);
  });

  it('flushes pending points on stop and refuses appends afterwards', async () => {
    const { sink, calls } = scriptedSink();
    const writer = make(sink);
    void writer.append(['a', 'b']);
    await writer.stop();
    expect(calls.map((c) => c.batch)).toEqual([['a', 'b']]);
    expect(await writer.append(['c'])).toBe(false);
    expect(vi.getTimerCount()).toBe(0);
  });

  it('gives up flushing at stop after the first failure, leaving the points pending', async () => {
    const { sink, calls } = scriptedSink([networkDown()]);
    const writer = make(sink);
    void writer.append(['a']);
    await writer.stop();
    expect(calls).toHaveLength(1);
    expect(writer.status()).toMatchObject({ pending: 1, accepting: false });
    expect(vi.getTimerCount()).toBe(0);
  });
});

describe('BatchWriter.stop with a hanging backend', () => {
  it('returns within the timeout: the request is aborted', async () => {
    const metrics = new MetricsRegistry();
    const sink: BatchSink<string> = {
      write: (_batch, signal) => new Promise((_resolve, reject) => signal.addEventListener('abort', () => reject(new StorageError(STORAGE_ERROR_CODES.TIMEOUT, 'request timed out')))),
    };
    const writer = new BatchWriter<string>({ sink, queue: new MemoryPointQueue<string>(), logger: silentLogger(), metrics }, { timeout: 200, flushInterval: 60_000 });
    void writer.start();
    void writer.append(['a']);
    const started = Date.now();
    await writer.stop();
    expect(Date.now() - started).toBeLessThan(1000);
    expect(writer.status()).toMatchObject({ pending: 1, lastError: 'request timed out' });
  });
});
