/**
 * Partition leases on a real PostgreSQL: balance, hand-over on stop, on a crash, and through a
 * PostgreSQL outage, with no partition owned twice at any observed instant (by the callbacks, by
 * owned(), and against the table). Short leases (ttl 1500 ms, renewal every 300 ms).
 */
import pg from 'pg';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { silentLogger } from '../lib/logger.js';
import { postgresAvailable, startPostgres, type PgServer } from '../test/support/postgres.js';
import { LEADER_LEASE, LeaseManager, leaseName } from './leases.js';

const TTL = 1500;
const RENEW = 300;
const P = 16;

async function until(what: string, check: () => boolean | Promise<boolean>, ms: number): Promise<number> {
  const started = Date.now();
  for (;;) {
    if (await check()) return Date.now() - started;
    if (Date.now() - started > ms) throw new Error(`${what}: not within ${ms} ms`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

/** Who judges each partition according to the callbacks: set when onAcquire starts, cleared when onLose has finished. */
class Judges {
  readonly holder = new Map<number, string>();
  readonly violations: string[] = [];
  readonly lost = new Map<string, number[]>();

  acquire(id: string, p: number): void {
    const other = this.holder.get(p);
    if (other !== undefined) this.violations.push(`${id} acquired ${p} while ${other} judged it`);
    this.holder.set(p, id);
  }

  lose(id: string, p: number): void {
    if (this.holder.get(p) === id) this.holder.delete(p);
    else this.violations.push(`${id} lost ${p} that it did not judge`);
    this.lost.set(id, [...(this.lost.get(id) ?? []), p]);
  }

  /** A crashed instance judges nothing from the moment it dies. */
  crashed(id: string): void {
    for (const [p, h] of [...this.holder]) if (h === id) this.holder.delete(p);
  }
}

describe.skipIf(!postgresAvailable)('partition leases in PostgreSQL', () => {
  let server: PgServer;
  let url: string;
  let databases = 0;
  let admin: pg.Pool | undefined;
  let managers: LeaseManager[] = [];
  let judges: Judges;
  let sampler: NodeJS.Timeout | undefined;
  let samples = 0;
  let pgDown = false;
  let acquisitions = 0;
  const sampleViolations: string[] = [];

  beforeAll(async () => {
    server = await startPostgres();
  }, 120_000);

  afterAll(async () => {
    await server?.destroy();
  });

  afterEach(async () => {
    if (sampler) clearInterval(sampler);
    await Promise.all(managers.map((m) => m.abandon()));
    if (pgDown) await server.start();
    pgDown = false;
    managers = [];
    await admin?.end();
    admin = undefined;
  });

  async function setup(): Promise<void> {
    url = await server.createDatabase(`leases_${++databases}`);
    admin = new pg.Pool({ connectionString: url, max: 1 });
    admin.on('error', () => undefined);
    judges = new Judges();
    sampleViolations.length = 0;
    samples = 0;
    acquisitions = 0;
  }

  function manager(id: string, extra: { onAcquire?: (p: number) => Promise<void> } = {}): LeaseManager {
    const m = new LeaseManager({
      url,
      instanceId: id,
      partitions: P,
      ttlMs: TTL,
      renewMs: RENEW,
      logger: silentLogger(),
      onAcquire: async (p) => {
        judges.acquire(id, p);
        acquisitions++;
        await extra.onAcquire?.(p);
      },
      onLose: async (p) => {
        await new Promise((r) => setTimeout(r, 5)); // a consumer being cancelled
        judges.lose(id, p);
      },
    });
    managers.push(m);
    return m;
  }

  /** Every 20 ms: no partition in two instances' owned(), and none owned against the table (an older epoch than the table's). */
  function sample(): void {
    sampler = setInterval(() => {
      samples++;
      const seen = new Map<number, string>();
      for (const m of managers) {
        for (const p of m.owned()) {
          const other = seen.get(p);
          if (other !== undefined) sampleViolations.push(`${p} owned by ${other} and ${m.instanceId}`);
          seen.set(p, m.instanceId);
        }
      }
      void admin!
        .query<{ name: string; owner: string | null; epoch: string; valid: boolean }>('SELECT name, owner, epoch, expires_at > clock_timestamp() AS valid FROM cluster_leases')
        .then(({ rows }) => {
          for (const row of rows) {
            if (!row.valid || row.owner === null || row.name === LEADER_LEASE) continue;
            const p = Number(row.name.slice('partition:'.length));
            for (const m of managers) {
              const epoch = m.epoch(p);
              if (m.instanceId !== row.owner && m.owned().has(p) && epoch !== undefined && epoch <= Number(row.epoch))
                sampleViolations.push(`${p} owned by ${m.instanceId} (epoch ${epoch}) while the table gives it to ${row.owner} (epoch ${row.epoch})`);
            }
          }
        })
        .catch(() => undefined);
    }, 20);
  }

  const sizes = (ms: LeaseManager[]) => ms.map((m) => m.owned().size).sort((a, b) => a - b);
  const coveredBy = (ms: LeaseManager[]) => new Set(ms.flatMap((m) => [...m.owned()])).size === P && ms.reduce((n, m) => n + m.owned().size, 0) === P;
  const leaders = () => managers.filter((m) => m.isLeader()).map((m) => m.instanceId);

  async function tableOwners(): Promise<Map<string, string | null>> {
    const { rows } = await admin!.query<{ name: string; owner: string | null }>('SELECT name, owner FROM cluster_leases WHERE expires_at > clock_timestamp() OR owner IS NULL');
    return new Map(rows.map((r) => [r.name, r.owner]));
  }

  it('three instances share 16 partitions 6/5/5, one leader, never one partition twice; stop() hands over at once', async () => {
    await setup();
    const [a, b, c] = [manager('wp-a'), manager('wp-b'), manager('wp-c')];
    sample();
    const starting = Date.now();
    await Promise.all([a.start(), b.start(), c.start()]);
    await until('6/5/5', () => coveredBy([a, b, c]) && sizes([a, b, c]).join() === '5,5,6', 10_000);
    expect(leaders()).toHaveLength(1);
    const owners = await tableOwners();
    for (const m of [a, b, c]) for (const p of m.owned()) expect(owners.get(leaseName(p))).toBe(m.instanceId);
    expect(owners.get(LEADER_LEASE)).toBe(leaders()[0]);
    // wp-a sorts first: the one partition over 16 / 3.
    expect(a.owned().size).toBe(6);
    expect(a.status()).toMatchObject({ instanceId: 'wp-a', connected: true, leader: a.isLeader(), live: 3, share: 6 });
    console.log(`leases: 3 instances started together converged to ${sizes([a, b, c]).join('/')} in ${Date.now() - starting} ms, with ${acquisitions} acquisitions`);

    // Steady: nothing moves.
    const before = [a, b, c].map((m) => [...m.owned()].sort((x, y) => x - y).join());
    await new Promise((r) => setTimeout(r, 3 * RENEW));
    expect([a, b, c].map((m) => [...m.owned()].sort((x, y) => x - y).join())).toEqual(before);

    const leaderBefore = leaders()[0];
    const gone = [...b.owned()];
    const lostBefore = judges.lost.get('wp-b')?.length ?? 0;
    const stopped = Date.now();
    await b.stop();
    expect(b.owned().size).toBe(0);
    expect(
      judges.lost
        .get('wp-b')
        ?.slice(lostBefore)
        .sort((x, y) => x - y),
    ).toEqual(gone.sort((x, y) => x - y));
    const handOver = await until('8/8 after stop', () => coveredBy([a, c]) && sizes([a, c]).join() === '8,8', TTL + 10 * RENEW);
    const took = Date.now() - stopped;
    console.log(`leases: stop() of one of three: its partitions judged again after ${took} ms (${handOver} ms after stop() returned)`);
    expect(took).toBeLessThan(TTL + RENEW);
    if (leaderBefore === 'wp-b') await until('a new leader', () => leaders().length === 1, TTL + 10 * RENEW);
    expect(leaders()).toHaveLength(1);
    expect(judges.violations).toEqual([]);
    expect(sampleViolations).toEqual([]);
    expect(samples).toBeGreaterThan(50);
  }, 60_000);

  it('a crashed instance (no stop, no renewal) loses its partitions after ttl, not before', async () => {
    await setup();
    const [a, b, c] = [manager('wp-a'), manager('wp-b'), manager('wp-c')];
    sample();
    await Promise.all([a.start(), b.start(), c.start()]);
    await until('6/5/5', () => coveredBy([a, b, c]) && sizes([a, b, c]).join() === '5,5,6', 10_000);
    const dead = [...c.owned()];
    const leaderDied = c.isLeader();
    const crashed = Date.now();
    await c.abandon();
    judges.crashed('wp-c');
    managers = managers.filter((m) => m !== c);
    // Not before the leases expire: the last renewal was at most one round before the crash.
    let firstTaken = Infinity;
    await until(
      'the dead partitions taken',
      () => {
        const owned = new Set([...a.owned(), ...b.owned()]);
        if (firstTaken === Infinity && dead.some((p) => owned.has(p))) firstTaken = Date.now() - crashed;
        return dead.every((p) => owned.has(p));
      },
      TTL + 20 * RENEW,
    );
    const all = Date.now() - crashed;
    console.log(`leases: a crashed instance's ${dead.length} partitions: first taken after ${firstTaken} ms, all after ${all} ms (ttl ${TTL} ms, renewal ${RENEW} ms)`);
    expect(firstTaken).toBeGreaterThanOrEqual(TTL - RENEW - 50);
    expect(all).toBeLessThan(TTL + 2 * RENEW + 500);
    await until('8/8', () => coveredBy([a, b]) && sizes([a, b]).join() === '8,8', 10 * RENEW);
    if (leaderDied) await until('a new leader', () => leaders().length === 1, TTL + 10 * RENEW);
    expect(leaders()).toHaveLength(1);
    // Every hand-over gave a new epoch.
    const { rows } = await admin!.query<{ name: string; epoch: string }>('SELECT name, epoch FROM cluster_leases WHERE name = ANY($1)', [dead.map(leaseName)]);
    for (const row of rows) expect(Number(row.epoch)).toBeGreaterThanOrEqual(2);
    for (const p of dead) expect([a.epoch(p), b.epoch(p)].find((e) => e !== undefined)).toBe(Number(rows.find((r) => r.name === leaseName(p))!.epoch));
    expect(judges.violations).toEqual([]);
    expect(sampleViolations).toEqual([]);
  }, 60_000);

  it('PostgreSQL down: every partition and the leadership are given up within ttl; back: taken again with new epochs', async () => {
    await setup();
    const [a, b] = [manager('wp-a'), manager('wp-b')];
    await Promise.all([a.start(), b.start()]);
    await until('8/8', () => coveredBy([a, b]) && sizes([a, b]).join() === '8,8', 10_000);
    const epochs = new Map([...a.owned()].map((p) => [p, a.epoch(p)!]));
    await admin!.end();
    admin = undefined;
    const lostBefore = (judges.lost.get('wp-a')?.length ?? 0) + (judges.lost.get('wp-b')?.length ?? 0);
    pgDown = true;
    const down = Date.now();
    // Watch while PostgreSQL stops: when was everything given up, against the last renewal that reached it.
    const givenUp = until('all given up', () => a.owned().size === 0 && b.owned().size === 0 && !a.isLeader() && !b.isLeader(), 30_000).then(() => Date.now());
    await server.stop();
    const at = await givenUp;
    const lastRenewal = Math.max(a.status().renewedAt ?? 0, b.status().renewedAt ?? 0);
    console.log(`leases: PostgreSQL stopped: every lease given up ${at - lastRenewal} ms after the last renewal that reached it (${at - down} ms after pg_ctl stop began)`);
    expect(at - lastRenewal).toBeLessThanOrEqual(TTL + 250); // the deadline timer and a 20 ms poll
    // Every onLose was called as the leases went; each takes a moment of its own (the 5 ms cancel above) to finish.
    await until('every onLose finished', () => judges.holder.size === 0, 2000);
    expect((judges.lost.get('wp-a')?.length ?? 0) + (judges.lost.get('wp-b')?.length ?? 0) - lostBefore).toBe(P);
    expect(a.status()).toMatchObject({ connected: false, owned: [], leader: false });
    expect(a.status().error).toEqual(expect.any(String));

    await server.start();
    pgDown = false;
    const back = Date.now();
    admin = new pg.Pool({ connectionString: url, max: 1 });
    admin.on('error', () => undefined);
    await until('8/8 again', () => coveredBy([a, b]) && sizes([a, b]).join() === '8,8', 10_000);
    console.log(`leases: PostgreSQL back: all partitions judged again after ${Date.now() - back} ms`);
    expect(leaders()).toHaveLength(1);
    for (const p of a.owned()) if (epochs.has(p)) expect(a.epoch(p)).toBeGreaterThan(epochs.get(p)!);
    expect(a.status()).toMatchObject({ connected: true });
    expect(judges.violations).toEqual([]);
  }, 90_000);

  it('an onAcquire that fails gives the lease back; a restart under the same id takes its rows over with a new epoch', async () => {
    await setup();
    let fail = true;
    const a = manager('wp-a', {
      onAcquire: async (p) => {
        if (fail && p % 2 === 0) throw new Error('broker down');
      },
    });
    await a.start();
    await until('the odd partitions', () => [...a.owned()].filter((p) => p % 2 === 1).length === P / 2, 5000);
    fail = false;
    await until('all 16', () => a.owned().size === P, 10 * RENEW + TTL);
    expect(judges.violations).toEqual([]);
    const epoch3 = a.epoch(3)!;
    await a.abandon();
    judges.crashed('wp-a');
    managers = managers.filter((m) => m !== a);
    const again = manager('wp-a');
    const restarted = Date.now();
    await again.start();
    await until('all 16 after the restart', () => again.owned().size === P, 10 * RENEW);
    console.log(`leases: a restart under the same instance id judged its partitions again after ${Date.now() - restarted} ms (no wait for expiry)`);
    expect(again.epoch(3)).toBe(epoch3 + 1);
    expect(judges.violations).toEqual([]);
  }, 60_000);

  it('refuses bad options', () => {
    const base = { url: 'postgres://x@127.0.0.1:1/x', partitions: 4, logger: silentLogger(), onAcquire: async () => {}, onLose: async () => {} };
    expect(() => new LeaseManager({ ...base, instanceId: 'bad id' })).toThrow(/instance id "bad id" must match/);
    expect(() => new LeaseManager({ ...base, instanceId: 'a', partitions: 0 })).toThrow(/partitions must be an integer from 1 to 1024/);
    expect(() => new LeaseManager({ ...base, instanceId: 'a', ttlMs: 500, renewMs: 500 })).toThrow(/ttlMs must be longer than renewMs/);
  });
});
