/**
 * The composition root: the only module that knows every part. It builds them from the
 * configuration, wires the one-way flow
 *   MQTT -> ingest -> (storage writer, rule runner) -> alert service -> outbox -> channels
 * and owns their start/stop order.
 */
import { mkdirSync } from 'node:fs';
import type { AddressInfo } from 'node:net';
import { AlertService } from '../alerts/alert-service.js';
import { AlertStore } from '../alerts/alert-store.js';
import { DeviceRegistry } from '../ingest/broker-policy.js';
import { Catalogue } from '../ingest/catalogue.js';
import { isExternalBroker } from '../ingest/config.js';
import { EmbeddedBroker } from '../ingest/embedded-broker.js';
import { ExternalBroker } from '../ingest/external-broker.js';
import { IngestService } from '../ingest/ingest-service.js';
import { LatestReadings } from '../ingest/latest-readings.js';
import type { InboundHandlers, MessageBus } from '../ingest/message-bus.js';
import type { Reading } from '../ingest/reading.js';
import { createTelemetryWriter } from '../ingest/storage-factory.js';
import type { TelemetryWriter } from '../ingest/storage.js';
import { topics } from '../ingest/topics.js';
import { systemClock, type Clock } from '../lib/clock.js';
import { LEVELS, levelRank, type Level } from '../lib/levels.js';
import type { Logger } from '../lib/logger.js';
import { MetricsRegistry } from '../lib/metrics.js';
import { DEFAULT_MESSAGE, renderMessage, type MessageVars } from '../rules/template.js';
import { RuleRunner } from '../rules/rule-runner.js';
import { buildApi, type HealthReport } from './api.js';
import type { WatchpostConfig } from './config/schema.js';

export interface PlatformOptions {
  logger: Logger;
  configDir: string;
  clock?: Clock;
}

type Api = ReturnType<typeof buildApi>;

export class Platform {
  readonly metrics = new MetricsRegistry();
  private readonly clock: Clock;
  private readonly log: Logger;
  private readonly catalogue: Catalogue;
  private readonly devices: DeviceRegistry;
  private readonly latest = new LatestReadings();
  private readonly presence = new Map<string, { status: 'online' | 'offline'; since: number }>();
  private writer?: TelemetryWriter;
  private store?: AlertStore;
  private alerts?: AlertService;
  private rules?: RuleRunner;
  private bus?: MessageBus;
  private api?: Api;

  constructor(
    private readonly config: WatchpostConfig,
    private readonly options: PlatformOptions,
  ) {
    this.clock = options.clock ?? systemClock;
    this.log = options.logger;
    this.catalogue = new Catalogue(config.assets, config.metrics);
    this.devices = new DeviceRegistry(config.devices);
  }

  async start(): Promise<void> {
    const { config, clock, metrics } = this;
    const logger = this.log;
    mkdirSync(config.storage.data_dir, { recursive: true });

    const writer = createTelemetryWriter(config.storage, { logger, metrics, clock });
    this.writer = writer;
    await writer.start();

    const rules = new RuleRunner(config.rules);
    this.rules = rules;

    const store = AlertStore.open(config.storage.data_dir);
    this.store = store;
    const alerts = new AlertService({
      store,
      clock,
      logger,
      metrics,
      rules: (id) => rules.rules.info(id),
      assets: (id) => this.catalogue.asset(id),
      units: (metric) => this.catalogue.unit(metric),
      renderMessage: (template, vars) => renderMessage(template ?? DEFAULT_MESSAGE, vars as MessageVars),
      escalations: config.escalations,
      channels: config.channels,
      contacts: config.contacts,
      publicUrl: config.api.public_url,
      publish: (topic, payload) => this.bus?.publish(topic, payload, { qos: 1 }),
      writeAlertEvent: (point) => writer.writeAlertEvent(point),
    });
    this.alerts = alerts;
    // Alerts open before a restart seed the rule state, so a reading back below the threshold resolves them.
    rules.restore(alerts.openAlerts());
    alerts.start();

    const ingest = new IngestService({
      catalogue: this.catalogue,
      clock,
      logger,
      metrics,
      maxPayloadBytes: config.broker.max_payload_bytes,
      accept: (readings) => this.accept(readings),
      feedback: (deviceId, line) => this.bus?.publish(topics.errors(deviceId), JSON.stringify(line), { qos: 1 }),
      devicesForAsset: (assetId) => this.devices.devicesForAsset(assetId),
    });
    const handlers: InboundHandlers = {
      telemetry: (source, topic, assetId, sensorId, payload) => ingest.handleTelemetry(source, topic, assetId, sensorId, payload),
      rejected: (source, topic, rejection) => ingest.reject(source, topic, rejection),
      status: (deviceId, value) => this.setPresence(deviceId, value),
      disconnected: (deviceId) => this.setPresence(deviceId, 'offline'),
    };
    const broker = config.broker;
    this.bus = isExternalBroker(broker)
      ? new ExternalBroker({ config: broker, handlers, logger })
      : new EmbeddedBroker({ config: broker, devices: this.devices, handlers, logger });
    await this.bus.start();

    const api = buildApi({
      config: config.api,
      logger,
      alerts,
      assets: () => this.assetsView(),
      devices: () =>
        this.config.devices.map((d) => {
          const p = this.presence.get(d.id);
          return { id: d.id, assets: d.assets, status: p?.status ?? 'unknown', since: p ? new Date(p.since).toISOString() : null };
        }),
      rules: () => ({ rules: config.rules, error: null }),
      health: () => this.health(),
      metrics: () => metrics.render(),
    });
    this.api = api;
    await api.listen({ host: config.api.host, port: config.api.port });
    this.log.info(
      { mqtt_port: this.mqttPort(), http_port: this.httpPort(), storage: config.storage.influx ? `influxdb v${config.storage.influx.version}` : 'embedded', rules: config.rules.length },
      'watchpost started',
    );
  }

