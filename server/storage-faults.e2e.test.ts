/**
 * Storage faults that are not outages, end to end with a real influxd and Watchpost run as users
 * run it (`node dist/server/cli.js start`), devices publishing QoS 1 at a steady rate:
 *
 * - the `telemetry` database is missing and Watchpost's InfluxDB user may not create it (auth on,
 *   no admin rights): Watchpost says so at start, keeps every reading in the spool (404), reports
 *   `degraded` / `database_not_found` and raises `platform-storage` at once; once an admin creates
 *   the database, every acknowledged reading is in InfluxDB;
 * - InfluxDB restarted with authentication for ~10 s (401 for Watchpost's user), then without;
 *   Watchpost had created the database at start;
 * - a batch with a field type conflict: the good readings are written, the conflicting ones are
 *   in data_dir/quarantine.jsonl and counted;
 * - two `watchpost start` on one data_dir: the second exits at once naming the first, whose spool
 *   is untouched; after a kill -9 of the first, a new start takes over the stale lock.
 */
import { createHash } from 'node:crypto';
import { existsSync, readdirSync, readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import mqtt from 'mqtt';
import { describe, it, type TestContext } from 'vitest';
import { waitFor } from '../test/support/binaries.js';
import { alertList, assetId, DEVICES, drops, durabilityConfig, health, metricsText, SECRET, sleep, storedStrain, valueOf, writeConfigDir } from '../test/support/durability.js';
import { influxdAvailable, startInfluxd, type Influxd } from '../test/support/influxd.js';
import { tempDir } from '../test/support/platform.js';
import { startSteadyPublisher, type SteadyPublisher } from '../test/support/steady-publisher.js';
import { cliBuilt, metricValue, runCli, startWatchpostProcess, type WatchpostProcess } from '../test/support/watchpost-process.js';

const RATE = 20; // readings per second per device
const WRITER_PASSWORD = 'writer-password-storage-faults';

/** Everything a scenario starts, stopped in reverse whatever happens. */
class Resources {
  influx?: Influxd;
  readonly processes: WatchpostProcess[] = [];
  readonly publishers: SteadyPublisher[] = [];
  async release(): Promise<void> {
    await Promise.all(this.publishers.map((p) => p.close().catch(() => undefined)));
    for (const wp of this.processes) await wp.kill9();
    await this.influx?.stop();
  }
}

/** The parsed JSON log lines of a Watchpost process. */
function logLines(text: string): Array<Record<string, any>> {
  return text
    .split('\n')
    .filter((l) => l.startsWith('{'))
    .map((l) => JSON.parse(l) as Record<string, any>);
}

function startDevices(r: Resources, wp: WatchpostProcess, tsBase: number): void {
  for (let i = 0; i < DEVICES; i++) {
    r.publishers.push(
      startSteadyPublisher({
        url: `mqtt://127.0.0.1:${wp.mqttPort}`,
        username: `dau-${i}`,
        password: SECRET(i),
        clientId: `dau-${i}`,
        topic: `telemetry/${assetId(i)}/strain-01`,
        rate: RATE,
        tsBase,
        metric: 'strain',
        valueOf: valueOf(i),
      }),
    );
  }
}

/** Every reading a device got a PUBACK for is in InfluxDB once, with its value, and nothing else is. */
async function expectEveryAcknowledgedReading({ expect }: TestContext, r: Resources, tsBase: number): Promise<void> {
  for (const p of r.publishers) p.pause();
  await Promise.all(r.publishers.map((p) => p.settle(30_000)));
  for (let i = 0; i < DEVICES; i++) {
    const p = r.publishers[i]!;
    expect(p.acked.size).toBe(p.taken());
    const expected = new Map([...p.acked].map(([seq, value]) => [tsBase + seq, value]));
    const got = await waitFor(
      `every reading of ${assetId(i)} in InfluxDB`,
      async () => {
        const s = await storedStrain(r.influx!, assetId(i));
        return s.size >= expected.size ? s : undefined;
      },
      60_000,
    );
    expect(new Map([...got].sort((a, b) => a[0] - b[0]))).toEqual(new Map([...expected].sort((a, b) => a[0] - b[0])));
    const [count] = await r.influx!.query(`SELECT count(value) FROM strain WHERE asset_id = '${assetId(i)}'`);
    expect(count!.series![0]!.values[0]![1]).toBe(p.taken());
  }
}

const platformAlerts = async (apiUrl: string) => (await alertList(apiUrl)).filter((a) => a.asset_id === 'watchpost').map((a) => [a.rule_id, a.level, a.state]);

describe.concurrent('storage faults', () => {
  it.skipIf(!influxdAvailable || !cliBuilt)(
    'database missing and the user may not create it: said at start, degraded with the reason, alerted at once, every reading written once an admin creates it',
    async (ctx) => {
      const { expect, onTestFailed } = ctx;
      const r = new Resources();
      const logs = { text: '' };
      onTestFailed(() => console.error(`watchpost logs (database missing, last 6000 characters):\n${logs.text.slice(-6000)}`));
      try {
        const influx = (r.influx = await startInfluxd({ database: 'telemetry', createDatabase: false, auth: true }));
        await influx.query(`CREATE USER "writer" WITH PASSWORD '${WRITER_PASSWORD}'`);
        const configDir = tempDir('storage-404-config');
        writeConfigDir(
          configDir,
          durabilityConfig({
            influx,
            dataDir: tempDir('storage-404-data'),
            broker: { host: '127.0.0.1', port: 0 },
            influxOptions: { username: 'writer', password: WRITER_PASSWORD },
            // The storage deadman's grace is long: the alert must come from the reason, at once.
            storage: { deadman: { no_readings: '10m', failing_writes: '10m' } },
          }),
        );
        const wp = await startWatchpostProcess(configDir, { logs });
        r.processes.push(wp);
        // Said at start, before the broker listens: missing, and how to create it.
        const atStart = logLines(logs.text);
        const started = atStart.findIndex((l) => l.msg === 'watchpost started');
        const said = atStart.findIndex((l) => l.level === 50 && String(l.msg).startsWith('InfluxDB database "telemetry" does not exist'));
        expect(said).toBeGreaterThanOrEqual(0);
        expect(said).toBeLessThan(started);
        expect(atStart[said]!.msg).toContain('CREATE DATABASE "telemetry"');
        expect(atStart[said]!.msg).toContain('GRANT WRITE ON "telemetry" TO "writer"');
        expect(atStart[said]!.err).toMatch(/^HTTP 403: error authorizing query: writer not authorized to execute statement 'CREATE DATABASE telemetry', requires admin privilege$/);

        const tsBase = Date.now() - 3_600_000;
        const loadStarted = Date.now();
        startDevices(r, wp, tsBase);
        const degraded = await waitFor(
          'healthz degraded: database_not_found',
          async () => {
            const h = await health(wp.apiUrl);
            return h.code === 200 && h.body.status === 'degraded' && h.body.storage.reason === 'database_not_found' ? h.body : undefined;
          },
          15_000,
        );
        expect(degraded.storage).toMatchObject({ state: 'degraded', accepting: true, lastError: 'HTTP 404: database not found: "telemetry"' });
        await waitFor('platform-storage to fire', async () => ((await platformAlerts(wp.apiUrl)).length > 0 ? true : undefined), 15_000);
        expect(await platformAlerts(wp.apiUrl)).toEqual([['platform-storage', 'orange', 'firing']]);
        expect(Date.now() - loadStarted).toBeLessThan(20_000);

        // Readings are acknowledged meanwhile: they wait in the spool.
        await sleep(6000 - (Date.now() - loadStarted));
        const acked = r.publishers.reduce((n, p) => n + p.acked.size, 0);
        expect(acked).toBeGreaterThan(DEVICES * RATE * 3);
        expect(metricValue(await metricsText(wp.apiUrl), 'watchpost_spool_depth')).toBeGreaterThan(DEVICES * RATE * 3);

        // ---- an admin creates the database and lets the user write ----
        await influx.query('CREATE DATABASE "telemetry"');
        await influx.query('GRANT WRITE ON "telemetry" TO "writer"');
        await sleep(3000); // live readings keep coming while the backlog drains
        await expectEveryAcknowledgedReading(ctx, r, tsBase);

        await waitFor('health back to ok', async () => ((await health(wp.apiUrl)).body.status === 'ok' ? true : undefined), 30_000);
        await waitFor('the storage alert to resolve', async () => ((await platformAlerts(wp.apiUrl)).every((a) => a[2] === 'resolved') ? true : undefined), 20_000);
        expect(await platformAlerts(wp.apiUrl)).toEqual([['platform-storage', 'orange', 'resolved']]);
        const final = await metricsText(wp.apiUrl);
        expect(drops(final)).toEqual([]);
        expect(final).not.toContain('watchpost_storage_quarantined_total{');
        expect(logs.text).not.toContain(WRITER_PASSWORD);
        expect(await wp.stop()).toBe(0);
      } finally {
        await r.release();
      }
    },
    150_000,
  );

  it.skipIf(!influxdAvailable || !cliBuilt)(
    'InfluxDB restarted with authentication for ~10 s (401): degraded with the reason, every acknowledged reading written once it is back without',
    async (ctx) => {
      const { expect, onTestFailed } = ctx;
      const r = new Resources();
      const logs = { text: '' };
      onTestFailed(() => console.error(`watchpost logs (401, last 6000 characters):\n${logs.text.slice(-6000)}`));
      try {
        // No database: Watchpost creates it at start (auth is off, anyone may).
        const influx = (r.influx = await startInfluxd({ database: 'telemetry', createDatabase: false }));
        const configDir = tempDir('storage-401-config');
        writeConfigDir(
          configDir,
          durabilityConfig({ influx, dataDir: tempDir('storage-401-data'), broker: { host: '127.0.0.1', port: 0 }, storage: { deadman: { no_readings: '10m', failing_writes: '10m' } } }),
        );
        const wp = await startWatchpostProcess(configDir, { logs });
        r.processes.push(wp);
        expect(
          logLines(logs.text)
            .filter((l) => l.level === 30 && String(l.msg).startsWith('created the InfluxDB database'))
            .map((l) => l.msg),
        ).toEqual(['created the InfluxDB database "telemetry" (it did not exist)']);
        const tsBase = Date.now() - 3_600_000;
        startDevices(r, wp, tsBase);
        await waitFor('readings flowing into InfluxDB', async () => ((await storedStrain(influx, assetId(0))).size >= 20 ? true : undefined), 20_000);
        expect((await health(wp.apiUrl)).body.status).toBe('ok');

        // ---- InfluxDB comes back with authentication on: Watchpost's user does not exist there ----
        await influx.restart({ auth: true });
        const authStarted = Date.now();
        const degraded = await waitFor(
          'healthz degraded: unauthorized',
          async () => {
            const h = await health(wp.apiUrl);
            return h.code === 200 && h.body.status === 'degraded' && h.body.storage.reason === 'unauthorized' ? h.body : undefined;
          },
          15_000,
        );
        expect(degraded.storage).toMatchObject({ accepting: true, lastError: 'HTTP 401: authorization failed' });
        await waitFor('platform-storage to fire', async () => ((await platformAlerts(wp.apiUrl)).length > 0 ? true : undefined), 15_000);
        expect(await platformAlerts(wp.apiUrl)).toEqual([['platform-storage', 'orange', 'firing']]);
        await sleep(10_000 - (Date.now() - authStarted));
        expect((await health(wp.apiUrl)).body.storage.reason).toBe('unauthorized');

        // ---- and without again ----
        await influx.restart({ auth: false });
        await sleep(3000);
        await expectEveryAcknowledgedReading(ctx, r, tsBase);
        await waitFor('health back to ok', async () => ((await health(wp.apiUrl)).body.status === 'ok' ? true : undefined), 30_000);
        const final = await metricsText(wp.apiUrl);
        expect(drops(final)).toEqual([]);
        expect(final).not.toContain('watchpost_storage_quarantined_total{');
        expect(await wp.stop()).toBe(0);
      } finally {
        await r.release();
      }
    },
    150_000,
  );

  it.skipIf(!influxdAvailable || !cliBuilt)(
    'a batch with a field type conflict: the good readings are written, the conflicting ones kept in the quarantine file and counted',
    async ({ expect, onTestFailed }) => {
      const r = new Resources();
      const logs = { text: '' };
      onTestFailed(() => console.error(`watchpost logs (quarantine, last 6000 characters):\n${logs.text.slice(-6000)}`));
      try {
        const influx = (r.influx = await startInfluxd({ database: 'telemetry' }));
        // InfluxDB types a field per shard (a week here): `strain.value` is a string in the week of T_BAD.
        const T_BAD = Date.parse('2025-11-05T02:00:00.000Z');
        const T_GOOD = Date.parse('2025-11-26T02:00:00.000Z');
        const seed = await fetch(`${influx.url}/write?db=telemetry&precision=ms`, { method: 'POST', body: `strain,asset_id=seed value="text" ${T_BAD}` });
        expect(seed.status).toBe(204);
        const dataDir = tempDir('storage-quarantine-data');
        const configDir = tempDir('storage-quarantine-config');
        writeConfigDir(configDir, durabilityConfig({ influx, dataDir, broker: { host: '127.0.0.1', port: 0 } }));
        const wp = await startWatchpostProcess(configDir, { logs });
        r.processes.push(wp);

        const device = await mqtt.connectAsync(`mqtt://127.0.0.1:${wp.mqttPort}`, { username: 'dau-0', password: SECRET(0), clientId: 'dau-0', protocolVersion: 4, reconnectPeriod: 0 });
        try {
          // Alternating: a conflicting reading, a good one, ten of each in one message.
          const readings = Array.from({ length: 20 }, (_, i) => ({ ts: (i % 2 === 0 ? T_BAD : T_GOOD) + i, values: { strain: i + 0.5 } }));
          await device.publishAsync(`telemetry/${assetId(0)}/strain-01`, JSON.stringify(readings), { qos: 1 });
        } finally {
          await device.endAsync();
        }
        const good = await waitFor(
          'the good readings in InfluxDB',
          async () => {
            const s = await storedStrain(influx, assetId(0));
            return s.size >= 10 ? s : undefined;
          },
          20_000,
        );
        expect([...good].sort((a, b) => a[0] - b[0])).toEqual(Array.from({ length: 10 }, (_, k) => [T_GOOD + 2 * k + 1, 2 * k + 1.5]));

        const file = join(dataDir, 'quarantine.jsonl');
        // The metric counts once the file holds the records (fsynced).
        await waitFor(
          'the quarantined readings counted',
          async () => (metricValue(await metricsText(wp.apiUrl), 'watchpost_storage_quarantined_total{reason="field_type_conflict"}') === 10 ? true : undefined),
          10_000,
        );
        const records = readFileSync(file, 'utf8')
          .trim()
          .split('\n')
          .map((l) => JSON.parse(l) as Record<string, string>);
        const line = (k: number) => `strain,asset_id=${assetId(0)},asset_type=bridge,sensor_id=strain-01,street=龙城街道 value=${2 * k + 0.5} ${T_BAD + 2 * k}`;
        expect(records.map((rec) => [rec.reason, rec.point]).sort()).toEqual(Array.from({ length: 10 }, (_, k) => ['field_type_conflict', line(k)]).sort());
        for (const rec of records) {
          expect(rec.error).toMatch(/^HTTP 400: partial write: field type conflict: input field "value" on measurement "strain" is type float, already exists as type string dropped=\d+$/);
          expect(Math.abs(Date.parse(rec.time!) - Date.now())).toBeLessThan(60_000);
        }
        expect(statSync(file).mode & 0o777).toBe(0o600);

        const metrics = await metricsText(wp.apiUrl);
        expect(metricValue(metrics, 'watchpost_storage_quarantined_total{reason="field_type_conflict"}')).toBe(10);
        expect(metricValue(metrics, 'watchpost_storage_written_total')).toBe(10);
        expect(drops(metrics)).toEqual([]);
        expect(metricValue(metrics, 'watchpost_spool_depth')).toBe(0);
        expect((await health(wp.apiUrl)).body.status).toBe('ok');
        // One log line for the refused batch, not one per reading.
        expect(
          logLines(logs.text)
            .filter((l) => l.level === 50)
            .map((l) => [l.msg, l.refused, l.points]),
        ).toEqual([['storage backend refused points for their content; they are kept in the quarantine file, the rest is written', 10, 20]]);
        expect(await wp.stop()).toBe(0);
      } finally {
        await r.release();
      }
    },
    60_000,
  );

  it.skipIf(!cliBuilt)(
    'a second start on the same data_dir exits at once naming the first, which keeps its spool; after a kill -9 a new start takes the stale lock',
    async ({ expect, onTestFailed }) => {
      const r = new Resources();
      const logs = { text: '' };
      onTestFailed(() => console.error(`watchpost logs (lock, last 6000 characters):\n${logs.text.slice(-6000)}`));
      try {
        const dataDir = tempDir('lock-data');
        const configDir = tempDir('lock-config');
        // The embedded telemetry store: data_dir holds telemetry.db as well as the spool and alerts.db.
        const config = durabilityConfig({ influx: { url: 'http://127.0.0.1:1', database: 'telemetry' } as Influxd, dataDir, broker: { host: '127.0.0.1', port: 0 } });
        delete (config.storage as { influx?: unknown }).influx;
        writeConfigDir(configDir, config);
        const first = await startWatchpostProcess(configDir, { logs });
        r.processes.push(first);
        const publish = async (wp: WatchpostProcess, ts: number) => {
          const device = await mqtt.connectAsync(`mqtt://127.0.0.1:${wp.mqttPort}`, { username: 'dau-0', password: SECRET(0), clientId: 'dau-0', protocolVersion: 4, reconnectPeriod: 0 });
          try {
            await device.publishAsync(`telemetry/${assetId(0)}/strain-01`, JSON.stringify({ ts, values: { strain: 1 } }), { qos: 1 });
          } finally {
            await device.endAsync();
          }
        };
        await publish(first, Date.now());
        await waitFor('the reading written', async () => (metricValue(await metricsText(first.apiUrl), 'watchpost_storage_written_total') === 1 ? true : undefined), 10_000);

        /** Every file of the spool and the lock: name, size, mtime and content hash. */
        const snapshot = () => {
          const dir = join(dataDir, 'spool');
          const files = readdirSync(dir).map((name) => join(dir, name));
          return [...files, join(dataDir, 'watchpost.lock')].map((path) => {
            const st = statSync(path);
            return [path, st.size, st.mtimeMs, createHash('sha256').update(readFileSync(path)).digest('hex')];
          });
        };
        const before = snapshot();
        const startedAt = Date.now();
        const second = await runCli(['start', '--config', configDir], { timeoutMs: 20_000 });
        expect(Date.now() - startedAt).toBeLessThan(15_000);
        expect(second.code).not.toBe(0);
        expect(second.code).not.toBeNull();
        const fatal = logLines(second.stdout + second.stderr).find((l) => l.level === 60);
        expect(fatal?.err?.message).toMatch(
          new RegExp(
            `^data_dir ${dataDir} is in use by another Watchpost: pid ${first.child.pid} on host \\S+, since \\d{4}-\\d\\d-\\d\\dT[\\d:.]+Z \\(lock file ${join(dataDir, 'watchpost.lock')}\\)`,
          ),
        );
        // It opened nothing in data_dir: no spool, no store.
        expect(second.stdout).not.toContain('embedded telemetry store open');
        expect(snapshot()).toEqual(before);
        expect(JSON.parse(readFileSync(join(dataDir, 'watchpost.lock'), 'utf8')).pid).toBe(first.child.pid);

        // The first is unaffected.
        await publish(first, Date.now() + 1);
        await waitFor('the second reading written', async () => (metricValue(await metricsText(first.apiUrl), 'watchpost_storage_written_total') === 2 ? true : undefined), 10_000);

        // ---- kill -9: the lock stays behind, stale ----
        const firstPid = first.child.pid!;
        await first.kill9();
        expect(JSON.parse(readFileSync(join(dataDir, 'watchpost.lock'), 'utf8')).pid).toBe(firstPid);
        const third = await startWatchpostProcess(configDir, { logs });
        r.processes.push(third);
        expect(
          logLines(logs.text)
            .filter((l) => l.level === 40 && String(l.msg).startsWith('data_dir lock of a Watchpost that no longer runs'))
            .map((l) => l.msg),
        ).toEqual([expect.stringMatching(new RegExp(`^data_dir lock of a Watchpost that no longer runs \\(pid ${firstPid} on host \\S+, since .+\\): taking it over$`))]);
        expect(JSON.parse(readFileSync(join(dataDir, 'watchpost.lock'), 'utf8')).pid).toBe(third.child.pid);
        await publish(third, Date.now() + 2);
        await waitFor(
          'a reading written by the new instance',
          async () => (metricValue(await metricsText(third.apiUrl), 'watchpost_storage_written_total') === 1 ? true : undefined),
          10_000,
        );
        expect(await third.stop()).toBe(0);
        expect(existsSync(join(dataDir, 'watchpost.lock'))).toBe(false);
      } finally {
        await r.release();
      }
    },
    90_000,
  );
});
