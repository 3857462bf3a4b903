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
 *
 * Trust: a device reaches other clients only with what the policy accepts. A publish the policy
 * or ingest rejects is acknowledged (the device must not resend it) but withheld: it is neither
 * forwarded nor retained. aedes copies a packet before it routes it, so the withheld packet is
 * caught at `broker.publish`, which receives the very object `authorizePublish` judged. Only a
 * device's own status/{id} (and whatever the platform publishes) is retained, within
 * `retained` limits. A client id held by one device is refused to others (client-ids.ts). With
 * `tls.ca_file`, a TLS client's certificate must name the device it logs in as.
 */
import { createServer, type AddressInfo, type Server, type Socket } from 'node:net';
import { Readable } from 'node:stream';
import { createServer as createTlsServer, TLSSocket, type Server as TlsServer } from 'node:tls';
import { Aedes, type Client, type PublishPacket, type AuthenticateError } from 'aedes';
import type { Logger } from '../lib/logger.js';
import type { Counter, MetricsRegistry } from '../lib/metrics.js';
import { allowSubscribe, connectionAfterSwap, decidePublish, type DeviceEntry, type DeviceRegistry } from './broker-policy.js';
import { filterReaches } from './topics.js';
import type { EmbeddedBrokerConfig } from './config.js';
import { ConnectLimiter, normalizeAddress } from './connect-limiter.js';
import { certificateNamesDevice, SecretVerifier } from './device-auth.js';
import { ClientIdRegistry } from './client-ids.js';
import { RetainedBudget } from './retained-budget.js';
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
  /** Configured Sparkplug edge nodes: device id (= edge node id) -> its groups. */
  sparkplugEdges?: ReadonlyMap<string, ReadonlySet<string>>;
}

/** Room for the topic and headers on top of the payload limit (an MQTT topic is at most 64 KiB). */
const FRAME_OVERHEAD = 64 * 1024 + 16;
/** One warning per address and reason per this long; the rest are counted. */
const REFUSAL_LOG_INTERVAL_MS = 60_000;

