/**
 * Rule state checkpoints on a real PostgreSQL: exact through JSONB, a new owner continues from
 * them, refused rows, and the lease fence that keeps an old owner from writing.
 */
import { Writable } from 'node:stream';
import pg from 'pg';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import type { Reading } from '../ingest/reading.js';
import { createLogger, silentLogger } from '../lib/logger.js';
import { ruleSchema } from '../rules/config.js';
import { RuleRunner } from '../rules/rule-runner.js';
import type { AssetSnapshot } from '../rules/state-codec.js';
import type { RuleEvent } from '../rules/types.js';
import { postgresAvailable, startPostgres, type PgServer } from '../test/support/postgres.js';
import { LeaseManager } from './leases.js';
import { CheckpointFencedError, RuleCheckpoints } from './rule-checkpoints.js';

const T0 = Date.parse('2025-06-01T00:00:00+08:00');
const RULES = [
  { id: 'rain-1h', match: { metric: 'rainfall' }, signal: { sum: '1h' }, levels: { orange: { above: 30 }, yellow: { above: 20 } }, for: '10m' },
  { id: 'disp-rate', match: { metric: 'displacement' }, signal: { rate: '1d', window: '6h' }, levels: { yellow: { above: 5 } }, hysteresis: 0.5 },
  { id: 'silent', stale: '30m', level: 'yellow' },
  {
    id: 'landslide',
    match: { asset_type: 'slope' },
    all: [
      { metric: 'rainfall', signal: { sum: '1h' }, above: 25 },
      { metric: 'displacement', above: 1 },
    ],
    level: 'red',
    for: '5m',
  },
];
const runner = () => new RuleRunner(RULES.map((r) => ruleSchema.parse(r)));
const SLOPES = ['lg-slope-001', 'lg-slope-002', 'lg-slope-003'];
const IDS = new Set(SLOPES);

/** Rain tips of 0.1 mm and a creeping displacement on three slopes, one reading a minute each. */
function readings(fromMin: number, toMin: number): Reading[] {
  const out: Reading[] = [];
  for (let m = fromMin; m < toMin; m++) {
    SLOPES.forEach((assetId, i) => {
      const base = { assetId, assetType: 'slope', street: '坂田街道', ts: T0 + m * 60_000 + i };
      out.push({ ...base, sensorId: 'rain-01', metric: 'rainfall', value: m % 3 === 0 ? 0.1 * (i + 1) * 10 : 0.1 });
      out.push({ ...base, sensorId: 'gnss-01', metric: 'displacement', value: Math.round((0.004 * m * m * (i + 1)) / 3) / 100 });
    });
  }
  return out;
}

const judge = (r: RuleRunner, rs: Reading[]): RuleEvent[] => rs.flatMap((x) => r.process([x], x.ts));

