/**
 * Shared by the durability end-to-end tests (server/durability*.e2e.test.ts): a configuration
 * with a few bridge devices publishing one strain reading each, and helpers that read
 * Watchpost's health, metrics and alerts and InfluxDB's stored points.
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { stringify } from 'yaml';
import type { Influxd } from './influxd.js';
import type { WatchpostProcess } from './watchpost-process.js';

export const DEVICES = 4;
export const SECRET = (i: number) => `dau-secret-000${i}`;
export const VIEWER_TOKEN = 'viewer-token-durability-0001';
/** Sent as basic auth (influxd in the tests has auth off and ignores it): it must never be logged. */
export const INFLUX_PASSWORD = 'influx-password-durability';
export const assetId = (i: number) => `lg-bridge-00${i}`;
/** Exact binary fractions, so a value read back compares exactly. */
export const valueOf = (device: number) => (seq: number) => device * 1000 + seq * 0.25;

export function durabilityConfig(options: {
  influx: Influxd;
  dataDir: string;
  broker: Record<string, unknown>;
  storage?: Record<string, unknown>;
  influxOptions?: Record<string, unknown>;
  escalations?: unknown[];
  channels?: unknown[];
}) {
  return {
    broker: options.broker,
    api: { host: '127.0.0.1', port: 0, tokens: [{ name: 'screen', token: VIEWER_TOKEN, role: 'viewer' }] },
    storage: {
      data_dir: options.dataDir,
      influx: {
        url: options.influx.url,
        version: 1,
        database: options.influx.database,
        username: 'watchpost',
        password: INFLUX_PASSWORD,
        flush_interval: '200ms',
        timeout: '2s',
        retry_max_delay: '1s',
        ...options.influxOptions,
      },
      deadman: { no_readings: '10m', failing_writes: '10s' },
      ...options.storage,
    },
    assets: Array.from({ length: DEVICES }, (_, i) => ({ id: assetId(i), type: 'bridge', name: `桥 ${i}`, street: '龙城街道', sensors: [{ id: 'strain-01', metrics: ['strain'] }] })),
    metrics: { strain: { unit: 'µε', min: -1e9, max: 1e9 } },
    devices: Array.from({ length: DEVICES }, (_, i) => ({ id: `dau-${i}`, secret: SECRET(i), assets: [assetId(i)] })),
    ...(options.escalations ? { escalations: options.escalations } : {}),
    ...(options.channels ? { channels: options.channels } : {}),
  };
}

export function writeConfigDir(dir: string, config: object): void {
  mkdirSync(dir, { recursive: true });
  writeFileSync(join(dir, 'watchpost.yaml'), stringify(config));
}

export async function health(apiUrl: string): Promise<{ code: number; body: any }> {
  const res = await fetch(`${apiUrl}/healthz`);
  return { code: res.status, body: await res.json() };
}

export async function metricsText(apiUrl: string): Promise<string> {
  return (await fetch(`${apiUrl}/metrics`)).text();
}

export interface AlertSummary {
  rule_id: string;
  asset_id: string;
  level: string;
  state: string;
}

export async function alertList(apiUrl: string): Promise<AlertSummary[]> {
  const res = await fetch(`${apiUrl}/api/v1/alerts`, { headers: { authorization: `Bearer ${VIEWER_TOKEN}` } });
  return ((await res.json()) as { alerts: AlertSummary[] }).alerts;
}

/** Every stored strain point of one asset: ts -> value. */
export async function storedStrain(influx: Influxd, asset: string): Promise<Map<number, number>> {
  const [result] = await influx.query(`SELECT value FROM strain WHERE asset_id = '${asset}'`);
  return new Map((result?.series?.[0]?.values ?? []).map((row) => [row[0] as number, row[1] as number]));
}

/** Samples of `watchpost_storage_failed_total` above zero (drops), as lines. */
export function drops(metrics: string): string[] {
  return metrics.split('\n').filter((l) => l.startsWith('watchpost_storage_failed_total') && !l.endsWith(' 0'));
}

export function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, Math.max(0, ms)));
}

export type { WatchpostProcess };
