/**
 * The composition root: the only module that knows every part. It builds them from the
 * configuration, wires the one-way flow
 *   MQTT -> ingest -> (storage writer, rule runner) -> alert service -> outbox -> channels
 * and owns their start/stop order.
 *
 * Longer than 500 lines on purpose: it is the one place that knows every part, and splitting the
 * wiring would hide the start/stop order it exists to keep in one reading.
 */
import { mkdirSync } from 'node:fs';
import type { AddressInfo } from 'node:net';
import { AlertService, DELIVERY_FAILED_RULE } from '../alerts/alert-service.js';
import { CaseMetrics } from '../alerts/case-metrics.js';
import { SqliteAlertStore } from '../alerts/sqlite/sqlite-alert-store.js';
import type { AlertStore } from '../alerts/store.js';
import { DeviceRegistry } from '../ingest/broker-policy.js';
import { Catalogue } from '../ingest/catalogue.js';
import { DEFAULT_CONNECT_LIMITS, isExternalBroker } from '../ingest/config.js';
import { EmbeddedBroker } from '../ingest/embedded-broker.js';
import { ExternalBroker } from '../ingest/external-broker.js';
import { IngestService } from '../ingest/ingest-service.js';
import { SecretVerifier } from '../ingest/device-auth.js';
import { HttpPush } from '../ingest/http-push/http-push.js';
import { SparkplugHost } from '../ingest/sparkplug/host.js';
import { ConnectLimiter } from '../ingest/connect-limiter.js';
import { statePayload } from '../ingest/sparkplug/codec.js';
import { sparkplugTopics } from '../ingest/sparkplug/topics.js';
import { LatestReadings } from '../ingest/latest-readings.js';
import type { InboundHandlers, MessageBus } from '../ingest/message-bus.js';
import type { Reading } from '../ingest/reading.js';
import { createTelemetryWriter } from '../ingest/storage-factory.js';
import type { SpoolFs } from '../ingest/spool-fs.js';
import type { StorageStatus, TelemetryWriter } from '../ingest/storage.js';
import { topics } from '../ingest/topics.js';
import { IngestWatchdog, type WatchdogState } from '../ingest/watchdog.js';
import { loadTls } from '../ingest/tls.js';
import { FALLBACK_ESCALATION_ID, PLATFORM_ASSET_ID, PLATFORM_RULE_IDS, platformCheckOf, platformRuleEvent, platformRuleInfo } from './platform-alerts.js';
import { systemClock, type Clock } from '../lib/clock.js';
import { LEVELS, levelRank, type Level } from '../lib/levels.js';
import type { Logger } from '../lib/logger.js';
import { DataDirLock } from '../lib/data-dir-lock.js';
import { MetricsRegistry } from '../lib/metrics.js';
import { RuntimeMetrics } from '../lib/runtime-metrics.js';
import { DEFAULT_MESSAGE, renderMessage } from '../rules/template.js';
import { RuleRunner } from '../rules/rule-runner.js';
import type { DeviceRef } from '../rules/state.js';
import type { RuleEvent } from '../rules/types.js';
import { buildApi, type HealthReport } from './api.js';
import { caseReport } from './report.js';
import { AuditLog } from './audit.js';
import { consolePort, type ConsoleParts } from './console/platform-console.js';
import { ConfigReloader, type ConfigChanges, type ConfigReloadOutcome } from './config-reload.js';
import { Registry } from './registry.js';
import { reloadCause, resolveAfterReload, type ReloadTrigger } from './rules-reload.js';
import { loadConfig } from './config/load.js';
import type { RegistryBackend } from './registry-backend.js';
import { registryBackend } from './registry-postgres.js';
import type { WatchpostConfig } from './config/schema.js';
import { Gb26875Adapter } from '../ingest/gb26875/adapter.js';
import { ClusterMode } from './cluster/cluster-mode.js';
import { ClusterAlertFeed } from './cluster/alert-feed.js';

