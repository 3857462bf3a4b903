/**
 * The spool's reader against a model FIFO: any interleaving of appends, peeks and commits, with
 * groups going straight to the read cache while the reader is caught up (and to disk only past
 * `writeThroughLimit`, or while a read runs), across segment rollovers and a restart, yields
 * exactly the uncommitted points, oldest first.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import fc from 'fast-check';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { silentLogger } from '../lib/logger.js';
import { lineCodec, Spool } from './spool.js';
import { params } from '../test/support/property.js';

type Op = { kind: 'append'; sizes: number[] } | { kind: 'peek'; n: number } | { kind: 'commit'; n: number } | { kind: 'peekWhileAppending'; n: number; sizes: number[] };

const sizes = fc.array(fc.integer({ min: 1, max: 6 }), { minLength: 1, maxLength: 4 });
const op: fc.Arbitrary<Op> = fc.oneof(
  fc.record({ kind: fc.constant('append' as const), sizes }),
  fc.record({ kind: fc.constant('peek' as const), n: fc.integer({ min: 1, max: 40 }) }),
  fc.record({ kind: fc.constant('commit' as const), n: fc.integer({ min: 0, max: 40 }) }),
  fc.record({ kind: fc.constant('peekWhileAppending' as const), n: fc.integer({ min: 1, max: 40 }), sizes }),
);

describe('Spool reading (property)', () => {
  let root: string;
  let runs = 0;
  beforeAll(() => {
    root = mkdtempSync(join(tmpdir(), 'watchpost-spool-read-'));
  });
  afterAll(() => rmSync(root, { recursive: true, force: true }));

  it('yields exactly the uncommitted points, oldest first, whether groups reach the cache directly or from disk', async () => {
    await fc.assert(
      fc.asyncProperty(fc.array(op, { minLength: 1, maxLength: 30 }), fc.integer({ min: 0, max: 12 }), async (ops, writeThroughLimit) => {
        const dir = join(root, `r${runs++}`);
        const options = { segmentBytes: 200, writeThroughLimit };
        let time = 1_000;
        const deps = { dir, codec: lineCodec, logger: silentLogger(), now: () => time };
        let spool = new Spool<string>(deps, options);
        await spool.open();
        const model: string[] = [];
        /** When each point in `model` was appended. */
        const times: number[] = [];
        /** Appends each group at its own time, so the oldest point's age tells which group it came from. */
        const appendAll = (groups: string[][]) =>
          groups.map((g) => {
            time += 1;
            for (const _ of g) times.push(time);
            return spool.append(g);
          });
        let next = 0;
        let peeked = 0;
        const batch = (groupSizes: number[]) => groupSizes.map((n) => Array.from({ length: n }, () => `p${next++}`));
        try {
          for (const o of ops) {
            if (o.kind === 'append') {
              // Appends made in one turn form one group.
              const groups = batch(o.sizes);
              const results = await Promise.all(appendAll(groups));
              expect(results.every(Boolean)).toBe(true);
              for (const g of groups) model.push(...g);
            } else if (o.kind === 'peekWhileAppending') {
              const groups = batch(o.sizes);
              const [got, ...results] = await Promise.all([spool.peek(o.n), ...appendAll(groups)]);
              expect(results.every(Boolean)).toBe(true);
              // A read that started before the appends may or may not see them, but always a prefix.
              expect(got).toEqual(model.concat(...groups).slice(0, got.length));
              expect(got.length).toBeGreaterThanOrEqual(Math.min(o.n, model.length));
              for (const g of groups) model.push(...g);
              peeked = got.length;
            } else if (o.kind === 'peek') {
              const got = await spool.peek(o.n);
              expect(got).toEqual(model.slice(0, o.n));
              peeked = got.length;
              expect(spool.stats().oldestAppendedAt).toBe(times[0]);
            } else {
              const n = Math.min(o.n, peeked);
              await spool.commit(n);
              model.splice(0, n);
              times.splice(0, n);
              peeked -= n;
            }
            expect(spool.size()).toBe(model.length);
            expect(spool.stats().oldestAppendedAt).toBe(times[0]);
          }
          expect(await spool.peek(1000)).toEqual(model);
          await spool.close();
          spool = new Spool<string>(deps, options);
          await spool.open();
          expect(await spool.peek(1000)).toEqual(model);
        } finally {
          await spool.close();
        }
      }),
      params(120),
    );
  });
});
