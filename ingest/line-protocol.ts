/**
 * InfluxDB line protocol for the contract's layout (section "InfluxDB layout"). Every escape
 * that reaches a line happens here, and no input can add a line, a tag or a field:
 *
 * - measurement: `,` and space are escaped;
 * - tag keys and values: `,`, `=` and space are escaped;
 * - string field values: `"` and `\` are escaped, quoted;
 * - CR and LF end a line in every parser, so in names and tags they become an (escaped) space,
 *   and in string fields the two characters `\n` / `\r`;
 * - a backslash in a name or tag value becomes `/`: line protocol has no lossless escape for
 *   it (InfluxDB 1.x keeps `\\` as two backslashes, VictoriaMetrics reads it as one, and a
 *   trailing `\` swallows the separator after it);
 * - an empty tag value leaves the tag out (InfluxDB has no empty tags);
 * - floats must be finite and are written without `i`, so `value=123` is the float 123;
 * - timestamps are epoch milliseconds: write with `precision=ms`.
 *
 * Escaping tests one precompiled pattern per value and only rewrites values that need it, so
 * encoding a clean reading is string concatenation.
 */
import type { Reading } from './reading.js';
import type { AlertEventPoint } from './storage.js';
import { STORAGE_ERROR_CODES, StorageError } from './storage-errors.js';

export const ALERT_EVENTS_MEASUREMENT = 'alert_events';

const NAME_SPECIAL = /[, \\\r\n]/;
const NAME_SPECIAL_ALL = /[, \\\r\n]/g;
const TAG_SPECIAL = /[,= \\\r\n]/;
const TAG_SPECIAL_ALL = /[,= \\\r\n]/g;
const STRING_SPECIAL = /["\\\r\n]/;
const STRING_SPECIAL_ALL = /["\\\r\n]/g;

const KEY_REPLACEMENTS: Readonly<Record<string, string>> = {
  ',': '\\,',
  '=': '\\=',
  ' ': '\\ ',
  '\\': '/',
  '\r': '\\ ',
  '\n': '\\ ',
};
const STRING_REPLACEMENTS: Readonly<Record<string, string>> = {
  '"': '\\"',
  '\\': '\\\\',
  '\r': '\\r',
  '\n': '\\n',
};

const replaceKeyChar = (ch: string): string => KEY_REPLACEMENTS[ch]!;
const replaceStringChar = (ch: string): string => STRING_REPLACEMENTS[ch]!;

function invalidPoint(message: string): StorageError {
  return new StorageError(STORAGE_ERROR_CODES.INVALID_POINT, message);
}

/** A measurement name: escapes `,` and space. Empty names and a leading `#` (a comment line) are refused. */
export function escapeMeasurement(name: string): string {
  if (name.length === 0) throw invalidPoint('measurement name is empty');
  if (name.charCodeAt(0) === 0x23) throw invalidPoint(`measurement "${name}" starts with "#" and would be read as a comment`);
  return NAME_SPECIAL.test(name) ? name.replace(NAME_SPECIAL_ALL, replaceKeyChar) : name;
}

/** A tag key, tag value or field key: escapes `,`, `=` and space. */
export function escapeTag(value: string): string {
  return TAG_SPECIAL.test(value) ? value.replace(TAG_SPECIAL_ALL, replaceKeyChar) : value;
}

/** A string field value, quoted: escapes `"` and `\`; line breaks become `\n` / `\r`. */
export function quoteString(value: string): string {
  return '"' + (STRING_SPECIAL.test(value) ? value.replace(STRING_SPECIAL_ALL, replaceStringChar) : value) + '"';
}

/** A float field value. Line protocol reads a number without the `i` suffix as a float. */
export function formatFloat(value: number): string {
  if (!Number.isFinite(value)) throw invalidPoint(`field value ${value} is not a finite number`);
  return String(value);
}

/** Epoch milliseconds; a fractional part is dropped. */
export function formatTimestamp(ts: number): string {
  if (!Number.isFinite(ts)) throw invalidPoint(`timestamp ${ts} is not a finite number`);
  return String(Math.floor(ts));
}

/** `,key=value` with the value escaped, or nothing for an empty value. `key` must already be escaped. */
function tag(key: string, value: string): string {
  return value.length === 0 ? '' : ',' + key + '=' + escapeTag(value);
}

/**
 * One reading as one line: `<metric>,asset_id=…,asset_type=…,sensor_id=…,street=… value=<float> <ms>`.
 * Tags are in key order, as InfluxDB prefers. Throws StorageError(STORAGE_INVALID_POINT) for a
 * value or timestamp that is not finite.
 */
export function encodeReading(r: Reading): string {
  return (
    escapeMeasurement(r.metric) +
    tag('asset_id', r.assetId) +
    tag('asset_type', r.assetType) +
    tag('sensor_id', r.sensorId) +
    tag('street', r.street) +
    ' value=' +
    formatFloat(r.value) +
    ' ' +
    formatTimestamp(r.ts)
  );
}

/**
 * One alert event as one line of `alert_events`: tags asset_id, event, level, rule_id (key
 * order); fields alert_id (string), value (float), message (string). An event without a finite
 * value (an acknowledgement, say) is written without the `value` field rather than refused.
 */
export function encodeAlertEvent(e: AlertEventPoint): string {
  return (
    ALERT_EVENTS_MEASUREMENT +
    tag('asset_id', e.assetId) +
    tag('event', e.event) +
    tag('level', e.level) +
    tag('rule_id', e.ruleId) +
    ' alert_id=' +
    quoteString(e.alertId) +
    (Number.isFinite(e.value) ? ',value=' + String(e.value) : '') +
    ',message=' +
    quoteString(e.message) +
    (e.actor !== undefined ? ',actor=' + quoteString(e.actor) : '') +
    ' ' +
    formatTimestamp(e.ts)
  );
}