export interface PlatformOptions {
  logger: Logger;
  configDir: string;
  clock?: Clock;
  /** How often stale, offline and flapping rules are checked on the platform clock (default 1000 ms). */
  ruleTickMs?: number;
  /** Reload the configuration when a file in configDir changes (default true). */
  watchRules?: boolean;
  /** The spool's file operations (tests inject a failing disk); node:fs by default. */
  spoolFs?: SpoolFs;
  /** Opens the alert store of a data directory (tests inject a failing one); SQLite alerts.db by default. */
  openAlertStore?: (dataDir: string) => AlertStore;
}

type Api = ReturnType<typeof buildApi>;

export class Platform {
  readonly metrics = new MetricsRegistry();
  private readonly runtime = new RuntimeMetrics(this.metrics);
  private readonly clock: Clock;
  private readonly log: Logger;
  private readonly catalogue: Catalogue;
  private readonly devices: DeviceRegistry;
  private readonly latest = new LatestReadings();
  private readonly presence = new Map<string, { status: 'online' | 'offline'; since: number }>();
  /** Platform time of each configured device's last message, connection or disconnection. */
  private readonly lastSeen = new Map<string, number>();
  /** The configuration in force: the one started with, then each reloaded one. */
  private current: WatchpostConfig;
  private dataDirLock?: DataDirLock;
  private writer?: TelemetryWriter;
  private store?: AlertStore;
  private alerts?: AlertService;
  private rules?: RuleRunner;
  private bus?: MessageBus;
  private api?: Api;
  private audit?: AuditLog;
  private console?: ConsoleParts;
  private watchdog?: IngestWatchdog;
  private reloader?: ConfigReloader;
  private ruleTimer?: NodeJS.Timeout;
  /** Why the spool stopped taking appends (a failed fdatasync), once it has: readings cannot be accepted until a restart. */
  private spoolFailure?: string;
  /** The Sparkplug B host application (adapters: type sparkplug), on the embedded broker. */
  private sparkplug?: SparkplugHost;
  /** GB/T 26875.3 listeners (adapters: type gb26875), and their transmission devices' assets by device id. */
  private gb26875: Gb26875Adapter[] = [];
  private readonly adapterDevices = new Map<string, string[]>();
  /** Cluster mode (config `cluster`): the partitions this instance judges, the shared store, the leases. */
  private cluster?: ClusterMode;
  /** Where run-time registry changes are kept: registry.yaml, or PostgreSQL in a cluster. */
  private registryStore?: RegistryBackend;
  /** Cluster mode behind an external broker: the other instances' alert events, for this console's stream. */
  private alertFeed?: ClusterAlertFeed;

  constructor(
    private readonly config: WatchpostConfig,
    private readonly options: PlatformOptions,
  ) {
    this.clock = options.clock ?? systemClock;
    for (const a of config.adapters) if (a.type === 'gb26875') for (const d of a.devices) this.adapterDevices.set(d.device, [d.asset]);
    this.log = options.logger;
    this.current = config;
    this.catalogue = new Catalogue(config.assets, config.metrics);
    this.devices = new DeviceRegistry(config.devices);
  }

