/**
 * Cluster mode under faults, end to end: three Watchpost processes behind one mosquitto (a shared
 * subscription), with private PostgreSQL, RabbitMQ and influxd. Devices publish QoS 1 readings at
 * a steady rate; rules with `for` and a window alert on three of the assets, escalating to a real
 * webhook receiver. Three faults, one after the other, each followed by the same checks:
 *
 * 1. kill -9 of the leader mid-load, restarted a few seconds later;
 * 2. RabbitMQ stopped for 10 s;
 * 3. PostgreSQL restarted.
 *
 * Each time: every reading a device got a PUBACK for is in InfluxDB (the count per series is
 * exact), no (rule, asset, sensor) has two alerts in PostgreSQL, every escalation tier of every
 * alert was sent under one delivery id and none was skipped; at the end an ack link minted by the
 * cluster is valid on every instance and acknowledges on another one. The time until a dead
 * instance's partitions are judged again is printed.
 */
import pg from 'pg';
import { DEFAULT_CLAIM_TTL_MS } from '../../alerts/alert-types.js';
import { afterAll, afterEach, beforeAll, describe, expect, it, type TestContext } from 'vitest';
import { waitFor } from '../../test/support/binaries.js';
import {
  CLUSTER_TOKEN,
  clusterHealth,
  ClusterRunner,
  coversAll,
  ownership,
  startClusterEngines,
  startDevice,
  writeClusterConfig,
  type ClusterEngines,
  type Device,
  type Instance,
} from '../../test/support/cluster.js';
import { influxdAvailable } from '../../test/support/influxd.js';
import { mosquittoBinary } from '../../test/support/mosquitto.js';
import { postgresAvailable } from '../../test/support/postgres.js';
import { rabbitmqAvailable } from '../../test/support/rabbitmq.js';
import { startReceiver, type Receiver } from '../../test/support/receiver.js';
import { openStream, type SseStream } from '../../test/support/sse.js';
import { cliBuilt } from '../../test/support/watchpost-process.js';

const PARTITIONS = 8;
const ASSETS = 9;
/** Assets 0..HOT-1 read 400 µε: above both rules' thresholds for the whole test. */
const HOT = 3;
const RATE = 8;
const INSTANCES = ['wp-a', 'wp-b', 'wp-c'];
const assetId = (i: number) => `br-${i}`;
const valueOf = (asset: number) => (seq: number) => (asset < HOT ? 400 : 100) + (seq % 8) * 0.25;
const TIERS_AFTER = ['0s', '4s', '8s', '16s', '32s', '64s'];

const available = postgresAvailable && rabbitmqAvailable && influxdAvailable && mosquittoBinary !== undefined && cliBuilt;

