/**
 * Device simulators: one MQTT connection per configured device, publishing its assets' sensors
 * over real MQTT with the device's own credentials, exactly as a data acquisition unit in the
 * field does (contract: MQTT).
 *
 * Each device
 * - connects with username = device id and its secret, last will `status/<id>` = `offline`
 *   (retained), and publishes `status/<id>` = `online` (retained) once connected;
 * - subscribes to `errors/<id>` and counts and logs every rejection the platform reports;
 * - publishes `{ "ts", "values" }` to `telemetry/<asset>/<sensor>` at QoS 1, `rate` readings
 *   per second per sensor, values from ./signals.ts with the scenario's incidents on top;
 * - reconnects with exponential backoff (readings made while offline are queued and sent on
 *   reconnect with their original timestamps, up to `maxPending`);
 * - on stop publishes `offline` (retained) and disconnects cleanly.
 */
import { randomBytes } from 'node:crypto';
import mqtt, { type IClientOptions, type MqttClient } from 'mqtt';
import { isExternalBroker } from '../ingest/config.js';
import { topics } from '../ingest/topics.js';
import type { Logger } from '../lib/logger.js';
import type { WatchpostConfig } from '../server/config/schema.js';
import { SimulationError } from './errors.js';
import { DEFAULT_SCENARIO, SCENARIOS, incidentValue, resolveScenario, type ResolvedIncident, type ScenarioSpec, type SeriesTarget } from './scenarios.js';
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

export interface SimulationOptions {
  /** Broker URL, e.g. mqtt://127.0.0.1:1883 (see defaultBrokerUrl). */
  url: string;
  /** Scenario name (SCENARIOS); default `normal`. */
  scenario?: string;
  /** Readings per second per sensor; default 1. */
  rate?: number;
  /** Seconds; undefined = until `signal` aborts. */
  duration?: number;
  /** Seed of every signal generator; default 1. */
  seed?: number;
  /** Simulate only the first N publishing devices of the configuration. */
  devices?: number;
  logger: Logger;
  signal?: AbortSignal;
  /** device id -> secret, for devices configured with `secret_hash` only (or to override). */
  secrets?: Record<string, string>;
}

export const DEFAULT_SIMULATION_OPTIONS = {
  scenario: DEFAULT_SCENARIO,
  rate: 1,
  seed: 1,
  /** First reconnect delay; doubled after every failed attempt up to maxBackoffMs, ±20 % jitter. */
  backoffMs: 1_000,
  maxBackoffMs: 30_000,
  connectTimeoutMs: 10_000,
  /** Readings a device keeps in flight or queued while offline before it drops new ones. */
  maxPending: 10_000,
  /** How long stopping waits for outstanding PUBACKs before closing the connection anyway. */
  stopTimeoutMs: 3_000,
  /** Rejections kept in the summary (all are counted). */
  maxRejectedKept: 1_000,
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
  /** Readings that failed or were dropped, plus connections refused by the broker. */
  errors: number;
  /** Readings still waiting for PUBACK when the run ended. */
  unacknowledged: number;
  /** Rejections reported by the platform on errors/<device> (the first maxRejectedKept). */
  rejected: RejectedMessage[];
  rejectedTotal: number;
  /** Readings sent per asset id. */
  perAsset: Record<string, number>;
  /** Devices the broker refused at CONNECT. */
  refused: string[];
  /** Devices not simulated (no usable secret). */
  skipped: string[];
  durationMs: number;
}

/** One simulated (asset, sensor, metric) series. */
export interface SeriesPlan extends SeriesTarget {
  boolean: boolean;
  next: SignalGenerator;
  incident?: ResolvedIncident;
  incidentRng: Rng;
}

export interface SensorPlan {
  assetId: string;
  sensorId: string;
  topic: string;
  series: SeriesPlan[];
}

export interface DevicePlan {
  id: string;
  secret: string;
  sensors: SensorPlan[];
}