  async start(): Promise<void> {
    const { config, clock, metrics } = this;
    const logger = this.log;
    mkdirSync(config.storage.data_dir, { recursive: true, mode: 0o700 });
    // Before anything in data_dir is opened: a second instance on the same directory stops here, naming the first.
    this.dataDirLock = DataDirLock.acquire(config.storage.data_dir, logger);
    // Certificates are read first, so a bad file stops the start before anything listens.
    const apiTls = config.api.tls ? loadTls(config.api.tls, 'api.tls') : undefined;
    // Both engines are tried before anything is built on them: an unreachable one stops the start, named.
    if (config.cluster) this.cluster = await ClusterMode.connect(config.cluster, { logger, clock, metrics });
    const cluster = this.cluster;
    this.runtime.start();

    const writer = createTelemetryWriter(
      config.storage,
      { logger, metrics, clock },
      {
        ...(this.options.spoolFs ? { fs: this.options.spoolFs } : {}),
        onFail: (error) => {
          this.spoolFailure = error.message;
          this.watchdog?.check(); // the platform alert at once, not at the next check
        },
      },
    );
    this.writer = writer;
    await writer.start();

    const rules = new RuleRunner(config.rules);
    this.rules = rules;

    // Platform alerts (spool filling, ingest silent, storage failing) go to the `fallback` escalation.
    const hasFallback = config.escalations.some((e) => e.id === FALLBACK_ESCALATION_ID);
    if (!hasFallback) logger.warn('no escalation named "fallback": platform alerts (spool, deadman) are recorded and published but notify nobody');
    const store = (this.options.openAlertStore ?? (cluster ? () => cluster.openAlertStore() : (dir: string) => SqliteAlertStore.open(dir)))(config.storage.data_dir);
    this.store = store;
    const caseMetrics = new CaseMetrics(metrics, store);
    const alerts = new AlertService({
      store,
      clock,
      logger,
      metrics,
      rules: (id) => platformRuleInfo(id, hasFallback) ?? rules.rules.info(id),
      assets: (id) => this.catalogue.asset(id),
      units: (metric) => this.catalogue.unit(metric),
      // {unit} of the rule's signal: mm/d for a rate, ° for a tangent angle, s for stale and offline.
      renderMessage: (template, vars) => renderMessage(template ?? DEFAULT_MESSAGE, { ...vars, unit: rules.rules.unit(String(vars.rule_id), String(vars.metric), String(vars.unit ?? '')) }),
      escalations: config.escalations,
      channels: config.channels,
      contacts: config.contacts,
      departments: config.departments,
      schedules: config.schedules,
      assetDepartments: (id) => this.current.assets.find((a) => a.id === id),
      dispatchDefaults: (id) => this.current.rules.find((r) => r.id === id)?.dispatch,
      publicUrl: config.api.public_url,
      publish: (topic, payload) => {
        this.alertFeed?.published(payload); // before the broker can echo it back
        this.bus?.publish(topic, payload, { qos: 1 });
        this.console?.stream.publish('alert', payload); // the console's live board
      },
      writeAlertEvent: (point) => {
        writer.writeAlertEvent(point);
        caseMetrics.alertEvent(point);
      },
      retention: { maxAgeMs: config.storage.retention.alerts },
      ...(cluster ? { cluster: cluster.alertCluster() } : {}),
    });
    this.alerts = alerts;
    // Alerts open before a restart seed the rule state, so a reading back below the threshold resolves them;
    // alerts of rules removed while the platform was down are resolved.
    // (Platform and delivery_failed alerts are the alert stage's own, not the rules'.)
    const openAtStart = alerts.openAlerts().filter((a) => !PLATFORM_RULE_IDS.includes(a.rule_id) && a.rule_id !== DELIVERY_FAILED_RULE);
    // In a cluster the state of a partition's assets comes with its lease (checkpoints; open alerts where there are none).
    const removedRules = cluster ? [...new Set(openAtStart.map((a) => a.rule_id))].filter((id) => rules.rules.get(id) === undefined) : rules.restore(openAtStart, clock.now());
    for (const ruleId of removedRules) {
      alerts.resolveForRemovedRule(ruleId, { reason: 'rule_removed', note: `rule "${ruleId}" is no longer in the configuration (found at start)` });
    }
    rules.watch(this.watchedSensors(), clock.now());
    alerts.start();
    // The alert stage keeps flapping holds across restarts; the rules end them after a stable window.
    const flapping = (cluster ? [] : openAtStart).filter((a) => alerts.isFlapping({ ruleId: a.rule_id, assetId: a.asset_id, sensorId: a.sensor_id }));
    for (const a of rules.restoreFlapping(flapping, clock.now())) alerts.setFlapping({ ruleId: a.rule_id, assetId: a.asset_id, sensorId: a.sensor_id }, false);
    const registryStore = registryBackend(config, { configDir: this.options.configDir, logger });
    await registryStore.start();
    this.registryStore = registryStore;
    this.reloader = new ConfigReloader(
      {
        configDir: this.options.configDir,
        runner: rules,
        clock,
        logger,
        current: () => this.current,
        apply: (next, changes, trigger) => this.applyConfig(next, changes, trigger),
        // The registry's content in registry.yaml's place (in a cluster, PostgreSQL's).
        load: (dir) => loadConfig(dir, process.env, registryStore.overrides()),
      },
      { watch: this.options.watchRules ?? true },
    );
    this.reloader.start();
    // In a cluster the shared registry replaces the disk's registry.yaml before partitions and listeners start;
    // another instance's change reloads through the same validated path.
    if (cluster) this.reloader.reload('registry');
    registryStore.onChange(() => void this.reloader?.reload('registry'));
    if (cluster) {
      await cluster.start({
        rules,
        handle: (events) => alerts.handle(events),
        leadershipChanged: () => alerts.leadershipChanged(),
        openAlerts: () => alerts.openAlerts().filter((a) => !PLATFORM_RULE_IDS.includes(a.rule_id) && a.rule_id !== DELIVERY_FAILED_RULE),
        assets: () => this.current.assets,
        sensors: () => this.configuredSensors(),
        deviceRef: (deviceId) => this.deviceRef(deviceId),
      });
    }
    this.ruleTimer = setInterval(() => (cluster ? cluster.tick() : this.ruleEvents(rules.tick(clock.now()))), this.options.ruleTickMs ?? 1000);
    this.ruleTimer.unref();

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
      telemetry: (source, topic, assetId, sensorId, payload) => {
        if (source.deviceId !== undefined) this.lastSeen.set(source.deviceId, clock.now());
        return ingest.handleTelemetry(source, topic, assetId, sensorId, payload);
      },
      rejected: (source, topic, rejection) => ingest.reject(source, topic, rejection),
      status: (deviceId, value) => this.setPresence(deviceId, value),
      sparkplug: (source, topic, rawTopic, payload) => this.sparkplug?.handle(source, topic, rawTopic, payload) ?? Promise.resolve(true),
      disconnected: (deviceId) => {
        this.sparkplug?.disconnected(deviceId);
        this.setPresence(deviceId, 'offline');
      },
    };
    const broker = config.broker;
    if (isExternalBroker(broker) && broker.shared_group !== undefined && config.rules.length > 0 && !cluster) {
      // README, MQTT: "Several instances and rules". Round robin (mosquitto's way) splits every series between instances.
      logger.warn(
        { shared_group: broker.shared_group },
        "broker.shared_group: each instance judges rules only on the messages the broker gives it, and keeps its own alerts; the broker must give all of a device's messages to one instance (EMQX: broker.shared_subscription_strategy = hash_clientid), or run one instance",
      );
    }
    this.bus = isExternalBroker(broker)
      ? new ExternalBroker({
          // Instances of a cluster on one host need their own persistent sessions: named after the instance.
          config: cluster && broker.client_id === undefined ? { ...broker, client_id: `watchpost-${cluster.instanceId}` } : broker,
          handlers,
          logger,
          ...externalSparkplug(config.adapters, clock.now()),
        })
      : new EmbeddedBroker({ config: broker, devices: this.devices, handlers, logger, metrics, clock, sparkplugEdges: sparkplugEdges(config.adapters) });
    await this.bus.start();
    if (cluster && isExternalBroker(broker)) {
      this.alertFeed = new ClusterAlertFeed({ broker, instanceId: cluster.instanceId, logger, onAlert: (payload) => this.console?.stream.publish('alert', payload) });
      this.alertFeed.start();
    }
    const sparkplugConfig = config.adapters.find((a) => a.type === 'sparkplug');
    if (sparkplugConfig) {
      const bus = this.bus;
      this.sparkplug = new SparkplugHost({
        config: sparkplugConfig,
        clock,
        logger,
        metrics,
        publish: (topic, payload, options) => bus.publish(topic, payload, options),
        ingest: (source, topic, assetId, sensorId, payload) => handlers.telemetry(source, topic, assetId, sensorId, payload),
        presence: (deviceId, status) => this.setPresence(deviceId, status),
      });
      this.sparkplug.start();
    }
    const httpConfig = config.adapters.find((a) => a.type === 'http');
    const httpPush = httpConfig
      ? new HttpPush({
          config: httpConfig,
          devices: this.devices,
          // Built once: it verifies any registry entry; its unknown-id work follows the devices at start.
          verifier: (
            (verifier) => () =>
              verifier
          )(new SecretVerifier([...this.devices.all()].map((d) => d.config))),
          logins: loginLimiter(isExternalBroker(broker) ? DEFAULT_CONNECT_LIMITS : broker.limits, clock),
          clock,
          metrics,
          maxPayloadBytes: config.broker.max_payload_bytes,
          telemetry: (source, topic, assetId, sensorId, payload) => handlers.telemetry(source, topic, assetId, sensorId, payload),
          rejected: (source, topic, rejection) => handlers.rejected(source, topic, rejection),
        })
      : undefined;

