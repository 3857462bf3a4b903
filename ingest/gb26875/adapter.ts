/**
 * The GB/T 26875.3 transport: a TCP listener for user information transmission devices. It
 * keeps each link's receive buffer (at most one frame), its timeouts and its device, runs frames
 * through the pure codec (./frame.ts, ./objects.ts) and mapping (./mapping.ts), and hands the
 * readings to the same ingest path as MQTT telemetry. A frame is confirmed (command 3, its serial
 * number) once its readings are durable, denied (command 6) when it is bad; frames that report a
 * fire alarm go before bulk traffic. A device is online while it has a link that sent a valid frame.
 */
import { createServer, type AddressInfo, type Server, type Socket } from 'node:net';
import type { Clock } from '../../lib/clock.js';
import type { Logger } from '../../lib/logger.js';
import type { Counter, MetricsRegistry } from '../../lib/metrics.js';
import type { IngestOutcome, TelemetrySource } from '../ingest-service.js';
import { utcOffsetMinutes, type Gb26875AdapterConfig, type Gb26875DeviceMapping } from './config.js';
import { COMMAND, encodeFrame, FRAME_OVERHEAD, scanFrame, timeLabelAt, type Frame, type FrameHeader } from './frame.js';
import { pointReadings, renamePoints, reportsFireAlarm } from './mapping.js';
import { decodeUnit, encodeUnit, TYPE } from './objects.js';

export interface Gb26875Deps {
  config: Gb26875AdapterConfig;
  /** Label of this adapter in metrics and logs. */
  name: string;
  clock: Clock;
  logger: Logger;
  metrics: MetricsRegistry;
  /** The MQTT telemetry path: catalogue checks, durable storage, rules; resolves once stored (or refused). */
  telemetry: (source: TelemetrySource, topic: string, assetId: string, sensorId: string, payload: Buffer) => Promise<IngestOutcome>;
  /** A device's link came up (a valid frame) or went away. */
  presence: (deviceId: string, status: 'online' | 'offline') => void;
}

/** Frames handed to ingest and not yet durable, across all links. */
const MAX_IN_FLIGHT = 32;
/** Answers queued to a link that does not read them, before it is closed. */
const MAX_UNREAD_ANSWERS_BYTES = 64 * 1024;

export type FrameOutcome =
  | 'confirmed'
  | 'not_stored'
  | 'answer'
  | 'bad_checksum'
  | 'bad_length'
  | 'bad_end'
  | 'bad_unit'
  | 'unknown_type'
  | 'unknown_address'
  | 'address_mismatch'
  | 'unsupported_command'
  | 'timeout';

interface Link {
  socket: Socket;
  remote: string;
  buffer: Buffer;
  mapping?: Gb26875DeviceMapping;
  serial: number;
  pending: number;
  paused: boolean;
  frameTimer?: NodeJS.Timeout;
  idleTimer?: NodeJS.Timeout;
  warned: boolean;
  closed: boolean;
}

interface Job {
  link: Link;
  frame: Frame;
  run: () => Promise<boolean>;
}

export class Gb26875Adapter {
  private server?: Server;
  private readonly links = new Set<Link>();
  private readonly perRemote = new Map<string, number>();
  private readonly byAddress = new Map<string, Set<Link>>();
  private readonly mappings: Map<string, Gb26875DeviceMapping>;
  private readonly offsetMinutes: number;
  private readonly urgent: Job[] = [];
  private readonly bulk: Job[] = [];
  private inFlight = 0;
  private readonly frames: Counter;
  private readonly connections: Counter;
  private readonly discarded: Counter;
  private readonly log: Logger;
  private readonly maxFrameBytes: number;

  constructor(private readonly deps: Gb26875Deps) {
    this.mappings = new Map(deps.config.devices.map((d) => [d.address, d]));
    this.offsetMinutes = utcOffsetMinutes(deps.config.utc_offset);
    this.maxFrameBytes = FRAME_OVERHEAD + deps.config.max_app_data_bytes;
    this.frames = deps.metrics.counter('watchpost_adapter_frames_total', 'Frames received by device adapters, by outcome.');
    this.connections = deps.metrics.counter('watchpost_adapter_connections_total', 'Connections to device adapters, accepted or refused.');
    this.discarded = deps.metrics.counter('watchpost_adapter_discarded_bytes_total', 'Bytes outside any frame, dropped by device adapters.');
    this.log = deps.logger.child({ module: 'gb26875', adapter: deps.name });
  }

