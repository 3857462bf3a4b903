/**
 * Device simulators: the configuration's devices publishing their assets' sensors over real MQTT
 * with their own credentials, exactly as data acquisition units in the field do (contract: MQTT).
 *
 * Every connection
 * - connects with username = device id and its secret, last will `status/<id>` = `offline`
 *   (retained), and publishes `status/<id>` = `online` (retained) once connected;
 * - subscribes to `errors/<id>` and counts and logs every rejection the platform reports;
 * - publishes `{ "ts", "values" }` to `telemetry/<asset>/<sensor>` at QoS 1, `rate` readings per
 *   second per sensor, timestamps and values from ./clock.ts, ./signals.ts and the scenario;
 * - reconnects with exponential backoff and jitter; readings that fall due meanwhile are sent on
 *   reconnect with their original timestamps (a device's buffer), and at most `maxInflight` wait
 *   for their PUBACK at once (more are held back, not dropped);
 * - on stop publishes `offline` (retained) and disconnects cleanly.
 *
 * Load mode: `devices` above the number of configured publishing devices adds replicas of them
 * (round robin) with their own seeds, timestamps offset by the replica number in milliseconds so
 * that their points do not overwrite each other; `connections` puts several simulated devices on
 * one connection (by default each has its own). The scenario plays on the first copy only.
 */
import { randomBytes } from 'node:crypto';
import mqtt, { type IClientOptions, type MqttClient } from 'mqtt';
import { isExternalBroker } from '../ingest/config.js';
import { topics } from '../ingest/topics.js';
import type { Logger } from '../lib/logger.js';
import type { WatchpostConfig } from '../server/config/schema.js';
import { dueAt, historyTs, planTime, stepTs, type TimePlan } from './clock.js';
import { SimulationError } from './errors.js';
import {
  DEFAULT_SCENARIO,
  SCENARIOS,
  effectValue,
  rainBetween,
  resolveValueEffects,
  type DropoutEffect,
  type OfflineEffect,
  type RainEffect,
  type ResolvedValueEffect,
  type ScenarioSpec,
  type SeriesTarget,
  type SpikeEffect,
} from './scenarios.js';
import {
  BOOLEAN_METRICS,
  DEFAULT_METRICS_BY_TYPE,
  clampToRange,
  createSignal,
  hashSeed,
  mulberry32,
  roundForMetric,
  type Rng,
  type SignalGenerator,
} from './signals.js';

export interface SimulationProgress {
  elapsedMs: number;
  sent: number;
  acknowledged: number;
  errors: number;
  /** Readings published and not yet acknowledged. */
  inflight: number;
  connected: number;
  connections: number;
  /** Timestamp of the latest reading published so far (simulated time). */
  simulatedTs: number | undefined;
}

export interface SimulationOptions {
  /** Broker URL, e.g. mqtt://127.0.0.1:1883 (see defaultBrokerUrl). */
  url: string;
  /** Scenario name (SCENARIOS); default `normal`. */
  scenario?: string;
  /** Readings per wall-clock second per sensor; default 1. */
  rate?: number;
  /** Simulated seconds per wall-clock second; default 1. */
  speed?: number;
  /** Wall-clock seconds; undefined = the scenario's length / speed, or until `signal` aborts. */
  duration?: number;
  /** Timestamp of the first reading (ms); default: see ./clock.ts. */
  start?: number;
  /** Seed of every signal generator; default 1. */
  seed?: number;
  /** Simulated devices: the first N configured ones, or replicas of them beyond that (load mode). */
  devices?: number;
  /** MQTT connections for all simulated devices (each for one device id); default one per device. */
  connections?: number;
  logger: Logger;
  signal?: AbortSignal;
  /** device id -> secret, for devices configured with `secret_hash` only (or to override). */
  secrets?: Record<string, string>;
  /** Called about once a second while the run is on, and once at the end. */
  onProgress?: (progress: SimulationProgress) => void;
}

export const DEFAULT_SIMULATION_OPTIONS = {
  scenario: DEFAULT_SCENARIO,
  rate: 1,
  speed: 1,
  seed: 1,
  /** First reconnect delay; doubled after every failed attempt up to maxBackoffMs, ±20 % jitter. */
  backoffMs: 1_000,
  maxBackoffMs: 30_000,
  connectTimeoutMs: 10_000,
  /** Readings a connection keeps waiting for PUBACK (or queued while offline) before it holds back. */
  maxInflight: 10_000,
  /** How long stopping waits for outstanding PUBACKs before closing the connection anyway. */
  stopTimeoutMs: 3_000,
  /** A run with a length that cannot deliver (broker gone) gives up this long after its planned end. */
  overrunMs: 60_000,
  /** Rejections kept in the summary (all are counted). */
  maxRejectedKept: 1_000,
  progressIntervalMs: 1_000,
} as const;