    const gb26875 = config.adapters.filter((a) => a.type === 'gb26875');
    this.gb26875 = gb26875.map(
      (adapterConfig, i) =>
        new Gb26875Adapter({
          config: adapterConfig,
          name: gb26875.length > 1 ? `gb26875-${i + 1}` : 'gb26875',
          clock,
          logger,
          metrics,
          telemetry: (source, topic, assetId, sensorId, payload) => handlers.telemetry(source, topic, assetId, sensorId, payload),
          presence: (deviceId, status) => this.setPresence(deviceId, status),
        }),
    );
    for (const adapter of this.gb26875) await adapter.start();

    const watchdog = new IngestWatchdog({
      config: { spoolAlertPercent: config.storage.spool.alert_percent, noReadings: config.storage.deadman.no_readings, failingWrites: config.storage.deadman.failing_writes },
      clock,
      logger,
      storage: () => this.storageStatus(),
      // In a cluster each instance has its own platform alerts: sensor_id is the instance id.
      onSignal: (signal) => void this.alerts?.handle([{ ...platformRuleEvent(signal, clock.now()), ...(cluster ? { sensorId: cluster.instanceId } : {}) }]),
    });
    this.watchdog = watchdog;
    // Platform alerts still open from a previous run are carried on, not resolved and raised again.
    const open: WatchdogState = {};
    for (const a of alerts.openAlerts()) {
      const check = a.asset_id === PLATFORM_ASSET_ID && (!cluster || a.sensor_id === cluster.instanceId) ? platformCheckOf(a.rule_id) : undefined;
      if (check) open[check] = a.level;
    }
    watchdog.start(open);

