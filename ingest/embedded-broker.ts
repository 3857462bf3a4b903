/**
 * The embedded aedes broker (MQTT 3.1.1): authenticates devices, applies the broker policy and
 * hands telemetry to ingest inside `authorizePublish`, which calls back only once the readings
 * are durable in the spool, so a QoS 1 PUBACK is only sent then. aedes runs many
 * authorizePublish calls of a client at once, so the spool commits them in groups.
 *
 * Hostile clients: connections per address are rate limited and an address that keeps failing
 * to log in is locked out (connect-limiter.ts), both before the TLS handshake or MQTT parsing;
 * a packet announcing more than `max_payload_bytes` + 64 KiB closes its connection before its
 * body is read (mqtt-frame-guard.ts). Listens on plain TCP (`port`) and/or TLS (`tls.port`).
 */
import { createServer, type AddressInfo, type Server, type Socket } from 'node:net';
import { createServer as createTlsServer, type Server as TlsServer } from 'node:tls';
import { Aedes, type Client, type PublishPacket, type AuthenticateError } from 'aedes';
import type { Logger } from '../lib/logger.js';
import type { Counter, MetricsRegistry } from '../lib/metrics.js';
import { allowSubscribe, decidePublish, type DeviceEntry, type DeviceRegistry } from './broker-policy.js';
import { filterReaches } from './topics.js';
import type { EmbeddedBrokerConfig } from './config.js';
import { ConnectLimiter, normalizeAddress } from './connect-limiter.js';
import { verifySecret } from './device-auth.js';
import type { InboundHandlers, MessageBus, PublishOptions } from './message-bus.js';
import { guardMqttFraming, type GuardedSocket } from './mqtt-frame-guard.js';
import { loadTls } from './tls.js';

export interface EmbeddedBrokerDeps {
  config: EmbeddedBrokerConfig;
  devices: DeviceRegistry;
  handlers: InboundHandlers;
  logger: Logger;
  metrics?: MetricsRegistry;
  clock?: { now(): number };
}

/** Room for the topic and headers on top of the payload limit (an MQTT topic is at most 64 KiB). */
const FRAME_OVERHEAD = 64 * 1024 + 16;
/** One warning per address and reason per this long; the rest are counted. */
const REFUSAL_LOG_INTERVAL_MS = 60_000;

function authError(message: string, returnCode: 4 | 5): AuthenticateError {
  return Object.assign(new Error(message), { returnCode }) as AuthenticateError;
}

export class EmbeddedBroker implements MessageBus {
  private broker?: Aedes;
  private server?: Server;
  private tlsServer?: TlsServer;
  private readonly limiter: ConnectLimiter;
  private readonly refused: Counter | undefined;
  private readonly refusalLogged = new Map<string, number>();
  private readonly clientDevice = new WeakMap<Client, DeviceEntry>();
  private readonly connections = new Map<string, number>();
  /** Packets refused by policy are acknowledged (so devices do not resend them) but never forwarded. */
  private readonly rejected = new WeakSet<object>();
  /**
   * Set once any client is allowed a subscription that can match telemetry/…. Until then no one
   * can receive telemetry, and aedes' forwarding work for it (subscription matching, offline
   * queues) is skipped: about a tenth of the CPU of a QoS 1 reading.
   */
  private telemetryWatched = false;
  private readonly log: Logger;

  constructor(private readonly deps: EmbeddedBrokerDeps) {
    this.log = deps.logger.child({ module: 'broker' });
    const limits = deps.config.limits;
    this.limiter = new ConnectLimiter(
      {
        connectsPerSecond: limits.connects_per_second,
        connectBurst: limits.connect_burst,
        maxAuthFailures: limits.max_auth_failures,
        authFailureWindow: limits.auth_failure_window,
        lockout: limits.lockout,
        exempt: limits.exempt,
      },
      deps.clock ? () => deps.clock!.now() : Date.now,
    );
    this.refused = deps.metrics?.counter('watchpost_mqtt_refused_total', 'MQTT connections refused or closed, by reason (rate_limited, locked_out, bad_credentials, too_large, malformed).');
  }