export interface SimulationPlan {
  scenario: ScenarioSpec;
  devices: DevicePlan[];
  incidents: ResolvedIncident[];
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

/**
 * Works out who publishes what: the devices to connect, each with the sensors of its assets and
 * a seeded generator per metric, and the scenario's incidents bound to sensors and rules.
 * Throws SimulationError for an unknown scenario or when nothing can be simulated.
 */
export function planSimulation(config: WatchpostConfig, options: Pick<SimulationOptions, 'scenario' | 'seed' | 'devices' | 'secrets'> = {}): SimulationPlan {
  const scenarioName = options.scenario ?? DEFAULT_SIMULATION_OPTIONS.scenario;
  const scenario = SCENARIOS[scenarioName];
  if (!scenario) {
    throw new SimulationError('unknown_scenario', `unknown scenario "${scenarioName}" (known: ${Object.keys(SCENARIOS).join(', ')})`);
  }
  const seed = options.seed ?? DEFAULT_SIMULATION_OPTIONS.seed;
  const warnings: string[] = [];
  const skipped: string[] = [];

  let publishers = config.devices.filter((d) => d.assets.length > 0);
  if (options.devices !== undefined) {
    if (options.devices > publishers.length) {
      warnings.push(`--devices ${options.devices}: the configuration has only ${publishers.length} publishing devices; simulating all of them`);
    }
    publishers = publishers.slice(0, options.devices);
  }

  const assets = new Map(config.assets.map((a) => [a.id, a]));
  const covered = new Set<string>();
  const devices: DevicePlan[] = [];
  const allSeries: SeriesPlan[] = [];

  for (const device of publishers) {
    const secret = options.secrets?.[device.id] ?? device.secret;
    if (secret === undefined) {
      skipped.push(device.id);
      warnings.push(`device ${device.id} has only a secret_hash; pass its secret to simulate it — skipped`);
      continue;
    }
    const sensors: SensorPlan[] = [];
    for (const assetId of device.assets) {
      const asset = assets.get(assetId);
      if (!asset || covered.has(assetId)) continue;
      covered.add(assetId);
      for (const sensor of asset.sensors ?? [{ id: 'sim-01', metrics: undefined }]) {
        const metrics = sensor.metrics ?? DEFAULT_METRICS_BY_TYPE[asset.type];
        if (!metrics || metrics.length === 0) {
          warnings.push(`${asset.id}/${sensor.id}: no metrics listed and no default for asset type "${asset.type}" — skipped`);
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
            next: createSignal(metric, range, mulberry32(hashSeed(seed, asset.id, sensor.id, metric))),
            incidentRng: mulberry32(hashSeed(seed, 'incident', asset.id, sensor.id, metric)),
          };
        });
        allSeries.push(...series);
        sensors.push({ assetId: asset.id, sensorId: sensor.id, topic: topics.telemetry(asset.id, sensor.id), series });
      }
    }
    if (sensors.length > 0) devices.push({ id: device.id, secret, sensors });
  }
  if (devices.length === 0) {
    throw new SimulationError('nothing_to_simulate', 'no device of the configuration can publish telemetry (devices need assets and a secret)');
  }

  const resolved = resolveScenario(scenario, config.rules, allSeries);
  warnings.push(...resolved.warnings);
  for (const incident of resolved.incidents) {
    const series = allSeries.find((s) => s.assetId === incident.assetId && s.sensorId === incident.sensorId && s.metric === incident.metric);
    if (series) series.incident = incident;
  }
  return { scenario, devices, incidents: resolved.incidents, warnings, skipped };
}

/** The reading a sensor publishes at `ts`, `elapsedMs` into the run. Advances its generators. */
export function readingAt(sensor: SensorPlan, ts: number, elapsedMs: number): ReadingPayload {
  const values: Record<string, number | boolean> = {};
  for (const s of sensor.series) {
    let v = s.next(ts);
    if (s.incident) v = incidentValue(s.incident, elapsedMs, v, s.incidentRng);
    v = clampToRange(roundForMetric(s.metric, v), s.range);
    values[s.metric] = s.boolean ? v >= 0.5 : v;
  }
  return { ts, values };
}

interface Stats {
  sent: number;
  acknowledged: number;
  errors: number;
  rejected: RejectedMessage[];
  rejectedTotal: number;
  perAsset: Record<string, number>;
  refused: string[];
  frozen: boolean;
}

interface RunContext {
  url: string;
  intervalMs: number;
  startedAt: number;
  seed: number;
  log: Logger;
  stats: Stats;
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

class SimulatedDevice {
  private client: MqttClient | undefined;
  private phaseTimer: NodeJS.Timeout | undefined;
  private tickTimer: NodeJS.Timeout | undefined;
  private pending = 0;
  private attempt = 0;
  private everConnected = false;
  private subscribed = false;
  private online = false;
  private dropping = false;
  private stopping = false;
  private readonly log: Logger;
  private readonly jitter: Rng;

  constructor(
    private readonly plan: DevicePlan,
    private readonly ctx: RunContext,
  ) {
    this.log = ctx.log.child({ device: plan.id });
    this.jitter = mulberry32(hashSeed(ctx.seed, 'device', plan.id));
  }

