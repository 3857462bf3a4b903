/**
 * Who publishes what: the configured devices a run connects as, each with the sensors of its
 * assets and a seeded signal generator per metric, and the scenario's effects bound to the sensors,
 * devices and rules they concern. No I/O.
 */
import { topics } from '../ingest/topics.js';
import type { SimulatorConfig } from './config.js';
import { SimulationError } from './errors.js';
import { DEFAULT_SIMULATION_OPTIONS, type SimulationOptions } from './options.js';
import { resolveValueEffects, type ResolvedValueEffect, type SeriesTarget } from './scenario-effects.js';
import { scenarioByName, type DropoutEffect, type OfflineEffect, type RainEffect, type ScenarioSpec, type SpikeEffect } from './scenarios.js';
import { BOOLEAN_METRICS, DEFAULT_METRICS_BY_TYPE, createSignal, hashSeed, mulberry32, type Rng, type SignalGenerator } from './signals.js';

/** One simulated (asset, sensor, metric) series. */
export interface SeriesPlan extends SeriesTarget {
  boolean: boolean;
  next: SignalGenerator;
  effect?: ResolvedValueEffect;
  effectRng: Rng;
  spikes: SpikeEffect[];
  rain?: { effect: RainEffect; factor: number; bucket: number; lastS: number | undefined };
}

export interface SensorPlan {
  assetId: string;
  sensorId: string;
  topic: string;
  series: SeriesPlan[];
  dropouts: DropoutEffect[];
}

export interface DevicePlan {
  id: string;
  secret: string;
  sensors: SensorPlan[];
  /** The scenario's link losses of this device. */
  outages: OfflineEffect[];
}

export interface SimulationPlan {
  scenario: ScenarioSpec;
  devices: DevicePlan[];
  effects: ResolvedValueEffect[];
  warnings: string[];
  skipped: string[];
}

/** The configured devices that publish telemetry and have a secret to connect with. */
function publishers(config: SimulatorConfig, secrets: Record<string, string> | undefined, warnings: string[], skipped: string[]) {
  const out: Array<{ id: string; secret: string; assets: string[] }> = [];
  for (const device of config.devices.filter((d) => d.assets.length > 0)) {
    const secret = secrets?.[device.id] ?? device.secret;
    if (secret === undefined) {
      skipped.push(device.id);
      warnings.push(`device ${device.id} has only a secret_hash; pass its secret to simulate it — skipped`);
      continue;
    }
    out.push({ id: device.id, secret, assets: device.assets });
  }
  return out;
}

/**
 * Builds the sensors of one (copy of a) device: the configuration's sensors of its assets, each
 * metric with its own seeded generator. `seed` distinguishes replicas.
 */
function buildSensors(config: SimulatorConfig, assetIds: readonly string[], seed: number, covered: Set<string>, warnings: string[] | undefined): SensorPlan[] {
  const assets = new Map(config.assets.map((a) => [a.id, a]));
  const sensors: SensorPlan[] = [];
  for (const assetId of assetIds) {
    const asset = assets.get(assetId);
    if (!asset || covered.has(assetId)) continue;
    covered.add(assetId);
    for (const sensor of asset.sensors ?? [{ id: 'sim-01', metrics: undefined }]) {
      const metrics = sensor.metrics ?? DEFAULT_METRICS_BY_TYPE[asset.type];
      if (!metrics || metrics.length === 0) {
        warnings?.push(`${asset.id}/${sensor.id}: no metrics listed and no default for asset type "${asset.type}" — skipped`);
        continue;
      }
      const series = metrics.map((metric): SeriesPlan => {
        const entry = config.metrics[metric];
        const range = { min: entry?.min, max: entry?.max };
        return {
          assetId: asset.id,
          assetType: asset.type,
          street: asset.street,
          sensorId: sensor.id,
          metric,
          range,
          boolean: BOOLEAN_METRICS.has(metric),
          next: createSignal(metric, range, mulberry32(hashSeed(seed, asset.id, sensor.id, metric)), sensor.id),
          effectRng: mulberry32(hashSeed(seed, 'effect', asset.id, sensor.id, metric)),
          spikes: [],
        };
      });
      sensors.push({ assetId: asset.id, sensorId: sensor.id, topic: topics.telemetry(asset.id, sensor.id), series, dropouts: [] });
    }
  }
  return sensors;
}

