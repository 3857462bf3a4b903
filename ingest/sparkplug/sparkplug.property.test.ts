/** Fuzz: random and mutated payloads and topics never crash the codec or the host, and never reject. */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { silentLogger } from '../../lib/logger.js';
import { MetricsRegistry } from '../../lib/metrics.js';
import { params } from '../../test/support/property.js';
import { decodeSparkplug, encodeSparkplug } from './codec.js';
import { sparkplugAdapterSchema } from './config.js';
import { SparkplugHost } from './host.js';
import { parseSparkplugTopic, type SparkplugTopic } from './topics.js';

const T = 1_764_295_200_000;

function host() {
  const published: string[] = [];
  const ingested: string[] = [];
  const h = new SparkplugHost({
    config: sparkplugAdapterSchema.parse({ type: 'sparkplug', nodes: [{ group: 'lg', edge: 'e1', asset: 'a1' }] }),
    clock: { now: () => T },
    logger: silentLogger(),
    metrics: new MetricsRegistry(),
    publish: (topic) => void published.push(topic),
    ingest: (_source, _topic, _asset, _sensor, payload) => {
      ingested.push(payload.toString('utf8'));
      return Promise.resolve({ accepted: 1, rejected: 0, stored: true });
    },
    presence: () => undefined,
  });
  return { h, published, ingested };
}

const valid = encodeSparkplug({
  timestamp: T,
  seq: 0,
  metrics: [
    { name: 'bdSeq', type: 'UInt64', value: 0 },
    { name: 'Level', alias: 1, type: 'Double', value: 1.25 },
  ],
});
const types: SparkplugTopic['type'][] = ['NBIRTH', 'NDATA', 'NDEATH', 'DBIRTH', 'DDATA', 'DDEATH', 'NCMD'];

describe('Sparkplug fuzz (property)', () => {
  it('decodes random bytes to metrics or throws an Error, nothing else', () => {
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 512 }), (bytes) => {
        try {
          const m = decodeSparkplug(bytes);
          for (const metric of m.metrics) expect(metric.value === undefined || Number.isFinite(metric.value)).toBe(true);
        } catch (err) {
          expect(err).toBeInstanceOf(Error);
        }
      }),
      params(),
    );
  });

  it('handles mutated payloads on any message type without rejecting; every ingested payload is a reading object or a batch', async () => {
    await fc.assert(
      fc.asyncProperty(
        fc.array(fc.tuple(fc.constantFrom(...types), fc.nat(valid.length - 1), fc.integer({ min: 0, max: 255 })), { maxLength: 8 }),
        fc.constantFrom(...types),
        async (mutations, type) => {
          const { h, ingested } = host();
          const bytes = Buffer.from(valid);
          for (const [, at, value] of mutations) bytes[at] = value;
          const topic: SparkplugTopic = type.startsWith('D') ? { group: 'lg', type, edge: 'e1', device: 'd1' } : { group: 'lg', type, edge: 'e1' };
          await expect(h.handle({ deviceId: 'e1' }, topic, 'spBv1.0/lg/x/e1', bytes)).resolves.toBe(true);
          for (const p of ingested) expect(typeof JSON.parse(p)).toBe('object');
        },
      ),
      params(200),
    );
  });

  it('parses only well-formed topics of the namespace', () => {
    fc.assert(
      fc.property(fc.string({ maxLength: 120 }), (s) => {
        const parsed = parseSparkplugTopic(s);
        if (!parsed) return;
        const rebuilt = `spBv1.0/${parsed.group}/${parsed.type}/${parsed.edge}${parsed.device !== undefined ? `/${parsed.device}` : ''}`;
        expect(rebuilt).toBe(s);
        for (const id of [parsed.group, parsed.edge, parsed.device ?? 'x']) expect(id).toMatch(/^[A-Za-z0-9_.-]{1,64}$/);
      }),
      params(),
    );
    expect(parseSparkplugTopic('spBv1.0/lg/NDATA/e1')).toEqual({ group: 'lg', type: 'NDATA', edge: 'e1' });
    expect(parseSparkplugTopic('spBv1.0/lg/DDATA/e1/d+')).toBeUndefined();
    expect(parseSparkplugTopic('spBv1.0/STATE/watchpost')).toBeUndefined();
  });

  it('asks a node that sends an unreadable payload for a rebirth', async () => {
    const { h, published } = host();
    await h.handle({ deviceId: 'e1' }, { group: 'lg', type: 'NDATA', edge: 'e1' }, 'spBv1.0/lg/NDATA/e1', Buffer.from([0xff, 0xff, 0xff]));
    expect(published).toEqual(['spBv1.0/lg/NCMD/e1']);
  });
});
