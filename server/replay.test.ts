import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { loadConfig } from './config/load.js';
import type { WatchpostConfig } from './config/schema.js';
import { detectFormat, parseReplayInput, splitCsvLine } from './replay-input.js';
import { deviceAssets, formatRejected, formatTable, readReplayFile, runReplay } from './replay.js';
import { Catalogue } from '../ingest/catalogue.js';

const demo = loadConfig(join(import.meta.dirname, '..', 'config-demo'), {});
if (!demo.ok) throw new Error('config-demo does not load');
const config: WatchpostConfig = demo.config;
const catalogue = new Catalogue(config.assets, config.metrics);
const ctx = { catalogue, devices: deviceAssets(config, catalogue) };

const T0 = Date.parse('2025-06-01T00:00:00+08:00');
const dir = mkdtempSync(join(tmpdir(), 'watchpost-replay-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

/** A night in Longgang: a gas leak in a valve well, a hydrant sagging, a slope DAU dropping off. */
function night(): string {
  const lines: unknown[] = [];
  for (let s = 0; s <= 40; s++) {
    const lel = s < 10 ? 1 : Math.min(55, 1 + (s - 10) * 3);
    lines.push({ asset_id: 'lg-gas-001', sensor_id: 'vw-02', ts: T0 + s * 1000, values: { gas_lel: lel } });
  }
  lines.push({ device_id: 'dau-slope-001', status: 'offline', ts: new Date(T0 + 60_000).toISOString() });
  for (let s = 0; s <= 30; s += 5) lines.push({ asset_id: 'lg-hydrant-001', sensor_id: 'hp-03', ts: T0 + 120_000 + s * 1000, values: { hydrant_pressure: s < 10 ? 0.3 : 0.21 } });
  lines.push({ asset_id: 'lg-hydrant-001', sensor_id: 'hp-03', ts: T0 + 300_000, values: { hydrant_pressure: 0.33 } });
  lines.push({ device_id: 'dau-slope-001', status: 'online', ts: T0 + 600_000 });
  return lines.map((l) => JSON.stringify(l)).join('\n');
}

describe('replay input', () => {
  it('checks lines like ingest does and reports each problem with its line', () => {
    const text = [
      JSON.stringify({ asset_id: 'lg-gas-001', sensor_id: 'vw-01', ts: T0, values: { gas_lel: 3 } }),
      '',
      '{not json',
      JSON.stringify({ asset_id: 'nowhere', sensor_id: 'x', ts: T0, values: { gas_lel: 3 } }),
      JSON.stringify({ asset_id: 'lg-gas-001', sensor_id: 'vw-09', ts: T0, values: { gas_lel: 3 } }),
      JSON.stringify({ asset_id: 'lg-gas-001', sensor_id: 'vw-01', ts: T0, values: { pressure: 0.3 } }),
      JSON.stringify({ asset_id: 'lg-gas-001', sensor_id: 'vw-01', ts: T0, values: { gas_lel: 130 } }),
      JSON.stringify({ asset_id: 'lg-gas-001', sensor_id: 'vw-01', values: { gas_lel: 3 } }),
      JSON.stringify({ asset_id: 'lg-gas-001', sensor_id: 'vw-01', ts: 1_748_707_200, values: { gas_lel: 3 } }),
      JSON.stringify({ device_id: 'dau-9', status: 'offline', ts: T0 }),
      JSON.stringify({ device_id: 'rtu-gas-001', status: 'gone', ts: T0 }),
      JSON.stringify({ asset_id: 'lg-gas-001', sensor_id: 'vw-01', ts: T0, values: { gas_lel: 3 }, note: 'x' }),
    ].join('\n');
    const input = parseReplayInput(text, 'jsonl', ctx);
    expect(input.readings).toBe(1);
    expect(formatRejected(input.rejected).split('\n')).toEqual([
      expect.stringMatching(/^line 3: bad_json: /),
      'line 4: unknown_asset: asset "nowhere" is not configured',
      'line 5: unknown_sensor: sensor "vw-09" is not configured on asset "lg-gas-001"',
      'line 6: unknown_metric: metric "pressure" is not configured on sensor "vw-01"',
      'line 7: out_of_range: gas_lel = 130 is outside the plausible range [0, 100]',
      'line 8: bad_timestamp: ts is required in recorded readings',
      'line 9: bad_timestamp: ts 1748707200 is before 2000-01-01 (epoch seconds instead of milliseconds?)',
      'line 10: unknown_device: device "dau-9" is not configured',
      'line 11: bad_status: status must be "online" or "offline"',
      'line 12: bad_shape: unknown field "note" (a reading has asset_id, sensor_id, ts, values)',
      '',
    ]);
  });

  it('reads CSV in long and wide form, with quotes, booleans and RFC 3339 times, sorted by ts', () => {
    const long = 'asset_id,sensor_id,ts,metric,value\n"lg-building-001",panel,2025-06-01T00:00:02+08:00,fire_alarm,true\nlg-building-001,panel,1748707200000,fault,0\n';
    const a = parseReplayInput(long, 'csv', ctx);
    expect(a.rejected).toEqual([]);
    expect(a.items.map((i) => (i.kind === 'reading' ? [i.ts - T0, i.reading.metric, i.reading.value] : []))).toEqual([
      [0, 'fault', 0],
      [2000, 'fire_alarm', 1],
    ]);
    const wide =
      '\uFEFFasset_id,sensor_id,ts,strain\nlg-bridge-001,strain-01,1748707200000,201.5\nlg-bridge-001,strain-01,1748707201000,\nlg-bridge-001,strain-01,1748707202000,"x"\nlg-bridge-001,strain-01\n';
    const b = parseReplayInput(wide, 'csv', ctx);
    expect(b.readings).toBe(1);
    expect(b.rejected).toEqual([
      { line: 3, reason: 'bad_shape', detail: '"values" is empty' },
      { line: 4, reason: 'bad_value', detail: 'strain must be a finite number or a boolean' },
      { line: 5, reason: 'bad_csv', detail: '2 fields, the header has 4' },
    ]);
    expect(parseReplayInput('ts,value\n1,2\n', 'csv', ctx).rejected[0]!.reason).toBe('bad_csv');
  });

  it('splits CSV lines and detects the format', () => {
    expect(splitCsvLine('a,"b ""c"", d",e')).toEqual(['a', 'b "c", d', 'e']);
    expect(splitCsvLine('"open')).toBeUndefined();
    expect([detectFormat('x.csv', '{'), detectFormat('x.jsonl', 'a,b'), detectFormat('-', ' {"a":1}'), detectFormat('-', 'asset_id')]).toEqual(['csv', 'jsonl', 'jsonl', 'csv']);
  });
});

describe('replay', () => {
  it('prints the alert timeline as a table, in a given UTC offset', () => {
    const file = join(dir, 'night.jsonl');
    writeFileSync(file, night());
    const report = runReplay(config, readReplayFile(config, file), { tz: '+08:00' });
    expect(formatTable(report)).toBe(
      [
        'time                       event     alert  level        rule                  asset/sensor                metric            value     threshold  note',
        '2025-06-01T00:00:16+08:00  firing    #1     blue         gas-leak              lg-gas-001/vw-02            gas_lel           19 %LEL   10 %LEL',
        '2025-06-01T00:00:21+08:00  raised    #1     blue→orange  gas-leak              lg-gas-001/vw-02            gas_lel           34 %LEL   25 %LEL',
        '2025-06-01T00:00:29+08:00  raised    #1     orange→red   gas-leak              lg-gas-001/vw-02            gas_lel           55 %LEL   50 %LEL',
        '2025-06-01T00:02:15+08:00  firing    #2     yellow       hydrant-pressure-low  lg-hydrant-001/hp-03        hydrant_pressure  0.21 MPa  0.25 MPa',
        '2025-06-01T00:03:00+08:00  firing    #3     yellow       dau-offline           lg-slope-001/dau-slope-001  status            120 s     120 s',
        '2025-06-01T00:05:00+08:00  resolved  #2     yellow       hydrant-pressure-low  lg-hydrant-001/hp-03        hydrant_pressure  0.33 MPa  0.25 MPa',
        '2025-06-01T00:10:00+08:00  resolved  #3     yellow       dau-offline           lg-slope-001/dau-slope-001  status            540 s     120 s      device_online',
        '',
        '49 readings, 2 device status changes, 2025-06-01T00:00:00+08:00 .. 2025-06-01T00:10:00+08:00',
        '3 alerts, 1 still open at the end',
        '',
      ].join('\n'),
    );
  });

  it('is deterministic, and the JSON names every event with its alert', () => {
    const file = join(dir, 'night2.jsonl');
    writeFileSync(file, night());
    const a = JSON.stringify(runReplay(config, readReplayFile(config, file)));
    const b = JSON.stringify(runReplay(config, readReplayFile(config, file)));
    expect(a).toBe(b);
    const report = JSON.parse(a);
    expect(report.timeline[1]).toEqual({
      at: '2025-05-31T16:00:21Z',
      event: 'level_raised',
      alert: 1,
      rule_id: 'gas-leak',
      asset_id: 'lg-gas-001',
      sensor_id: 'vw-02',
      metric: 'gas_lel',
      level: 'orange',
      previous_level: 'blue',
      value: 34,
      unit: '%LEL',
      threshold: 25,
    });
    expect(report.alerts).toEqual([
      { alert: 1, rule_id: 'gas-leak', asset_id: 'lg-gas-001', sensor_id: 'vw-02', fired_at: '2025-05-31T16:00:16Z', resolved_at: null, highest_level: 'red', events: 3 },
      {
        alert: 2,
        rule_id: 'hydrant-pressure-low',
        asset_id: 'lg-hydrant-001',
        sensor_id: 'hp-03',
        fired_at: '2025-05-31T16:02:15Z',
        resolved_at: '2025-05-31T16:05:00Z',
        highest_level: 'yellow',
        events: 2,
      },
      {
        alert: 3,
        rule_id: 'dau-offline',
        asset_id: 'lg-slope-001',
        sensor_id: 'dau-slope-001',
        fired_at: '2025-05-31T16:03:00Z',
        resolved_at: '2025-05-31T16:10:00Z',
        highest_level: 'yellow',
        events: 2,
      },
    ]);
    expect(report.input).toEqual({ readings: 49, statuses: 2, rejected: [] });
  });

  it('runs the clock on to --end, so silence at the end of a recording shows', () => {
    const file = join(dir, 'short.csv');
    writeFileSync(file, 'asset_id,sensor_id,ts,strain\nlg-bridge-001,strain-01,2025-06-01T00:00:00Z,120\n');
    const report = runReplay(config, readReplayFile(config, file), { end: Date.parse('2025-06-01T01:00:00Z') });
    expect(report.timeline.map((t) => `${t.at} ${t.event} ${t.rule_id} ${t.sensor_id} ${t.value}`)).toEqual(['2025-06-01T00:10:00Z firing sensor-silent strain-01 600']);
  });
});