  async start(): Promise<void> {
    const { config, devices, handlers } = this.deps;
    // Certificates are read before anything listens, so a bad file stops the start with its name.
    const tls = config.tls ? loadTls(config.tls, 'broker.tls') : undefined;
    const broker = await Aedes.createBroker({
      maxClientsIdLength: 128,
      authenticate: (client, username, password, done) => {
        if (username === undefined || username === '') {
          if (config.allow_anonymous) return done(null, true);
          return done(authError('anonymous clients are not allowed', 4), false);
        }
        const device = devices.get(username);
        // Verify against a dummy secret when the device is unknown, so timing does not reveal which ids exist.
        verifySecret(device?.config ?? { secret: '\u0000unknown-device\u0000' }, password).then(
          (ok) => {
            if (!device || !ok) {
              const address = (client.conn as GuardedSocket).remoteAddress;
              this.refused?.inc({ reason: 'bad_credentials' });
              const locked = this.limiter.authFailed(address);
              this.log.warn({ username: username.slice(0, 64), client_id: client.id.slice(0, 128), address: normalizeAddress(address) }, 'MQTT connect refused: bad credentials');
              if (locked) {
                this.log.warn({ address: normalizeAddress(address), lockout_ms: config.limits.lockout }, 'MQTT address locked out after repeated failed logins');
              }
              return done(authError('bad username or password', 4), false);
            }
            this.clientDevice.set(client, device);
            done(null, true);
          },
          (err: Error) => done(authError(err.message, 4), false),
        );
      },
      authorizePublish: (client, packet, done) => this.authorizePublish(client, packet, done),
      authorizeSubscribe: (client, sub, done) => {
        const device = this.clientDevice.get(client);
        if (allowSubscribe(device, sub.topic)) {
          if (filterReaches(sub.topic, 'telemetry')) this.telemetryWatched = true;
          return done(null, sub);
        }
        this.log.warn({ device_id: device?.id, filter: sub.topic.slice(0, 200) }, 'MQTT subscribe refused');
        done(null, null);
      },
      authorizeForward: (_client, packet) => (this.rejected.has(packet) ? null : packet),
    });
    broker.on('clientReady', (client) => {
      const device = this.clientDevice.get(client);
      if (device) this.connections.set(device.id, (this.connections.get(device.id) ?? 0) + 1);
    });
    broker.on('clientDisconnect', (client) => {
      const device = this.clientDevice.get(client);
      if (!device) return;
      const left = (this.connections.get(device.id) ?? 1) - 1;
      if (left > 0) this.connections.set(device.id, left);
      else {
        this.connections.delete(device.id);
        handlers.disconnected?.(device.id);
      }
    });
    broker.on('clientError', (client, err) => this.log.debug({ client_id: client.id, err: err.message }, 'MQTT client error'));
    this.skipUnwatchedTelemetry(broker);
    this.broker = broker;

    const maxPacket = config.max_payload_bytes + FRAME_OVERHEAD;
    const handOff = (socket: Socket) => {
      const guarded = guardMqttFraming(socket, maxPacket, (violation) => {
        const reason = violation.kind;
        this.refused?.inc({ reason });
        this.log.warn({ address: normalizeAddress(socket.remoteAddress), reason, bytes: violation.kind === 'too_large' ? violation.bytes : undefined, limit: maxPacket }, 'MQTT connection closed: packet too large or malformed');
      });
      broker.handle(guarded);
    };

    if (tls) {
      const tlsServer = createTlsServer(
        { cert: tls.cert, key: tls.key, ...(tls.ca ? { ca: tls.ca, requestCert: true, rejectUnauthorized: true } : {}), handshakeTimeout: 10_000 },
        (socket) => handOff(socket),
      );
      // Limits apply to the raw connection, before the (costly) handshake.
      tlsServer.on('connection', (raw: Socket) => {
        if (!this.admit(raw)) raw.destroy();
      });
      tlsServer.on('tlsClientError', (err, socket) => this.log.debug({ address: normalizeAddress(socket.remoteAddress), err: err.message }, 'MQTT TLS handshake failed'));
      this.tlsServer = tlsServer;
      await listen(tlsServer, config.tls!.port, config.host);
      this.log.info({ host: config.host, port: this.tlsPort() }, 'MQTT broker listening (TLS)');
    }
    if (!tls || config.plaintext === true) {
      const server = createServer((socket) => {
        if (this.admit(socket)) handOff(socket);
        else socket.destroy();
      });
      this.server = server;
      await listen(server, config.port, config.host);
      this.log.info({ host: config.host, port: this.port() }, 'MQTT broker listening');
    }
  }