function authError(message: string, returnCode: 2 | 4 | 5): AuthenticateError {
  return Object.assign(new Error(message), { returnCode });
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
  /** Packets rejected by policy or ingest: acknowledged (so devices do not resend them), never forwarded or retained. */
  private readonly withheld = new WeakSet<object>();
  private verifier: SecretVerifier;
  private readonly clientIds: ClientIdRegistry;
  private readonly retained: RetainedBudget;
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
    this.refused = deps.metrics?.counter(
      'watchpost_mqtt_refused_total',
      'MQTT connections refused or closed, by reason (rate_limited, locked_out, bad_credentials, client_id_taken, too_large, malformed, publish_refused).',
    );
    this.verifier = new SecretVerifier([...deps.devices.all()].map((d) => d.config));
    this.clientIds = new ClientIdRegistry(deps.config.persistent_sessions_per_device);
    this.retained = new RetainedBudget({ maxMessages: deps.config.retained.max_messages, maxBytes: deps.config.retained.max_bytes });
    deps.metrics?.gauge('watchpost_mqtt_retained_messages', 'Retained messages the embedded broker holds.').collect(() => [[undefined, this.retained.messages()]]);
    deps.metrics
      ?.gauge('watchpost_mqtt_retained_bytes', 'Bytes (topics and payloads) of the retained messages the embedded broker holds.')
      .collect(() => [[undefined, this.retained.totalBytes()]]);
  }

  async start(): Promise<void> {
    const { config, devices } = this.deps;
    // Certificates are read before anything listens, so a bad file stops the start with its name.
    const tls = config.tls ? loadTls(config.tls, 'broker.tls') : undefined;
    const broker = await Aedes.createBroker({
      maxClientsIdLength: 128,
      authenticate: (client, username, password, done) => {
        if (username === undefined || username === '') {
          // Anonymous clients share one identity ('' is no device id): they may not take a device's client id.
          if (config.allow_anonymous) return this.claimClientId(client, '') ? done(null, true) : done(authError('client id is held by a device', 2), false);
          return done(authError('anonymous clients are not allowed', 4), false);
        }
        const device = devices.get(username);
        // An unknown id costs the same work as a known one (device-auth.ts), so timing does not reveal which ids exist.
        this.verifier.verify(device?.config, password).then(
          (ok) => {
            // A reload during the check replaced the entry: the credentials checked may no longer be the device's.
            if (!device || !ok || devices.get(device.id) !== device || !this.certificateMatches(client, device.id)) {
              const address = (client.conn as GuardedSocket).remoteAddress;
              this.refused?.inc({ reason: 'bad_credentials' });
              const locked = this.limiter.authFailed(address);
              this.log.warn({ username: username.slice(0, 64), client_id: client.id.slice(0, 128), address: normalizeAddress(address) }, 'MQTT connect refused: bad credentials');
              if (locked) {
                this.log.warn({ address: normalizeAddress(address), lockout_ms: config.limits.lockout }, 'MQTT address locked out after repeated failed logins');
              }
              return done(authError('bad username or password', 4), false);
            }
            if (!this.claimClientId(client, device.id)) return done(authError('client id is held by another device', 2), false);
            this.clientDevice.set(client, device);
            done(null, true);
          },
          (err: Error) => done(authError(err.message, 4), false),
        );
      },
      authorizePublish: (client, packet, done) => this.authorizePublish(client, packet, done),
      authorizeSubscribe: (client, sub, done) => {
        const device = this.clientDevice.get(client);
        if (allowSubscribe(device, sub.topic, device && this.deps.sparkplugEdges?.get(device.id))) {
          if (filterReaches(sub.topic, 'telemetry')) this.telemetryWatched = true;
          return done(null, sub);
        }
        this.log.warn({ device_id: device?.id, filter: sub.topic.slice(0, 200) }, 'MQTT subscribe refused');
        done(null, null);
      },
    });
    broker.on('clientReady', (client) => {
      const device = this.clientDevice.get(client);
      if (device) this.connections.set(device.id, (this.connections.get(device.id) ?? 0) + 1);
    });
    broker.on('clientDisconnect', (client) => {
      this.clientIds.release(client.id, client);
      const device = this.clientDevice.get(client);
      if (device) this.releaseConnection(device.id);
    });
    broker.on('clientError', (client, err) => this.log.debug({ client_id: client.id, err: err.message }, 'MQTT client error'));
    this.guardForwarding(broker);
    this.boundRetained(broker);
    this.broker = broker;

    const maxPacket = config.max_payload_bytes + FRAME_OVERHEAD;
    const handOff = (socket: Socket) => {
      const guarded = guardMqttFraming(socket, maxPacket, (violation) => {
        const reason = violation.kind;
        this.refused?.inc({ reason });
        this.log.warn(
          { address: normalizeAddress(socket.remoteAddress), reason, bytes: violation.kind === 'too_large' ? violation.bytes : undefined, limit: maxPacket },
          'MQTT connection closed: packet too large or malformed',
        );
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
   * aedes hands every PUBLISH it accepted from a client (QoS 1 after the PUBACK, and last wills)
   * to `broker.publish` as the object `authorizePublish` judged; it copies it only there. So
   * this is where a withheld packet stops: forwarded to no one, retained nowhere. A device's
   * retain flag counts only on its own status/{id}. Telemetry that no subscription can match
   * also ends here, sparing aedes' forwarding work for it.
   */
  private guardForwarding(broker: Aedes): void {
    // Called as publish(packet, client, done) by aedes and publish(packet, done) by the platform.
    type Forward = (packet: PublishPacket, client: Client | null | ((err?: Error) => void), done?: (err?: Error) => void) => void;
    const forward = (broker.publish as unknown as Forward).bind(broker);
    const guarded: Forward = (packet, client, done) => {
      if (typeof client === 'object' && client !== null) {
        if (this.withheld.has(packet)) {
          done?.();
          return;
        }
        const telemetry = packet.topic.startsWith('telemetry/');
        if (packet.retain && (telemetry || packet.topic.startsWith('spBv1.0/'))) packet.retain = false;
        if (telemetry && !this.telemetryWatched) {
          done?.();
          return;
        }
      }
      forward(packet, client, done);
    };
    (broker as unknown as { publish: Forward }).publish = guarded;
  }

  /**
   * The retained store within `retained` limits: a message past them is not kept (and its
   * topic's older one is dropped). Stored last wills are never replayed by the periodic sweep,
   * which publishes them without a client, past the policy: this broker is the only one using
   * its store, and it publishes a will itself when a connection drops.
   */
  private boundRetained(broker: Aedes): void {
    interface Persistence {
      storeRetained(packet: PublishPacket): Promise<void>;
      streamWill(brokers: unknown): Readable;
    }
    const persistence = (broker as unknown as { persistence: Persistence }).persistence;
    const store = persistence.storeRetained.bind(persistence);
    const dropped = this.deps.metrics?.counter('watchpost_mqtt_retained_dropped_total', 'Retained messages not kept because the retained store is at its limits (broker.retained).');
    let warnedAt = -Infinity;
    persistence.storeRetained = (packet) => {
      if (this.retained.admit(packet.topic, packet.payload.length)) return store(packet);
      dropped?.inc();
      const now = Date.now();
      if (now - warnedAt >= REFUSAL_LOG_INTERVAL_MS) {
        warnedAt = now;
        this.log.warn(
          { topic: packet.topic.slice(0, 200), messages: this.retained.messages(), bytes: this.retained.totalBytes() },
          'retained message not kept: the retained store is at its limits (further ones this minute are only counted)',
        );
      }
      return store({ ...packet, payload: Buffer.alloc(0) });
    };
    persistence.streamWill = () => Readable.from([]);
  }

  /** Binds the connection's client id to `deviceId` ('' for anonymous clients); false (counted, logged) when another device holds it. */
  private claimClientId(client: Client, deviceId: string): boolean {
    // Closed while its credentials were checked: aedes drops it, and it must not bind the id.
    if (client.closed) return false;
    const refusal = this.clientIds.claim(client.id, deviceId, client, !client.clean);
    if (!refusal) return true;
    this.refused?.inc({ reason: 'client_id_taken' });
    this.log.warn(
      { device_id: deviceId || undefined, client_id: client.id.slice(0, 128), address: normalizeAddress((client.conn as GuardedSocket).remoteAddress), why: refusal },
      refusal === 'too_many_sessions' ? 'MQTT connect refused: too many persistent sessions for this device' : 'MQTT connect refused: the client id is held by another device',
    );
    return false;
  }

  /** With `tls.ca_file`, a TLS client's certificate must name the device (CN or a DNS subject alternative name). */
  private certificateMatches(client: Client, deviceId: string): boolean {
    if (!this.deps.config.tls?.ca_file) return true;
    const conn = client.conn as unknown;
    // The plain listener (plaintext: true) has no client certificates; its devices log in by secret alone.
    if (!(conn instanceof TLSSocket)) return true;
    return certificateNamesDevice(conn.getPeerCertificate(), deviceId);
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
    const decision = decidePublish(device, packet.topic, packet.payload as Buffer, device && this.deps.sparkplugEdges?.get(device.id));
    const source = { deviceId: device?.id, allowedAssets: device?.assets };
    switch (decision.action) {
      case 'refuse':
        this.refused?.inc({ reason: 'publish_refused' });
        this.log.warn({ device_id: device?.id, topic: packet.topic.slice(0, 200) }, `MQTT publish refused: ${decision.reason}`);
        if (device) this.deps.handlers.rejected(source, packet.topic, { reason: 'not_allowed', detail: decision.reason });
        return done(new Error(decision.reason));
      case 'reject':
        this.withheld.add(packet);
        this.deps.handlers.rejected(source, packet.topic, { reason: decision.reason, detail: decision.detail });
        return done(null);
      case 'status':
        this.deps.handlers.status(decision.deviceId, decision.value);
        return done(null);
      case 'sparkplug': {
        // As telemetry: acknowledged once the readings are durable; forwarded only when nothing was refused.
        const handle = this.deps.handlers.sparkplug;
        if (!handle) {
          this.withheld.add(packet);
          return done(null);
        }
        handle(source, decision.topic, packet.topic, packet.payload as Buffer).then(
          (stored) => (stored ? done(null) : done(new Error('storage is full; try again later'))),
          (err: Error) => done(err),
        );
        return;
      }
      case 'telemetry': {
        // done() (and so the PUBACK) waits until the readings are durable in the spool.
        this.deps.handlers.telemetry(source, packet.topic, decision.topic.assetId, decision.topic.sensorId, packet.payload as Buffer).then(
          (outcome) => {
            if (!outcome.stored) {
              // Storage cannot take the readings: no PUBACK; the connection closes and the device resends later.
              return done(new Error('storage is full; try again later'));
            }
            // Observers see a device's telemetry only when all of it was accepted.
            if (outcome.rejected > 0 || outcome.accepted === 0) this.withheld.add(packet);
            done(null);
          },
          (err: Error) => done(err),
        );
        return;
      }
    }
  }

  publish(topic: string, payload: string | Buffer, options: PublishOptions = {}): void {
    const broker = this.broker;
    if (!broker || broker.closed) return;
    broker.publish({ cmd: 'publish', topic, payload: Buffer.from(payload), qos: options.qos ?? 0, retain: options.retain ?? false, dup: false }, (err) => {
      if (err) this.log.error({ topic, err: err.message }, 'MQTT publish failed');
    });
  }

  /**
   * The device registry was swapped (a configuration reload): logins are checked against the new
   * credentials from now on, and each connected device whose entry is gone or whose secret or
   * subscription filters changed is disconnected; the others carry on with their new entry.
   * Returns the ids of the devices disconnected.
   */
  updateDevices(): string[] {
    const registry = this.deps.devices;
    this.verifier = new SecretVerifier([...registry.all()].map((d) => d.config));
    const broker = this.broker;
    if (!broker) return [];
    const closed = new Set<string>();
    const clients = Object.values((broker as unknown as { clients: Record<string, Client> }).clients);
    for (const client of clients) {
      const before = this.clientDevice.get(client);
      if (!before) continue;
      const after = registry.get(before.id);
      const decision = connectionAfterSwap(before, after);
      if (decision.action === 'rebind') {
        this.clientDevice.set(client, after!);
        continue;
      }
      // No longer authorised as it logged in: publishes from now on are anonymous until it is gone.
      this.clientDevice.delete(client);
      closed.add(before.id);
      this.releaseConnection(before.id);
      client.close(() => {
        if (decision.forgetSubscriptions) this.forgetSubscriptions(broker, client.id);
      });
    }
    if (closed.size > 0) this.log.info({ devices: [...closed].slice(0, 100), count: closed.size }, 'MQTT connections closed: device removed or its credentials changed');
    return [...closed];
  }

  /** Drops a persistent session's stored subscriptions, so nothing is queued for it under filters no longer allowed. */
  private forgetSubscriptions(broker: Aedes, clientId: string): void {
    const persistence = (broker as unknown as { persistence: { cleanSubscriptions(client: { id: string }): Promise<unknown> } }).persistence;
    persistence
      .cleanSubscriptions({ id: clientId })
      .catch((err: Error) => this.log.warn({ client_id: clientId.slice(0, 128), err: err.message }, 'forgetting the subscriptions of a closed session failed'));
  }

  /** One connection of `deviceId` ended; the last one reports the device disconnected. */
  private releaseConnection(deviceId: string): void {
    const left = (this.connections.get(deviceId) ?? 1) - 1;
    if (left > 0) this.connections.set(deviceId, left);
    else {
      this.connections.delete(deviceId);
      this.deps.handlers.disconnected?.(deviceId);
    }
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

  /** What the retained store holds (bounded by `retained`). */
  retainedStore(): { messages: number; bytes: number } {
    return { messages: this.retained.messages(), bytes: this.retained.totalBytes() };
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
    await Promise.all(servers.filter((server) => server !== undefined).map((server) => new Promise<void>((resolve) => server.close(() => resolve()))));
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
