import { describe, expect, it } from 'vitest';
import { encodeAlertEvent, encodeReading, escapeMeasurement, escapeTag, quoteString } from './line-protocol.js';
import type { Reading } from './reading.js';
import type { AlertEventPoint } from './storage.js';
import { StorageError } from './storage-errors.js';

const reading: Reading = {
  assetId: 'lg-bridge-001',
  sensorId: 'strain-01',
  assetType: 'bridge',
  street: '龙城街道',
  metric: 'strain',
  value: 123.4,
  ts: 1764295200123,
};

const event: AlertEventPoint = {
  ruleId: 'bridge-strain',
  assetId: 'lg-bridge-001',
  level: 'red',
  event: 'firing',
  alertId: 'a-7f3c',
  value: 312.5,
  message: 'lg-bridge-001 strain-01 应变 312.5µε，超过红色阈值 300',
  ts: 1764295200456,
};

function thrownBy(fn: () => unknown): unknown {
  try {
    fn();
  } catch (err) {
    return err;
  }
  return undefined;
}

/** The parts of a line outside escapes and quotes: measurement+tags, fields, timestamp. */
function splitLine(line: string): { key: string[]; fields: string[]; ts: string } {
  const parts: string[][] = [];
  let current = '';
  let items: string[] = [];
  let quoted = false;
  for (let i = 0; i < line.length; i++) {
    const ch = line[i]!;
    if (ch === '\\') {
      current += ch + (line[i + 1] ?? '');
      i++;
    } else if (ch === '"') {
      quoted = !quoted;
      current += ch;
    } else if (!quoted && ch === ',') {
      items.push(current);
      current = '';
    } else if (!quoted && ch === ' ') {
      items.push(current);
      parts.push(items);
      items = [];
      current = '';
    } else {
      current += ch;
    }
  }
  items.push(current);
  parts.push(items);
  expect(parts).toHaveLength(3);
  return { key: parts[0]!, fields: parts[1]!, ts: parts[2]![0]! };
}

describe('encodeReading', () => {
  it('writes measurement, sorted tags, a float field and a millisecond timestamp', () => {
    expect(encodeReading(reading)).toBe('strain,asset_id=lg-bridge-001,asset_type=bridge,sensor_id=strain-01,street=龙城街道 value=123.4 1764295200123');
  });

  it('writes whole numbers without the integer suffix, so they stay floats', () => {
    expect(encodeReading({ ...reading, value: 123 })).toBe('strain,asset_id=lg-bridge-001,asset_type=bridge,sensor_id=strain-01,street=龙城街道 value=123 1764295200123');
    expect(encodeReading({ ...reading, value: -0.5, ts: 0 })).toMatch(/ value=-0\.5 0$/);
    expect(encodeReading({ ...reading, value: 1e21 })).toMatch(/ value=1e\+21 1764295200123$/);
    expect(encodeReading({ ...reading, value: 1 })).not.toContain('1i');
  });

  it('drops a fractional part of the timestamp', () => {
    expect(encodeReading({ ...reading, ts: 1764295200123.9 })).toMatch(/ 1764295200123$/);
  });

  it('escapes commas, spaces and equals signs in tag values', () => {
    const line = encodeReading({ ...reading, street: '龙城街道, 东区=1', assetType: 'a b' });
    expect(line).toBe('strain,asset_id=lg-bridge-001,asset_type=a\\ b,sensor_id=strain-01,street=龙城街道\\,\\ 东区\\=1 value=123.4 1764295200123');
    expect(splitLine(line).key).toEqual(['strain', 'asset_id=lg-bridge-001', 'asset_type=a\\ b', 'sensor_id=strain-01', 'street=龙城街道\\,\\ 东区\\=1']);
  });

  it('cannot inject a tag, a field or a line through a tag value', () => {
    const hostile = 'x,evil=1 value=999 1\nstrain,asset_id=forged value=1 2';
    const line = encodeReading({ ...reading, street: hostile, sensorId: 'a\r\nb' });
    expect(line).toBe(
      'strain,asset_id=lg-bridge-001,asset_type=bridge,sensor_id=a\\ \\ b,' + 'street=x\\,evil\\=1\\ value\\=999\\ 1\\ strain\\,asset_id\\=forged\\ value\\=1\\ 2 value=123.4 1764295200123',
    );
    expect(line).not.toMatch(/[\r\n]/);
    const { key, fields, ts } = splitLine(line);
    expect(key).toHaveLength(5);
    expect(fields).toEqual(['value=123.4']);
    expect(ts).toBe('1764295200123');
  });

  it('turns a backslash in a tag into a slash, so it cannot escape the separator after it', () => {
    expect(encodeReading({ ...reading, street: 'a\\', sensorId: 's\\,x' })).toBe('strain,asset_id=lg-bridge-001,asset_type=bridge,sensor_id=s/\\,x,street=a/ value=123.4 1764295200123');
  });

  it('escapes commas and spaces in the measurement', () => {
    expect(encodeReading({ ...reading, metric: 'a,b c' })).toMatch(/^a\\,b\\ c,asset_id=/);
    expect(escapeMeasurement('x=y')).toBe('x=y');
  });

  it('leaves out a tag whose value is empty', () => {
    expect(encodeReading({ ...reading, street: '' })).toBe('strain,asset_id=lg-bridge-001,asset_type=bridge,sensor_id=strain-01 value=123.4 1764295200123');
  });

  it('refuses values and timestamps that are not finite, and comment-like measurements', () => {
    for (const bad of [Number.NaN, Number.POSITIVE_INFINITY, Number.NEGATIVE_INFINITY]) {
      expect(() => encodeReading({ ...reading, value: bad })).toThrow(StorageError);
      expect(() => encodeReading({ ...reading, ts: bad })).toThrow(/timestamp/);
    }
    expect(() => encodeReading({ ...reading, metric: '#strain' })).toThrow(/comment/);
    expect(() => encodeReading({ ...reading, metric: '' })).toThrow(/empty/);
    const error = thrownBy(() => encodeReading({ ...reading, value: Number.NaN }));
    expect(error).toBeInstanceOf(StorageError);
    expect((error as StorageError).code).toBe('STORAGE_INVALID_POINT');
    expect((error as StorageError).canRetry()).toBe(false);
  });
});

