/**
 * External-broker mode: Watchpost is an MQTT client of mosquitto, EMQX or HiveMQ, which own
 * device authentication and ACLs. With `shared_group`, subscriptions use `$share/<group>/` so
 * several Watchpost instances split the load.
 */
import mqtt, { type MqttClient } from 'mqtt';
import { hostname } from 'node:os';
import type { Logger } from '../lib/logger.js';
import type { ExternalBrokerConfig } from './config.js';
import type { InboundHandlers, MessageBus, PublishOptions } from './message-bus.js';
import { parseTopic, topics } from './topics.js';

export interface ExternalBrokerDeps {
  config: ExternalBrokerConfig;
  handlers: InboundHandlers;
  logger: Logger;
}

export class ExternalBroker implements MessageBus {
  private client?: MqttClient;
  private readonly log: Logger;

  constructor(private readonly deps: ExternalBrokerDeps) {
    this.log = deps.logger.child({ module: 'external-broker' });
  }

  async start(): Promise<void> {
    const { config } = this.deps;
    const client = mqtt.connect(config.url, {
      protocolVersion: 4,
      username: config.username,
      password: config.password,
      // A stable client id with a persistent session keeps QoS 1 telemetry queued at the broker
      // while Watchpost restarts. Several instances on one host need their own `client_id`.
      clientId: config.client_id ?? `watchpost-${hostname().replace(/[^A-Za-z0-9_.-]/g, '-').slice(0, 40)}`,
      clean: false,
      reconnectPeriod: 2000,
      connectTimeout: 10_000,
    });
    this.client = client;
    client.on('message', (topic, payload) => this.onMessage(topic, payload));
    client.on('error', (err) => this.log.error({ err: err.message }, 'external broker error'));
    client.on('reconnect', () => this.log.warn('reconnecting to external broker'));
    client.on('connect', (connack) => {
      this.log.info({ url: config.url.replace(/\/\/[^@/]*@/, '//[redacted]@'), session_present: connack.sessionPresent }, 'connected to external broker');
      client.subscribe(topics.inbound(config.shared_group), { qos: 1 }, (err, granted) => {
        if (err) return this.log.error({ err: err.message }, 'subscribe to external broker failed');
        const refused = (granted ?? []).filter((g) => g.qos === 128);
        if (refused.length > 0) this.log.error({ topics: refused.map((g) => g.topic) }, 'external broker refused subscriptions');
      });
    });
    await new Promise<void>((resolve, reject) => {
      const onConnect = () => {
        client.off('error', onError);
        resolve();
      };
      const onError = (err: Error) => {
        client.off('connect', onConnect);
        client.end(true);
        reject(new Error(`cannot connect to external broker: ${err.message}`));
      };
      client.once('connect', onConnect);
      client.once('error', onError);
    });
  }

  private onMessage(topic: string, payload: Buffer): void {
    const { handlers, config } = this.deps;
    if (payload.length > config.max_payload_bytes) {
      handlers.rejected({}, topic, { reason: 'too_large', detail: `payload is ${payload.length} bytes; the limit is ${config.max_payload_bytes}` });
      return;
    }
    const parsed = parseTopic(topic);
    if (parsed.kind === 'telemetry') {
      handlers.telemetry({}, topic, parsed.assetId, parsed.sensorId, payload);
    } else if (parsed.kind === 'status') {
      const value = payload.toString('utf8');
      if (value === 'online' || value === 'offline') handlers.status(parsed.deviceId, value);
    }
  }

  publish(topic: string, payload: string, options: PublishOptions = {}): void {
    this.client?.publish(topic, payload, { qos: options.qos ?? 0, retain: options.retain ?? false }, (err) => {
      if (err) this.log.error({ topic, err: err.message }, 'publish to external broker failed');
    });
  }

  port(): number | undefined {
    return undefined;
  }

  connected(): boolean {
    return this.client?.connected ?? false;
  }

  async stop(): Promise<void> {
    const client = this.client;
    this.client = undefined;
    if (client) await client.endAsync();
  }
}