  start(): void {
    const { id, secret } = this.plan;
    const statusTopic = topics.status(id);
    const errorsTopic = topics.errors(id);
    const options: IClientOptions = {
      clientId: clientIdFor(id),
      username: id,
      password: secret,
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
      client.options.reconnectPeriod = DEFAULT_SIMULATION_OPTIONS.backoffMs;
      client.publish(statusTopic, 'online', { qos: 1, retain: true });
      if (!this.subscribed) {
        this.subscribed = true; // mqtt.js resubscribes by itself after a reconnect
        client.subscribe(errorsTopic, { qos: 1 }, (err, granted) => {
          if (err || granted?.some((g) => g.qos === 128)) this.log.warn({ err: err?.message }, `could not subscribe to ${errorsTopic}; rejections will not be seen`);
        });
      }
    });
    client.on('reconnect', () => {
      this.attempt += 1;
      const base = Math.min(DEFAULT_SIMULATION_OPTIONS.backoffMs * 2 ** this.attempt, DEFAULT_SIMULATION_OPTIONS.maxBackoffMs);
      client.options.reconnectPeriod = Math.round(base * (0.8 + 0.4 * this.jitter()));
    });
    client.on('close', () => {
      if (this.online && !this.stopping) this.log.warn('connection lost; reconnecting with backoff, readings are queued');
      this.online = false;
    });
    client.on('error', (err: Error & { code?: unknown }) => {
      if (typeof err.code === 'number') {
        // CONNACK refusal (bad credentials, not authorised, client id rejected): retrying will
        // not help, so this device stops.
        this.log.error({ reason: err.message }, `broker refused device ${id}; check its secret`);
        this.ctx.stats.refused.push(id);
        this.ctx.stats.errors += 1;
        this.stopTimers();
        return;
      }
      if (this.attempt <= 1) this.log.warn({ err: err.message, url: this.ctx.url }, 'MQTT connection error');
      else this.log.debug({ err: err.message, attempt: this.attempt }, 'MQTT connection error');
    });
    client.on('message', (topic, payload) => {
      if (topic === errorsTopic) this.onRejection(payload);
    });

    const phase = Math.floor(this.jitter() * Math.min(this.ctx.intervalMs, 250));
    this.phaseTimer = setTimeout(() => {
      this.phaseTimer = undefined;
      this.tick();
      this.tickTimer = setInterval(() => this.tick(), this.ctx.intervalMs);
    }, phase);
  }

  private onRejection(payload: Buffer): void {
    const { stats } = this.ctx;
    let body: { topic?: unknown; reason?: unknown; detail?: unknown };
    try {
      body = JSON.parse(payload.toString('utf8')) as typeof body;
    } catch {
      body = { reason: 'unparseable_error_message', detail: payload.toString('utf8').slice(0, 200) };
    }
    const entry: RejectedMessage = { device: this.plan.id, topic: String(body.topic ?? ''), reason: String(body.reason ?? 'unknown') };
    if (body.detail !== undefined) entry.detail = String(body.detail);
    stats.rejectedTotal += 1;
    if (stats.rejected.length < DEFAULT_SIMULATION_OPTIONS.maxRejectedKept) stats.rejected.push(entry);
    if (stats.rejectedTotal <= 50 || stats.rejectedTotal % 100 === 0) {
      this.log.warn({ topic: entry.topic, reason: entry.reason, detail: entry.detail, total: stats.rejectedTotal }, 'platform rejected a message');
    }
  }

  private tick(): void {
    const client = this.client;
    if (!client) return;
    const { stats } = this.ctx;
    const ts = Date.now();
    const elapsed = ts - this.ctx.startedAt;
    for (const sensor of this.plan.sensors) {
      const payload = JSON.stringify(readingAt(sensor, ts, elapsed));
      if (this.pending >= DEFAULT_SIMULATION_OPTIONS.maxPending) {
        stats.errors += 1;
        if (!this.dropping) this.log.warn({ pending: this.pending }, 'too many readings waiting for the broker; dropping new ones');
        this.dropping = true;
        continue;
      }
      this.dropping = false;
      this.pending += 1;
      stats.sent += 1;
      stats.perAsset[sensor.assetId] = (stats.perAsset[sensor.assetId] ?? 0) + 1;
      client.publish(sensor.topic, payload, { qos: 1 }, (err) => {
        this.pending -= 1;
        if (stats.frozen) return;
        if (err) stats.errors += 1;
        else stats.acknowledged += 1;
      });
    }
  }

  private stopTimers(): void {
    clearTimeout(this.phaseTimer);
    clearInterval(this.tickTimer);
    this.phaseTimer = undefined;
    this.tickTimer = undefined;
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
      await within(client.publishAsync(topics.status(this.plan.id), 'offline', { qos: 1, retain: true }), timeout);
      // end(false) waits until every in-flight reading has its PUBACK.
      if (!(await within(client.endAsync(false), timeout))) client.stream?.destroy();
    } else {
      await within(client.endAsync(true), timeout);
    }
  }
}

