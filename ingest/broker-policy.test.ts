import { describe, expect, it } from 'vitest';
import { allowSubscribe, decidePublish, DeviceRegistry } from './broker-policy.js';

const registry = new DeviceRegistry([
  { id: 'dau-bridge-001', secret: 'bridge-secret-0001', assets: ['lg-bridge-001'], subscribe: [] },
  { id: 'city-ops-centre', secret: 'ops-secret-00001', assets: [], subscribe: ['alerts/#', 'status/#'] },
]);
const dau = registry.get('dau-bridge-001')!;
const ops = registry.get('city-ops-centre')!;
const payload = (s: string) => Buffer.from(s);

describe('decidePublish', () => {
  it('refuses $SYS and anything from anonymous clients at the protocol level', () => {
    expect(decidePublish(dau, '$SYS/broker/uptime', payload('1'))).toEqual({ action: 'refuse', reason: 'publishing to $SYS topics is not allowed' });
    expect(decidePublish(undefined, 'telemetry/lg-bridge-001/s', payload('{}'))).toEqual({ action: 'refuse', reason: 'anonymous clients may not publish' });
  });

  it('hands telemetry to ingest, which checks the asset against the device', () => {
    expect(decidePublish(dau, 'telemetry/lg-bridge-001/strain-01', payload('{}'))).toEqual({
      action: 'telemetry',
      topic: { kind: 'telemetry', assetId: 'lg-bridge-001', sensorId: 'strain-01' },
    });
  });

  it('accepts only the device’s own status with online/offline', () => {
    expect(decidePublish(dau, 'status/dau-bridge-001', payload('offline'))).toEqual({ action: 'status', deviceId: 'dau-bridge-001', value: 'offline' });
    expect(decidePublish(dau, 'status/city-ops-centre', payload('online'))).toMatchObject({ action: 'reject', reason: 'not_allowed' });
    expect(decidePublish(dau, 'status/dau-bridge-001', payload('up'))).toMatchObject({ action: 'reject', reason: 'bad_shape' });
  });

  it('rejects platform topics and unknown topics from devices', () => {
    for (const topic of ['errors/dau-bridge-001', 'alerts/red/lg-bridge-001', 'foo', 'telemetry/lg-bridge-001']) {
      expect(decidePublish(dau, topic, payload('{}'))).toMatchObject({ action: 'reject', reason: 'bad_topic' });
    }
  });
});

describe('allowSubscribe', () => {
  it('gives a device its own errors/ topic only', () => {
    expect(allowSubscribe(dau, 'errors/dau-bridge-001')).toBe(true);
    expect(allowSubscribe(dau, 'errors/city-ops-centre')).toBe(false);
    expect(allowSubscribe(dau, 'errors/#')).toBe(false);
    expect(allowSubscribe(dau, 'alerts/#')).toBe(false);
    expect(allowSubscribe(undefined, 'alerts/#')).toBe(false);
  });

  it('gives an observer its configured filters and narrower ones, never errors/ or $SYS', () => {
    expect(allowSubscribe(ops, 'alerts/#')).toBe(true);
    expect(allowSubscribe(ops, 'alerts/red/+')).toBe(true);
    expect(allowSubscribe(ops, 'status/dau-bridge-001')).toBe(true);
    expect(allowSubscribe(ops, 'telemetry/#')).toBe(false);
    expect(allowSubscribe(ops, '#')).toBe(false);
    expect(allowSubscribe(ops, '+/dau-bridge-001')).toBe(false);
    expect(allowSubscribe(ops, '$SYS/#')).toBe(false);
  });

  it('maps assets to the devices that may publish for them', () => {
    expect(registry.devicesForAsset('lg-bridge-001')).toEqual(['dau-bridge-001']);
    expect(registry.devicesForAsset('nope')).toEqual([]);
  });
});
