/**
 * No id, metric or string can add a line, a tag or a field to line protocol: every encoded
 * point, parsed back by an independent parser written from InfluxDB's line protocol reference,
 * is exactly one line with exactly the expected measurement, tags, fields and timestamp.
 */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { encodeAlertEvent, encodeReading } from './line-protocol.js';
import type { Reading } from './reading.js';
import type { AlertEventPoint } from './storage.js';
import { params } from '../test/support/property.js';

interface ParsedLine {
  measurement: string;
  tags: Array<[string, string]>;
  fields: Array<[string, string | number]>;
  ts: string;
}

/** A strict parser of one line (InfluxDB 1.x line protocol reference). Throws on anything malformed. */
function parseLine(line: string): ParsedLine {
  let i = 0;
  const readName = (stops: string, escapable: string): string => {
    let out = '';
    while (i < line.length && !stops.includes(line[i]!)) {
      if (line[i] === '\\' && i + 1 < line.length && escapable.includes(line[i + 1]!)) {
        out += line[i + 1];
        i += 2;
      } else {
        out += line[i];
        i += 1;
      }
    }
    return out;
  };
  const measurement = readName(', ', ', ');
  if (measurement.length === 0) throw new Error('empty measurement');
  const tags: Array<[string, string]> = [];
  while (line[i] === ',') {
    i += 1;
    const key = readName('=, ', ',= ');
    if (line[i] !== '=') throw new Error(`tag ${key} without =`);
    i += 1;
    // The reference asks for `=` to be escaped in tag values too: an unescaped one is refused here.
    const value = readName('=, ', ',= ');
    if (line[i] === '=') throw new Error(`unescaped = in the value of tag ${key}`);
    if (key.length === 0 || value.length === 0) throw new Error('empty tag key or value');
    tags.push([key, value]);
  }
  if (line[i] !== ' ') throw new Error(`expected a space after the tags at ${i}`);
  i += 1;
  const fields: Array<[string, string | number]> = [];
  for (;;) {
    const key = readName('=, ', ',= ');
    if (line[i] !== '=') throw new Error(`field ${key} without =`);
    i += 1;
    if (line[i] === '"') {
      i += 1;
      let value = '';
      while (line[i] !== '"') {
        if (i >= line.length) throw new Error('unterminated string');
        if (line[i] === '\\' && (line[i + 1] === '"' || line[i + 1] === '\\')) {
          value += line[i + 1];
          i += 2;
        } else {
          value += line[i];
          i += 1;
        }
      }
      i += 1;
      fields.push([key, value]);
    } else {
      const start = i;
      while (i < line.length && line[i] !== ',' && line[i] !== ' ') i += 1;
      const text = line.slice(start, i);
      if (!/^-?(\d+(\.\d*)?|\.\d+)(e[-+]?\d+)?$/i.test(text)) throw new Error(`bad float ${text}`);
      fields.push([key, Number(text)]);
    }
    if (line[i] === ',') {
      i += 1;
      continue;
    }
    break;
  }
  if (line[i] !== ' ') throw new Error('expected a space before the timestamp');
  const ts = line.slice(i + 1);
  if (!/^-?\d+$/.test(ts)) throw new Error(`bad timestamp ${ts}`);
  return { measurement, tags, fields, ts };
}

/** What a name or tag value becomes: backslash is /, CR and LF are spaces (documented in line-protocol.ts). */
const asKey = (s: string) => s.replace(/\\/g, '/').replace(/[\r\n]/g, ' ');
/** What a string field becomes: CR and LF are the two characters \r and \n. */
const asString = (s: string) => s.replace(/\r/g, '\\r').replace(/\n/g, '\\n');

/** Strings full of the characters that matter to line protocol. */
const hostile = fc.string({ unit: fc.constantFrom(',', '=', ' ', '\\', '"', '\n', '\r', '#', '\t', 'a', 'Z', '0', '龙', '\u0000', "'"), maxLength: 20 });
const anyText = fc.oneof(hostile, fc.string({ unit: 'grapheme', maxLength: 20 }));
const nonEmpty = anyText.filter((s) => s.length > 0);
const finite = fc.double({ noNaN: true, noDefaultInfinity: true });
const ts = fc.integer({ min: -1e15, max: 1e15 });

describe('line protocol encoding (property)', () => {
  it('encodes any reading as exactly one point with exactly its measurement, four tags (or fewer when empty), one float field and its timestamp', () => {
    fc.assert(
      fc.property(
        fc.record({ metric: nonEmpty.filter((m) => !m.startsWith('#')), assetId: anyText, sensorId: anyText, assetType: anyText, street: anyText, value: finite, ts }),
        (r: Reading) => {
          const line = encodeReading(r);
          expect(line).not.toMatch(/[\r\n]/);
          const parsed = parseLine(line);
          expect(parsed.measurement).toBe(asKey(r.metric));
          const expectedTags = (
            [
              ['asset_id', r.assetId],
              ['asset_type', r.assetType],
              ['sensor_id', r.sensorId],
              ['street', r.street],
            ] as Array<[string, string]>
          )
            .filter(([, v]) => v.length > 0)
            .map(([k, v]) => [k, asKey(v)]);
          expect(parsed.tags).toEqual(expectedTags);
          expect(parsed.fields).toEqual([['value', r.value === 0 ? 0 : r.value]]);
          expect(parsed.ts).toBe(String(Math.floor(r.ts)));
        },
      ),
      params(),
    );
  });

  it('encodes any alert event as one point whose string fields come back exactly (line breaks as \\n)', () => {
    fc.assert(
      fc.property(
        fc.record({ ruleId: anyText, assetId: anyText, level: anyText, event: anyText, alertId: anyText, message: anyText, value: fc.oneof(finite, fc.constant(Number.NaN)), ts }),
        (e: AlertEventPoint) => {
          const line = encodeAlertEvent(e);
          expect(line).not.toMatch(/[\r\n]/);
          const parsed = parseLine(line);
          expect(parsed.measurement).toBe('alert_events');
          expect(parsed.tags.map(([k]) => k)).toEqual(
            (['asset_id', 'event', 'level', 'rule_id'] as const).filter((k) => ({ asset_id: e.assetId, event: e.event, level: e.level, rule_id: e.ruleId })[k].length > 0),
          );
          const fields = Object.fromEntries(parsed.fields);
          expect(Object.keys(fields)).toEqual(Number.isFinite(e.value) ? ['alert_id', 'value', 'message'] : ['alert_id', 'message']);
          expect(fields.alert_id).toBe(asString(e.alertId));
          expect(fields.message).toBe(asString(e.message));
          if (Number.isFinite(e.value)) expect(fields.value).toBe(e.value === 0 ? 0 : e.value);
        },
      ),
      params(),
    );
  });

  it('refuses what cannot be a point instead of writing it: non-finite values and timestamps, empty or comment measurements', () => {
    const base: Reading = { metric: 'strain', assetId: 'a', sensorId: 's', assetType: 't', street: 'x', value: 1, ts: 1 };
    fc.assert(
      fc.property(fc.constantFrom(Number.NaN, Number.POSITIVE_INFINITY, Number.NEGATIVE_INFINITY), fc.constantFrom('value', 'ts'), (bad, key) => {
        expect(() => encodeReading({ ...base, [key]: bad })).toThrow(/not a finite number/);
      }),
      params(20),
    );
    fc.assert(
      fc.property(hostile, (suffix) => {
        expect(() => encodeReading({ ...base, metric: `#${suffix}` })).toThrow(/comment/);
      }),
      params(50),
    );
    expect(() => encodeReading({ ...base, metric: '' })).toThrow(/empty/);
  });
});
