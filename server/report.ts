/**
 * `watchpost report`: the disposal loop's measures over the alerts that started in a time range,
 * read from alerts.db read-only (beside a running platform too), or in cluster mode from the
 * cluster's PostgreSQL, and computed by alerts/report.ts.
 */
import { buildCaseReport, formatCaseReport, type CaseReport, type ReportCase } from '../alerts/report.js';
import { PostgresAlertStore } from '../alerts/postgres/postgres-alert-store.js';
import { SqliteAlertStore } from '../alerts/sqlite/sqlite-alert-store.js';
import type { AlertStore } from '../alerts/store.js';
import type { WatchpostConfig } from './config/schema.js';

/** Reads every case that started in [from, to) with its timeline and case record. */
export function readReportCases(store: AlertStore, from: number, to: number): ReportCase[] {
  return store.alertsStartedBetween(from, to).map((alert) => {
    const record = store.getCase(alert.id);
    return { alert, timeline: store.timeline(alert.id), ...(record ? { case: record } : {}) };
  });
}

export function caseReport(store: AlertStore, config: Pick<WatchpostConfig, 'assets'>, from: number, to: number): CaseReport {
  const owners = new Map(config.assets.flatMap((a) => (typeof a.owner === 'string' ? [[a.id, a.owner] as const] : [])));
  return buildCaseReport(readReportCases(store, from, to), { from, to, ownerOf: (id) => owners.get(id) });
}

/**
 * Opens the alert store and reports; the text or JSON to print. One instance: its data
 * directory's alerts.db, read-only. A cluster: the shared store in PostgreSQL (cluster.postgres_url),
 * where every instance's alerts are.
 */
export function reportFromDataDir(config: WatchpostConfig, from: number, to: number, json: boolean): string {
  const store = config.cluster ? PostgresAlertStore.open(config.cluster.postgres_url) : SqliteAlertStore.openReadOnly(config.storage.data_dir);
  try {
    const report = caseReport(store, config, from, to);
    return json ? `${JSON.stringify(report, null, 2)}\n` : formatCaseReport(report);
  } finally {
    store.close();
  }
}