/** Puts the scenario's effects on the sensors and devices they concern. */
function applyScenario(scenario: ScenarioSpec, config: SimulatorConfig, devices: DevicePlan[], warnings: string[]): ResolvedValueEffect[] {
  const sensors = devices.flatMap((d) => d.sensors);
  const allSeries = sensors.flatMap((s) => s.series);
  const findSensor = (assetId: string, sensorId: string) => sensors.find((s) => s.assetId === assetId && s.sensorId === sensorId);
  const resolved = resolveValueEffects(scenario, config.rules, allSeries);
  warnings.push(...resolved.warnings);
  for (const effect of resolved.effects) {
    const series = findSensor(effect.assetId, effect.sensorId)?.series.find((s) => s.metric === effect.metric);
    if (series) series.effect = effect;
  }
  for (const effect of scenario.effects) {
    switch (effect.kind) {
      case 'spike': {
        const series = findSensor(effect.sensor.asset_id, effect.sensor.sensor_id)?.series.find((s) => s.metric === effect.metric);
        if (series) series.spikes.push(effect);
        else warnings.push(`scenario ${scenario.name}: ${effect.sensor.asset_id}/${effect.sensor.sensor_id} ${effect.metric} is not simulated; skipped "${effect.note}"`);
        break;
      }
      case 'rain': {
        const targets = allSeries.filter((s) => s.assetType === effect.asset_type && s.metric === effect.metric);
        if (targets.length === 0) warnings.push(`scenario ${scenario.name}: no simulated ${effect.asset_type} reports ${effect.metric}; skipped "${effect.note}"`);
        for (const s of targets) {
          // Rain is not uniform: each gauge gets 85–115 % of the profile, fixed per gauge.
          const factor = 0.85 + 0.3 * mulberry32(hashSeed('rain', s.assetId, s.sensorId))();
          s.rain = { effect, factor, bucket: 0, lastS: undefined };
        }
        break;
      }
      case 'dropout': {
        const sensor = findSensor(effect.sensor.asset_id, effect.sensor.sensor_id);
        if (sensor) sensor.dropouts.push(effect);
        else warnings.push(`scenario ${scenario.name}: ${effect.sensor.asset_id}/${effect.sensor.sensor_id} is not simulated; skipped "${effect.note}"`);
        break;
      }
      case 'offline': {
        const device = devices.find((d) => d.id === effect.device);
        if (device) device.outages.push(effect);
        else warnings.push(`scenario ${scenario.name}: device ${effect.device} is not simulated; skipped "${effect.note}"`);
        break;
      }
      case 'value':
        break;
    }
  }
  return resolved.effects;
}

/**
 * Works out who publishes what: the configured devices to connect (the first `devices` of them),
 * each with the sensors of its assets and a seeded generator per metric, and the scenario's effects
 * bound to sensors, devices and rules. Throws SimulationError for an unknown scenario or when
 * nothing can be simulated.
 */
export function planSimulation(config: SimulatorConfig, options: Pick<SimulationOptions, 'scenario' | 'seed' | 'devices' | 'secrets'> = {}): SimulationPlan {
  const scenario = scenarioByName(options.scenario ?? DEFAULT_SIMULATION_OPTIONS.scenario);
  const seed = options.seed ?? DEFAULT_SIMULATION_OPTIONS.seed;
  const warnings: string[] = [];
  const skipped: string[] = [];
  let usable = publishers(config, options.secrets, warnings, skipped);
  if (options.devices !== undefined) usable = usable.slice(0, options.devices);
  const covered = new Set<string>();
  const devices: DevicePlan[] = [];
  for (const device of usable) {
    const sensors = buildSensors(config, device.assets, seed, covered, warnings);
    if (sensors.length > 0) devices.push({ id: device.id, secret: device.secret, sensors, outages: [] });
  }
  if (devices.length === 0) {
    throw new SimulationError('nothing_to_simulate', 'no device of the configuration can publish telemetry (devices need assets and a secret)');
  }
  const effects = applyScenario(scenario, config, devices, warnings);
  return { scenario, devices, effects, warnings, skipped };
}

/** Replica r of configured device d, for load mode. */
export function replicaPlan(config: SimulatorConfig, base: DevicePlan, assets: readonly string[], seed: number, replica: number): DevicePlan {
  const sensors = buildSensors(config, assets, hashSeed(seed, 'replica', replica), new Set(), undefined);
  return { id: base.id, secret: base.secret, sensors, outages: [] };
}
