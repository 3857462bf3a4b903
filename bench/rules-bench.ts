/**
 * Rule evaluation throughput: 1,000 threshold rules over 10,000 sensors.
 *
 * Prints, per reading: (a) a reading no rule matches (unwatched metric; watched metric on an
 * asset no rule covers), (b) a reading matching one rule with the node-rules classifier (with
 * and without its stable gate), (c) the same with the direct classifier, each for a quiet signal
 * (below every threshold) and an active one (a random walk across the levels, with events).
 * A plain script: no assertions. PASSES (env) sets the timed passes over 100,000 readings; ONLY
 * (env) keeps the scenarios whose name contains it (ONLY=active).
 *
 * Run: npm run bench -- rules   (PASSES=10 npm run bench -- rules for longer runs)
 */
import { PerformanceObserver } from 'node:perf_hooks';
import type { Reading } from '../ingest/reading.js';
import { compileRules, type CompiledRuleSet } from '../rules/compile.js';
import { thresholdRuleSchema, type RuleConfig } from '../rules/config.js';
import { createRuleState, evaluate, stateStats, type RuleState } from '../rules/evaluate.js';

const TYPES = ['bridge', 'slope', 'pipeline', 'fire', 'tunnel', 'building']; // no rule covers 'building'
const STREETS = Array.from({ length: 20 }, (_, i) => `street-${i}`);
const METRICS = Array.from({ length: 10 }, (_, i) => `m${i}`);
const ASSETS = 2_000;
const SENSORS_PER_ASSET = 5;
const READINGS = 100_000; // distinct reading objects, cycled
const PASSES = Number(process.env.PASSES ?? 5); // timed readings = READINGS * PASSES
const ONLY = process.env.ONLY;

