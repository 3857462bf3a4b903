/**
 * Memory per series of the rule state: heap used plus array buffers after filling 10,000 series of
 * one kind to steady state, minus the same before, divided by the series (after a full GC each
 * time). Per kind:
 * - a `value` series at a level (series at no level are not kept at all);
 * - windowed signals at realistic reporting rates: avg 10m at 1/10 s, max 1h and rate/tangent 6h
 *   at 1/min, sum 24h at 1/min (merged into at most 1,024 slots) and at 1/s (the bound);
 * - a stale entry (per watched sensor), a compound asset (two windowed conditions), a flapping record.
 * A plain script: no assertions.
 *
 * Run: npm run bench -- rules-memory
 */
import { runInNewContext } from 'node:vm';
import { setFlagsFromString } from 'node:v8';
import type { Reading } from '../ingest/reading.js';
import { compileRules } from '../rules/compile.js';
import { ruleSchema } from '../rules/config.js';
import { createRuleState, evaluate, stateStats, type RuleState } from '../rules/evaluate.js';

setFlagsFromString('--expose-gc');
const gc = runInNewContext('gc') as () => void;

const SERIES = 10_000;

interface Case {
  name: string;
  rule: Record<string, unknown>;
  /** Reporting interval of each series and how long to feed (event time). */
  intervalMs: number;
  durationMs: number;
  value: (k: number) => number;
  /** Fewer series for the high-rate case (it is 3,700 readings per series). */
  series?: number;
}

const CASES: Case[] = [
  { name: 'value, at a level', rule: { levels: { yellow: { above: 200 } } }, intervalMs: 60_000, durationMs: 60_000, value: () => 250 },
  {
    name: 'avg 10m, one reading per 10 s (60 in window)',
    rule: { levels: { yellow: { above: 1e9 } }, signal: { avg: '10m' } },
    intervalMs: 10_000,
    durationMs: 11 * 60_000,
    value: (k) => k % 7,
  },
  { name: 'max 1h, one per minute (60)', rule: { levels: { yellow: { above: 1e9 } }, signal: { max: '1h' } }, intervalMs: 60_000, durationMs: 61 * 60_000, value: (k) => k % 7 },
  {
    name: 'rate 1d over 6h, one per minute (360)',
    rule: { levels: { yellow: { above: 1e9 } }, signal: { rate: '1d', window: '6h' } },
    intervalMs: 60_000,
    durationMs: 6.1 * 3_600_000,
    value: (k) => k * 0.001,
  },
  {
    name: 'tangent_angle 6h, one per 10 min (36)',
    rule: { levels: { yellow: { above: 45 } }, signal: { tangent_angle: '6h', velocity: 0.8 } },
    intervalMs: 600_000,
    durationMs: 6.1 * 3_600_000,
    value: (k) => k * 0.001,
  },
  {
    name: 'sum 24h, one per minute (1,440 -> at most 515 slots)',
    rule: { levels: { yellow: { above: 1e12 } }, signal: { sum: '24h' } },
    intervalMs: 60_000,
    durationMs: 24.1 * 3_600_000,
    value: () => 0.1,
  },
  {
    name: 'sum 1h, one per second (3,600 -> at most 515 slots)',
    rule: { levels: { yellow: { above: 1e12 } }, signal: { sum: '1h' } },
    intervalMs: 1_000,
    durationMs: 3_700_000,
    value: () => 0.1,
    series: 2_000,
  },
  { name: 'stale entry (per watched sensor)', rule: { stale: '10m', level: 'yellow' }, intervalMs: 60_000, durationMs: 60_000, value: () => 1 },
  {
    name: 'compound asset: sum 24h + rate 6h, one per 10 min',
    rule: {
      all: [
        { metric: 'm', signal: { sum: '24h' }, above: 1e12 },
        { metric: 'm', signal: { rate: '1d', window: '6h' }, above: 1e9 },
      ],
      level: 'red',
    },
    intervalMs: 600_000,
    durationMs: 24.1 * 3_600_000,
    value: (k) => k * 0.001,
  },
  {
    name: 'flapping record (value rule, flapping alert)',
    rule: { levels: { yellow: { above: 200 } }, flapping: { window: '30m', max_changes: 4 } },
    intervalMs: 60_000,
    durationMs: 10 * 60_000,
    value: (k) => (k % 2 === 0 ? 250 : 150),
  },
];

function heap(): number {
  gc();
  gc();
  const m = process.memoryUsage();
  return m.heapUsed + m.arrayBuffers; // window slots live in Float64Array buffers, outside the JS heap
}

function fill(c: Case): { bytes: number; state: RuleState } {
  const n = c.series ?? SERIES;
  const set = compileRules([ruleSchema.parse({ id: 'r', ...('all' in c.rule ? {} : { match: { metric: 'm' } }), ...c.rule })], { classifier: 'direct' });
  // Readings are generated on the fly (no input array), so only the state stays on the heap.
  const t0 = 1_764_000_000_000;
  const before = heap();
  const state = createRuleState();
  const rounds = Math.round(c.durationMs / c.intervalMs);
  const reading: Reading = { assetId: '', sensorId: 's1', assetType: 'slope', street: 'street-1', metric: 'm', value: 0, ts: 0 };
  for (let k = 0; k < rounds; k++) {
    for (let s = 0; s < n; s++) {
      reading.assetId = ASSET_IDS[s]!;
      reading.value = c.value(k);
      reading.ts = t0 + k * c.intervalMs + s;
      evaluate(set, state, reading, reading.ts);
    }
  }
  const bytes = (heap() - before) / n;
  return { bytes, state };
}

const ASSET_IDS = Array.from({ length: SERIES }, (_, i) => `asset-${i}`);

console.log(`node ${process.version}; ${SERIES.toLocaleString('en-US')} series per line (2,000 for the 1/s line); JS heap + array buffers after GC`);
console.log('state'.padEnd(52), 'bytes/series'.padStart(13), 'slots/series'.padStart(13));
for (const c of CASES) {
  const { bytes, state } = fill(c);
  const s = stateStats(state);
  console.log(c.name.padEnd(52), Math.round(bytes).toLocaleString('en-US').padStart(13), (s.windows ? (s.slots / s.windows).toFixed(0) : '-').padStart(13));
}