  /** Accepted readings of one message: storage first (refusal = not acknowledged), then rules. */
  private accept(readings: Reading[]): boolean {
    if (!this.writer!.writeReadings(readings)) return false;
    this.latest.update(readings);
    const events = this.rules!.process(readings);
    if (events.length > 0) this.alerts!.handle(events);
    return true;
  }

  private setPresence(deviceId: string, status: 'online' | 'offline'): void {
    const previous = this.presence.get(deviceId);
    if (previous?.status === status) return;
    this.presence.set(deviceId, { status, since: this.clock.now() });
    this.log.info({ device_id: deviceId, status }, 'device status');
  }

  private assetsView(): unknown[] {
    const open = this.alerts?.openAlerts() ?? [];
    const worst = new Map<string, Level>();
    for (const a of open) {
      const current = worst.get(a.asset_id);
      if (!current || levelRank(a.level) > levelRank(current)) worst.set(a.asset_id, a.level);
    }
    return [...this.catalogue.allAssets()].map((a) => ({
      id: a.id,
      type: a.type,
      name: a.name,
      street: a.street,
      location: a.location ?? null,
      alert_level: worst.get(a.id) ?? null,
      open_alerts: open.filter((x) => x.asset_id === a.id).length,
      latest: this.latest.forAsset(a.id),
    }));
  }

  private health(): HealthReport {
    const storage = this.writer?.status();
    const broker = this.bus?.connected() ?? false;
    const openByLevel = Object.fromEntries(LEVELS.map((l) => [l, 0]));
    for (const a of this.alerts?.openAlerts() ?? []) openByLevel[a.level]!++;
    const status = !broker || !storage || storage.accepting === false ? 'unavailable' : storage.state;
    return { status, broker: broker ? 'up' : 'down', storage: storage ?? null, open_alerts: openByLevel };
  }

  mqttPort(): number | undefined {
    return this.bus?.port();
  }

  httpPort(): number | undefined {
    return (this.api?.server.address() as AddressInfo | null)?.port;
  }

  /** Stops intake first, then drains alerts and storage; safe to call twice. */
  async stop(): Promise<void> {
    const { api, bus, alerts, store, writer } = this;
    this.api = this.bus = this.alerts = this.store = this.writer = undefined;
    await api?.close().catch((err: Error) => this.log.error({ err }, 'closing the API failed'));
    await bus?.stop().catch((err: Error) => this.log.error({ err }, 'stopping the broker failed'));
    await alerts?.stop().catch((err: Error) => this.log.error({ err }, 'stopping alerts failed'));
    store?.close();
    await writer?.stop().catch((err: Error) => this.log.error({ err }, 'stopping the storage writer failed'));
    this.log.info('watchpost stopped');
  }
}
