/**
 * Cost per reading of the complete rule language: 1,000 rules over 10,000 sensors, one signal
 * kind at a time, with every series' window in steady state.
 *
 * 2,000 assets x 5 sensors; each sensor reports one metric once a minute (event time), in
 * round-robin order, so the windows hold what a real deployment's would: a 6 h rate window 360
 * readings, a 24 h sum 1,440 (merged into <= 1,024 slots). 1,000 rules (5 asset types x 20
 * streets x 10 metrics) cover every reading exactly once, as in `npm run bench -- rules`. Values
 * are quiet (no level met), the common case; the last line holds every series at a level.
 * A plain script: no assertions.
 *
 * Run: npm run bench -- rules-signals   (PASSES=3 for longer runs)
 */
import type { Reading } from '../ingest/reading.js';
import { compileRules } from '../rules/compile.js';
import { ruleSchema, type RuleConfig } from '../rules/config.js';
import { createRuleState, evaluate, stateStats } from '../rules/evaluate.js';
import { tick } from '../rules/tick.js';

const TYPES = ['bridge', 'slope', 'pipeline', 'fire', 'tunnel'];
const STREETS = Array.from({ length: 20 }, (_, i) => `street-${i}`);
const METRICS = Array.from({ length: 10 }, (_, i) => `m${i}`);
const ASSETS = 2_000;
const SENSORS_PER_ASSET = 5;
const SENSORS = ASSETS * SENSORS_PER_ASSET;
const INTERVAL_MS = 60_000; // each sensor reports once a minute
const STEP_MS = INTERVAL_MS / SENSORS; // event time between two readings of the round robin
const PASSES = Number(process.env.PASSES ?? 1);

interface Variant {
  name: string;
  rule: (base: { id: string; match: Record<string, unknown> }, metric: string) => Record<string, unknown>;
  /** Event time to run before measuring, so windows are full. */
  warmMs: number;
  value: (i: number) => number;
}

const LEVELS = { red: { above: 300 }, orange: { above: 250 }, yellow: { above: 200 } };
const quiet = (i: number) => 100 + (i % 7);
const VARIANTS: Variant[] = [
  { name: 'value (threshold)', rule: (b) => ({ ...b, levels: LEVELS, hysteresis: 10 }), warmMs: 10 * 60_000, value: quiet },
  { name: 'avg 10m', rule: (b) => ({ ...b, levels: LEVELS, signal: { avg: '10m' } }), warmMs: 15 * 60_000, value: quiet },
  { name: 'max 1h', rule: (b) => ({ ...b, levels: LEVELS, signal: { max: '1h' } }), warmMs: 70 * 60_000, value: quiet },
  { name: 'sum 24h', rule: (b) => ({ ...b, levels: { red: { above: 1e9 } }, signal: { sum: '24h' } }), warmMs: 25 * 3_600_000, value: quiet },
  { name: 'rate 1d over 6h', rule: (b) => ({ ...b, levels: LEVELS, signal: { rate: '1d', window: '6h' } }), warmMs: 7 * 3_600_000, value: (i) => 100 + (i % 7) * 0.01 },
  {
    name: 'tangent_angle 6h',
    rule: (b) => ({ ...b, levels: { red: { above: 85 }, orange: { above: 80 }, yellow: { above: 45 } }, signal: { tangent_angle: '6h', velocity: 0.8 } }),
    warmMs: 7 * 3_600_000,
    value: (i) => 100 + (i % 7) * 0.01,
  },
  { name: 'stale 10m (one entry per sensor)', rule: (b) => ({ id: b.id, match: b.match, stale: '10m', level: 'yellow' }), warmMs: 10 * 60_000, value: quiet },
  {
    name: 'compound all: sum 24h + rate 6h',
    rule: (b, metric) => ({
      id: b.id,
      match: { asset_type: b.match.asset_type, street: b.match.street },
      all: [
        { metric, signal: { sum: '24h' }, above: 1e9 },
        { metric, signal: { rate: '1d', window: '6h' }, above: 5 },
      ],
      level: 'red',
    }),
    warmMs: 25 * 3_600_000,
    value: quiet,
  },
  { name: 'value, every series held at a level', rule: (b) => ({ ...b, levels: LEVELS, hysteresis: 10 }), warmMs: 10 * 60_000, value: (i) => 210 + (i % 100) },
];

interface Sensor {
  assetId: string;
  assetType: string;
  street: string;
  sensorId: string;
  metric: string;
}

const sensors: Sensor[] = [];
for (let a = 0; a < ASSETS; a++) {
  const assetType = TYPES[a % TYPES.length]!;
  const street = STREETS[Math.floor(a / TYPES.length) % STREETS.length]!;
  for (let s = 0; s < SENSORS_PER_ASSET; s++) sensors.push({ assetId: `asset-${a}`, assetType, street, sensorId: `s${s}`, metric: METRICS[(a + s) % METRICS.length]! });
}

function configs(variant: Variant): RuleConfig[] {
  const out: RuleConfig[] = [];
  for (const type of TYPES) {
    for (const street of STREETS) {
      for (const metric of METRICS) {
        const base = { id: `r-${type}-${street}-${metric}`, match: { asset_type: type, street, metric } };
        out.push(ruleSchema.parse(variant.rule(base, metric)));
      }
    }
  }
  return out;
}

function reading(i: number, variant: Variant, ts: number): Reading {
  const s = sensors[i % SENSORS]!;
  return { assetId: s.assetId, sensorId: s.sensorId, assetType: s.assetType, street: s.street, metric: s.metric, value: variant.value(i), ts };
}

function main(): void {
  console.log(`node ${process.version}; 1,000 rules, ${SENSORS.toLocaleString('en-US')} sensors (one metric each, one reading a minute each); ns per reading, steady state`);
  console.log('signal'.padEnd(46), 'classifier'.padEnd(11), 'ns/reading'.padStart(11), 'readings/s'.padStart(12), 'events'.padStart(8), 'series'.padStart(8), 'slots/series'.padStart(13));
  for (const variant of VARIANTS) {
    for (const classifier of ['node-rules', 'direct'] as const) {
      const set = compileRules(configs(variant), { classifier });
      const state = createRuleState();
      let ts = 1_764_000_000_000;
      let i = 0;
      const feed = (n: number): number => {
        let events = 0;
        for (let k = 0; k < n; k++, i++) {
          ts += STEP_MS;
          events += evaluate(set, state, reading(i, variant, Math.round(ts)), Math.round(ts)).events.length;
          if ((i & 1023) === 0) events += tick(set, state, Math.round(ts)).length;
        }
        return events;
      };
      feed(Math.ceil(variant.warmMs / STEP_MS)); // fill the windows
      const n = SENSORS * 10 * PASSES; // ten minutes of event time
      const start = process.hrtime.bigint();
      const events = feed(n);
      const ns = Number(process.hrtime.bigint() - start) / n;
      const stats = stateStats(state);
      const seriesCount = stats.series + stats.staleSensors + stats.compoundAssets;
      console.log(
        variant.name.padEnd(46),
        classifier.padEnd(11),
        ns.toFixed(0).padStart(11),
        Math.round(1e9 / ns)
          .toLocaleString('en-US')
          .padStart(12),
        String(events).padStart(8),
        String(seriesCount).padStart(8),
        (stats.windows ? (stats.slots / stats.windows).toFixed(0) : '-').padStart(13),
      );
      if (variant.name.startsWith('stale') || variant.name.startsWith('compound')) break; // no classifier on their path
    }
  }
}

main();
