/**
 * Rejection reports on any batch: one errors/ line per message that names the first bad reading,
 * lists at most MAX_LISTED_READINGS of them in batch order and counts them all; one log line with
 * the counts by reason; each rejected reading counted in metrics.
 */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { createLogger } from '../lib/logger.js';
import { MetricsRegistry } from '../lib/metrics.js';
import { params } from '../test/support/property.js';
import { Catalogue } from './catalogue.js';
import { IngestService } from './ingest-service.js';
import { MAX_LISTED_READINGS, REJECTION_REASONS, type RejectionLine } from './rejections.js';

const NOW = Date.parse('2025-11-28T02:00:00.000Z');
const catalogue = new Catalogue([{ id: 'lg-bridge-001', type: 'bridge', name: '桥', street: '龙城街道', sensors: [{ id: 'strain-01', metrics: ['strain'] }] }], {
  strain: { unit: 'µε', min: -5000, max: 5000 },
});

/** A reading that is good, or bad in one of several ways (found by the decoder or by the range check). */
const reading = fc.oneof(
  { weight: 3, arbitrary: fc.integer({ min: -5000, max: 5000 }).map((v) => ({ kind: 'good', json: { values: { strain: v } } })) },
  { weight: 1, arbitrary: fc.integer({ min: 5001, max: 1e6 }).map((v) => ({ kind: 'out_of_range', json: { values: { strain: v } } })) },
  { weight: 1, arbitrary: fc.constant({ kind: 'bad_value', json: { values: { strain: 'high' } } }) },
  { weight: 1, arbitrary: fc.constant({ kind: 'unknown_metric', json: { values: { smoke: 1 } } }) },
  { weight: 1, arbitrary: fc.constant({ kind: 'bad_shape', json: 42 }) },
);

describe('rejection reports (property)', () => {
  it('give one errors/ line and one log line per message, listing the bad readings bounded, counting each', async () => {
    await fc.assert(
      fc.asyncProperty(fc.oneof(fc.array(reading, { minLength: 1, maxLength: 20 }), fc.array(reading, { minLength: 1, maxLength: 1000, size: 'max' })), async (batch) => {
        const lines: RejectionLine[] = [];
        const logs: Array<Record<string, unknown>> = [];
        const metrics = new MetricsRegistry();
        const ingest = new IngestService({
          catalogue,
          clock: { now: () => NOW },
          logger: createLogger({ level: 'warn', destination: { write: (l: string) => void logs.push(JSON.parse(l) as Record<string, unknown>) } }),
          metrics,
          maxPayloadBytes: 1024 * 1024,
          accept: async () => true,
          feedback: (_deviceId, line) => lines.push(line),
        });
        const topic = 'telemetry/lg-bridge-001/strain-01';
        const outcome = await ingest.handleTelemetry({ deviceId: 'dau-bridge-001' }, topic, 'lg-bridge-001', 'strain-01', Buffer.from(JSON.stringify(batch.map((r) => r.json))));
        const bad = batch.flatMap((r, index) => (r.kind === 'good' ? [] : [{ index, reason: r.kind }]));
        expect(outcome).toEqual({ accepted: batch.length - bad.length, rejected: bad.length, stored: true });

        const counts: Record<string, number> = {};
        for (const b of bad) counts[b.reason] = (counts[b.reason] ?? 0) + 1;
        for (const reason of REJECTION_REASONS) expect(metrics.counter('watchpost_ingest_rejected_total', '').get({ reason })).toBe(counts[reason] ?? 0);
        if (bad.length === 0) {
          expect([lines, logs]).toEqual([[], []]);
          return;
        }
        expect(lines).toHaveLength(1);
        const line = lines[0]!;
        expect(line).toMatchObject({ topic, reason: bad[0]!.reason, rejected_count: bad.length });
        expect(line.detail.startsWith(`reading [${bad[0]!.index}]: `)).toBe(true);
        expect(line.rejected_readings!.map(({ index, reason }) => ({ index, reason }))).toEqual(bad.slice(0, MAX_LISTED_READINGS));
        expect(logs).toHaveLength(1);
        expect(logs[0]).toMatchObject({ level: 40, msg: 'telemetry rejected', topic, rejected: bad.length, reasons: counts });
      }),
      params(100),
    );
  });
});