    this.audit = new AuditLog({ store, clock, logger: logger.child({ module: 'audit' }), retentionMs: config.storage.retention.alerts });
    this.audit.start();
    this.console = consolePort(config, { clock, logger });
    this.console.stream.start();
    const api = buildApi({
      ...(httpPush ? { httpPush } : {}),
      config: config.api,
      logger,
      ...(apiTls?.cert && apiTls.key ? { tls: { cert: apiTls.cert, key: apiTls.key, ...(apiTls.ca ? { ca: apiTls.ca } : {}) } } : {}),
      alerts,
      assets: () => this.assetsView(),
      devices: () => this.devicesView(),
      rules: () => this.reloader?.view(),
      reloadRules: () => this.reloadConfig('api'),
      registry: new Registry({ configDir: this.options.configDir, current: () => this.current, apply: (next) => void this.reloader?.applyConfig(next, 'api'), backend: registryStore }),
      health: () => this.health(),
      metrics: () => metrics.render(),
      silences: alerts,
      cases: alerts,
      workOrderLinks: alerts,
      ackLinks: { ackLink: (token) => alerts.ackLink(token), acknowledgeByLink: (token, note) => alerts.acknowledgeByLink(token, note), unitOf: (metric) => this.catalogue.unit(metric) },
      audit: this.audit,
      report: (from, to) => caseReport(store, this.current, from, to),
      console: this.console.port,
    });
    this.api = api;
    await api.listen({ host: config.api.host, port: config.api.port });
    this.log.info(
      {
        mqtt_port: this.mqttPort(),
        mqtts_port: this.mqttsPort(),
        http_port: this.httpPort(),
        storage: config.storage.influx ? `influxdb v${config.storage.influx.version}` : 'embedded',
        rules: config.rules.length,
      },
      'watchpost started',
    );
  }

  /**
   * Accepted readings of one message: durable in the spool first (refusal = not acknowledged),
   * then rules. Appends resolve in order, so rules see each series in arrival order.
   */
  private accept(readings: Reading[]): Promise<boolean> {
    const writer = this.writer;
    // Too many rule events wait for a failing alerts.db: the device resends instead.
    if (!writer || this.alerts?.accepting() === false) return Promise.resolve(false);
    const cluster = this.cluster;
    // In a cluster, acknowledged = in this spool and confirmed by RabbitMQ to the partitions that judge it.
    if (cluster) return writer.writeReadings(readings).then((stored) => stored && cluster.publishReadings(readings).then((published) => published && this.stored(readings)));
    // .then rather than an async function: this runs for every message (allocation per call).
    return writer.writeReadings(readings).then((stored) => stored && this.stored(readings));
  }

  /** Readings are durable: watchdog, latest values, rules. */
  private stored(readings: Reading[]): true {
    this.watchdog?.readingsAccepted();
    this.latest.update(readings);
    if (!this.cluster) this.ruleEvents(this.rules!.process(readings, this.clock.now()));
    return true;
  }

  private ruleEvents(events: readonly RuleEvent[]): void {
    if (events.length > 0) void this.alerts?.handle(events);
  }

  /** Reloads the configuration directory (SIGHUP, API, file change); the rules reload is its alias. */
  reloadConfig(trigger: ReloadTrigger): ConfigReloadOutcome {
    if (!this.reloader) throw new Error('the platform is not running');
    return this.reloader.reload(trigger);
  }

  reloadRules(trigger: ReloadTrigger): ConfigReloadOutcome {
    return this.reloadConfig(trigger);
  }

  /**
   * Swaps a reloaded configuration in, at once (config-reload.ts decided it is valid and what
   * changed; the rules are already replaced): catalogue, devices (the broker closes connections of
   * removed devices and of devices whose credentials changed), the alert stage's escalations,
   * channels, contacts, departments and schedules, API tokens; then the alerts of removed assets
   * resolve (`asset_removed`) and those of removed or changed rules as a rules reload does.
   */
  private applyConfig(next: WatchpostConfig, changes: ConfigChanges, trigger: ReloadTrigger): void {
    const now = this.clock.now();
    this.current = next;
    this.catalogue.replace(next.assets, next.metrics);
    if (changes.devices.added.length + changes.devices.removed.length + changes.devices.changed.length > 0) {
      this.devices.replace(next.devices);
      if (this.bus instanceof EmbeddedBroker) this.bus.updateDevices();
      for (const id of changes.devices.removed) {
        this.presence.delete(id);
        this.lastSeen.delete(id);
      }
    }
    // The API reads its tokens per request from this object.
    this.config.api.tokens = next.api.tokens;
    const alerts = this.alerts;
    if (!alerts) return;
    alerts.updateConfig({ escalations: next.escalations, channels: next.channels, contacts: next.contacts, departments: next.departments, schedules: next.schedules });
    const how = reloadCause(trigger);
    for (const id of changes.assets.removed) alerts.resolveForRemovedAsset(id, { note: `asset "${id}" was removed from the configuration (${how})` });
    resolveAfterReload(alerts, changes.rules, trigger, now);
    if (changes.sections.includes('assets') || changes.sections.includes('rules')) this.rules?.watch(this.watchedSensors(), now);
  }

  /** GET /api/v1/devices: every configured device with its status, last seen and assets; never a secret. */
  private devicesView(): unknown[] {
    return this.current.devices.map((d) => {
      const p = this.presence.get(d.id);
      const seen = this.lastSeen.get(d.id);
      return {
        id: d.id,
        assets: d.assets,
        subscribe: d.subscribe,
        status: p?.status ?? 'unknown',
        since: p ? new Date(p.since).toISOString() : null,
        last_seen: seen === undefined ? null : new Date(seen).toISOString(),
      };
    });
  }

  /** Sensors the stale rules of this instance watch before they first report: the configured ones (in a cluster, of owned partitions). */
  private watchedSensors() {
    const cluster = this.cluster;
    return cluster ? this.configuredSensors().filter((s) => cluster.owns(s.assetId)) : this.configuredSensors();
  }

  private configuredSensors() {
    return [...this.catalogue.allAssets()].flatMap((a) =>
      [...(a.sensors ?? new Map<string, ReadonlySet<string> | undefined>())].map(([sensorId, metrics]) => ({
        assetId: a.id,
        sensorId,
        assetType: a.type,
        street: a.street,
        ...(metrics ? { metrics: [...metrics] } : {}),
      })),
    );
  }

  private deviceRef(deviceId: string): DeviceRef {
    // By id from the registry: a scan of config.devices per status change is quadratic when thousands of devices reconnect at once.
    const assets = this.devices.get(deviceId)?.config.assets ?? this.adapterDevices.get(deviceId) ?? [];
    return {
      deviceId,
      assets: assets.flatMap((id) => {
        const a = this.catalogue.asset(id);
        return a ? [{ assetId: a.id, assetType: a.type, street: a.street }] : [];
      }),
    };
  }

  private setPresence(deviceId: string, status: 'online' | 'offline'): void {
    // Only configured devices have a presence (an external broker passes status/ of any id), so the map stays bounded.
    if (!this.devices.get(deviceId) && !this.adapterDevices.has(deviceId)) return;
    this.lastSeen.set(deviceId, this.clock.now());
    const previous = this.presence.get(deviceId);
    if (previous?.status === status) return;
    this.presence.set(deviceId, { status, since: this.clock.now() });
    this.log.info({ device_id: deviceId, status }, 'device status');
    if (this.cluster) this.cluster.publishPresence(deviceId, status);
    else if (this.rules) this.ruleEvents(this.rules.presence(this.deviceRef(deviceId), status, this.clock.now()));
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

  /** The writer's status; not accepting once the spool has failed, even before an append finds out. */
  private storageStatus(): StorageStatus | undefined {
    const status = this.writer?.status();
    return status && this.spoolFailure !== undefined ? { ...status, accepting: false, queueError: this.spoolFailure } : status;
  }

  private health(): HealthReport {
    const storage = this.storageStatus();
    const broker = this.bus?.connected() ?? false;
    const openByLevel = Object.fromEntries(LEVELS.map((l) => [l, 0]));
    const alerts = this.alerts?.storeHealth();
    try {
      for (const a of this.alerts?.openAlerts() ?? []) openByLevel[a.level]!++;
    } catch {
      // alerts.db cannot be read: the counts stay 0, and `alerts` says why when writes fail too.
    }
    const cluster = this.cluster ? { ...this.cluster.health(), ...(this.registryStore?.status ? { registry: this.registryStore.status() } : {}) } : undefined;
    const refusing = !broker || !storage || storage.accepting === false || this.alerts?.accepting() === false || cluster?.amqp === 'down';
    const status = refusing ? 'unavailable' : alerts || cluster?.postgres === 'down' ? 'degraded' : storage.state;
    return { status, broker: broker ? 'up' : 'down', storage: storage ?? null, open_alerts: openByLevel, ...(alerts ? { alerts } : {}), ...(cluster ? { cluster } : {}) };
  }

  mqttPort(): number | undefined {
    return this.bus?.port();
  }

  /** Port of the embedded broker's TLS listener (broker.tls), if any. */
  mqttsPort(): number | undefined {
    return this.bus instanceof EmbeddedBroker ? this.bus.tlsPort() : undefined;
  }

  /** Port of a GB/T 26875.3 listener (adapters of type gb26875, in order), once started. */
  gb26875Port(index = 0): number | undefined {
    return this.gb26875[index]?.port();
  }

  httpPort(): number | undefined {
    return (this.api?.server.address() as AddressInfo | null)?.port;
  }

  /** Stops intake first, then drains alerts and storage; safe to call twice. */
  async stop(): Promise<void> {
    const { api, bus, alerts, store, writer } = this;
    this.sparkplug?.stop(); // its STATE offline, while the broker still runs
    const gb26875 = this.gb26875;
    this.gb26875 = [];
    await Promise.all(gb26875.map((a) => a.stop().catch((err: Error) => this.log.error({ err }, 'stopping a GB/T 26875.3 listener failed'))));
    this.sparkplug = undefined;
    this.watchdog?.stop();
    this.watchdog = undefined;
    this.audit?.stop();
    this.audit = undefined;
    await this.alertFeed?.stop();
    this.alertFeed = undefined;
    this.console?.stop(); // ends the console's open streams, which the HTTP server's close would wait for
    this.console = undefined;
    this.runtime.stop();
    this.reloader?.stop();
    this.reloader = undefined;
    await this.registryStore?.stop().catch((err: Error) => this.log.error({ err }, 'stopping the registry failed'));
    this.registryStore = undefined;
    if (this.ruleTimer) clearInterval(this.ruleTimer);
    this.ruleTimer = undefined;
    this.api = this.bus = this.alerts = this.store = this.writer = undefined;
    await api?.close().catch((err: Error) => this.log.error({ err }, 'closing the API failed'));
    await bus?.stop().catch((err: Error) => this.log.error({ err }, 'stopping the broker failed'));
    // The partitions go to the other instances before the alert stage stops.
    const cluster = this.cluster;
    this.cluster = undefined;
    await cluster?.stop().catch((err: Error) => this.log.error({ err }, 'leaving the cluster failed'));
    await alerts?.stop().catch((err: Error) => this.log.error({ err }, 'stopping alerts failed'));
    store?.close();
    await writer?.stop().catch((err: Error) => this.log.error({ err }, 'stopping the storage writer failed'));
    this.dataDirLock?.release();
    this.dataDirLock = undefined;
    this.log.info('watchpost stopped');
  }
}

