/**
 * The embedded aedes broker (MQTT 3.1.1): authenticates devices, applies the broker policy and
 * hands telemetry to ingest inside `authorizePublish`, so a QoS 1 PUBACK is only sent once the
 * readings were accepted by storage.
 */
import { createServer, type AddressInfo, type Server } from 'node:net';
import { Aedes, type Client, type PublishPacket, type AuthenticateError } from 'aedes';
import type { Logger } from '../lib/logger.js';
import { allowSubscribe, decidePublish, type DeviceEntry, type DeviceRegistry } from './broker-policy.js';
import type { EmbeddedBrokerConfig } from './config.js';
import { verifySecret } from './device-auth.js';
import type { InboundHandlers, MessageBus, PublishOptions } from './message-bus.js';

export interface EmbeddedBrokerDeps {
  config: EmbeddedBrokerConfig;
  devices: DeviceRegistry;
  handlers: InboundHandlers;
  logger: Logger;
}

function authError(message: string, returnCode: 4 | 5): AuthenticateError {
  return Object.assign(new Error(message), { returnCode }) as AuthenticateError;
}

export class EmbeddedBroker implements MessageBus {
  private broker?: Aedes;
  private server?: Server;
  private readonly clientDevice = new WeakMap<Client, DeviceEntry>();
  private readonly connections = new Map<string, number>();
  /** Packets refused by policy are acknowledged (so devices do not resend them) but never forwarded. */
  private readonly rejected = new WeakSet<object>();
  private readonly log: Logger;

  constructor(private readonly deps: EmbeddedBrokerDeps) {
    this.log = deps.logger.child({ module: 'broker' });
  }

  async start(): Promise<void> {
    const { config, devices, handlers } = this.deps;
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
              this.log.warn({ username: username.slice(0, 64), client_id: client.id.slice(0, 128) }, 'MQTT connect refused: bad credentials');
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
        if (allowSubscribe(device, sub.topic)) return done(null, sub);
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
    this.broker = broker;

    const server = createServer(broker.handle);
    this.server = server;
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(config.port, config.host, () => {
        server.off('error', reject);
        resolve();
      });
    });
    this.log.info({ host: config.host, port: this.port() }, 'MQTT broker listening');
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
        const outcome = this.deps.handlers.telemetry(source, packet.topic, decision.topic.assetId, decision.topic.sensorId, packet.payload as Buffer);
        if (!outcome.stored) {
          // Storage cannot take the readings: no PUBACK; the connection closes and the device resends later.
          return done(new Error('storage is full; try again later'));
        }
        if (outcome.accepted === 0) this.rejected.add(packet);
        return done(null);
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

  port(): number | undefined {
    return (this.server?.address() as AddressInfo | null)?.port;
  }

  connected(): boolean {
    return this.server?.listening ?? false;
  }

  connectedDevices(): string[] {
    return [...this.connections.keys()];
  }

  async stop(): Promise<void> {
    const server = this.server;
    const broker = this.broker;
    this.server = undefined;
    this.broker = undefined;
    // Closing the broker ends every client connection, which lets the listening socket close.
    if (broker) await new Promise<void>((resolve) => broker.close(() => resolve()));
    if (server) await new Promise<void>((resolve) => server.close(() => resolve()));
  }
}