describe('encodeAlertEvent', () => {
  it('writes alert_events with sorted tags and alert_id, value and message fields', () => {
    expect(encodeAlertEvent(event)).toBe(
      'alert_events,asset_id=lg-bridge-001,event=firing,level=red,rule_id=bridge-strain ' +
        'alert_id="a-7f3c",value=312.5,message="lg-bridge-001 strain-01 应变 312.5µε，超过红色阈值 300" 1764295200456',
    );
  });

  it('escapes quotes, backslashes and line breaks in string fields', () => {
    const line = encodeAlertEvent({ ...event, message: 'say "hi" \\ C:\\tmp\nnext\r\nline', alertId: 'a"b' });
    expect(line).toBe(
      'alert_events,asset_id=lg-bridge-001,event=firing,level=red,rule_id=bridge-strain ' +
        'alert_id="a\\"b",value=312.5,message="say \\"hi\\" \\\\ C:\\\\tmp\\nnext\\r\\nline" 1764295200456',
    );
    expect(line).not.toMatch(/[\r\n]/);
  });

  it('cannot inject a field or a line through the message', () => {
    const line = encodeAlertEvent({ ...event, message: 'x",evil=1 2\nalert_events evil=1 3', alertId: 'id\\' });
    expect(line).not.toMatch(/[\r\n]/);
    const { key, fields, ts } = splitLine(line);
    expect(key).toEqual(['alert_events', 'asset_id=lg-bridge-001', 'event=firing', 'level=red', 'rule_id=bridge-strain']);
    expect(fields).toEqual(['alert_id="id\\\\"', 'value=312.5', 'message="x\\",evil=1 2\\nalert_events evil=1 3"']);
    expect(ts).toBe('1764295200456');
  });

  it('escapes tags and leaves out a value that is not finite', () => {
    expect(encodeAlertEvent({ ...event, value: Number.NaN, event: 'acknowledged', ruleId: 'r 1' })).toBe(
      'alert_events,asset_id=lg-bridge-001,event=acknowledged,level=red,rule_id=r\\ 1 ' + 'alert_id="a-7f3c",message="lg-bridge-001 strain-01 应变 312.5µε，超过红色阈值 300" 1764295200456',
    );
  });
});

describe('escape helpers', () => {
  it('return clean values unchanged', () => {
    const clean = 'lg-bridge-001';
    expect(escapeTag(clean)).toBe(clean);
    expect(quoteString(clean)).toBe('"lg-bridge-001"');
    expect(escapeTag('k=v,w x')).toBe('k\\=v\\,w\\ x');
  });
});