export interface RejectedMessage {
  device: string;
  topic: string;
  reason: string;
  detail?: string;
}

export interface SimulationSummary {
  scenario: string;
  /** Readings published (QoS 1). */
  sent: number;
  /** Readings the broker acknowledged (PUBACK). */
  acknowledged: number;
  /** Readings that failed, plus connections refused by the broker. */
  errors: number;
  /** Readings still waiting for PUBACK when the run ended. */
  unacknowledged: number;
  /** Readings that fell due but were never published (broker unreachable to the end). */
  unsent: number;
  /** Rejections reported by the platform on errors/<device> (the first maxRejectedKept). */
  rejected: RejectedMessage[];
  rejectedTotal: number;
  /** Readings sent per asset id. */
  perAsset: Record<string, number>;
  /** Devices the broker refused at CONNECT. */
  refused: string[];
  /** Devices not simulated (no usable secret). */
  skipped: string[];
  devices: number;
  connections: number;
  speed: number;
  /** Simulated seconds between readings of one sensor. */
  stepSeconds: number;
  /** First and last timestamp published (RFC 3339), if any. */
  simulatedFrom: string | null;
  simulatedTo: string | null;
  durationMs: number;
}

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

/** The reading object a device publishes (contract: MQTT, reading object). */
export interface ReadingPayload {
  ts: number;
  values: Record<string, number | boolean>;
}

/** The URL to reach the configured broker from this machine. */
export function defaultBrokerUrl(config: WatchpostConfig): string {
  const broker = config.broker;
  if (isExternalBroker(broker)) return broker.url;
  const host = ['0.0.0.0', '::', ''].includes(broker.host) ? '127.0.0.1' : broker.host;
  return `mqtt://${host.includes(':') ? `[${host}]` : host}:${broker.port}`;
}

function scenarioByName(name: string): ScenarioSpec {
  const scenario = SCENARIOS[name];
  if (!scenario) throw new SimulationError('unknown_scenario', `unknown scenario "${name}" (known: ${Object.keys(SCENARIOS).join(', ')})`);
  return scenario;
}

