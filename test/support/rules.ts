/**
 * Helpers for rule tests: readings from compact tuples, and rule events as one line each, so a
 * test asserts a whole alert timeline at a glance. Used by tests only.
 */
import type { Reading } from '../../ingest/reading.js';
import { ruleSchema } from '../../rules/config.js';
import { RuleRunner } from '../../rules/rule-runner.js';
import type { ReplayItem } from '../../rules/replay.js';
import type { AssetRef } from '../../rules/state.js';
import type { RuleEvent } from '../../rules/types.js';

/** 2025-06-01T00:00:00+08:00, the start of Shenzhen's main flood season month. */
export const T0 = Date.parse('2025-06-01T00:00:00+08:00');
export const SEC = 1000;
export const MIN = 60_000;
export const HOUR = 3_600_000;
export const DAY = 86_400_000;

export function runnerOf(rules: readonly unknown[]): RuleRunner {
  return new RuleRunner(rules.map((r) => ruleSchema.parse(r)));
}

export interface AssetInfo {
  assetId: string;
  assetType: string;
  street: string;
}

export const SLOPE: AssetInfo = { assetId: 'lg-slope-001', assetType: 'slope', street: '坂田街道' };
export const BRIDGE: AssetInfo = { assetId: 'lg-bridge-001', assetType: 'bridge', street: '龙城街道' };
export const GAS: AssetInfo = { assetId: 'lg-gas-001', assetType: 'pipeline', street: '平湖街道' };
export const HYDRANT: AssetInfo = { assetId: 'lg-hydrant-002', assetType: 'fire', street: '布吉街道' };

export function reading(asset: AssetInfo, sensorId: string, metric: string, ts: number, value: number): ReplayItem {
  const r: Reading = { ...asset, sensorId, metric, value, ts };
  return { kind: 'reading', ts, reading: r };
}

export function status(deviceId: string, assets: AssetRef[], value: 'online' | 'offline', ts: number): ReplayItem {
  return { kind: 'presence', ts, device: { deviceId, assets }, status: value };
}

/** `t` relative to T0 as `d1 06:30`, `06:30:15`. */
export function offset(ts: number, t0 = T0): string {
  const ms = ts - t0;
  const sign = ms < 0 ? '-' : '';
  const abs = Math.abs(ms);
  const d = Math.floor(abs / DAY);
  const h = Math.floor((abs % DAY) / HOUR);
  const m = Math.floor((abs % HOUR) / MIN);
  const s = Math.floor((abs % MIN) / SEC);
  const hm = `${String(h).padStart(2, '0')}:${String(m).padStart(2, '0')}${s ? `:${String(s).padStart(2, '0')}` : ''}`;
  return `${sign}${d ? `d${d} ` : ''}${hm}`;
}

const round = (v: number) => (Math.abs(v) >= 1000 ? Math.round(v) : Number(v.toPrecision(4)));

/** `06:00 rule asset/sensor metric yellow value=46.2 threshold=45 [flapping started, 7 changes] (reason)` */
export function line(e: RuleEvent, t0 = T0): string {
  const threshold = Array.isArray(e.threshold) ? `[${e.threshold.join(', ')}]` : String(e.threshold);
  const extra = [e.flapping ? ` [flapping ${e.flapping}, ${e.changes} changes]` : '', e.reason ? ` (${e.reason})` : ''].join('');
  return `${offset(e.ts, t0)} ${e.ruleId} ${e.assetId}/${e.sensorId} ${e.metric} ${e.level ?? 'clear'} ${round(e.value)} ${threshold}${extra}`;
}
