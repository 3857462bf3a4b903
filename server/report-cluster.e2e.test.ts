/**
 * `watchpost report` in a cluster reads the shared alert store in PostgreSQL (every instance's
 * alerts), not the local data directory.
 */
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { PostgresAlertStore } from '../alerts/postgres/postgres-alert-store.js';
import { ALERT_T0, sampleAlert } from '../test/support/alert-records.js';
import { postgresAvailable, startPostgres, type PgServer } from '../test/support/postgres.js';
import type { WatchpostConfig } from './config/schema.js';
import { reportFromDataDir } from './report.js';

describe.skipIf(!postgresAvailable)('watchpost report in cluster mode', () => {
  let server: PgServer;
  beforeAll(async () => {
    server = await startPostgres();
  }, 60_000);
  afterAll(async () => {
    await server?.destroy();
  });

  it('counts the cases stored in PostgreSQL, with an empty data directory', async () => {
    const url = await server.createDatabase('report');
    const store = PostgresAlertStore.open(url);
    store.insertAlert(sampleAlert('al_1'));
    store.insertAlert(sampleAlert('al_2', { sensorId: 'strain-02', startedAt: ALERT_T0 + 1000 }));
    store.putCase({ alertId: 'al_2', status: 'dispatched', department: 'lg-bridge', workOrderId: null, dismissReason: null, updatedAt: ALERT_T0 + 2000, ackDeadline: null });
    store.close();
    const config = {
      assets: [],
      storage: { data_dir: mkdtempSync(join(tmpdir(), 'watchpost-report-cluster-')) },
      cluster: { instance_id: 'wp-1', amqp_url: 'amqp://127.0.0.1:1/', postgres_url: url, partitions: 16 },
    } as unknown as WatchpostConfig;
    const report = JSON.parse(reportFromDataDir(config, ALERT_T0 - 60_000, ALERT_T0 + 60_000, true)) as { total: { cases: number; status: Record<string, number> } };
    expect(report.total.cases).toBe(2);
    expect(report.total.status).toMatchObject({ new: 1, dispatched: 1 });
  });
});