/**
 * Runs the device simulators until `duration` has passed or `signal` aborts, then disconnects
 * every device cleanly and returns what was sent.
 */
export async function runSimulation(config: WatchpostConfig, options: SimulationOptions): Promise<SimulationSummary> {
  const log = options.logger.child({ module: 'simulator' });
  const rate = options.rate ?? DEFAULT_SIMULATION_OPTIONS.rate;
  const seed = options.seed ?? DEFAULT_SIMULATION_OPTIONS.seed;
  if (!(rate > 0 && rate <= 1000)) throw new SimulationError('invalid_option', `rate must be > 0 and ≤ 1000 readings per second per sensor (got ${rate})`);
  if (options.duration !== undefined && !(options.duration >= 0 && Number.isFinite(options.duration))) {
    throw new SimulationError('invalid_option', `duration must be a number of seconds ≥ 0 (got ${options.duration})`);
  }
  if (options.devices !== undefined && !(Number.isInteger(options.devices) && options.devices >= 1)) {
    throw new SimulationError('invalid_option', `devices must be a whole number ≥ 1 (got ${options.devices})`);
  }

  const plan = planSimulation(config, { ...options, seed });
  for (const warning of plan.warnings) log.warn(warning);
  log.info(
    {
      scenario: plan.scenario.name,
      url: options.url,
      devices: plan.devices.length,
      sensors: plan.devices.reduce((n, d) => n + d.sensors.length, 0),
      rate,
      duration: options.duration ?? null,
      seed,
      expected: plan.scenario.expected,
    },
    `simulation starting: ${plan.scenario.description}`,
  );

  const stats: Stats = { sent: 0, acknowledged: 0, errors: 0, rejected: [], rejectedTotal: 0, perAsset: {}, refused: [], frozen: false };
  const startedAt = Date.now();
  const ctx: RunContext = { url: options.url, intervalMs: 1000 / rate, startedAt, seed, log, stats };
  const devices = plan.devices.map((d) => new SimulatedDevice(d, ctx));

  const incidentTimers = plan.incidents.map((incident) =>
    setTimeout(() => {
      log.info(
        { asset_id: incident.assetId, sensor_id: incident.sensorId, metric: incident.metric, rule_id: incident.ruleId, level: incident.level, target: roundForMetric(incident.metric, incident.target) },
        `scenario incident: ${incident.spec.note}`,
      );
    }, incident.spec.at * 1000),
  );

  try {
    for (const device of devices) device.start();
    await new Promise<void>((resolve) => {
      const timer = options.duration === undefined ? undefined : setTimeout(done, options.duration * 1000);
      function done() {
        clearTimeout(timer);
        options.signal?.removeEventListener('abort', done);
        resolve();
      }
      if (options.signal?.aborted) done();
      else options.signal?.addEventListener('abort', done, { once: true });
    });
  } finally {
    for (const timer of incidentTimers) clearTimeout(timer);
    await Promise.all(devices.map((d) => d.stop()));
  }

  stats.frozen = true;
  const summary: SimulationSummary = {
    scenario: plan.scenario.name,
    sent: stats.sent,
    acknowledged: stats.acknowledged,
    errors: stats.errors,
    unacknowledged: Math.max(0, stats.sent - stats.acknowledged - stats.errors),
    rejected: stats.rejected,
    rejectedTotal: stats.rejectedTotal,
    perAsset: stats.perAsset,
    refused: stats.refused,
    skipped: plan.skipped,
    durationMs: Date.now() - startedAt,
  };
  const { rejected: _rejected, ...loggable } = summary;
  log.info(loggable, 'simulation finished');
  return summary;
}

/** The summary as a few human-readable lines, for the command line. */
export function formatSummary(summary: SimulationSummary): string {
  const lines = [
    `scenario ${summary.scenario}: ${summary.sent} readings sent, ${summary.acknowledged} acknowledged, ${summary.errors} errors, ${summary.unacknowledged} unacknowledged, ${summary.rejectedTotal} rejected by the platform (${(summary.durationMs / 1000).toFixed(1)} s)`,
  ];
  for (const [asset, n] of Object.entries(summary.perAsset)) lines.push(`  ${asset}: ${n} readings`);
  if (summary.refused.length > 0) lines.push(`refused by the broker: ${summary.refused.join(', ')}`);
  if (summary.skipped.length > 0) lines.push(`skipped (no secret): ${summary.skipped.join(', ')}`);
  const reasons = new Map<string, number>();
  for (const r of summary.rejected) reasons.set(r.reason, (reasons.get(r.reason) ?? 0) + 1);
  for (const [reason, n] of reasons) lines.push(`  rejected ${reason}: ${n}`);
  return lines.join('\n');
}