  /**
   * aedes forwards every accepted PUBLISH through `broker.publish` (after the PUBACK for QoS 1).
   * A device's telemetry that no subscription can match ends there instead.
   */
  private skipUnwatchedTelemetry(broker: Aedes): void {
    // Called as publish(packet, client, done) by aedes and publish(packet, done) by the platform.
    type Forward = (packet: PublishPacket, client: Client | null | ((err?: Error) => void), done?: (err?: Error) => void) => void;
    const forward = (broker.publish as unknown as Forward).bind(broker);
    const skipping: Forward = (packet, client, done) => {
      // A retained message still goes through: aedes stores it for later subscribers.
      if (typeof client === 'object' && client !== null && !this.telemetryWatched && !packet.retain && packet.topic.startsWith('telemetry/')) {
        done?.();
        return;
      }
      forward(packet, client, done);
    };
    (broker as unknown as { publish: Forward }).publish = skipping;
  }

  /** Applies the per-address limits to a new connection. */
  private admit(socket: Socket): boolean {
    const decision = this.limiter.allowConnect(socket.remoteAddress);
    if (decision.ok) return true;
    this.refused?.inc({ reason: decision.reason });
    const address = normalizeAddress(socket.remoteAddress);
    const key = `${decision.reason}:${address}`;
    const now = Date.now();
    if ((this.refusalLogged.get(key) ?? 0) + REFUSAL_LOG_INTERVAL_MS <= now) {
      if (this.refusalLogged.size > 10_000) this.refusalLogged.clear();
      this.refusalLogged.set(key, now);
      this.log.warn({ address, reason: decision.reason, retry_after_ms: decision.retryAfterMs }, 'MQTT connection refused');
    }
    return false;
  }

  private authorizePublish(client: Client | null, packet: PublishPacket, done: (err?: Error | null) => void): void {
    // Publishes by the platform itself (client === null) bypass policy.
    if (!client) return done(null);
    const device = this.clientDevice.get(client);
    const decision = decidePublish(device, packet.topic, packet.payload as Buffer);
    const source = { deviceId: device?.id, allowedAssets: device?.assets };
    switch (decision.action) {
      case 'refuse':
        this.log.warn({ device_id: device?.id, topic: packet.topic.slice(0, 200) }, `MQTT publish refused: ${decision.reason}`);
        return done(new Error(decision.reason));
      case 'reject':
        this.rejected.add(packet);
        this.deps.handlers.rejected(source, packet.topic, { reason: decision.reason, detail: decision.detail });
        return done(null);
      case 'status':
        this.deps.handlers.status(decision.deviceId, decision.value);
        return done(null);
      case 'telemetry': {
        // done() (and so the PUBACK) waits until the readings are durable in the spool.
        this.deps.handlers.telemetry(source, packet.topic, decision.topic.assetId, decision.topic.sensorId, packet.payload as Buffer).then(
          (outcome) => {
            if (!outcome.stored) {
              // Storage cannot take the readings: no PUBACK; the connection closes and the device resends later.
              return done(new Error('storage is full; try again later'));
            }
            if (outcome.accepted === 0) this.rejected.add(packet);
            done(null);
          },
          (err: Error) => done(err),
        );
        return;
      }
    }
  }

  publish(topic: string, payload: string, options: PublishOptions = {}): void {
    const broker = this.broker;
    if (!broker || broker.closed) return;
    broker.publish(
      { cmd: 'publish', topic, payload: Buffer.from(payload), qos: options.qos ?? 0, retain: options.retain ?? false, dup: false },
      (err) => {
        if (err) this.log.error({ topic, err: err.message }, 'MQTT publish failed');
      },
    );
  }

  /** Port of the plain listener (undefined when only TLS listens). */
  port(): number | undefined {
    return (this.server?.address() as AddressInfo | null)?.port;
  }

  tlsPort(): number | undefined {
    return (this.tlsServer?.address() as AddressInfo | null)?.port;
  }

  connected(): boolean {
    return (this.server?.listening ?? false) || (this.tlsServer?.listening ?? false);
  }

  connectedDevices(): string[] {
    return [...this.connections.keys()];
  }

  async stop(): Promise<void> {
    const servers = [this.server, this.tlsServer];
    const broker = this.broker;
    this.server = this.tlsServer = undefined;
    this.broker = undefined;
    // Closing the broker ends every client connection, which lets the listening sockets close.
    if (broker) await new Promise<void>((resolve) => broker.close(() => resolve()));
    await Promise.all(servers.map((server) => (server ? new Promise<void>((resolve) => server.close(() => resolve())) : undefined)));
  }
}

function listen(server: Server | TlsServer, port: number, host: string): Promise<void> {
  return new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, host, () => {
      server.off('error', reject);
      resolve();
    });
  });
}