describe.skipIf(!available)('cluster mode under faults', () => {
  let engines: ClusterEngines;
  let runner: ClusterRunner;
  let receiver: Receiver;
  /** A pool: it reconnects after PostgreSQL's restart. */
  let db: pg.Pool;
  /** Readings taken per asset, over every phase so far (after settling, all of them acknowledged). */
  const taken = new Array<number>(ASSETS).fill(0);
  let phase = 0;
  /** Each first instance's console stream, open from the start. */
  const streams = new Map<string, SseStream>();

  beforeAll(async () => {
    [engines, receiver] = await Promise.all([startClusterEngines(), startReceiver('/hook')]);
    runner = new ClusterRunner(engines);
    writeClusterConfig(runner.configDir, {
      engines,
      partitions: PARTITIONS,
      sections: {
        assets: Array.from({ length: ASSETS }, (_, i) => ({ id: assetId(i), type: 'bridge', name: `桥 ${i}`, street: '龙城街道', sensors: [{ id: 's1', metrics: ['strain'] }] })),
        metrics: { strain: { unit: 'µε', min: -10000, max: 10000 } },
        rules: [
          { id: 'strain-for', match: { asset_type: 'bridge', metric: 'strain' }, levels: { red: { above: 300 } }, for: '2s', escalation: 'duty' },
          { id: 'strain-avg', match: { asset_type: 'bridge', metric: 'strain' }, signal: { avg: '5s' }, levels: { orange: { above: 350 } }, escalation: 'duty' },
        ],
        channels: [{ id: 'hook', type: 'webhook', url: receiver.url }],
        escalations: [{ id: 'duty', tiers: TIERS_AFTER.map((after) => ({ after, notify: ['hook'] })) }],
      },
    });
    await Promise.all(INSTANCES.map((id) => runner.start(id)));
    for (const i of runner.instances.values()) streams.set(i.id, await openStream(`${i.apiUrl}/api/v1/stream`, { authorization: `Bearer ${CLUSTER_TOKEN}` }));
    db = new pg.Pool({ connectionString: engines.postgres.url, max: 2 });
    db.on('error', () => undefined);
    // Every partition owned, once.
    await waitFor('the partitions shared between the instances', async () => (coversAll(await ownership(runner.instances.values()), PARTITIONS) ? true : undefined), 30_000, 200);
  }, 180_000);

  // A failure shows what the instances warned about.
  afterEach(async (ctx: TestContext) => {
    if (ctx.task.result?.state !== 'fail') return;
    const alerts = await db.query(`SELECT rule_id, asset_id, sensor_id, state, level FROM alerts ORDER BY started_at`).catch((err: Error) => ({ rows: [err.message] }));
    console.log(`alerts: ${JSON.stringify(alerts.rows)}`);
    for (const id of INSTANCES) {
      const lines = runner
        .logs(id)
        .split('\n')
        .filter((l) => l.trim() !== '' && (process.env.WP_DEBUG !== undefined || ((/"level":(40|50|60)/.test(l) || !l.startsWith('{')) && !l.includes('telemetry rejected'))));
      console.log(`--- ${id}: ${lines.length} warnings and errors, the last ones:\n${lines.slice(process.env.WP_DEBUG ? -60 : -15).join('\n')}`);
    }
  });

  afterAll(async () => {
    for (const s of streams.values()) s.close();
    await db?.end().catch(() => undefined);
    await runner?.destroy();
    await receiver?.close();
    await engines?.stop();
  }, 60_000);

  /** Starts one device per asset for a phase; its readings are timestamped with the time they are taken. */
  function publishers(): Device[] {
    phase += 1;
    return Array.from({ length: ASSETS }, (_, i) =>
      startDevice({ url: engines.mosquitto.url, clientId: `dev-${i}-${phase}`, topic: `telemetry/${assetId(i)}/s1`, rate: RATE, metric: 'strain', valueOf: valueOf(i) }),
    );
  }

  /** Stops taking readings, waits until every one was acknowledged by the broker, and counts them. */
  async function settle(devices: Device[]): Promise<void> {
    for (const d of devices) d.pause();
    await Promise.all(devices.map((d) => d.settle(60_000)));
    devices.forEach((d, i) => (taken[i]! += d.taken()));
    await Promise.all(devices.map((d) => d.close()));
  }

  async function influxCount(asset: string): Promise<number> {
    const [result] = await engines.influx.query(`SELECT count(value) FROM strain WHERE asset_id = '${asset}'`);
    return (result?.series?.[0]?.values?.[0]?.[1] as number | undefined) ?? 0;
  }

  /** Every acknowledged reading is in InfluxDB, exactly once per timestamp: the count per series equals what was taken. */
  async function expectNoLoss(): Promise<void> {
    const counts = async () => Promise.all(Array.from({ length: ASSETS }, (_, i) => influxCount(assetId(i))));
    await waitFor('every acknowledged reading in InfluxDB', async () => ((await counts()).every((c, i) => c >= taken[i]!) ? true : undefined), 60_000, 250).catch(() => undefined);
    const got = await counts();
    const missing = got.map((c, i) => taken[i]! - c);
    console.log(`phase ${phase}: readings per series ${JSON.stringify(taken)}, missing ${JSON.stringify(missing)}`);
    expect(got).toEqual(taken);
  }

  /** No (rule, asset, sensor) has two alerts; the hot assets have one per rule, open. */
  async function expectOneAlertEach(): Promise<void> {
    const twice = await db.query<{ rule_id: string; asset_id: string; sensor_id: string; n: string }>(
      `SELECT rule_id, asset_id, sensor_id, count(*) AS n FROM alerts WHERE asset_id LIKE 'br-%' GROUP BY 1, 2, 3 HAVING count(*) > 1`,
    );
    expect(twice.rows).toEqual([]);
    await waitFor(
      'one alert per rule on each hot asset',
      async () => ((await db.query(`SELECT 1 FROM alerts WHERE asset_id LIKE 'br-%' AND state <> 'resolved'`)).rowCount === 2 * HOT ? true : undefined),
      30_000,
      250,
    ).catch(() => undefined);
    const open = await db.query<{ rule_id: string; asset_id: string; state: string }>(`SELECT rule_id, asset_id, state FROM alerts WHERE asset_id LIKE 'br-%' ORDER BY 2, 1`);
    expect(open.rows.map((r) => `${r.rule_id}/${r.asset_id}/${r.state}`)).toEqual(
      Array.from({ length: HOT }, (_, i) => [`strain-avg/${assetId(i)}/firing`, `strain-for/${assetId(i)}/firing`]).flat(),
    );
  }

  interface Delivery {
    delivery_id: string;
    event: string;
    tier: number;
    alert: { id: string; ack_url: string; started_at: string };
  }

  const deliveries = (): Delivery[] => receiver.requests.map((r) => JSON.parse(r.body) as Delivery);

  /** Per alert: the tiers sent are 0..k without a gap, each under exactly one delivery id, and k is the tier now due. */
  async function expectTiersInOrder(): Promise<void> {
    const alerts = (await db.query<{ id: string; started_at: string }>(`SELECT id, started_at FROM alerts WHERE asset_id LIKE 'br-%'`)).rows;
    const afterMs = TIERS_AFTER.map((t) => Number(t.slice(0, -1)) * 1000);
    // A tier is sent within a poll or two of its time; one whose row a killed leader had claimed waits for the claim to
    // expire (DEFAULT_CLAIM_TTL_MS), so the liveness check allows that much.
    const due = (startedAt: number) => afterMs.filter((ms) => startedAt + ms <= Date.now() - 3000 - DEFAULT_CLAIM_TTL_MS).length;
    // The leader sends what is due within a poll or two.
    await waitFor(
      'the due tiers sent',
      async () =>
        alerts.every(
          (a) =>
            new Set(
              deliveries()
                .filter((d) => d.alert.id === a.id)
                .map((d) => d.tier),
            ).size >= due(Number(a.started_at)),
        )
          ? true
          : undefined,
      20_000,
      250,
    ).catch(() => undefined);
    for (const a of alerts) {
      const mine = deliveries().filter((d) => d.alert.id === a.id && (d.event === 'firing' || d.event === 'escalated' || d.event === 'level_raised'));
      const idsByTier = new Map<number, Set<string>>();
      for (const d of mine) idsByTier.set(d.tier, (idsByTier.get(d.tier) ?? new Set()).add(d.delivery_id));
      const tiers = [...idsByTier.keys()].sort((x, y) => x - y);
      expect(tiers, `tiers of ${a.id}`).toEqual(Array.from({ length: tiers.length }, (_, t) => t));
      expect(tiers.length, `tiers of ${a.id} due by now`).toBeGreaterThanOrEqual(due(Number(a.started_at)));
      for (const [tier, ids] of idsByTier) expect([...ids].length, `delivery ids of ${a.id} tier ${tier}`).toBe(1);
    }
  }

  /** Waits until every instance's /healthz says the engine is up; on a timeout the error shows each one's last answer. */
  async function everyInstanceSees(engine: 'amqp' | 'postgres'): Promise<void> {
    const last = new Map<string, string>();
    await waitFor(
      `${engine} up on every instance`,
      async () => {
        let all = true;
        for (const i of runner.instances.values()) {
          const started = Date.now();
          const h = await clusterHealth(i);
          last.set(i.id, h ? `${h.code} ${JSON.stringify(h.body.cluster)}` : `no answer in ${Date.now() - started} ms`);
          if (h?.body.cluster?.[engine] !== 'up') all = false;
        }
        return all || undefined;
      },
      60_000,
      200,
    ).catch((err: Error) => {
      throw new Error(`${err.message}: ${JSON.stringify(Object.fromEntries(last))}`);
    });
  }

  async function expectAll(): Promise<void> {
    await expectNoLoss();
    await expectOneAlertEach();
    await expectTiersInOrder();
  }

  async function leader(): Promise<Instance> {
    return waitFor(
      'a leader',
      async () => {
        for (const i of runner.instances.values()) if ((await clusterHealth(i))?.body.cluster?.leader) return i;
        return undefined;
      },
      30_000,
      200,
    );
  }

  it('kill -9 of the leader mid-load, restarted: nothing lost or doubled, its partitions judged again', async () => {
    const devices = publishers();
    await waitFor('readings flowing into InfluxDB', async () => ((await influxCount(assetId(0))) >= 10 ? true : undefined), 30_000, 200);
    await waitFor('alerts on the hot assets', async () => ((await db.query(`SELECT 1 FROM alerts WHERE asset_id LIKE 'br-%'`)).rowCount === 2 * HOT ? true : undefined), 30_000, 200);
    // Every console sees every alert once, whichever instance raised it.
    const alertIds = (await db.query<{ id: string }>(`SELECT id FROM alerts WHERE asset_id LIKE 'br-%' ORDER BY id`)).rows.map((r) => r.id);
    for (const [id, stream] of streams) {
      const firing = () =>
        stream.events
          .filter((e) => e.event === 'alert')
          .map((e) => JSON.parse(e.data) as Delivery)
          .filter((d) => d.event === 'firing');
      await waitFor(`every alert on the console of ${id}`, async () => (alertIds.every((a) => firing().some((d) => d.alert.id === a)) ? true : undefined), 15_000, 100).catch(
        () => undefined,
      );
      expect(
        firing()
          .map((d) => d.alert.id)
          .sort(),
        `firing events on the console of ${id}`,
      ).toEqual(alertIds);
    }
    const victim = await leader();
    const before = await clusterHealth(victim);
    const orphaned = before!.body.cluster!.owned;
    const killedAt = Date.now();
    await victim.kill9();
    await waitFor('the partitions of the dead instance owned again', async () => (coversAll(await ownership(runner.instances.values()), PARTITIONS) ? true : undefined), 60_000, 100);
    const handOverMs = Date.now() - killedAt;
    const newLeader = await leader();
    console.log(
      `kill -9 ${victim.id} (leader, partitions ${JSON.stringify(orphaned)}): partitions judged again after ${handOverMs} ms; new leader ${newLeader.id} after ${Date.now() - killedAt} ms`,
    );
    await new Promise((r) => setTimeout(r, 2000));
    await runner.start(victim.id);
    await waitFor(
      'the partitions shared by three again',
      async () => {
        const owned = await ownership(runner.instances.values());
        return coversAll(owned, PARTITIONS) && (owned.get(victim.id)?.length ?? 0) > 0 ? true : undefined;
      },
      60_000,
      200,
    );
    await settle(devices);
    await expectAll();
  }, 150_000);

  it('RabbitMQ stopped for 10 s: readings not acknowledged meanwhile, none lost, alerts carry on', async () => {
    const devices = publishers();
    await new Promise((r) => setTimeout(r, 2000));
    await engines.rabbit.stop();
    const stoppedAt = Date.now();
    const instance = [...runner.instances.values()][0]!;
    const down = await waitFor(
      '/healthz 503 without RabbitMQ',
      async () => {
        const h = await clusterHealth(instance);
        return h && h.code === 503 && h.body.cluster?.amqp === 'down' ? h : undefined;
      },
      10_000,
      100,
    );
    expect(down.body.status).toBe('unavailable');
    await new Promise((r) => setTimeout(r, Math.max(0, 10_000 - (Date.now() - stoppedAt))));
    await engines.rabbit.start();
    await everyInstanceSees('amqp');
    await new Promise((r) => setTimeout(r, 2000));
    await settle(devices);
    await expectAll();
  }, 150_000);

  it('PostgreSQL restarted: readings accepted throughout, alert work resumes; ack links work on every instance', async () => {
    const devices = publishers();
    await new Promise((r) => setTimeout(r, 2000));
    await engines.postgres.stop();
    const instance = [...runner.instances.values()][0]!;
    let lastHealth: unknown;
    const degraded = await waitFor(
      '/healthz degraded without PostgreSQL',
      async () => {
        const h = await clusterHealth(instance);
        if (!h)
          lastHealth = await fetch(`${instance.apiUrl}/healthz`, { signal: AbortSignal.timeout(3000) }).then(
            async (r) => `${r.status} ${await r.text()}`,
            (err: Error) => `${Date.now()} ${err.message}`,
          );
        lastHealth = h ?? lastHealth;
        return h && h.body.cluster?.postgres === 'down' ? h : undefined;
      },
      15_000,
      100,
    ).catch((err: Error) => {
      throw new Error(`${err.message}; last /healthz: ${JSON.stringify(lastHealth)}`);
    });
    expect(degraded.code).toBe(200);
    expect(degraded.body.status).toBe('degraded');
    const acked = devices.reduce((n, d) => n + d.acked.size, 0);
    await new Promise((r) => setTimeout(r, 3000));
    // mosquitto acknowledges the devices; what matters is that Watchpost keeps taking them: checked in InfluxDB below.
    expect(devices.reduce((n, d) => n + d.acked.size, 0)).toBeGreaterThan(acked);
    await engines.postgres.start();
    await everyInstanceSees('postgres');
    await new Promise((r) => setTimeout(r, 2000));
    await settle(devices);
    await expectAll();

    // An ack link of the cluster: valid on every instance, and acknowledging on one of them.
    const firing = deliveries().find((d) => d.event === 'firing')!;
    const token = new URL(firing.alert.ack_url).pathname.split('/').pop()!;
    // Each instance's store reconnects within about a second of PostgreSQL's return; until then it answers 503, never 500.
    for (const i of runner.instances.values()) {
      const seen = new Set<number>();
      const started = Date.now();
      for (;;) {
        const status = (await fetch(`${i.apiUrl}/ack/${token}`)).status;
        seen.add(status);
        if (status === 200 || Date.now() - started > 10_000) break;
        await new Promise((r) => setTimeout(r, 200));
      }
      expect(
        [...seen].filter((s) => s !== 503),
        `GET /ack on ${i.id}: answers seen ${[...seen].join(', ')}`,
      ).toEqual([200]);
    }
    const last = [...runner.instances.values()].at(-1)!;
    const ack = await fetch(`${last.apiUrl}/ack/${token}`, { method: 'POST', headers: { 'content-type': 'application/x-www-form-urlencoded' }, body: 'note=on+site' });
    expect(ack.status).toBe(200);
    const state = await db.query<{ state: string }>('SELECT state FROM alerts WHERE id = $1', [firing.alert.id]);
    expect(state.rows).toEqual([{ state: 'acknowledged' }]);
  }, 150_000);
});