  async start(): Promise<void> {
    const server = createServer({ noDelay: true }, (socket) => this.accept(socket));
    this.server = server;
    server.maxConnections = this.deps.config.max_connections;
    server.on('drop', () => this.connections.inc({ adapter: this.deps.name, outcome: 'refused_limit' }));
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(this.deps.config.port, this.deps.config.host, () => {
        server.off('error', reject);
        resolve();
      });
    });
    server.on('error', (err) => this.log.error({ err: err.message }, 'GB/T 26875.3 listener error'));
    this.log.info({ host: this.deps.config.host, port: this.port(), devices: this.mappings.size }, 'GB/T 26875.3 listener started');
  }

  port(): number | undefined {
    return (this.server?.address() as AddressInfo | null)?.port;
  }

  /** Closes the listener and every link; readings already handed to ingest are stored (or not) as usual. */
  async stop(): Promise<void> {
    const server = this.server;
    this.server = undefined;
    for (const link of [...this.links]) link.socket.destroy();
    this.urgent.length = this.bulk.length = 0;
    if (server) await new Promise<void>((resolve) => server.close(() => resolve()));
  }

  private accept(socket: Socket): void {
    const remote = socket.remoteAddress ?? 'unknown';
    const fromRemote = this.perRemote.get(remote) ?? 0;
    if (fromRemote >= this.deps.config.max_connections_per_address) {
      this.connections.inc({ adapter: this.deps.name, outcome: 'refused_per_address' });
      socket.destroy();
      return;
    }
    this.perRemote.set(remote, fromRemote + 1);
    this.connections.inc({ adapter: this.deps.name, outcome: 'accepted' });
    const link: Link = { socket, remote, buffer: Buffer.alloc(0), serial: 0, pending: 0, paused: false, warned: false, closed: false };
    this.links.add(link);
    socket.on('data', (chunk: Buffer) => this.receive(link, chunk));
    socket.on('error', () => {}); // a reset link is closed below
    socket.on('close', () => this.closed(link));
    this.touch(link);
  }

  private closed(link: Link): void {
    if (link.closed) return;
    link.closed = true;
    clearTimeout(link.frameTimer);
    clearTimeout(link.idleTimer);
    this.links.delete(link);
    const n = (this.perRemote.get(link.remote) ?? 1) - 1;
    if (n > 0) this.perRemote.set(link.remote, n);
    else this.perRemote.delete(link.remote);
    const mapping = link.mapping;
    if (!mapping) return;
    const links = this.byAddress.get(mapping.address);
    links?.delete(link);
    if (links && links.size === 0) {
      this.byAddress.delete(mapping.address);
      this.log.info({ address: mapping.address, device_id: mapping.device }, 'GB/T 26875.3 device link closed');
      this.deps.presence(mapping.device, 'offline');
    }
  }

  /** A valid frame: the link is alive for another idle_timeout. */
  private touch(link: Link): void {
    clearTimeout(link.idleTimer);
    link.idleTimer = setTimeout(() => {
      this.log.info({ remote: link.remote, address: link.mapping?.address }, 'GB/T 26875.3 link silent: closed');
      link.socket.destroy();
    }, this.deps.config.idle_timeout);
    link.idleTimer.unref();
  }

  private count(outcome: FrameOutcome): void {
    this.frames.inc({ adapter: this.deps.name, outcome });
  }

  private receive(link: Link, chunk: Buffer): void {
    if (link.closed || link.socket.destroyed) return;
    let buf = link.buffer.length === 0 ? chunk : Buffer.concat([link.buffer, chunk]);
    for (;;) {
      const scan = scanFrame(buf, this.deps.config.max_app_data_bytes);
      if (scan.kind === 'more') break;
      if (scan.kind === 'garbage') this.discarded.inc({ adapter: this.deps.name }, scan.next);
      else if (scan.kind === 'bad') this.refuse(link, scan.header, scan.code, scan.detail);
      else this.frame(link, scan.frame);
      buf = buf.subarray(scan.next);
      if (link.closed || link.socket.destroyed) return;
    }
    // What is left is the beginning of one frame (scanFrame waits only within maxFrameBytes): copied, so the chunk is not retained.
    link.buffer = buf.length > 0 && buf.length <= this.maxFrameBytes ? Buffer.from(buf) : Buffer.alloc(0);
    if (link.buffer.length === 0) {
      clearTimeout(link.frameTimer);
      link.frameTimer = undefined;
    } else if (!link.frameTimer) {
      // A frame must arrive whole within frame_timeout: a link that trickles bytes holds no buffer for long.
      link.frameTimer = setTimeout(() => {
        this.count('timeout');
        this.log.warn({ remote: link.remote, buffered: link.buffer.length }, 'GB/T 26875.3 frame not complete in time: link closed');
        link.socket.destroy();
      }, this.deps.config.frame_timeout);
      link.frameTimer.unref();
    }
  }

  private warn(link: Link, fields: Record<string, unknown>, message: string): void {
    // One warning per link: a flood of bad frames is counted, not logged frame by frame.
    if (link.warned) this.log.debug(fields, message);
    else this.log.warn(fields, message);
    link.warned = true;
  }

  private refuse(link: Link, header: FrameHeader, outcome: FrameOutcome, detail: string): void {
    this.count(outcome);
    this.warn(link, { remote: link.remote, address: header.source, serial: header.serial, outcome, detail }, 'GB/T 26875.3 frame denied');
    this.answer(link, header, COMMAND.deny);
  }

  /** A confirm or deny of a device's frame: same serial number and version, addresses swapped. */
  private answer(link: Link, to: FrameHeader, command: number): void {
    if (link.closed || link.socket.destroyed) return;
    if (link.socket.writableLength > MAX_UNREAD_ANSWERS_BYTES) {
      // A peer that floods frames and never reads its answers is not a device that follows the protocol.
      this.log.warn({ remote: link.remote }, 'GB/T 26875.3 peer does not read its answers: link closed');
      link.socket.destroy();
      return;
    }
    const now = this.deps.clock.now();
    link.socket.write(
      encodeFrame({
        serial: to.serial,
        version: to.version,
        time: timeLabelAt(now, this.offsetMinutes),
        source: this.deps.config.address,
        destination: to.source,
        command,
        appData: new Uint8Array(0),
      }),
    );
  }

  private frame(link: Link, frame: Frame): void {
    const mapping = this.mappings.get(frame.source);
    if (!mapping) return this.refuse(link, frame, 'unknown_address', `address ${frame.source} is not configured`);
    if (link.mapping && link.mapping.address !== frame.source) {
      return this.refuse(link, frame, 'address_mismatch', `the link belongs to ${link.mapping.address}`);
    }
    this.touch(link);
    if (!link.mapping) this.bind(link, mapping, frame);

    if (frame.command === COMMAND.confirm || frame.command === COMMAND.deny) return this.count('answer');
    if (frame.command !== COMMAND.send && frame.command !== COMMAND.response) {
      return this.refuse(link, frame, 'unsupported_command', `command ${frame.command} is not taken from a device`);
    }
    const decoded = decodeUnit(frame.appData);
    if (!decoded.ok) return this.refuse(link, frame, decoded.code, decoded.detail);
    const objects = decoded.unit.objects;
    const readings = renamePoints(pointReadings(objects, { utcOffsetMinutes: this.offsetMinutes, receivedAt: this.deps.clock.now() }), mapping);
    const source: TelemetrySource = { deviceId: mapping.device, allowedAssets: new Set([mapping.asset]) };
    const run = async (): Promise<boolean> => {
      const outcomes = await Promise.all(
        readings.map((r) => this.deps.telemetry(source, `gb26875/${mapping.address}/${r.sensorId}`, mapping.asset, r.sensorId, Buffer.from(JSON.stringify({ ts: r.ts, values: r.values })))),
      );
      return outcomes.every((o) => o.stored);
    };
    link.pending++;
    if (link.pending >= this.deps.config.max_pending_frames && !link.paused) {
      link.paused = true;
      link.socket.pause();
    }
    (objects.some(reportsFireAlarm) ? this.urgent : this.bulk).push({ link, frame, run });
    this.pump();
  }

  private bind(link: Link, mapping: Gb26875DeviceMapping, frame: Frame): void {
    link.mapping = mapping;
    let links = this.byAddress.get(mapping.address);
    if (!links) {
      links = new Set();
      this.byAddress.set(mapping.address, links);
      this.log.info({ address: mapping.address, device_id: mapping.device, remote: link.remote }, 'GB/T 26875.3 device link up');
      this.deps.presence(mapping.device, 'online');
    }
    links.add(link);
    if (this.deps.config.sync_time) {
      // Clock synchronisation (control command, type 90): the device's time labels become the centre's time.
      const now = this.deps.clock.now();
      link.serial = (link.serial + 1) & 0xffff;
      const time = timeLabelAt(now, this.offsetMinutes);
      link.socket.write(
        encodeFrame({
          serial: link.serial,
          version: frame.version,
          time,
          source: this.deps.config.address,
          destination: mapping.address,
          command: COMMAND.control,
          appData: encodeUnit({ type: TYPE.syncDeviceClock, objects: [{ type: 90, time }] }),
        }),
      );
    }
  }

  /** Runs queued frames, fire alarms first, at most MAX_IN_FLIGHT at a time. */
  private pump(): void {
    while (this.inFlight < MAX_IN_FLIGHT) {
      const job = this.urgent.shift() ?? this.bulk.shift();
      if (!job) return;
      this.inFlight++;
      job
        .run()
        .catch((err: Error) => {
          this.log.error({ err: err.message, address: job.frame.source }, 'storing a GB/T 26875.3 frame failed');
          return false;
        })
        .then((stored) => {
          this.inFlight--;
          const link = job.link;
          link.pending--;
          if (stored) {
            this.count('confirmed');
            this.answer(link, job.frame, COMMAND.confirm);
          } else {
            // Not durable: no answer, so the device sends the frame again (the standard's retransmission).
            this.count('not_stored');
          }
          if (link.paused && link.pending <= this.deps.config.max_pending_frames / 2 && !link.closed) {
            link.paused = false;
            link.socket.resume();
          }
          this.pump();
        })
        .catch((err: unknown) => this.log.error({ err: err instanceof Error ? err.message : String(err), address: job.frame.source }, 'answering a GB/T 26875.3 frame failed'));
    }
  }
}
