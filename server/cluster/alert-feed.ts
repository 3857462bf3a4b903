/**
 * The console's live stream in a cluster: an alert event is published on MQTT
 * (`alerts/{level}/{asset_id}`) by the instance that stored it, and each instance's console
 * streams what its own alert stage publishes. To show every instance's alerts on every console,
 * each instance subscribes to `alerts/#` on the external broker with a connection of its own
 * (clean session, QoS 0: the board is live, a missed event is refetched by the console with the
 * next list) and passes on what it did not publish itself (the exact payloads it published in
 * the last minute are remembered for that).
 */
import mqtt, { type MqttClient } from 'mqtt';
import type { ExternalBrokerConfig } from '../../ingest/config.js';
import { loadTls } from '../../ingest/tls.js';
import type { Logger } from '../../lib/logger.js';

const OWN_TTL_MS = 60_000;
/** Payloads remembered at most (an alert storm on this instance beyond that shows some twice, never fewer). */
const OWN_MAX = 10_000;

export class ClusterAlertFeed {
  private client?: MqttClient;
  /** Payloads this instance published, by the time they expire. */
  private readonly own = new Map<string, number>();
  private readonly log: Logger;

  constructor(
    private readonly deps: {
      broker: ExternalBrokerConfig;
      instanceId: string;
      logger: Logger;
      /** An alert event of another instance, for the console stream. */
      onAlert: (payload: string) => void;
    },
  ) {
    this.log = deps.logger.child({ module: 'cluster', part: 'alert-feed', instance_id: deps.instanceId });
  }

  /** Call for every alert event this instance publishes. */
  published(payload: string): void {
    const now = Date.now();
    this.own.set(payload, now + OWN_TTL_MS);
    if (this.own.size > OWN_MAX) for (const [key] of this.own) if (this.own.size > OWN_MAX * 0.9) this.own.delete(key);
  }

  start(): void {
    const { broker } = this.deps;
    const tls = loadTls(broker, 'broker');
    const client = mqtt.connect(broker.url, {
      protocolVersion: 4,
      clientId: `watchpost-${this.deps.instanceId}-alerts`.slice(0, 64),
      clean: true,
      reconnectPeriod: 2000,
      connectTimeout: 10_000,
      ...(broker.username !== undefined ? { username: broker.username } : {}),
      ...(broker.password !== undefined ? { password: broker.password } : {}),
      ...(tls.ca ? { ca: tls.ca } : {}),
      ...(tls.cert && tls.key ? { cert: tls.cert, key: tls.key } : {}),
      ...(process.env.DEBUG ? {} : { log: () => undefined }),
    });
    this.client = client;
    client.on('error', (err) => this.log.warn({ err: err.message }, 'alert feed: broker error'));
    client.on('connect', () => {
      client.subscribe('alerts/#', { qos: 0 }, (err, granted) => {
        if (err || granted?.some((g) => g.qos === 128)) this.log.warn({ err: err?.message }, "alert feed: the broker refused alerts/#: consoles show this instance's alerts only");
      });
    });
    client.on('message', (_topic, payload) => {
      const text = payload.toString('utf8');
      const now = Date.now();
      const expires = this.own.get(text);
      if (expires !== undefined && expires > now) {
        this.own.delete(text);
        return;
      }
      this.deps.onAlert(text);
    });
  }

  async stop(): Promise<void> {
    const client = this.client;
    this.client = undefined;
    this.own.clear();
    await client?.endAsync(true).catch(() => undefined);
  }
}