describe.skipIf(!postgresAvailable)('rule checkpoints in PostgreSQL', () => {
  let server: PgServer;
  let databases = 0;
  const closers: (() => Promise<void>)[] = [];

  beforeAll(async () => {
    server = await startPostgres();
  }, 120_000);

  afterAll(async () => {
    await server?.destroy();
  });

  afterEach(async () => {
    for (const close of closers.splice(0).reverse()) await close();
  });

  async function database(): Promise<{ url: string; pool: pg.Pool }> {
    const url = await server.createDatabase(`checkpoints_${++databases}`);
    const pool = new pg.Pool({ connectionString: url, max: 3 });
    closers.push(() => pool.end());
    return { url, pool };
  }

  it('a snapshot comes back exactly, and a new owner continues from it as one runner would', async () => {
    const { pool } = await database();
    const store = new RuleCheckpoints({ pool });
    await store.ensureSchema();
    await store.ensureSchema(); // idempotent

    const one = runner();
    const expected = judge(one, readings(0, 240));
    expect(expected.map((e) => e.ruleId)).toEqual(expect.arrayContaining(['rain-1h', 'disp-rate', 'landslide']));

    const before = runner();
    const first = judge(before, readings(0, 120));
    const snapshots = before.exportAssets(IDS);
    await store.save(3, snapshots);
    const loaded = await store.load(3, [...SLOPES, 'lg-none']);
    expect(loaded.sort((a, b) => a.assetId.localeCompare(b.assetId))).toEqual(snapshots);
    expect((await store.loadPartition(3)).map((s) => s.assetId)).toEqual(SLOPES);
    expect(await store.loadPartition(4)).toEqual([]);

    const after = runner();
    after.importAssets(loaded);
    expect([...first, ...judge(after, readings(120, 240))]).toEqual(expected);
    expect(after.exportAssets(IDS)).toEqual(one.exportAssets(IDS));
  }, 60_000);

  it('save writes a batch in one statement (the last snapshot of an asset wins, an empty one deletes its row); deleteAssets removes rows', async () => {
    const { pool } = await database();
    const store = new RuleCheckpoints({ pool });
    await store.ensureSchema();
    const r = runner();
    judge(r, readings(0, 10));
    const [a1, a2] = r.exportAssets(new Set(SLOPES.slice(0, 2))) as [AssetSnapshot, AssetSnapshot];
    const empty = runner().exportAssets(new Set([SLOPES[0]!]))[0]!;
    await store.save(1, [a1, a2]);
    const rowsOf = async () =>
      (
        await pool.query<{ asset_id: string; partition: number; alerts: number }>(
          `SELECT asset_id, partition, jsonb_array_length(state->'alerts') AS alerts FROM rule_checkpoints ORDER BY asset_id`,
        )
      ).rows;
    expect(await rowsOf()).toEqual([
      { asset_id: SLOPES[0], partition: 1, alerts: 2 },
      { asset_id: SLOPES[1], partition: 1, alerts: 2 },
    ]);
    await store.save(2, [a1, a2, empty]); // the last of an asset wins: lg-slope-001 has no state any more
    expect(await rowsOf()).toEqual([{ asset_id: SLOPES[1], partition: 2, alerts: 2 }]);
    await store.save(1, [a1]);
    await store.deleteAssets([SLOPES[0]!]);
    expect((await store.load(0, SLOPES)).map((s) => s.assetId)).toEqual([SLOPES[1]]);
  }, 60_000);

  it('a row that does not decode is left out with a warning: that asset starts afresh', async () => {
    const { pool } = await database();
    const lines: string[] = [];
    const logger = createLogger({
      level: 'warn',
      destination: new Writable({
        write(chunk: Buffer, _enc, done) {
          lines.push(chunk.toString());
          done();
        },
      }),
    });
    const store = new RuleCheckpoints({ pool, logger });
    await store.ensureSchema();
    const r = runner();
    judge(r, readings(0, 5));
    const [good, other] = r.exportAssets(new Set(SLOPES.slice(0, 2))) as [AssetSnapshot, AssetSnapshot];
    await store.save(0, [good, other]);
    await pool.query(`UPDATE rule_checkpoints SET state = jsonb_set(state, '{v}', '2') WHERE asset_id = $1`, [SLOPES[1]]);
    await pool.query(`INSERT INTO rule_checkpoints VALUES ($1, 0, $2::jsonb, now())`, [SLOPES[2], JSON.stringify({ ...good, assetId: SLOPES[0] })]);
    expect((await store.loadPartition(0)).map((s) => s.assetId)).toEqual([SLOPES[0]]);
    const warnings = lines.map((l) => JSON.parse(l) as { msg: string; asset_id: string; err: { message: string } });
    expect(warnings.map((w) => [w.msg, w.asset_id, w.err.message])).toEqual([
      ['rule checkpoint refused: the asset starts with a fresh rule state', SLOPES[1], 'rule state snapshot version 2 is not supported (this build reads version 1)'],
      ['rule checkpoint refused: the asset starts with a fresh rule state', SLOPES[2], `the snapshot is of asset "${SLOPES[0]}"`],
    ]);
  }, 60_000);

  it('fenced by the lease: only its holder with its epoch writes; an old owner writes nothing', async () => {
    const { url, pool } = await database();
    const leases = (id: string) =>
      new LeaseManager({ url, instanceId: id, partitions: 2, ttlMs: 1500, renewMs: 300, logger: silentLogger(), onAcquire: async () => {}, onLose: async () => {} });
    const a = leases('wp-a');
    await a.start();
    closers.push(() => a.stop());
    expect([...a.owned()].sort()).toEqual([0, 1]);
    const store = new RuleCheckpoints({ pool, fence: a });
    await store.ensureSchema();
    const r = runner();
    judge(r, readings(0, 30));
    const snapshots = r.exportAssets(IDS);
    await store.save(0, snapshots);
    const epochOfA = a.epoch(0)!;

    // wp-a gives partition 0 up; wp-b takes it (a new epoch).
    await a.stop();
    await expect(store.save(0, snapshots)).rejects.toThrow(new CheckpointFencedError(0));
    const b = leases('wp-b');
    await b.start();
    closers.push(() => b.stop());
    expect(b.epoch(0)).toBe(epochOfA + 1);

    // An old owner that still believes it holds the lease (its epoch) is refused by PostgreSQL, and the batch is not written.
    const stale = new RuleCheckpoints({ pool, fence: { instanceId: 'wp-a', epoch: () => epochOfA } });
    const fresher = runner();
    judge(fresher, readings(0, 10));
    const newer = fresher.exportAssets(IDS);
    const emptied = runner().exportAssets(new Set([SLOPES[0]!]));
    await expect(stale.save(0, emptied)).rejects.toThrow(CheckpointFencedError); // nor deletes
    await expect(stale.save(0, newer)).rejects.toMatchObject({ code: 'checkpoint_fenced', partition: 0 });
    expect(await store.load(0, SLOPES)).toEqual(snapshots);
    // The holder writes.
    await new RuleCheckpoints({ pool, fence: b }).save(0, newer);
    expect(await store.load(0, SLOPES)).toEqual(newer);
  }, 60_000);
});
