/**
 * Finds the rules a reading can match without testing every rule.
 *
 * Rules are bucketed by metric (every threshold rule names its metrics); inside a bucket the
 * asset_type / asset_id / sensor_id / street filters are applied once per series and the result
 * is cached, so the hot path is one or two Map lookups and never allocates. A reading whose
 * metric no rule watches stops at the first lookup.
 *
 * The cache is keyed by (metric, asset_id[, sensor_id]: only when some rule of the metric filters
 * on sensor_id). Each asset entry remembers the asset_type and street it was computed for and is
 * recomputed if a reading disagrees (a catalogue change), so it is never wrong, only refilled.
 * It is bounded: past `cacheLimit` series it is emptied and refilled on demand.
 */
import type { Reading } from '../ingest/reading.js';
import type { RuleMatch } from './config.js';

export interface CompiledMatch {
  readonly assetType?: ReadonlySet<string>;
  readonly assetId?: ReadonlySet<string>;
  readonly sensorId?: ReadonlySet<string>;
  readonly street?: ReadonlySet<string>;
  /** Undefined: any metric (rule kinds such as `stale` that watch a sensor, not a metric). */
  readonly metric?: ReadonlySet<string>;
}

/** What the index looks at in a reading. */
export type SeriesRef = Pick<Reading, 'assetId' | 'sensorId' | 'assetType' | 'street' | 'metric'>;

export interface IndexedRule {
  readonly id: string;
  readonly match: CompiledMatch;
}

export interface RuleIndexOptions {
  /** Cached series at most; past it the cache is emptied and refilled on demand. */
  cacheLimit: number;
}

export const DEFAULT_INDEX_OPTIONS: RuleIndexOptions = { cacheLimit: 200_000 };

const NONE: readonly never[] = Object.freeze([]);

export function compileMatch(match: RuleMatch): CompiledMatch {
  const set = (values: readonly string[] | undefined) => (values === undefined ? undefined : new Set(values));
  return {
    assetType: set(match.asset_type),
    assetId: set(match.asset_id),
    sensorId: set(match.sensor_id),
    street: set(match.street),
    metric: set(match.metric),
  };
}

export function matches(match: CompiledMatch, ref: SeriesRef): boolean {
  return (
    (match.metric === undefined || match.metric.has(ref.metric)) &&
    (match.assetId === undefined || match.assetId.has(ref.assetId)) &&
    (match.sensorId === undefined || match.sensorId.has(ref.sensorId)) &&
    (match.assetType === undefined || match.assetType.has(ref.assetType)) &&
    (match.street === undefined || match.street.has(ref.street))
  );
}

interface Bucket<R> {
  /** Every rule that may match this metric, in configuration order. */
  readonly rules: R[];
  /** No rule in the bucket filters beyond the metric: every reading gets `rules`. */
  unfiltered: boolean;
  /** Some rule filters on sensor_id: the cache needs the sensor level. */
  bySensor: boolean;
  readonly cache: Map<string, AssetEntry<R>>;
}

interface AssetEntry<R> {
  readonly assetType: string;
  readonly street: string;
  /** The candidates when the bucket is not keyed by sensor. */
  readonly rules: readonly R[];
  /** sensor_id -> candidates, when it is. */
  readonly sensors: Map<string, readonly R[]> | undefined;
}

function newBucket<R>(): Bucket<R> {
  return { rules: [], unfiltered: true, bySensor: false, cache: new Map() };
}

function addRule<R extends IndexedRule>(bucket: Bucket<R>, rule: R): void {
  bucket.rules.push(rule);
  const m = rule.match;
  if (m.assetType || m.assetId || m.sensorId || m.street) bucket.unfiltered = false;
  if (m.sensorId) bucket.bySensor = true;
}

export class RuleIndex<R extends IndexedRule> {
  private readonly byMetric = new Map<string, Bucket<R>>();
  /** Rules without a metric filter, for metrics no other rule names; undefined if none. */
  private readonly anyMetric: Bucket<R> | undefined;
  private readonly options: RuleIndexOptions;
  private cached = 0;

  constructor(rules: readonly R[], options: Partial<RuleIndexOptions> = {}) {
    this.options = { ...DEFAULT_INDEX_OPTIONS, ...options };
    const metrics = new Set<string>();
    for (const rule of rules) for (const metric of rule.match.metric ?? []) metrics.add(metric);
    // Rules without a metric filter (future stale-style rules) join every bucket; the
    // configuration order is kept within each bucket.
    for (const metric of metrics) {
      const bucket = newBucket<R>();
      for (const rule of rules) if (rule.match.metric === undefined || rule.match.metric.has(metric)) addRule(bucket, rule);
      this.byMetric.set(metric, bucket);
    }
    const anyMetric = rules.filter((r) => r.match.metric === undefined);
    if (anyMetric.length > 0) {
      const bucket = newBucket<R>();
      for (const rule of anyMetric) addRule(bucket, rule);
      this.anyMetric = bucket;
    }
  }

  /** The rules that match this series, in configuration order. Do not modify the result. */
  candidates(ref: SeriesRef): readonly R[] {
    const bucket = this.byMetric.get(ref.metric) ?? this.anyMetric;
    if (bucket === undefined) return NONE;
    if (bucket.unfiltered) return bucket.rules;
    let entry = bucket.cache.get(ref.assetId);
    if (entry !== undefined && (entry.assetType !== ref.assetType || entry.street !== ref.street)) {
      this.cached -= entry.sensors === undefined ? 1 : entry.sensors.size;
      bucket.cache.delete(ref.assetId);
      entry = undefined;
    }
    if (!bucket.bySensor) {
      if (entry !== undefined) return entry.rules;
      const found = this.select(bucket, ref);
      this.reserve();
      bucket.cache.set(ref.assetId, { assetType: ref.assetType, street: ref.street, rules: found, sensors: undefined });
      return found;
    }
    const hit = entry?.sensors!.get(ref.sensorId);
    if (hit !== undefined) return hit;
    const found = this.select(bucket, ref);
    this.reserve(); // may empty the cache, so look the entry up again
    entry = bucket.cache.get(ref.assetId);
    if (entry === undefined) {
      entry = { assetType: ref.assetType, street: ref.street, rules: NONE, sensors: new Map() };
      bucket.cache.set(ref.assetId, entry);
    }
    entry.sensors!.set(ref.sensorId, found);
    return found;
  }

  /** Forgets every cached series. */
  clearCache(): void {
    for (const bucket of this.byMetric.values()) bucket.cache.clear();
    this.anyMetric?.cache.clear();
    this.cached = 0;
  }

  /** Number of cached series entries. */
  get cacheSize(): number {
    return this.cached;
  }

  /** Metrics that at least one rule names. */
  get metrics(): string[] {
    return [...this.byMetric.keys()];
  }

  private select(bucket: Bucket<R>, ref: SeriesRef): readonly R[] {
    let found: R[] | undefined;
    for (const rule of bucket.rules) {
      if (matches(rule.match, ref)) (found ??= []).push(rule);
    }
    return found ?? NONE;
  }

  private reserve(): void {
    if (this.cached >= this.options.cacheLimit) this.clearCache();
    this.cached++;
  }
}
