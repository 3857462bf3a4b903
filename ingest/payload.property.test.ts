/**
 * The payload decoder and the ingest service on hostile input: nothing throws, and nothing that
 * reaches storage is invalid (ids, metric names, finite values, plausible timestamps), while a
 * well-formed reading comes through exactly.
 */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { isValidId, isValidMetric } from '../lib/ids.js';
import { silentLogger } from '../lib/logger.js';
import { MetricsRegistry } from '../lib/metrics.js';
import { Catalogue } from './catalogue.js';
import { IngestService } from './ingest-service.js';
import { decodePayload, MAX_BATCH, MAX_FUTURE_MS, MAX_VALUES, MIN_TS_MS } from './payload.js';
import type { Reading } from './reading.js';
import { parseTopic } from './topics.js';
import { params } from '../test/support/property.js';

const NOW = Date.parse('2025-11-28T02:00:00.000Z');
const metricName = fc.stringMatching(/^[a-z][a-z0-9_]{0,20}$/);
const validReading = fc.record(
  {
    ts: fc.oneof(
      fc.integer({ min: MIN_TS_MS, max: NOW + MAX_FUTURE_MS }),
      fc.integer({ min: MIN_TS_MS, max: NOW }).map((t) => new Date(t).toISOString()),
    ),
    values: fc.dictionary(metricName, fc.oneof(fc.double({ noNaN: true, noDefaultInfinity: true }), fc.boolean()), { minKeys: 1, maxKeys: 5 }),
  },
  { requiredKeys: ['values'] },
);
/** JSON-ish values, readings with a twist, and raw bytes. */
const hostileJson = fc.oneof(
  fc.anything({ maxDepth: 3 }),
  validReading,
  fc.array(fc.oneof(validReading, fc.anything({ maxDepth: 2 })), { maxLength: 20 }),
  fc.record({ ts: fc.anything(), values: fc.dictionary(fc.string({ maxLength: 10 }), fc.anything({ maxDepth: 1 })) }),
);
const hostilePayload = fc.oneof(
  hostileJson.map((v) => Buffer.from(JSON.stringify(v) ?? 'null')),
  fc.uint8Array({ maxLength: 300 }).map((a) => Buffer.from(a)),
  fc.string({ maxLength: 300 }).map((s) => Buffer.from(s)),
  fc
    .constantFrom('1e999', '{"values":{"x":1e999}}', '{"ts":1.5,"values":{"x":1}}', '{"__proto__":{"x":1},"values":{"y":1}}', '[]', '{"values":{"constructor":1}}')
    .map((s) => Buffer.from(s)),
);

describe('decodePayload (property)', () => {
  it('never throws, and every decoded reading is plausible', () => {
    fc.assert(
      fc.property(hostilePayload, (payload) => {
        const out = decodePayload(payload, NOW);
        for (const r of out.readings) {
          expect(Number.isSafeInteger(r.ts)).toBe(true);
          expect(r.ts).toBeGreaterThanOrEqual(MIN_TS_MS);
          expect(r.ts).toBeLessThanOrEqual(NOW + MAX_FUTURE_MS);
          expect(r.values.length).toBeGreaterThan(0);
          expect(r.values.length).toBeLessThanOrEqual(MAX_VALUES);
          for (const [metric, value] of r.values) {
            expect(isValidMetric(metric)).toBe(true);
            expect(Number.isFinite(value)).toBe(true);
          }
        }
        for (const rej of out.rejections) expect(rej.detail.length).toBeLessThanOrEqual(400);
      }),
      params(1000),
    );
  });

  it('judges a batch reading by reading: every element is either decoded or rejected, once', () => {
    fc.assert(
      fc.property(fc.array(fc.oneof(validReading, fc.anything({ maxDepth: 2 })), { minLength: 1, maxLength: 50 }), (batch) => {
        const out = decodePayload(Buffer.from(JSON.stringify(batch)), NOW);
        const indexes = [...out.readings.map((r) => r.index), ...out.rejections.map((r) => r.index)].sort((a, b) => a! - b!);
        expect(indexes).toEqual(batch.map((_, i) => i));
      }),
      params(),
    );
  });

  it('decodes a valid reading exactly: its timestamp and every value, booleans as 1/0', () => {
    fc.assert(
      fc.property(validReading, (reading) => {
        const out = decodePayload(Buffer.from(JSON.stringify(reading)), NOW);
        expect(out.rejections).toEqual([]);
        const expectedTs = reading.ts === undefined ? NOW : typeof reading.ts === 'string' ? Date.parse(reading.ts) : reading.ts;
        expect(out.readings).toEqual([
          { ts: expectedTs, values: Object.entries(reading.values).map(([m, v]) => [m, typeof v === 'boolean' ? (v ? 1 : 0) : Object.is(v, -0) ? 0 : v]), index: undefined },
        ]);
      }),
      params(),
    );
  });

  it('refuses timestamps beyond what a date can hold with bad_timestamp (they used to throw while building the message)', () => {
    for (const ts of [1e300, 9007199254740991, 8.64e15 + 1, 2 ** 60]) {
      const out = decodePayload(Buffer.from(JSON.stringify({ ts, values: { x: 1 } })), NOW);
      expect(out.readings).toEqual([]);
      expect(out.rejections.map((r) => r.reason)).toEqual(['bad_timestamp']);
    }
  });

  it('refuses batches over the limit as a whole', () => {
    const out = decodePayload(Buffer.from(JSON.stringify(Array.from({ length: MAX_BATCH + 1 }, () => ({ values: { x: 1 } })))), NOW);
    expect(out.readings).toEqual([]);
    expect(out.rejections.map((r) => r.reason)).toEqual(['too_many']);
  });
});

