/**
 * Alert message templates: `{name}` placeholders filled from the alert's data.
 * Unknown placeholders are left as written (so a typo shows in the message instead of vanishing);
 * known ones without a value (e.g. no unit in the metrics catalogue) render as nothing.
 */
import { isLevel, LEVEL_NAMES_ZH } from '../lib/levels.js';
import type { Threshold } from './types.js';

export const MESSAGE_PLACEHOLDERS = [
  'asset_name',
  'asset_id',
  'asset_type',
  'street',
  'sensor_id',
  'metric',
  'value',
  'unit',
  'level',
  'level_zh',
  'threshold',
  'rule_id',
  'rule_name',
] as const;

export type MessagePlaceholder = (typeof MESSAGE_PLACEHOLDERS)[number];

export type MessageVars = Partial<Record<MessagePlaceholder, string | number | Threshold | null | undefined>>;

/** Used when a rule has no `message`. `level_zh` is derived from `level` when not given. */
export const DEFAULT_MESSAGE = '{asset_name} {sensor_id} {metric} = {value}{unit}，达到{level_zh}预警阈值 {threshold}';

/** Default of `stale` rules: {value} is the silence in seconds, {threshold} the rule's duration in seconds. */
export const DEFAULT_STALE_MESSAGE = '{asset_name} {sensor_id} 已 {value}{unit} 未上报数据（{rule_name}，阈值 {threshold}{unit}），请检查传感器与采集仪';

/** Default of `offline` rules: {sensor_id} is the device, {value} the seconds it has been offline. */
export const DEFAULT_OFFLINE_MESSAGE = '{asset_name} 采集设备 {sensor_id} 离线 {value}{unit}（{rule_name}，宽限 {threshold}{unit}），请检查供电与通信';

/** Default of compound rules: {metric}, {value} and {threshold} are those of the condition that changed last. */
export const DEFAULT_COMPOUND_MESSAGE = '{asset_name} {rule_name}：复合预警条件满足（{metric} = {value}{unit}，阈值 {threshold}{unit}），达到{level_zh}预警';

/** For the resolved event (level null): `threshold` and `level_zh` are those of the level left. */
export const DEFAULT_RESOLVED_MESSAGE = '{asset_name} {sensor_id} {metric} = {value}{unit}，已回落至{level_zh}预警阈值 {threshold} 以内，预警解除';

const KNOWN = new Set<string>(MESSAGE_PLACEHOLDERS);
const PLACEHOLDER = /\{([a-z_]+)\}/g;

/**
 * Formats a number for people: at most 12 significant digits, which hides binary floating-point
 * noise (0.1 + 0.2 -> "0.3") while keeping any precision a sensor reports; no exponent for
 * ordinary magnitudes, "-0" shown as "0".
 */
export function formatNumber(n: number): string {
  if (!Number.isFinite(n)) return String(n);
  if (Number.isInteger(n)) return Object.is(n, -0) ? '0' : String(n);
  const rounded = Number(n.toPrecision(12));
  return Object.is(rounded, -0) ? '0' : String(rounded);
}

/** `300`, or `[-5, 5]` for an `outside` band. */
export function formatThreshold(threshold: Threshold | null | undefined): string {
  if (threshold === null || threshold === undefined) return '';
  if (typeof threshold === 'number') return formatNumber(threshold);
  return `[${formatNumber(threshold[0])}, ${formatNumber(threshold[1])}]`;
}

function formatValue(value: string | number | Threshold | null | undefined): string {
  if (value === null || value === undefined) return '';
  if (typeof value === 'string') return value;
  return formatThreshold(value);
}

export function renderMessage(template: string, vars: MessageVars): string {
  return template.replace(PLACEHOLDER, (whole, name: string) => {
    if (!KNOWN.has(name)) return whole;
    let value = vars[name as MessagePlaceholder];
    if (name === 'level_zh' && (value === undefined || value === null) && isLevel(vars.level)) value = LEVEL_NAMES_ZH[vars.level];
    return formatValue(value);
  });
}