function rand32(seed: number) {
  return () => {
    seed = (seed + 0x6d2b79f5) | 0;
    let t = Math.imul(seed ^ (seed >>> 15), 1 | seed);
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

interface Asset {
  id: string;
  type: string;
  street: string;
}

const assets: Asset[] = Array.from({ length: ASSETS }, (_, i) => ({
  id: `asset-${i}`,
  type: TYPES[i % TYPES.length]!,
  street: STREETS[Math.floor(i / TYPES.length) % STREETS.length]!,
}));

// 5 covered types x 20 streets x 10 metrics = 1,000 rules; every covered reading matches exactly one.
const configs: RuleConfig[] = [];
for (const type of TYPES.slice(0, 5)) {
  for (const street of STREETS) {
    for (const metric of METRICS) {
      configs.push(
        thresholdRuleSchema.parse({
          id: `r-${type}-${street}-${metric}`,
          match: { asset_type: type, street, metric },
          levels: { red: { above: 300 }, orange: { above: 250 }, yellow: { above: 200 } },
          hysteresis: 10,
          for: '10s',
        }),
      );
    }
  }
}

function makeReadings(kind: 'unwatched' | 'uncovered' | 'quiet' | 'active', seed: number): Reading[] {
  const rand = rand32(seed);
  const pool = kind === 'uncovered' ? assets.filter((a) => a.type === 'building') : assets.filter((a) => a.type !== 'building');
  const walk = new Map<string, number>();
  const out: Reading[] = [];
  for (let i = 0; i < READINGS; i++) {
    const asset = pool[Math.floor(rand() * pool.length)]!;
    const sensorId = `s${Math.floor(rand() * SENSORS_PER_ASSET)}`;
    const metric = kind === 'unwatched' ? 'humidity' : METRICS[Math.floor(rand() * METRICS.length)]!;
    let value = 100 + rand() * 50;
    if (kind === 'active') {
      const key = `${asset.id}/${sensorId}/${metric}`;
      value = Math.min(360, Math.max(150, (walk.get(key) ?? 220) + (rand() - 0.5) * 60));
      walk.set(key, value);
    }
    out.push({ assetId: asset.id, sensorId, assetType: asset.type, street: asset.street, metric, value: Math.round(value * 10) / 10, ts: 0.5 }); // a double from the start: no field-representation change later
  }
  return out;
}

let gcCount = 0;
new PerformanceObserver((list) => {
  gcCount += list.getEntries().length;
}).observe({ entryTypes: ['gc'] });

let clock = 1_764_000_000_000;

/** One pass over the readings with increasing event time (1 s apart per reading). */
function pass(set: CompiledRuleSet, state: RuleState, readings: Reading[]): number {
  let events = 0;
  let ts = clock; // a local, so the benchmark itself does not box a number per reading
  for (let i = 0; i < readings.length; i++) {
    const reading = readings[i]!;
    reading.ts = ts;
    ts += 1000;
    events += evaluate(set, state, reading).events.length;
  }
  clock = ts;
  return events;
}

interface Figures {
  nsPerReading: number;
  /** CPU time (user + system) of this process per reading: less disturbed by other processes on a shared machine. */
  cpuNsPerReading: number;
  perSecond: number;
  events: number;
  gcs: number;
}

const settle = () => new Promise((resolve) => setTimeout(resolve, 20)); // gc entries arrive asynchronously

async function measure(set: CompiledRuleSet, readings: Reading[]): Promise<Figures> {
  const state = createRuleState();
  pass(set, state, readings); // warm-up: JIT, index cache, state
  pass(set, state, readings);
  await settle();
  const gcBefore = gcCount;
  let events = 0;
  const cpuStart = process.cpuUsage();
  const start = process.hrtime.bigint();
  for (let p = 0; p < PASSES; p++) events += pass(set, state, readings);
  const ns = Number(process.hrtime.bigint() - start);
  const cpu = process.cpuUsage(cpuStart);
  const n = readings.length * PASSES;
  await settle();
  return { nsPerReading: ns / n, cpuNsPerReading: ((cpu.user + cpu.system) * 1000) / n, perSecond: (n / ns) * 1e9, events, gcs: gcCount - gcBefore };
}

function time<T>(f: () => T): [T, number] {
  const start = process.hrtime.bigint();
  const value = f();
  return [value, Number(process.hrtime.bigint() - start) / 1e6];
}

async function main(): Promise<void> {
  const [viaRules, compileRulesMs] = time(() => compileRules(configs, { classifier: 'node-rules' }));
  const [direct, compileDirectMs] = time(() => compileRules(configs, { classifier: 'direct' }));
  const ungated = compileRules(configs, { classifier: 'node-rules', stableGate: false });
  console.log(`node ${process.version}; ${configs.length} rules, ${ASSETS * SENSORS_PER_ASSET} sensors, ${METRICS.length} watched metrics; ${READINGS * PASSES} timed readings per line`);
  console.log(`compile: node-rules ${compileRulesMs.toFixed(1)} ms, direct ${compileDirectMs.toFixed(1)} ms`);

  const scenarios: [string, CompiledRuleSet, Reading[]][] = [
    ['(a) no rule: unwatched metric', viaRules, makeReadings('unwatched', 1)],
    ['(a) no rule: watched metric, uncovered asset', viaRules, makeReadings('uncovered', 2)],
    ['(b) one rule, node-rules, quiet', viaRules, makeReadings('quiet', 3)],
    ['(b) one rule, node-rules without stable gate, quiet', ungated, makeReadings('quiet', 3)],
    ['(c) one rule, direct, quiet', direct, makeReadings('quiet', 3)],
    ['(b) one rule, node-rules, active', viaRules, makeReadings('active', 4)],
    ['(b) one rule, node-rules without stable gate, active', ungated, makeReadings('active', 4)],
    ['(c) one rule, direct, active', direct, makeReadings('active', 4)],
  ];
  console.log(
    'scenario'.padEnd(56),
    'ns/reading'.padStart(11),
    'cpu ns'.padStart(9),
    'readings/s'.padStart(14),
    'events'.padStart(9),
    'GCs'.padStart(6),
    ' (best of 3 runs; GCs during that run)',
  );
  for (const [name, set, readings] of scenarios) {
    if (ONLY !== undefined && !name.includes(ONLY)) continue;
    const runs: Figures[] = [];
    for (let i = 0; i < 3; i++) runs.push(await measure(set, readings));
    const best = runs.sort((x, y) => x.nsPerReading - y.nsPerReading)[0]!;
    console.log(
      name.padEnd(56),
      best.nsPerReading.toFixed(1).padStart(11),
      best.cpuNsPerReading.toFixed(1).padStart(9),
      Math.round(best.perSecond).toLocaleString('en-US').padStart(14),
      String(best.events).padStart(9),
      String(best.gcs).padStart(6),
    );
  }
  const state = createRuleState();
  pass(viaRules, state, makeReadings('active', 4));
  console.log('state after one active pass:', stateStats(state), 'index cache entries:', viaRules.index.cacheSize);
}

await main();
