/**
 * What only the PostgreSQL store has to show (the behavioural suite, alerts/store.behaviour.test.ts,
 * covers the interface): the outage of the server (calls throw within seconds, the store works
 * again once it is back, an open transaction is rolled back), bounded statements, exact round
 * trips of big numbers, JSON and big values, the schema version check, errors that name the server
 * but not the password, and the cost of one call.
 */
import { createServer, type AddressInfo } from 'node:net';
import pg from 'pg';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { ALERT_T0, sampleAlert } from '../../test/support/alert-records.js';
import { postgresAvailable, startPostgres, type PgServer } from '../../test/support/postgres.js';
import type { TimelineEntry } from '../store.js';
import { SCHEMA_VERSION } from './migrations.js';
import { PostgresAlertStore } from './postgres-alert-store.js';
import { SyncPgBridge } from './sync-bridge.js';

const T0 = ALERT_T0;
const alert = sampleAlert;

function event(alertId: string, detail: Record<string, unknown>): Omit<TimelineEntry, 'seq'> {
  return { alertId, at: T0, kind: 'event', type: 'firing', level: 'red', state: 'firing', tier: null, channel: null, deliveryId: null, detail };
}

/** Polls `ok` (a call that may throw) until it holds; fails after `ms`. */
async function waitUntil(ok: () => boolean, ms: number): Promise<void> {
  const deadline = Date.now() + ms;
  for (;;) {
    try {
      if (ok()) return;
    } catch (error) {
      if (Date.now() > deadline) throw error;
    }
    if (Date.now() > deadline) throw new Error(`not true within ${ms} ms`);
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
}

describe.skipIf(!postgresAvailable)('PostgreSQL alert store', () => {
  let server: PgServer;
  let url: string;
  let databases = 0;

  beforeAll(async () => {
    server = await startPostgres();
  });

  afterAll(async () => {
    await server?.destroy();
  });

  beforeEach(async () => {
    url = await server.createDatabase(`pg_store_${++databases}`);
  });

  it('throws within seconds while PostgreSQL is down, and works again once it is back', async () => {
    const store = PostgresAlertStore.open(url, { connectTimeoutMs: 2000, statementTimeoutMs: 2000 });
    try {
      store.insertAlert(alert('al_1'));
      await server.stop();
      const started = Date.now();
      expect(() => store.getAlert('al_1')).toThrow(/PostgreSQL at 127\.0\.0\.1:\d+/);
      expect(() => store.transaction(() => store.insertAlert(alert('al_2', { sensorId: 'strain-02' })))).toThrow(/PostgreSQL at 127\.0\.0\.1:\d+/);
      expect(Date.now() - started).toBeLessThan(5000);
      expect(store.isOpen).toBe(true);

      // Between tries calls fail at once with the last error, not after another connect attempt.
      const quick = Date.now();
      expect(() => store.getAlert('al_1')).toThrow(/PostgreSQL at 127\.0\.0\.1:\d+/);
      expect(Date.now() - quick).toBeLessThan(100);
      // Marked unavailable (the API answers 503), unlike an error of the statement.
      expect(() => store.getAlert('al_1')).toThrow(expect.objectContaining({ unavailable: true }));

      await server.start();
      await waitUntil(() => store.getAlert('al_1')?.id === 'al_1', 5000);
      expect(store.getAlert('al_2')).toBeUndefined();
      store.transaction(() => store.insertAlert(alert('al_2', { sensorId: 'strain-02' })));
      expect(store.getAlert('al_2')?.id).toBe('al_2');
    } finally {
      store.close();
    }
  });

  it('rolls back a transaction whose connection was lost in the middle, and reconnects for the next one', async () => {
    const store = PostgresAlertStore.open(url, { connectTimeoutMs: 2000, statementTimeoutMs: 2000 });
    const admin = new pg.Client(url);
    await admin.connect();
    try {
      store.insertAlert(alert('al_1'));
      const pid = (await admin.query<{ pid: number }>(`SELECT pid FROM pg_stat_activity WHERE application_name = 'watchpost' AND datname = current_database()`)).rows;
      expect(pid).toHaveLength(1);
      expect(() =>
        store.transaction(() => {
          store.appendTimeline(event('al_1', { n: 1 }));
          // The server ends this connection (as a failover or a restart would) inside the transaction.
          const killer = new SyncPgBridge(url);
          try {
            killer.query('SELECT pg_terminate_backend($1)', [pid[0]!.pid]);
          } finally {
            killer.close();
          }
          store.appendTimeline(event('al_1', { n: 2 }));
        }),
      ).toThrow(/PostgreSQL at 127\.0\.0\.1|lost during the transaction/);
      expect(store.timeline('al_1')).toEqual([]);
      store.transaction(() => store.appendTimeline(event('al_1', { n: 3 })));
      expect(store.timeline('al_1').map((e) => e.detail)).toEqual([{ n: 3 }]);
    } finally {
      await admin.end();
      store.close();
    }
  });

  // Signalling the server's processes takes root (they run as the `postgres` user) or that user.
  it.skipIf(process.getuid?.() !== 0)('gives up on a server that stops answering (process frozen), and continues on a new connection', async () => {
    const store = PostgresAlertStore.open(url, { connectTimeoutMs: 1000, statementTimeoutMs: 1000 });
    const admin = new pg.Client(url);
    await admin.connect();
    let frozen: number | undefined;
    try {
      store.insertAlert(alert('al_1'));
      const backends = (await admin.query<{ pid: number }>(`SELECT pid FROM pg_stat_activity WHERE application_name = 'watchpost' AND datname = current_database()`)).rows;
      expect(backends).toHaveLength(1);
      frozen = backends[0]!.pid;
      process.kill(frozen, 'SIGSTOP');
      const started = Date.now();
      expect(() => store.getAlert('al_1')).toThrow(/PostgreSQL at 127\.0\.0\.1:\d+: .*timeout/i);
      expect(Date.now() - started).toBeLessThan(5000);
      expect(store.getAlert('al_1')?.id).toBe('al_1');
    } finally {
      if (frozen !== undefined) process.kill(frozen, 'SIGCONT');
      await admin.end();
      store.close();
    }
  });

  it('gives up a worker that does not answer in time, fails at once for a pause, then tries with a new worker', async () => {
    // A server that accepts connections and never says a word: the worker waits for it (its own
    // connect timeout is long here), the call does not.
    const silent = createServer(() => undefined);
    await new Promise<void>((resolve) => silent.listen(0, '127.0.0.1', resolve));
    const { port } = silent.address() as AddressInfo;
    const bridge = new SyncPgBridge(`postgres://u:secret-pw@127.0.0.1:${port}/db`, { connectTimeoutMs: 60_000, answerTimeoutMs: 500 });
    const timed = (fn: () => void) => {
      const started = performance.now();
      expect(fn).toThrow(`PostgreSQL at 127.0.0.1:${port} did not answer within 500 ms`);
      return performance.now() - started;
    };
    try {
      expect(timed(() => bridge.query('SELECT 1'))).toBeLessThan(2000);
      expect(timed(() => bridge.query('SELECT 1'))).toBeLessThan(100);
      await new Promise((resolve) => setTimeout(resolve, 300));
      expect(timed(() => bridge.query('SELECT 1'))).toBeGreaterThanOrEqual(450);
    } finally {
      bridge.close();
      silent.close();
    }
  });

  it('ends a statement that runs too long instead of waiting for it', () => {
    const bridge = new SyncPgBridge(url, { statementTimeoutMs: 300 });
    try {
      const started = Date.now();
      expect(() => bridge.query('SELECT pg_sleep(5)')).toThrow(/statement timeout/);
      expect(Date.now() - started).toBeLessThan(3000);
      expect(bridge.query<{ one: number }>('SELECT 1 AS one').rows).toEqual([{ one: 1 }]);
    } finally {
      bridge.close();
    }
  });

  it('keeps epoch milliseconds, doubles, JSON and text exactly, and values of many megabytes', () => {
    const store = PostgresAlertStore.open(url);
    try {
      // The largest time a Date can hold, a double that needs all 17 digits, and text SQLite would keep.
      const a = alert('al_1', {
        startedAt: 8.64e15,
        eventTs: 8.64e15 - 1,
        updatedAt: 8.64e15,
        value: 0.1 + 0.2,
        threshold: [-1e-300, 1.7976931348623157e308],
        message: 'a\tb\n"c"\\ 😀 \u2028',
      });
      store.insertAlert(a);
      expect(store.getAlert('al_1')).toEqual(a);
      expect(typeof store.getAlert('al_1')!.startedAt).toBe('number');

      const detail = { nested: { list: [1, 'two', null, true], empty: {} }, nul: '\u0000', big: Number.MAX_SAFE_INTEGER, z: 1, a: 2 };
      const seq = store.appendTimeline(event('al_1', detail));
      const [entry] = store.timeline('al_1');
      expect(entry).toEqual({ ...event('al_1', detail), seq });
      // Key order is kept (JSON is stored as text, as SQLite does).
      expect(Object.keys(entry!.detail)).toEqual(['nested', 'nul', 'big', 'z', 'a']);

      // Bigger than any buffer a bridge might use: 8 MB of body, a timeline of 2000 entries.
      const body = JSON.stringify({ text: 'x'.repeat(8 * 1024 * 1024) });
      store.insertOutbox({ deliveryId: 'd1', alertId: 'al_1', channelId: 'ops-hook', recipients: ['duty'], event: 'firing', tier: 0, body, nextAttemptAt: T0, createdAt: T0 });
      expect(store.getOutbox('d1')?.body).toBe(body);
      store.transaction(() => {
        for (let i = 0; i < 2000; i++) store.appendTimeline(event('al_1', { i, pad: 'y'.repeat(200) }));
      });
      const timeline = store.timeline('al_1');
      expect(timeline).toHaveLength(2001);
      expect(timeline.at(-1)!.detail).toEqual({ i: 1999, pad: 'y'.repeat(200) });
      expect(timeline.map((e) => e.seq)).toEqual([...timeline.map((e) => e.seq)].sort((x, y) => x - y));
    } finally {
      store.close();
    }
  });

  it('refuses a schema newer than it knows, and reopens the current one without migrating again', async () => {
    PostgresAlertStore.open(url).close();
    PostgresAlertStore.open(url).close();
    const admin = new pg.Client(url);
    await admin.connect();
    try {
      expect((await admin.query('SELECT version FROM watchpost_schema ORDER BY version')).rows).toEqual(Array.from({ length: SCHEMA_VERSION }, (_, i) => ({ version: i + 1 })));
      await admin.query(`INSERT INTO watchpost_schema (version, description) VALUES ($1, 'from the future')`, [SCHEMA_VERSION + 1]);
    } finally {
      await admin.end();
    }
    expect(() => PostgresAlertStore.open(url)).toThrow(`has schema version ${SCHEMA_VERSION + 1}, newer than this version of watchpost understands (${SCHEMA_VERSION})`);
  });

  it('names the server but never the password when it cannot connect', async () => {
    const wrong = url.replace(/:([0-9a-f]+)@/, ':not-the-password@');
    expect(() => PostgresAlertStore.open(wrong)).toThrow(new RegExp(`PostgreSQL at 127\\.0\\.0\\.1:${server.port}: password authentication failed`));
    try {
      PostgresAlertStore.open(wrong);
    } catch (error) {
      expect(String(error)).not.toContain('not-the-password');
    }
    const closedPort = `postgres://watchpost:secret-pw@127.0.0.1:1/watchpost`;
    expect(() => PostgresAlertStore.open(closedPort, { connectTimeoutMs: 1000 })).toThrow(/PostgreSQL at 127\.0\.0\.1:1: .*ECONNREFUSED/);
    expect(() => PostgresAlertStore.open('mysql://u:secret-pw@h/db')).toThrow('postgres_url must start with postgres:// (got mysql://)');
    expect(() => PostgresAlertStore.open('not a url secret-pw')).toThrow('postgres_url is not a URL');
    for (const bad of [closedPort, 'not a url secret-pw']) {
      try {
        PostgresAlertStore.open(bad);
      } catch (error) {
        expect(String(error)).not.toContain('secret-pw');
      }
    }
  });

  it('orders ties bytewise whatever the database locale, and refuses every call once closed', async () => {
    // ICU's en-US puts si_a before si_B; bytes (and SQLite) put B (0x42) before a (0x61).
    const store = PostgresAlertStore.open(await server.createDatabase('pg_store_locale', { icuLocale: 'en-US' }));
    const silence = { matchers: {}, startsAt: T0, endsAt: T0 + 1000, reason: 'r', createdBy: 'duty', createdAt: T0, deletedAt: null, deletedBy: null };
    for (const id of ['si_b', 'si_B', 'si-a', 'si_a']) store.insertSilence({ ...silence, id });
    expect(store.silencesEndingAfter(T0).map((s) => s.id)).toEqual(['si-a', 'si_B', 'si_a', 'si_b']);
    store.close();
    expect(store.isOpen).toBe(false);
    expect(() => store.getAlert('al_1')).toThrow(/is closed/);
    store.close();
  });

  it('costs about one round trip per call (printed, beside the same query on an async pg Client)', async () => {
    const store = PostgresAlertStore.open(url);
    const direct = new pg.Client(url);
    await direct.connect();
    try {
      store.insertAlert(alert('al_1'));
      const calls = 1000;
      const started = performance.now();
      for (let i = 0; i < calls; i++) store.getAlert('al_1');
      const perCall = (performance.now() - started) / calls;
      const txStarted = performance.now();
      for (let i = 0; i < 100; i++) store.transaction(() => store.appendTimeline(event('al_1', { i })));
      const perTransaction = (performance.now() - txStarted) / 100;
      const directStarted = performance.now();
      for (let i = 0; i < calls; i++) await direct.query({ name: 'get', text: 'SELECT * FROM alerts WHERE id = $1', values: ['al_1'] });
      const perDirect = (performance.now() - directStarted) / calls;
      console.log(
        `PostgreSQL alert store: getAlert ${perCall.toFixed(3)} ms per call (${calls} calls; the same query on an async pg Client ${perDirect.toFixed(3)} ms); a transaction of one append ${perTransaction.toFixed(3)} ms`,
      );
      expect(store.timeline('al_1')).toHaveLength(100);
    } finally {
      await direct.end();
      store.close();
    }
  });
});
