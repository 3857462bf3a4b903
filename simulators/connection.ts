/**
 * One MQTT connection of the device simulators, logged in as one device with its own credentials,
 * exactly as a data acquisition unit in the field (contract: MQTT). It
 * - connects with username = device id and its secret, last will `status/<id>` = `offline`
 *   (retained), and publishes `status/<id>` = `online` (retained) once connected;
 * - subscribes to `errors/<id>` and counts and logs every rejection the platform reports;
 * - publishes `{ "ts", "values" }` to `telemetry/<asset>/<sensor>` at QoS 1, when each reading
 *   falls due (./clock.ts), for every simulated device it carries;
 * - reconnects with exponential backoff and jitter; readings that fall due meanwhile are sent on
 *   reconnect with their original timestamps (a device's buffer), and at most `maxInflight` wait
 *   for their PUBACK at once (more are held back, not dropped);
 * - plays the scenario's link losses of its device (drops the link so that the last will fires);
 * - on stop publishes `offline` (retained) and disconnects cleanly.
 */
import { randomBytes } from 'node:crypto';
import mqtt, { type IClientOptions, type MqttClient } from 'mqtt';
import { topics } from '../ingest/topics.js';
import type { Logger } from '../lib/logger.js';
import { dueAt, stepTs, type TimePlan } from './clock.js';
import { DEFAULT_SIMULATION_OPTIONS } from './options.js';
import type { DevicePlan } from './plan.js';
import { historyOf, readingAt, type ReadingPayload } from './readings.js';
import type { RejectedMessage } from './report.js';
import type { OfflineEffect } from './scenarios.js';
import { hashSeed, mulberry32, type Rng } from './signals.js';

/** History readings go out as batches of at most this many (contract: arrays of up to 1000). */
const HISTORY_BATCH = 1000;

export interface Stats {
  sent: number;
  acknowledged: number;
  /** Readings whose publish failed (the client gave up on them). */
  failed: number;
  /** Connection attempts that ended before a CONNACK (nothing listening, network, timeout). */
  connectFailures: number;
  rejected: RejectedMessage[];
  rejectedTotal: number;
  perAsset: Record<string, number>;
  refused: string[];
  frozen: boolean;
  firstTs: number | undefined;
  lastTs: number | undefined;
  unsent: number;
}

export interface RunContext {
  url: string;
  time: TimePlan;
  wallStart: number;
  seed: number;
  log: Logger;
  stats: Stats;
}

/** One simulated device (or replica) on a connection: its sensors and how far it has got. */
export interface VirtualDevice {
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
    return await Promise.race([
      promise.then(
        () => true,
        () => true,
      ),
      timeout,
    ]);
  } finally {
    clearTimeout(timer);
  }
}

/** MQTT 3.1.1 servers must accept client ids of up to 23 characters; stay within that. */
function clientIdFor(deviceId: string): string {
  return `${deviceId.slice(0, 14)}-${randomBytes(4).toString('hex')}`;
}

/** A field of the platform's error message as text (it should be a string; anything else as JSON). */
function asText(value: unknown): string {
  return typeof value === 'string' ? value : JSON.stringify(value);
}

type LinkState = 'up' | 'draining' | 'down';

/** One MQTT connection, authenticated as one device id, carrying one or more simulated devices. */
export class SimulatedConnection {
  private client: MqttClient | undefined;
  private pumpTimer: NodeJS.Timeout | undefined;
  private inflight = 0;
  private attempt = 0;
  private everConnected = false;
  /** The current connection attempt got its CONNACK. */
  private connackThisAttempt = false;
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

  /** The broker accepted this connection at least once. */
  get hasConnected(): boolean {
    return this.everConnected;
  }

  /**
   * Readings (one per sensor and step) this connection never published: the rest of a run with an
   * end, or those due so far of an open-ended one, and the history if it was never sent.
   */
  unsent(): number {
    const { time, wallStart } = this.ctx;
    const now = Date.now();
    let n = 0;
    for (const d of this.devices) {
      const sensors = d.plan.sensors.length;
      if (!d.historySent) n += time.historySteps * sensors;
      if (time.steps !== undefined) n += Math.max(0, time.steps - d.next) * sensors;
      else for (let k = d.next; dueAt(time, k, wallStart, d.phaseMs) <= now; k++) n += sensors;
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
      this.connackThisAttempt = true;
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
      this.connackThisAttempt = false;
      const base = Math.min(DEFAULT_SIMULATION_OPTIONS.backoffMs * 2 ** this.attempt, DEFAULT_SIMULATION_OPTIONS.maxBackoffMs);
      client.options.reconnectPeriod = Math.round(base * (0.8 + 0.4 * this.jitter()));
    });
    client.on('close', () => {
      if (!this.connackThisAttempt && !this.stopping && !this.dead) this.ctx.stats.connectFailures += 1;
      if (this.online && !this.stopping && this.link !== 'down') this.log.warn('connection lost; reconnecting with backoff, readings are kept until then');
      this.online = false;
    });
    client.on('error', (err: Error & { code?: unknown }) => {
      if (typeof err.code === 'number') {
        // CONNACK refusal (bad credentials, not authorised, client id rejected): retrying will
        // not help, so this connection stops.
        this.log.error({ reason: err.message }, `broker refused device ${this.deviceId}; check its secret`);
        if (!this.ctx.stats.refused.includes(this.deviceId)) this.ctx.stats.refused.push(this.deviceId);
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
    const entry: RejectedMessage = { device: this.deviceId, topic: asText(body.topic ?? ''), reason: asText(body.reason ?? 'unknown') };
    if (body.detail !== undefined) entry.detail = asText(body.detail);
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
            if (err) stats.failed += 1;
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
          if (err) stats.failed += n;
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
