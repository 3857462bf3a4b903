/**
 * `watchpost simulate --protocol gb26875`: plays a scenario as a GB/T 26875.3 user information
 * transmission device. The configuration's gb26875 adapters say which device address reports
 * which asset, and their `sensors` renames say which point of the device carries which catalogue
 * sensor and metric; the simulator turns those readings back into the device's objects:
 *   s-… points: system status (type 1); c-… points: component status (type 2) for fire_alarm,
 *   fault, supervisory and disabled, analogue values (type 3) for analogue metrics; uitd: type 21.
 * Statuses are sent when they change and every minute of simulated time; analogue values at
 * every step. Each frame waits for its confirm (command 3, same serial number); the clock
 * synchronisation of the centre (control, type 90) is confirmed as a device does.
 */
import { connect, type Socket } from 'node:net';
import { utcOffsetMinutes, type Gb26875AdapterConfig, type Gb26875DeviceMapping } from '../ingest/gb26875/config.js';
import { COMMAND, encodeFrame, scanFrame, timeLabelAt, type Frame } from '../ingest/gb26875/frame.js';
import { encodeUnit, type DataUnit, type InfoObject } from '../ingest/gb26875/objects.js';
import { encodeDescription } from '../ingest/gb26875/standard.js';
import type { Logger } from '../lib/logger.js';
import { planTime, stepTs } from './clock.js';
import type { SimulatorConfig } from './config.js';
import { SimulationError } from './errors.js';
import { DEFAULT_SIMULATION_OPTIONS } from './options.js';
import { planSimulation, type SensorPlan } from './plan.js';
import { readingAt } from './readings.js';
import { scenarioByName } from './scenarios.js';

const STATUS_METRICS = { fire_alarm: 1, fault: 2, disabled: 3, supervisory: 4 } as const;
/** Catalogue metric -> analogue type and wire scale (kPa for pressures: 0.1 kPa resolution). */
const ANALOGUE_OUT: Record<string, { type: number; scale: number }> = {
  pressure: { type: 5, scale: 0.0001 },
  level: { type: 2, scale: 0.01 },
  temperature: { type: 3, scale: 0.1 },
  gas_lel: { type: 6, scale: 0.1 },
  voltage: { type: 8, scale: 0.1 },
  current: { type: 9, scale: 0.1 },
};
const STATUS_REPEAT_MS = 60_000;

export interface Gb26875SimulationOptions {
  /** host:port of the centre; default the first gb26875 adapter's. */
  target?: string;
  scenario?: string;
  speed?: number;
  rate?: number;
  duration?: number;
  start?: number;
  seed?: number;
  logger: Logger;
  signal?: AbortSignal;
}

export interface Gb26875SimulationSummary {
  scenario: string;
  target: string;
  devices: number;
  frames: number;
  confirmed: number;
  denied: number;
  unanswered: number;
  durationMs: number;
}

type Config = SimulatorConfig & { adapters: ReadonlyArray<{ type: string }> };

interface Point {
  /** Device point id (s-…, c-…, uitd) and the point's metric for each catalogue metric of the sensor. */
  point: string;
  metrics: Map<string, string>;
  sensor: SensorPlan;
}

function pointsOf(mapping: Gb26875DeviceMapping, sensors: SensorPlan[]): Point[] {
  const out: Point[] = [];
  for (const rename of mapping.sensors) {
    const sensor = sensors.find((s) => s.assetId === mapping.asset && s.sensorId === rename.sensor);
    if (!sensor) continue;
    const metrics = new Map<string, string>();
    for (const s of sensor.series) {
      const from = rename.metrics ? Object.entries(rename.metrics).find(([, to]) => to === s.metric)?.[0] : s.metric;
      if (from) metrics.set(s.metric, from);
    }
    if (metrics.size > 0) out.push({ point: rename.id, metrics, sensor });
  }
  return out;
}

