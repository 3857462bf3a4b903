/**
 * The embedded broker's gate on any topic: the policy, then ingest's check of the device's
 * assets, as the broker applies them. Whatever the topic, a device gets a message accepted only
 * on telemetry/{one of its assets}/{a configured sensor} or status/{its own id}; $ topics are
 * refused, everything else rejected.
 */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { silentLogger } from '../lib/logger.js';
import { MetricsRegistry } from '../lib/metrics.js';
import { params } from '../test/support/property.js';
import { decidePublish, DeviceRegistry } from './broker-policy.js';
import { Catalogue } from './catalogue.js';
import { IngestService } from './ingest-service.js';

const NOW = Date.parse('2025-11-28T02:00:00.000Z');
const catalogue = new Catalogue(
  [
    { id: 'lg-bridge-001', type: 'bridge', name: '桥', street: '龙城街道', sensors: [{ id: 'strain-01', metrics: ['strain'] }] },
    { id: 'bt-slope-002', type: 'slope', name: '坡', street: '坂田街道' },
  ],
  {},
);
const registry = new DeviceRegistry([
  { id: 'dau-bridge-001', secret: 'bridge-secret-0001', assets: ['lg-bridge-001'], subscribe: [] },
  { id: 'dau-slope-002', secret: 'slope-secret-00002', assets: ['bt-slope-002'], subscribe: [] },
  { id: 'city-ops-centre', secret: 'ops-secret-00001', assets: [], subscribe: ['alerts/#', 'status/#', 'telemetry/#'] },
]);
const ids = ['dau-bridge-001', 'dau-slope-002', 'city-ops-centre', 'lg-bridge-001', 'bt-slope-002', 'strain-01', 'red', '+', '#', '', '..', 'a/b'];
const level = fc.oneof(fc.constantFrom(...ids), fc.string({ maxLength: 12 }), fc.string({ unit: fc.constantFrom('a', '-', '.', '/', '$', '龙', ' ', '\u0000'), maxLength: 6 }));
const head = fc.constantFrom('telemetry', 'status', 'alerts', 'errors', '$SYS', '$share', 'Telemetry', '');
const known = fc.constantFrom(...ids);
const topic = fc.oneof(
  fc.string({ maxLength: 80 }),
  fc.tuple(head, fc.array(level, { maxLength: 4 })).map(([h, rest]) => [h, ...rest].join('/')),
  // Near misses: a contract head with one or two known ids.
  fc.tuple(head, known).map(([h, a]) => `${h}/${a}`),
  fc.tuple(head, known, known).map(([h, a, b]) => `${h}/${a}/${b}`),
);
const payload = fc.constantFrom('online', 'offline', '{"values":{"strain":12}}', '[{"values":{"strain":1}},{"values":{"strain":2}}]', '{"event":"firing"}');

/** What the broker lets through for (device, topic, payload): 'refuse', 'reject', or where it was accepted. */
async function gate(deviceId: string, topic: string, body: string): Promise<string> {
  const device = registry.get(deviceId)!;
  const decision = decidePublish(device, topic, Buffer.from(body));
  if (decision.action === 'refuse' || decision.action === 'reject') return decision.action;
  if (decision.action === 'status') return `status/${decision.deviceId}`;
  if (decision.action === 'sparkplug') return 'reject'; // no device here is a Sparkplug edge node
  const ingest = new IngestService({
    catalogue,
    clock: { now: () => NOW },
    logger: silentLogger(),
    metrics: new MetricsRegistry(),
    maxPayloadBytes: 1024 * 1024,
    accept: async () => true,
    feedback: () => undefined,
  });
  const { assetId, sensorId } = decision.topic;
  const outcome = await ingest.handleTelemetry({ deviceId, allowedAssets: device.assets }, topic, assetId, sensorId, Buffer.from(body));
  return outcome.accepted > 0 && outcome.rejected === 0 ? `telemetry/${assetId}/${sensorId}` : 'reject';
}

describe('broker gate (property)', () => {
  it('accepts a device only on its own assets and its own status, whatever the topic', async () => {
    await fc.assert(
      fc.asyncProperty(fc.constantFrom('dau-bridge-001', 'dau-slope-002', 'city-ops-centre'), topic, payload, async (deviceId, t, body) => {
        const result = await gate(deviceId, t, body);
        if (t.startsWith('$')) expect(result).toBe('refuse');
        else if (result !== 'reject') {
          // Accepted: exactly the topic published, and one the device owns.
          expect(result).toBe(t);
          const own = t === `status/${deviceId}` || [...registry.get(deviceId)!.assets].some((a) => t.startsWith(`telemetry/${a}/`));
          expect(own).toBe(true);
          if (t.startsWith('telemetry/lg-bridge-001/')) expect(t).toBe('telemetry/lg-bridge-001/strain-01');
        }
      }),
      params(),
    );
  });

  it('accepts the genuine cases it should', async () => {
    expect(await gate('dau-bridge-001', 'telemetry/lg-bridge-001/strain-01', '{"values":{"strain":12}}')).toBe('telemetry/lg-bridge-001/strain-01');
    expect(await gate('dau-slope-002', 'telemetry/bt-slope-002/anything', '{"values":{"strain":12}}')).toBe('telemetry/bt-slope-002/anything');
    expect(await gate('dau-bridge-001', 'status/dau-bridge-001', 'offline')).toBe('status/dau-bridge-001');
    expect(await gate('dau-bridge-001', 'telemetry/bt-slope-002/anything', '{"values":{"strain":12}}')).toBe('reject');
    expect(await gate('city-ops-centre', 'alerts/red/lg-bridge-001', '{"event":"firing"}')).toBe('reject');
  });
});
