import { describe, expect, it } from 'vitest';
import { filterCovers, filterReaches, parseTopic, topics } from './topics.js';

describe('parseTopic', () => {
  it('parses telemetry and status topics', () => {
    expect(parseTopic('telemetry/lg-bridge-001/strain-01')).toEqual({ kind: 'telemetry', assetId: 'lg-bridge-001', sensorId: 'strain-01' });
    expect(parseTopic('status/dau-bridge-001')).toEqual({ kind: 'status', deviceId: 'dau-bridge-001' });
  });

  it.each([
    'telemetry/lg-bridge-001',
    'telemetry/lg-bridge-001/strain-01/extra',
    'telemetry//strain-01',
    'telemetry/a b/strain',
    'telemetry/桥/strain',
    `telemetry/${'a'.repeat(65)}/s`,
    'status/',
    'status/a/b',
    'errors/dau-1',
    'Telemetry/a/b',
  ])('treats %s as other', (topic) => {
    expect(parseTopic(topic)).toEqual({ kind: 'other' });
  });
});

describe('topic builders', () => {
  it('builds contract topics', () => {
    expect(topics.errors('dau-1')).toBe('errors/dau-1');
    expect(topics.alerts('red', 'lg-bridge-001')).toBe('alerts/red/lg-bridge-001');
    expect(topics.inbound()).toEqual(['telemetry/+/+', 'status/+']);
    expect(topics.inbound('watchpost')).toEqual(['$share/watchpost/telemetry/+/+', '$share/watchpost/status/+']);
  });

  it('refuses ids that would change the topic structure', () => {
    expect(() => topics.errors('a/b')).toThrow(/invalid device id/);
    expect(() => topics.alerts('red', '#')).toThrow(/invalid asset id/);
    expect(() => topics.telemetry('a', '+')).toThrow(/invalid sensor id/);
  });
});

describe('filterCovers', () => {
  it.each([
    ['alerts/#', 'alerts/#', true],
    ['alerts/#', 'alerts/red/lg-1', true],
    ['alerts/#', 'alerts/+/lg-1', true],
    ['alerts/+/lg-1', 'alerts/red/lg-1', true],
    ['alerts/+/lg-1', 'alerts/+/lg-1', true],
    ['alerts/red/lg-1', 'alerts/+/lg-1', false],
    ['alerts/+/lg-1', 'alerts/red/#', false],
    ['alerts/#', 'status/x', false],
    ['alerts/red', 'alerts/red/x', false],
    ['alerts/red/x', 'alerts/red', false],
    ['status/#', '#', false],
  ])('%s covers %s: %s', (allowed, requested, expected) => {
    expect(filterCovers(allowed, requested)).toBe(expected);
  });

  it('knows which filters reach a first level', () => {
    expect(filterReaches('#', 'errors')).toBe(true);
    expect(filterReaches('+/dau-1', 'errors')).toBe(true);
    expect(filterReaches('errors/#', 'errors')).toBe(true);
    expect(filterReaches('alerts/#', 'errors')).toBe(false);
  });
});