/** The object of a point's reading, or undefined when the point's metrics say nothing the protocol carries. */
function objectsOf(point: Point, values: Record<string, number | boolean>, ts: number, offset: number): { status?: InfoObject; analogue: InfoObject[] } {
  const time = timeLabelAt(ts, offset);
  let status: number | undefined;
  const analogue: InfoObject[] = [];
  const [, t, a, addr] = point.point.split('-');
  const systemType = Number(t ?? 0);
  const systemAddress = Number(a ?? 0);
  const componentAddress = addr ? parseInt(addr, 16) : 0;
  for (const [metric, as] of point.metrics) {
    const raw = values[metric];
    if (raw === undefined) continue;
    const value = typeof raw === 'boolean' ? (raw ? 1 : 0) : raw;
    if (as in STATUS_METRICS) {
      status = (status ?? 1) | (value >= 0.5 ? 1 << STATUS_METRICS[as as keyof typeof STATUS_METRICS] : 0);
    } else if (ANALOGUE_OUT[as] && point.point.startsWith('c-')) {
      const out = ANALOGUE_OUT[as];
      const wire = Math.max(-32768, Math.min(32767, Math.round(value / out.scale)));
      analogue.push({ type: 3, systemType, systemAddress, componentType: 0, componentAddress, analogueType: out.type, value: wire, time });
    }
  }
  if (status === undefined) return { analogue };
  if (point.point === 'uitd') return { status: { type: 21, status: status & 0x07, time }, analogue };
  if (point.point.startsWith('s-')) return { status: { type: 1, systemType, systemAddress, status, time }, analogue };
  return { status: { type: 2, systemType, systemAddress, componentType: 0, componentAddress, status, description: encodeDescription(point.sensor.sensorId), time }, analogue };
}

class DeviceConnection {
  private socket?: Socket;
  private buffer = Buffer.alloc(0);
  private serial = 0;
  private readonly waiting = new Map<number, () => void>();
  confirmed = 0;
  denied = 0;
  frames = 0;

  constructor(
    private readonly address: string,
    private readonly centre: string,
    private readonly offset: number,
    private readonly log: Logger,
  ) {}

  async open(host: string, port: number): Promise<void> {
    this.socket = await new Promise<Socket>((resolve, reject) => {
      const s = connect(port, host, () => resolve(s));
      s.once('error', reject);
    });
    this.socket.on('error', (err) => this.log.warn({ err: err.message }, 'GB/T 26875.3 link error'));
    this.socket.on('data', (chunk: Buffer) => this.receive(chunk));
  }

  private receive(chunk: Buffer): void {
    this.buffer = Buffer.concat([this.buffer, chunk]);
    for (;;) {
      const scan = scanFrame(this.buffer);
      if (scan.kind === 'more') break;
      if (scan.kind === 'frame') this.answer(scan.frame);
      this.buffer = this.buffer.subarray(scan.next);
    }
  }

  private answer(frame: Frame): void {
    if (frame.command === COMMAND.confirm || frame.command === COMMAND.deny) {
      if (frame.command === COMMAND.confirm) this.confirmed++;
      else this.denied++;
      this.waiting.get(frame.serial)?.();
      this.waiting.delete(frame.serial);
    } else if (frame.command === COMMAND.control) {
      // The centre's clock synchronisation: confirmed (the simulated clock is the system clock).
      this.write(frame.serial, COMMAND.confirm, new Uint8Array(0), frame.source);
    }
  }

  private write(serial: number, command: number, appData: Uint8Array, to = this.centre): void {
    this.socket?.write(encodeFrame({ serial, version: 0x0101, time: timeLabelAt(Date.now(), this.offset), source: this.address, destination: to, command, appData }));
  }

  /** Sends a unit; resolves once it is answered (or the link closes). */
  send(unit: DataUnit): Promise<void> {
    this.serial = (this.serial % 0xffff) + 1;
    const serial = this.serial;
    this.frames++;
    const answered = new Promise<void>((resolve) => this.waiting.set(serial, resolve));
    this.write(serial, COMMAND.send, encodeUnit(unit));
    return answered;
  }

  unanswered(): number {
    return this.waiting.size;
  }

  close(): void {
    for (const resolve of this.waiting.values()) resolve();
    this.socket?.destroy();
  }
}

export function defaultGb26875Target(config: Config): string {
  const adapter = config.adapters.find((a): a is Gb26875AdapterConfig => a.type === 'gb26875');
  if (!adapter) throw new SimulationError('invalid_option', 'the configuration has no gb26875 adapter (adapters: - type: gb26875)');
  const host = ['0.0.0.0', '::', ''].includes(adapter.host) ? '127.0.0.1' : adapter.host;
  return `${host}:${adapter.port}`;
}

