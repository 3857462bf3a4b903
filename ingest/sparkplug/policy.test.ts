/** The broker policy for Sparkplug edge nodes: their own topics only, everything else refused. */
import { describe, expect, it } from 'vitest';
import { allowSubscribe, decidePublish, DeviceRegistry } from '../broker-policy.js';
import { deviceSchema } from '../config.js';

const registry = new DeviceRegistry([
  deviceSchema.parse({ id: 'e1', secret: 'edge-secret-00001', assets: ['a1'] }),
  deviceSchema.parse({ id: 'd2', secret: 'other-secret-0002', assets: ['a1'] }),
]);
const edge = registry.get('e1')!;
const other = registry.get('d2')!;
const groups = new Set(['lg']);
const payload = Buffer.from([0x08, 0x01]);

describe('Sparkplug broker policy', () => {
  it('lets a configured edge node publish its own node and device messages', () => {
    for (const topic of ['spBv1.0/lg/NBIRTH/e1', 'spBv1.0/lg/NDATA/e1', 'spBv1.0/lg/NDEATH/e1', 'spBv1.0/lg/DBIRTH/e1/pump-1', 'spBv1.0/lg/DDATA/e1/pump-1', 'spBv1.0/lg/DDEATH/e1/pump-1']) {
      expect(decidePublish(edge, topic, payload, groups).action, topic).toBe('sparkplug');
    }
  });

  it('refuses other groups, other edge ids, commands, STATE, malformed topics and devices that are not edge nodes', () => {
    const cases: Array<[typeof edge, string, ReadonlySet<string> | undefined, string]> = [
      [edge, 'spBv1.0/futian/NDATA/e1', groups, 'not_allowed'],
      [edge, 'spBv1.0/lg/NDATA/e2', groups, 'not_allowed'],
      [edge, 'spBv1.0/lg/NCMD/e1', groups, 'not_allowed'],
      [edge, 'spBv1.0/lg/DCMD/e1/pump-1', groups, 'not_allowed'],
      [edge, 'spBv1.0/STATE/watchpost', groups, 'bad_topic'],
      [edge, 'spBv1.0/lg/NDATA/e1/x/y', groups, 'bad_topic'],
      [other, 'spBv1.0/lg/NDATA/d2', undefined, 'not_allowed'],
    ];
    for (const [device, topic, g, reason] of cases) expect(decidePublish(device, topic, payload, g), topic).toMatchObject({ action: 'reject', reason });
    expect(decidePublish(undefined, 'spBv1.0/lg/NDATA/e1', payload, groups).action).toBe('refuse');
    // Telemetry is judged as before.
    expect(decidePublish(edge, 'telemetry/a1/s1', payload, groups).action).toBe('telemetry');
  });

  it('lets an edge node subscribe to its own commands and host states, nothing wider', () => {
    for (const f of ['spBv1.0/lg/NCMD/e1', 'spBv1.0/lg/DCMD/e1/+', 'spBv1.0/lg/DCMD/e1/pump-1', 'spBv1.0/STATE/watchpost', 'spBv1.0/STATE/+'])
      expect(allowSubscribe(edge, f, groups), f).toBe(true);
    for (const f of ['spBv1.0/#', 'spBv1.0/lg/#', 'spBv1.0/lg/NCMD/+', 'spBv1.0/lg/NDATA/e1', 'spBv1.0/futian/NCMD/e1', '#']) expect(allowSubscribe(edge, f, groups), f).toBe(false);
    expect(allowSubscribe(other, 'spBv1.0/STATE/watchpost', undefined)).toBe(false);
  });
});