/** Behind an external broker the host subscribes to its nodes' topics, and its STATE offline is the connection's will. */
function externalSparkplug(adapters: WatchpostConfig['adapters'], now: number): { subscriptions?: string[]; will?: { topic: string; payload: string; qos: 1; retain: true } } {
  const sparkplug = adapters.find((a) => a.type === 'sparkplug');
  if (!sparkplug) return {};
  return {
    subscriptions: sparkplug.nodes.map((n) => sparkplugTopics.nodeFilter(n.group, n.edge)),
    will: { topic: sparkplugTopics.state(sparkplug.host_id), payload: statePayload(false, now), qos: 1, retain: true },
  };
}

/** HTTP push locks out an address after repeated failed logins, as the embedded broker does (broker.limits). */
function loginLimiter(limits: typeof DEFAULT_CONNECT_LIMITS, clock: Clock): ConnectLimiter {
  return new ConnectLimiter(
    {
      connectsPerSecond: limits.connects_per_second,
      connectBurst: limits.connect_burst,
      maxAuthFailures: limits.max_auth_failures,
      authFailureWindow: limits.auth_failure_window,
      lockout: limits.lockout,
      exempt: limits.exempt,
    },
    () => clock.now(),
  );
}

/** Device id (= edge node id) -> the Sparkplug groups in which it is a configured edge node. */
function sparkplugEdges(adapters: WatchpostConfig['adapters']): Map<string, Set<string>> {
  const edges = new Map<string, Set<string>>();
  for (const a of adapters) {
    if (a.type !== 'sparkplug') continue;
    for (const n of a.nodes) edges.set(n.edge, (edges.get(n.edge) ?? new Set()).add(n.group));
  }
  return edges;
}