export async function runGb26875Simulation(config: Config, options: Gb26875SimulationOptions): Promise<Gb26875SimulationSummary> {
  const log = options.logger.child({ module: 'simulator', protocol: 'gb26875' });
  const adapter = config.adapters.find((a): a is Gb26875AdapterConfig => a.type === 'gb26875');
  if (!adapter) throw new SimulationError('invalid_option', 'the configuration has no gb26875 adapter (adapters: - type: gb26875)');
  const target = options.target ?? defaultGb26875Target(config);
  const match = /^(.+):(\d{1,5})$/.exec(target);
  if (!match) throw new SimulationError('invalid_option', `--url must be host:port or tcp://host:port, got "${target}"`);
  const [host, port] = [match[1]!.replace(/^\[|\]$/g, ''), Number(match[2])];
  const scenario = scenarioByName(options.scenario ?? 'fire');
  const wallStart = Date.now();
  const time = planTime({
    now: wallStart,
    speed: options.speed ?? DEFAULT_SIMULATION_OPTIONS.speed,
    rate: options.rate ?? DEFAULT_SIMULATION_OPTIONS.rate,
    duration: options.duration,
    length: scenario.length,
    start: options.start,
    history: undefined,
  });
  const plan = planSimulation(config, { scenario: scenario.name, seed: options.seed ?? DEFAULT_SIMULATION_OPTIONS.seed });
  const sensors = plan.devices.flatMap((d) => d.sensors);
  const offset = utcOffsetMinutes(adapter.utc_offset);
  const devices = adapter.devices
    .map((mapping) => ({ mapping, points: pointsOf(mapping, sensors), link: new DeviceConnection(mapping.address, adapter.address, offset, log) }))
    .filter((d) => d.points.length > 0);
  if (devices.length === 0) throw new SimulationError('invalid_option', 'no gb26875 device mapping names a simulated sensor (adapters[].devices[].sensors)');
  for (const d of devices) await d.link.open(host, port);
  log.info(
    { scenario: scenario.name, target, devices: devices.length, points: devices.reduce((n, d) => n + d.points.length, 0) },
    `GB/T 26875.3 simulation starting: ${scenario.description}`,
  );

  const lastStatus = new Map<string, { status: number; at: number }>();
  const inflight: Promise<void>[] = [];
  try {
    for (let k = 0; time.steps === undefined || k < time.steps; k++) {
      const due = wallStart + (k * time.stepMs) / time.speed;
      const wait = due - Date.now();
      if (wait > 0)
        await new Promise<void>((resolve) => {
          const t = setTimeout(resolve, wait);
          options.signal?.addEventListener(
            'abort',
            () => {
              clearTimeout(t);
              resolve();
            },
            { once: true },
          );
        });
      if (options.signal?.aborted) break;
      const ts = stepTs(time, k);
      for (const d of devices) {
        const statuses: InfoObject[] = [];
        const analogues: InfoObject[] = [];
        for (const p of d.points) {
          const reading = readingAt(p.sensor, ts, k * time.stepMs, time.stepMs);
          if (!reading) continue;
          const { status, analogue } = objectsOf(p, reading.values, ts, offset);
          analogues.push(...analogue);
          if (!status || !('status' in status)) continue;
          const key = `${d.mapping.address}/${p.point}`;
          const last = lastStatus.get(key);
          if (last && last.status === status.status && ts - last.at < STATUS_REPEAT_MS) continue;
          lastStatus.set(key, { status: status.status, at: ts });
          statuses.push(status);
        }
        // One unit per type (a unit holds objects of one type); fire alarms go first.
        for (const type of [1, 2, 21, 3]) {
          const objects = [...statuses, ...analogues].filter((o) => o.type === type);
          for (let i = 0; i < objects.length; i += 20) inflight.push(d.link.send({ type, objects: objects.slice(i, i + 20) }));
        }
      }
    }
    await Promise.race([Promise.all(inflight), new Promise((resolve) => setTimeout(resolve, DEFAULT_SIMULATION_OPTIONS.endGraceMs).unref())]);
  } finally {
    for (const d of devices) d.link.close();
  }
  const summary: Gb26875SimulationSummary = {
    scenario: scenario.name,
    target,
    devices: devices.length,
    frames: devices.reduce((n, d) => n + d.link.frames, 0),
    confirmed: devices.reduce((n, d) => n + d.link.confirmed, 0),
    denied: devices.reduce((n, d) => n + d.link.denied, 0),
    unanswered: devices.reduce((n, d) => n + d.link.unanswered(), 0),
    durationMs: Date.now() - wallStart,
  };
  log.info(summary, 'GB/T 26875.3 simulation finished');
  return summary;
}
