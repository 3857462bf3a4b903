import { describe, expect, it } from 'vitest';
import type { SparkplugMessage } from './codec.js';
import { sparkplugNodeSchema } from './config.js';
import { mapMetricName, snakeCase } from './mapping.js';
import { SparkplugNodes } from './node-state.js';
import type { SparkplugTopic } from './topics.js';

const T = 1_764_295_200_000;
const node = (extra: Record<string, unknown> = {}) => sparkplugNodeSchema.parse({ group: 'lg', edge: 'e1', asset: 'a1', ...extra });
const N = (type: SparkplugTopic['type']): SparkplugTopic => ({ group: 'lg', type, edge: 'e1' });
const D = (type: SparkplugTopic['type'], device: string): SparkplugTopic => ({ group: 'lg', type, edge: 'e1', device });
const birth = (seq = 0, bdSeq = 0): SparkplugMessage => ({
  timestamp: T,
  seq,
  metrics: [
    { name: 'bdSeq', type: 'UInt64', value: bdSeq },
    { name: 'Node Control/Rebirth', alias: 9, type: 'Boolean', value: 0 },
    { name: 'Water Level (m)', alias: 1, type: 'Float', value: 1.5 },
  ],
});
const data = (seq: number, value: number, alias = 1): SparkplugMessage => ({ timestamp: T + seq, seq, metrics: [{ alias, type: 'Float', value }] });

describe('Sparkplug metric names', () => {
  it('maps names to snake_case metrics and folders to sensors', () => {
    expect(snakeCase('Water Level (m)')).toBe('water_level_m');
    expect(snakeCase('__Temp-C__')).toBe('temp_c');
    expect(mapMetricName('Water Level (m)', {}, 'e1')).toEqual({ sensor: 'e1', metric: 'water_level_m' });
    expect(mapMetricName('Pumps/pump 2/Flow', {}, 'e1')).toEqual({ sensor: 'pump_2', metric: 'flow' });
    expect(mapMetricName('Pumps/pump 2/Flow', { 'Pumps/pump 2/Flow': 'flow_rate' }, 'e1')).toEqual({ sensor: 'pump_2', metric: 'flow_rate' });
  });
});

describe('SparkplugNodes', () => {
  it('takes metric names and aliases from NBIRTH, and readings from NBIRTH and NDATA by alias', () => {
    const nodes = new SparkplugNodes([node()]);
    expect(nodes.handle(N('NBIRTH'), birth(), T)).toEqual({
      readings: [{ asset: 'a1', sensor: 'e1', metric: 'water_level_m', value: 1.5, ts: T }],
      presence: 'online',
      rebirth: false,
      unknownAliases: 0,
    });
    expect(nodes.handle(N('NDATA'), data(1, 2.5), T).readings).toEqual([{ asset: 'a1', sensor: 'e1', metric: 'water_level_m', value: 2.5, ts: T + 1 }]);
  });

  it('wraps the sequence number from 255 to 0', () => {
    const nodes = new SparkplugNodes([node()]);
    nodes.handle(N('NBIRTH'), birth(254), T);
    expect(nodes.handle(N('NDATA'), data(255, 1), T).dropped).toBeUndefined();
    expect(nodes.handle(N('NDATA'), data(0, 2), T).dropped).toBeUndefined();
    expect(nodes.handle(N('NDATA'), data(1, 3), T).readings.map((r) => r.value)).toEqual([3]);
  });

  it('drops a message after a gap, makes the node offline and asks for a rebirth; data stay dropped until NBIRTH', () => {
    const nodes = new SparkplugNodes([node()]);
    nodes.handle(N('NBIRTH'), birth(), T);
    expect(nodes.handle(N('NDATA'), data(2, 1), T)).toEqual({ readings: [], presence: 'offline', rebirth: true, dropped: 'sequence_gap', unknownAliases: 0 });
    expect(nodes.handle(N('NDATA'), data(3, 1), T)).toEqual({ readings: [], rebirth: true, dropped: 'not_born', unknownAliases: 0 });
    nodes.handle(N('NBIRTH'), birth(0, 1), T);
    expect(nodes.handle(N('NDATA'), data(1, 7), T).readings.map((r) => r.value)).toEqual([7]);
  });

  it('asks an unknown node (data before any birth) for a rebirth', () => {
    const nodes = new SparkplugNodes([node()]);
    expect(nodes.handle(N('NDATA'), data(1, 1), T)).toEqual({ readings: [], rebirth: true, dropped: 'not_born', unknownAliases: 0 });
  });

  it('ends the session on the NDEATH of its birth only (bdSeq)', () => {
    const nodes = new SparkplugNodes([node()]);
    nodes.handle(N('NBIRTH'), birth(0, 4), T);
    const death = (bdSeq: number): SparkplugMessage => ({ metrics: [{ name: 'bdSeq', type: 'UInt64', value: bdSeq }] });
    expect(nodes.handle(N('NDEATH'), death(3), T).dropped).toBe('stale_death');
    expect(nodes.handle(N('NDEATH'), death(4), T)).toEqual({ readings: [], presence: 'offline', rebirth: false, unknownAliases: 0 });
    expect(nodes.handle(N('NDATA'), data(1, 1), T).dropped).toBe('not_born');
  });

  it('maps devices by name or "*", needs their DBIRTH, and counts aliases no birth defined', () => {
    const nodes = new SparkplugNodes([node({ device: 'pump-1', asset: 'a-pump' }), node({ device: '*', asset: 'a-rest' })]);
    nodes.handle(N('NBIRTH'), birth(), T);
    expect(nodes.handle(D('DDATA', 'pump-1'), data(1, 1, 20), T)).toEqual({ readings: [], rebirth: true, dropped: 'not_born', unknownAliases: 0 });
    const dbirth: SparkplugMessage = { timestamp: T, seq: 2, metrics: [{ name: 'Pressure', alias: 20, type: 'Double', value: 0.4 }] };
    expect(nodes.handle(D('DBIRTH', 'pump-1'), dbirth, T).readings).toEqual([{ asset: 'a-pump', sensor: 'pump-1', metric: 'pressure', value: 0.4, ts: T }]);
    expect(nodes.handle(D('DBIRTH', 'valve-7'), { ...dbirth, seq: 3, metrics: [{ name: 'Open', alias: 21, type: 'Boolean', value: 1 }] }, T).readings).toEqual([
      { asset: 'a-rest', sensor: 'valve-7', metric: 'open', value: 1, ts: T },
    ]);
    expect(
      nodes.handle(
        D('DDATA', 'pump-1'),
        {
          seq: 4,
          metrics: [
            { alias: 20, type: 'Double', value: 0.5 },
            { alias: 99, type: 'Double', value: 1 },
          ],
        },
        T + 5,
      ),
    ).toEqual({
      readings: [{ asset: 'a-pump', sensor: 'pump-1', metric: 'pressure', value: 0.5, ts: T + 5 }],
      rebirth: false,
      unknownAliases: 1,
    });
    expect(nodes.handle(D('DDATA', 'pump-1'), { seq: 5, metrics: [{ alias: 99, type: 'Double', value: 1 }] }, T)).toEqual({
      readings: [],
      rebirth: true,
      dropped: 'unknown_alias',
      unknownAliases: 1,
    });
  });

  it('refuses nodes that are not configured, and commands', () => {
    const nodes = new SparkplugNodes([node()]);
    expect(nodes.handle({ group: 'other', type: 'NBIRTH', edge: 'e1' }, birth(), T).dropped).toBe('not_configured');
    expect(nodes.handle(N('NCMD'), birth(), T).dropped).toBe('command');
  });
});