describe('IngestService (property)', () => {
  it('stores only readings of configured assets, sensors and metrics within range, for any topic ids and payload', async () => {
    const catalogue = new Catalogue(
      [
        { id: 'lg-bridge-001', type: 'bridge', name: '桥', street: '龙城街道', sensors: [{ id: 'strain-01', metrics: ['strain', 'temperature'] }] },
        { id: 'bt-slope-002', type: 'slope', name: '坡', street: '坂田街道' },
      ],
      { strain: { unit: 'µε', min: -5000, max: 5000 } },
    );
    const idArb = fc.oneof(fc.constantFrom('lg-bridge-001', 'bt-slope-002', 'strain-01', 'other'), fc.string({ maxLength: 70 }));
    await fc.assert(
      fc.asyncProperty(idArb, idArb, hostilePayload, fc.boolean(), async (assetLevel, sensorLevel, payload, restricted) => {
        // As the brokers do: the ids come from the topic parser, which refuses anything that is not an id.
        const topic = `telemetry/${assetLevel}/${sensorLevel}`;
        const parsed = parseTopic(topic);
        if (parsed.kind !== 'telemetry') return;
        const { assetId, sensorId } = parsed;
        const stored: Reading[] = [];
        const feedback: string[] = [];
        const ingest = new IngestService({
          catalogue,
          clock: { now: () => NOW },
          logger: silentLogger(),
          metrics: new MetricsRegistry(),
          maxPayloadBytes: 1024 * 1024,
          accept: async (readings) => {
            stored.push(...readings);
            return true;
          },
          feedback: (deviceId, line) => feedback.push(`${deviceId}:${line.reason}`),
        });
        const outcome = await ingest.handleTelemetry({ deviceId: 'dau-1', ...(restricted ? { allowedAssets: new Set(['lg-bridge-001']) } : {}) }, topic, assetId, sensorId, payload);
        expect(outcome.stored).toBe(true);
        expect(outcome.accepted).toBe(stored.length);
        for (const r of stored) {
          const asset = catalogue.asset(r.assetId);
          expect(asset).toBeDefined();
          expect(isValidId(r.assetId) && isValidId(r.sensorId) && isValidMetric(r.metric)).toBe(true);
          if (restricted) expect(r.assetId).toBe('lg-bridge-001');
          if (asset!.sensors) expect(asset!.sensors.get(r.sensorId)?.has(r.metric)).toBe(true);
          expect(Number.isFinite(r.value) && Number.isFinite(r.ts)).toBe(true);
          if (r.metric === 'strain') expect(Math.abs(r.value)).toBeLessThanOrEqual(5000);
          expect([r.assetType, r.street]).toEqual([asset!.type, asset!.street]);
        }
        for (const f of feedback) expect(f.startsWith('dau-1:')).toBe(true);
      }),
      params(),
    );
  });
});