/** The configured devices that publish telemetry and have a secret to connect with. */
function publishers(config: WatchpostConfig, secrets: Record<string, string> | undefined, warnings: string[], skipped: string[]) {
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
function buildSensors(config: WatchpostConfig, assetIds: readonly string[], seed: number, covered: Set<string>, warnings: string[] | undefined): SensorPlan[] {
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
function applyScenario(scenario: ScenarioSpec, config: WatchpostConfig, devices: DevicePlan[], warnings: string[]): ResolvedValueEffect[] {
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
export function planSimulation(config: WatchpostConfig, options: Pick<SimulationOptions, 'scenario' | 'seed' | 'devices' | 'secrets'> = {}): SimulationPlan {
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

/**
 * The reading a sensor publishes at `ts`, `elapsedMs` (simulated) into the run, or undefined while
 * the scenario has it dropped out. Advances its generators, so call it once per reading, in order.
 */
export function readingAt(sensor: SensorPlan, ts: number, elapsedMs: number, stepMs = 1000): ReadingPayload | undefined {
  const values: Record<string, number | boolean> = {};
  const e = elapsedMs / 1000;
  for (const s of sensor.series) {
    let v = s.next(ts);
    if (s.effect) v = effectValue(s.effect, elapsedMs, v, s.effectRng);
    if (s.rain) {
      const r = s.rain;
      r.bucket += r.lastS === undefined ? 0 : rainBetween(r.effect, r.lastS, e) * r.factor;
      r.lastS = e;
      // Whole 0.1 mm tips, at most the gauge's range per report; the rest stays in the bucket.
      const tips = Math.min(Math.floor(r.bucket / 0.1 + 1e-9) * 0.1, Math.max(0, (s.range.max ?? Infinity) - v));
      r.bucket -= tips;
      v += tips;
    }
    for (const spike of s.spikes) {
      if (e >= spike.at && e - spike.at < stepMs / 1000) v = spike.value;
    }
    v = clampToRange(roundForMetric(s.metric, v), s.range);
    values[s.metric] = s.boolean ? v >= 0.5 : v;
  }
  if (sensor.dropouts.some((d) => e >= d.at && (d.until === undefined || e < d.until))) return undefined;
  return { ts, values };
}

/** One reading of a run, as `simulatedReadings` yields it. */
export interface SimulatedReading {
  deviceId: string;
  assetId: string;
  sensorId: string;
  topic: string;
  /** Simulated seconds since the start of the run. */
  elapsed: number;
  reading: ReadingPayload;
}

/**
 * Every reading a run of the configured devices would publish, in order, without a broker: the
 * same plan, clock and values as runSimulation (replay files, tests, dry runs). Needs a run with an
 * end (a scenario length or `duration`). Device link losses do not change the readings (devices
 * replay their buffers), only when they arrive.
 */
export function* simulatedReadings(
  config: WatchpostConfig,
  options: Pick<SimulationOptions, 'scenario' | 'seed' | 'speed' | 'rate' | 'duration' | 'start' | 'secrets'> & { now?: number },
): Generator<SimulatedReading> {
  const scenario = scenarioByName(options.scenario ?? DEFAULT_SIMULATION_OPTIONS.scenario);
  const time = planTime({
    now: options.now ?? Date.now(),
    speed: options.speed ?? DEFAULT_SIMULATION_OPTIONS.speed,
    rate: options.rate ?? DEFAULT_SIMULATION_OPTIONS.rate,
    duration: options.duration,
    length: scenario.length,
    start: options.start,
    history: scenario.history,
  });
  if (time.steps === undefined) throw new SimulationError('invalid_option', `scenario ${scenario.name} goes on until stopped; give a duration`);
  const plan = planSimulation(config, { scenario: scenario.name, seed: options.seed, secrets: options.secrets });
  for (const device of plan.devices) {
    for (const sensor of device.sensors) {
      for (const item of historyOf(sensor, time)) yield { deviceId: device.id, assetId: sensor.assetId, sensorId: sensor.sensorId, topic: sensor.topic, ...item };
    }
  }
  for (let k = 0; k < time.steps; k++) {
    const ts = stepTs(time, k);
    for (const device of plan.devices) {
      for (const sensor of device.sensors) {
        const reading = readingAt(sensor, ts, k * time.stepMs, time.stepMs);
        if (reading) yield { deviceId: device.id, assetId: sensor.assetId, sensorId: sensor.sensorId, topic: sensor.topic, elapsed: (k * time.stepMs) / 1000, reading };
      }
    }
  }
}

/** A sensor's history readings (oldest first), advancing its generators. */
function* historyOf(sensor: SensorPlan, time: TimePlan, tsOffset = 0): Generator<{ elapsed: number; reading: ReadingPayload }> {
  for (let j = time.historySteps; j >= 1; j--) {
    const reading = readingAt(sensor, historyTs(time, j) + tsOffset, -j * time.historyStepMs, time.historyStepMs);
    if (reading) yield { elapsed: (-j * time.historyStepMs) / 1000, reading };
  }
}

/** History readings go out as batches of at most this many (contract: arrays of up to 1000). */
const HISTORY_BATCH = 1000;

interface Stats {
  sent: number;
  acknowledged: number;
  errors: number;
  rejected: RejectedMessage[];
  rejectedTotal: number;
  perAsset: Record<string, number>;
  refused: string[];
  frozen: boolean;
  firstTs: number | undefined;
  lastTs: number | undefined;
  unsent: number;
}

interface RunContext {
  url: string;
  time: TimePlan;
  wallStart: number;
  seed: number;
  log: Logger;
  stats: Stats;
}

/** One simulated device (or replica) on a connection: its sensors and how far it has got. */
interface VirtualDevice {
  plan: DevicePlan;
  /** Added to every timestamp (replicas), ms. */
  tsOffset: number;
  phaseMs: number;
  next: number;
  /** The history has been sent (or there is none). */
  historySent: boolean;
}

/** Resolves true when `promise` settles within `ms`, false otherwise. Never rejects. */
async function within(promise: Promise<unknown>, ms: number): Promise<boolean> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<false>((resolve) => {
    timer = setTimeout(() => resolve(false), ms);
  });
  try {
    return await Promise.race([promise.then(() => true, () => true), timeout]);
  } finally {
    clearTimeout(timer);
  }
}

/** MQTT 3.1.1 servers must accept client ids of up to 23 characters; stay within that. */
function clientIdFor(deviceId: string): string {
  return `${deviceId.slice(0, 14)}-${randomBytes(4).toString('hex')}`;
}

type LinkState = 'up' | 'draining' | 'down';

/** One MQTT connection, authenticated as one device id, carrying one or more simulated devices. */
class SimulatedConnection {
  private client: MqttClient | undefined;
  private pumpTimer: NodeJS.Timeout | undefined;
  private inflight = 0;
  private attempt = 0;
  private everConnected = false;
  private subscribed = false;
  private online = false;
  private stopping = false;
  private link: LinkState = 'up';
  private outageEnds = 0;
  private outagesDone = 0;
  /** Refused at CONNECT: publishes nothing more. */
  dead = false;
  private readonly log: Logger;
  private readonly jitter: Rng;

  constructor(
    readonly deviceId: string,
    private readonly secret: string,
    readonly devices: VirtualDevice[],
    private readonly outages: OfflineEffect[],
    private readonly ctx: RunContext,
  ) {
    this.log = ctx.log.child({ device: deviceId });
    this.jitter = mulberry32(hashSeed(ctx.seed, 'connection', deviceId, devices[0]?.tsOffset ?? 0));
  }

  get connected(): boolean {
    return this.online;
  }

  get pending(): number {
    return this.inflight;
  }

  /** Every reading of a finite run has been published. */
  finished(): boolean {
    const steps = this.ctx.time.steps;
    return this.dead || (steps !== undefined && this.devices.every((d) => d.next >= steps));
  }

  unsent(): number {
    const steps = this.ctx.time.steps;
    if (steps === undefined) return 0;
    const now = Date.now();
    let n = 0;
    for (const d of this.devices) {
      for (let k = d.next; k < steps && dueAt(this.ctx.time, k, this.ctx.wallStart, d.phaseMs) <= now; k++) n += d.plan.sensors.length;
    }
    return n;
  }

  start(): void {
    const statusTopic = topics.status(this.deviceId);
    const errorsTopic = topics.errors(this.deviceId);
    const options: IClientOptions = {
      clientId: clientIdFor(this.deviceId),
      username: this.deviceId,
      password: this.secret,
      protocolVersion: 4,
      clean: true,
      keepalive: 30,
      connectTimeout: DEFAULT_SIMULATION_OPTIONS.connectTimeoutMs,
      reconnectPeriod: DEFAULT_SIMULATION_OPTIONS.backoffMs,
      reconnectOnConnackError: false,
      will: { topic: statusTopic, payload: Buffer.from('offline'), qos: 1, retain: true },
    };
    const client = mqtt.connect(this.ctx.url, options);
    this.client = client;

    client.on('connect', () => {
      if (this.everConnected) this.log.info({ attempts: this.attempt }, 'reconnected');
      else this.log.debug({ client_id: options.clientId }, 'connected');
      this.everConnected = true;
      this.online = true;
      this.attempt = 0;
      this.link = 'up';
      client.options.reconnectPeriod = DEFAULT_SIMULATION_OPTIONS.backoffMs;
      client.publish(statusTopic, 'online', { qos: 1, retain: true });
      if (!this.subscribed) {
        this.subscribed = true; // mqtt.js resubscribes by itself after a reconnect
        client.subscribe(errorsTopic, { qos: 1 }, (err, granted) => {
          if (err || granted?.some((g) => g.qos === 128)) this.log.warn({ err: err?.message }, `could not subscribe to ${errorsTopic}; rejections will not be seen`);
        });
      }
      this.pump();
    });
    client.on('reconnect', () => {
      this.attempt += 1;
      const base = Math.min(DEFAULT_SIMULATION_OPTIONS.backoffMs * 2 ** this.attempt, DEFAULT_SIMULATION_OPTIONS.maxBackoffMs);
      client.options.reconnectPeriod = Math.round(base * (0.8 + 0.4 * this.jitter()));
    });
    client.on('close', () => {
      if (this.online && !this.stopping && this.link !== 'down') this.log.warn('connection lost; reconnecting with backoff, readings are kept until then');
      this.online = false;
    });
    client.on('error', (err: Error & { code?: unknown }) => {
      if (typeof err.code === 'number') {
        // CONNACK refusal (bad credentials, not authorised, client id rejected): retrying will
        // not help, so this connection stops.
        this.log.error({ reason: err.message }, `broker refused device ${this.deviceId}; check its secret`);
        if (!this.ctx.stats.refused.includes(this.deviceId)) this.ctx.stats.refused.push(this.deviceId);
        this.ctx.stats.errors += 1;
        this.dead = true;
        this.stopTimers();
        return;
      }
      if (this.attempt <= 1) this.log.warn({ err: err.message, url: this.ctx.url }, 'MQTT connection error');
      else this.log.debug({ err: err.message, attempt: this.attempt }, 'MQTT connection error');
    });
    client.on('message', (topic, payload) => {
      if (topic === errorsTopic) this.onRejection(payload);
    });

    const tickMs = Math.max(5, Math.min(250, this.ctx.time.intervalMs));
    this.pumpTimer = setInterval(() => this.pump(), tickMs);
  }

  private onRejection(payload: Buffer): void {
    const { stats } = this.ctx;
    let body: { topic?: unknown; reason?: unknown; detail?: unknown };
    try {
      body = JSON.parse(payload.toString('utf8')) as typeof body;
    } catch {
      body = { reason: 'unparseable_error_message', detail: payload.toString('utf8').slice(0, 200) };
    }
    const entry: RejectedMessage = { device: this.deviceId, topic: String(body.topic ?? ''), reason: String(body.reason ?? 'unknown') };
    if (body.detail !== undefined) entry.detail = String(body.detail);
    stats.rejectedTotal += 1;
    if (stats.rejected.length < DEFAULT_SIMULATION_OPTIONS.maxRejectedKept) stats.rejected.push(entry);
    if (stats.rejectedTotal <= 50 || stats.rejectedTotal % 100 === 0) {
      this.log.warn({ topic: entry.topic, reason: entry.reason, detail: entry.detail, total: stats.rejectedTotal }, 'platform rejected a message');
    }
  }

  /** The scenario's next link loss, if reading k of the first device falls inside it. */
  private outageFor(k: number): OfflineEffect | undefined {
    const outage = this.outages[this.outagesDone];
    if (!outage) return undefined;
    const elapsedS = (k * this.ctx.time.stepMs) / 1000;
    return elapsedS >= outage.at ? outage : undefined;
  }

  /** Publishes every reading that is due, as far as the link and the in-flight window allow. */
  private pump(): void {
    const client = this.client;
    if (!client || this.dead || this.stopping) return;
    const now = Date.now();
    if (this.link === 'down' && now < this.outageEnds) return;
    if (this.link === 'draining') {
      if (this.inflight > 0) return;
      this.goOffline(client, now);
      return;
    }
    if (!client.connected) return; // mqtt.js would queue; keep them here instead, in order
    const { time, stats } = this.ctx;
    const max = DEFAULT_SIMULATION_OPTIONS.maxInflight;
    for (const device of this.devices) {
      if (!device.historySent) this.sendHistory(client, device);
      while ((time.steps === undefined || device.next < time.steps) && this.inflight < max && dueAt(time, device.next, this.ctx.wallStart, device.phaseMs) <= now) {
        const k = device.next;
        if (device.tsOffset === 0 && this.outageFor(k)) {
          this.link = 'draining';
          return;
        }
        device.next += 1;
        const ts = stepTs(time, k) + device.tsOffset;
        const elapsedMs = k * time.stepMs;
        for (const sensor of device.plan.sensors) {
          const reading = readingAt(sensor, ts, elapsedMs, time.stepMs);
          if (!reading) continue;
          this.inflight += 1;
          stats.sent += 1;
          stats.perAsset[sensor.assetId] = (stats.perAsset[sensor.assetId] ?? 0) + 1;
          if (stats.firstTs === undefined || ts < stats.firstTs) stats.firstTs = ts;
          if (stats.lastTs === undefined || ts > stats.lastTs) stats.lastTs = ts;
          client.publish(sensor.topic, JSON.stringify(reading), { qos: 1 }, (err) => {
            this.inflight -= 1;
            if (stats.frozen) return;
            if (err) stats.errors += 1;
            else stats.acknowledged += 1;
          });
        }
      }
    }
  }

  /** Sends a device's history from its buffer: per sensor, batches of readings, oldest first. */
  private sendHistory(client: MqttClient, device: VirtualDevice): void {
    device.historySent = true;
    const { time, stats } = this.ctx;
    if (time.historySteps === 0) return;
    for (const sensor of device.plan.sensors) {
      let batch: ReadingPayload[] = [];
      const flush = () => {
        if (batch.length === 0) return;
        const n = batch.length;
        this.inflight += n;
        stats.sent += n;
        stats.perAsset[sensor.assetId] = (stats.perAsset[sensor.assetId] ?? 0) + n;
        if (stats.firstTs === undefined || batch[0]!.ts < stats.firstTs) stats.firstTs = batch[0]!.ts;
        client.publish(sensor.topic, JSON.stringify(batch), { qos: 1 }, (err) => {
          this.inflight -= n;
          if (stats.frozen) return;
          if (err) stats.errors += n;
          else stats.acknowledged += n;
        });
        batch = [];
      };
      for (const { reading } of historyOf(sensor, time, device.tsOffset)) {
        batch.push(reading);
        if (batch.length === HISTORY_BATCH) flush();
      }
      flush();
    }
  }

  /** Drops the link without a DISCONNECT, so the broker fires the last will; back after the outage. */
  private goOffline(client: MqttClient, now: number): void {
    const outage = this.outages[this.outagesDone]!;
    this.outagesDone += 1;
    const wallMs = (outage.duration * 1000) / this.ctx.time.speed;
    this.link = 'down';
    this.outageEnds = now + wallMs;
    this.log.info({ seconds: outage.duration }, `scenario: ${outage.note}`);
    client.options.reconnectPeriod = Math.max(1, Math.round(wallMs));
    client.stream?.destroy();
  }

  private stopTimers(): void {
    clearInterval(this.pumpTimer);
    this.pumpTimer = undefined;
  }

  /** Stops publishing, marks the device offline and disconnects; never hangs. */
  async stop(): Promise<void> {
    this.stopping = true;
    this.stopTimers();
    const client = this.client;
    if (!client) return;
    const timeout = DEFAULT_SIMULATION_OPTIONS.stopTimeoutMs;
    if (client.connected) {
      // A clean DISCONNECT does not fire the last will, so say it ourselves.
      await within(client.publishAsync(topics.status(this.deviceId), 'offline', { qos: 1, retain: true }), timeout);
      // end(false) waits until every in-flight reading has its PUBACK.
      if (!(await within(client.endAsync(false), timeout))) client.stream?.destroy();
    } else {
      await within(client.endAsync(true), timeout);
    }
  }
}

/** Replica r of configured device d, for load mode. */
function replicaPlan(config: WatchpostConfig, base: DevicePlan, assets: readonly string[], seed: number, replica: number): DevicePlan {
  const sensors = buildSensors(config, assets, hashSeed(seed, 'replica', replica), new Set(), undefined);
  return { id: base.id, secret: base.secret, sensors, outages: [] };
}

/** Spreads the simulated devices over connections: each connection carries devices of one id. */
function assignConnections(devices: VirtualDevice[], wanted: number | undefined): Array<{ deviceId: string; secret: string; devices: VirtualDevice[] }> {
  if (wanted === undefined) return devices.map((d) => ({ deviceId: d.plan.id, secret: d.plan.secret, devices: [d] }));
  const byId = new Map<string, VirtualDevice[]>();
  for (const d of devices) byId.set(d.plan.id, [...(byId.get(d.plan.id) ?? []), d]);
  const ids = [...byId.keys()];
  const total = Math.max(wanted, ids.length);
  const out: Array<{ deviceId: string; secret: string; devices: VirtualDevice[] }> = [];
  ids.forEach((id, i) => {
    const group = byId.get(id)!;
    const share = Math.max(1, Math.min(group.length, Math.floor(total / ids.length) + (i < total % ids.length ? 1 : 0)));
    for (let c = 0; c < share; c++) {
      out.push({ deviceId: id, secret: group[0]!.plan.secret, devices: group.filter((_, j) => j % share === c) });
    }
  });
  return out;
}

/**
 * Runs the device simulators until every reading of the run is published and acknowledged (a run
 * with a length), or `signal` aborts; then disconnects every device cleanly and returns what was
 * sent.
 */
export async function runSimulation(config: WatchpostConfig, options: SimulationOptions): Promise<SimulationSummary> {
  const log = options.logger.child({ module: 'simulator' });
  const seed = options.seed ?? DEFAULT_SIMULATION_OPTIONS.seed;
  if (options.devices !== undefined && !(Number.isInteger(options.devices) && options.devices >= 1)) {
    throw new SimulationError('invalid_option', `devices must be a whole number ≥ 1 (got ${options.devices})`);
  }
  if (options.connections !== undefined && !(Number.isInteger(options.connections) && options.connections >= 1)) {
    throw new SimulationError('invalid_option', `connections must be a whole number ≥ 1 (got ${options.connections})`);
  }
  const scenario = scenarioByName(options.scenario ?? DEFAULT_SIMULATION_OPTIONS.scenario);
  const wallStart = Date.now();
  const time = planTime({
    now: wallStart,
    speed: options.speed ?? DEFAULT_SIMULATION_OPTIONS.speed,
    rate: options.rate ?? DEFAULT_SIMULATION_OPTIONS.rate,
    duration: options.duration,
    length: scenario.length,
    start: options.start,
    history: scenario.history,
  });

  const configured = config.devices.filter((d) => d.assets.length > 0).length;
  const plan = planSimulation(config, { ...options, seed, devices: options.devices !== undefined && options.devices <= configured ? options.devices : undefined });
  for (const warning of plan.warnings) log.warn(warning);

  // Simulated devices: the configured ones first, then replicas of them round robin (load mode).
  const jitter = mulberry32(hashSeed(seed, 'phase'));
  const phase = () => Math.floor(jitter() * Math.min(time.intervalMs, 1000));
  const virtual: VirtualDevice[] = plan.devices.map((d) => ({ plan: d, tsOffset: 0, phaseMs: phase(), next: 0, historySent: false }));
  const wanted = options.devices ?? plan.devices.length;
  const assetsOf = new Map(config.devices.map((d) => [d.id, d.assets]));
  for (let i = plan.devices.length; i < wanted; i++) {
    const base = plan.devices[i % plan.devices.length]!;
    const replica = Math.floor(i / plan.devices.length);
    virtual.push({ plan: replicaPlan(config, base, assetsOf.get(base.id) ?? [], seed, replica), tsOffset: replica, phaseMs: phase(), next: 0, historySent: false });
  }
  if (wanted > plan.devices.length) {
    log.info({ configured: plan.devices.length, simulated: wanted }, 'load mode: replicas of the configured devices, timestamps offset by the replica number in ms');
  }

  const stats: Stats = { sent: 0, acknowledged: 0, errors: 0, rejected: [], rejectedTotal: 0, perAsset: {}, refused: [], frozen: false, firstTs: undefined, lastTs: undefined, unsent: 0 };
  const ctx: RunContext = { url: options.url, time, wallStart, seed, log, stats };
  const outagesOf = new Map(plan.devices.map((d) => [d.id, d.outages]));
  const connections = assignConnections(virtual, options.connections).map(
    (c) => new SimulatedConnection(c.deviceId, c.secret, c.devices, c.devices.some((d) => d.tsOffset === 0) ? (outagesOf.get(c.deviceId) ?? []) : [], ctx),
  );

  log.info(
    {
      scenario: plan.scenario.name,
      url: options.url,
      devices: virtual.length,
      connections: connections.length,
      sensors: virtual.reduce((n, d) => n + d.plan.sensors.length, 0),
      rate: time.rate,
      speed: time.speed,
      step_s: time.stepMs / 1000,
      from: new Date(time.start).toISOString(),
      duration_s: time.durationS ?? null,
      seed,
      expected: plan.scenario.expected.map((e) => `${e.rule_id} ${e.levels.join('→')} on ${e.asset_id}/${e.sensor_id}`),
    },
    `simulation starting: ${plan.scenario.description}`,
  );

  const effectTimers = plan.effects.map((e) =>
    setTimeout(
      () => log.info({ asset_id: e.assetId, sensor_id: e.sensorId, metric: e.metric, target: e.target }, `scenario: ${e.effect.note}`),
      (e.effect.at * 1000) / time.speed,
    ),
  );
  const progress = (): SimulationProgress => ({
    elapsedMs: Date.now() - wallStart,
    sent: stats.sent,
    acknowledged: stats.acknowledged,
    errors: stats.errors,
    inflight: connections.reduce((n, c) => n + c.pending, 0),
    connected: connections.filter((c) => c.connected).length,
    connections: connections.length,
    simulatedTs: stats.lastTs,
  });
  const progressTimer = options.onProgress ? setInterval(() => options.onProgress!(progress()), DEFAULT_SIMULATION_OPTIONS.progressIntervalMs) : undefined;

  try {
    for (const c of connections) c.start();
    await new Promise<void>((resolve) => {
      const deadline = time.durationS === undefined ? undefined : wallStart + time.durationS * 1000 + DEFAULT_SIMULATION_OPTIONS.overrunMs;
      const check = setInterval(() => {
        if (time.steps === undefined) return;
        const done = connections.every((c) => c.finished() && c.pending === 0);
        if (done || (deadline !== undefined && Date.now() > deadline)) finish();
      }, 50);
      function finish() {
        clearInterval(check);
        options.signal?.removeEventListener('abort', finish);
        resolve();
      }
      if (options.signal?.aborted) finish();
      else options.signal?.addEventListener('abort', finish, { once: true });
    });
  } finally {
    for (const timer of effectTimers) clearTimeout(timer);
    clearInterval(progressTimer);
    stats.unsent = connections.reduce((n, c) => n + c.unsent(), 0);
    await Promise.all(connections.map((c) => c.stop()));
    stats.frozen = true;
  }
  options.onProgress?.(progress());

  const summary: SimulationSummary = {
    scenario: plan.scenario.name,
    sent: stats.sent,
    acknowledged: stats.acknowledged,
    errors: stats.errors,
    unacknowledged: Math.max(0, stats.sent - stats.acknowledged - stats.errors + stats.refused.length),
    unsent: stats.unsent,
    rejected: stats.rejected,
    rejectedTotal: stats.rejectedTotal,
    perAsset: stats.perAsset,
    refused: stats.refused,
    skipped: plan.skipped,
    devices: virtual.length,
    connections: connections.length,
    speed: time.speed,
    stepSeconds: time.stepMs / 1000,
    simulatedFrom: stats.firstTs === undefined ? null : new Date(stats.firstTs).toISOString(),
    simulatedTo: stats.lastTs === undefined ? null : new Date(stats.lastTs).toISOString(),
    durationMs: Date.now() - wallStart,
  };
  const { rejected: _rejected, perAsset: _perAsset, ...loggable } = summary;
  log.info(loggable, 'simulation finished');
  return summary;
}

/** The summary as a few human-readable lines, for the command line. */
export function formatSummary(summary: SimulationSummary): string {
  const lines = [
    `scenario ${summary.scenario}: ${summary.sent} readings sent, ${summary.acknowledged} acknowledged, ${summary.errors} errors, ${summary.unacknowledged} unacknowledged, ${summary.rejectedTotal} rejected by the platform (${(summary.durationMs / 1000).toFixed(1)} s)`,
    `  ${summary.devices} devices on ${summary.connections} connections; speed ${summary.speed}×, a reading every ${summary.stepSeconds} simulated s per sensor; simulated ${summary.simulatedFrom ?? '-'} … ${summary.simulatedTo ?? '-'}`,
  ];
  if (summary.unsent > 0) lines.push(`  ${summary.unsent} readings never sent (broker unreachable)`);
  const perAsset = Object.entries(summary.perAsset);
  if (perAsset.length <= 20) for (const [asset, n] of perAsset) lines.push(`  ${asset}: ${n} readings`);
  if (summary.refused.length > 0) lines.push(`refused by the broker: ${summary.refused.join(', ')}`);
  if (summary.skipped.length > 0) lines.push(`skipped (no secret): ${summary.skipped.join(', ')}`);
  const reasons = new Map<string, number>();
  for (const r of summary.rejected) reasons.set(r.reason, (reasons.get(r.reason) ?? 0) + 1);
  for (const [reason, n] of reasons) lines.push(`  rejected ${reason}: ${n}`);
  return lines.join('\n');
}

/** One progress line for a terminal: elapsed, counts, rate since the previous line. */
export function formatProgress(p: SimulationProgress, previous: SimulationProgress | undefined): string {
  const dt = previous ? (p.elapsedMs - previous.elapsedMs) / 1000 : p.elapsedMs / 1000;
  const rate = dt > 0 ? Math.round((p.sent - (previous?.sent ?? 0)) / dt) : 0;
  const sim = p.simulatedTs === undefined ? '' : `  at ${new Date(p.simulatedTs).toISOString().slice(0, 19)}Z`;
  return `${(p.elapsedMs / 1000).toFixed(0).padStart(5)} s  sent ${p.sent}  acked ${p.acknowledged}  errors ${p.errors}  in flight ${p.inflight}  ${rate}/s  connected ${p.connected}/${p.connections}${sim}`;
}
