/**
 * The alert stage's public types and names: what it needs from the rest of the platform
 * (rules, assets, publishing), its options, and what its parts share.
 */
import { randomBytes } from 'node:crypto';
import { topics } from '../ingest/topics.js';
import type { AlertEventPoint } from '../ingest/storage.js';
import type { Clock } from '../lib/clock.js';
import { isValidId } from '../lib/ids.js';
import type { Level } from '../lib/levels.js';
import type { Logger } from '../lib/logger.js';
import type { MetricsRegistry } from '../lib/metrics.js';
import type { DispatchConfig, EscalationRef } from '../rules/config.js';
import type { ChannelConfig, ContactConfig, DepartmentConfig, EscalationConfig, ScheduleConfig } from './config.js';
import type { Channel, RetryOptions } from './outbox.js';
import type { RetentionOptions } from './retention.js';
import type { AlertStore } from './store.js';

/** What the alert stage needs to know about a rule; the rules stage provides a compatible object. */
export interface RuleInfo {
  id: string;
  name?: string;
  message?: string;
  plan: readonly string[];
  escalation?: EscalationRef;
}

export interface AssetInfo {
  id: string;
  name: string;
  type: string;
  street: string;
}

/** Placeholders for a rule's message template. */
export type MessageVars = Record<string, string | number>;

export interface AlertServiceOptions {
  store: AlertStore;
  clock: Clock;
  logger: Logger;
  metrics: MetricsRegistry;
  rules: (ruleId: string) => RuleInfo | undefined;
  assets: (assetId: string) => AssetInfo | undefined;
  units: (metric: string) => string;
  renderMessage: (template: string | undefined, vars: MessageVars) => string;
  escalations: EscalationConfig[];
  channels: ChannelConfig[];
  contacts: ContactConfig[];
  /** Base of ack_url links, e.g. https://watchpost.example.org */
  publicUrl: string;
  /** MQTT publish of `alerts/{level}/{asset_id}`; payload is the alert event body JSON. */
  publish: (topic: string, payload: string) => void;
  writeAlertEvent: (point: AlertEventPoint) => void;
  /** Builds the sender of a configured channel (default: channels/index.ts). Tests plug in here. */
  createChannel?: (config: ChannelConfig) => Channel;
  retry?: Partial<RetryOptions>;
  /** How long an ack_url stays valid (default 24h); every repeat or escalation carries a fresh one. */
  ackLinkTtlMs?: number;
  /** Rule events that may wait for alerts.db before readings are refused (default 10,000). */
  maxQueuedTransitions?: number;
  /** Retry delays while alerts.db fails (default 500 ms doubling to 30 s). */
  storeRetry?: { baseDelayMs?: number; maxDelayMs?: number };
  /** How long resolved alerts are kept (default 400 days; see retention.ts). */
  retention?: RetentionOptions;
  /** Departments that take work orders, and on-call schedules (the disposal loop). */
  departments?: DepartmentConfig[];
  schedules?: ScheduleConfig[];
  /** The departments that own and supervise an asset. */
  assetDepartments?: (assetId: string) => { owner?: string; authorities?: readonly string[] } | undefined;
  /** A rule's dispatch defaults (department and due time by level). */
  dispatchDefaults?: (ruleId: string) => DispatchConfig | undefined;
  /** Set when several instances share the store (cluster mode); absent, this is the only instance. */
  cluster?: AlertClusterOptions;
}

/**
 * One of several alert stages on one shared store. Every instance applies rule events and API
 * actions; what must happen once in the cluster (escalation schedule, ack deadlines, overdue work
 * orders, ends of silences and flapping holds, the outbox, retention) runs only while `isLeader()`.
 * Every `pollIntervalMs` each instance re-reads silences and flapping marks from the store and
 * checks isLeader(); the leader also looks for new outbox rows and due times other instances wrote.
 */
export interface AlertClusterOptions {
  /** This instance's id: the owner named on the outbox rows it claims. */
  instanceId: string;
  /** True while this instance holds the cluster's leader lease. */
  isLeader(): boolean;
  /** How often the store is polled (default 1000 ms). */
  pollIntervalMs?: number;
  /** How long a claim on an outbox row or digest lasts (default 60 s): longer than any channel's timeout. */
  claimTtlMs?: number;
}

export const DEFAULT_CLUSTER_POLL_MS = 1000;
export const DEFAULT_CLAIM_TTL_MS = 60_000;

export interface OperatorAction {
  by: string;
  note?: string;
}

/** The rule id of the alerts raised when a delivery fails for good. */
export const DELIVERY_FAILED_RULE = 'delivery_failed';

/** The platform alert raised while alerts.db cannot store transitions, on the platform's pseudo-asset. */
export const STORE_FAILING_RULE = 'platform-alerts-db';
export const PLATFORM_ASSET = 'watchpost';

export const TRANSITIONS_WAITING_METRIC = 'watchpost_alert_transitions_waiting';
export const STORE_FAILURES_METRIC = 'watchpost_alert_store_failures_total';

/** What the alert stage reports for /healthz while transitions wait for alerts.db. */
export interface AlertStoreHealth {
  waiting: number;
  failing_since: string;
  error: string;
}

export const ALERTS_FIRED_METRIC = 'watchpost_alerts_fired_total';
export const ALERTS_OPEN_METRIC = 'watchpost_alerts_open';

/** The MQTT topic of an alert event, or undefined when the asset id cannot be a topic level. */
export function alertTopic(level: Level, assetId: string): string | undefined {
  return isValidId(assetId) ? topics.alerts(level, assetId) : undefined;
}

export function newAlertId(): string {
  return `al_${randomBytes(10).toString('hex')}`;
}

/** Effects of a committed transaction; run only after the commit. */
export type Effect = () => void;

/** An error as one short line for logs, health and alert messages. */
export function errorText(error: unknown): string {
  const text = error instanceof Error ? error.message : String(error);
  return text.length > 300 ? `${text.slice(0, 300)}…` : text;
}

/** What the parts of the alert stage share; the AlertService builds it once. */
export interface AlertContext {
  readonly options: AlertServiceOptions;
  readonly store: AlertStore;
  readonly clock: Clock;
  readonly logger: Logger;
  readonly escalations: ReadonlyMap<string, EscalationConfig>;
  readonly channelConfigs: ReadonlyMap<string, ChannelConfig>;
  readonly contacts: ReadonlyMap<string, ContactConfig>;
  readonly departments: ReadonlyMap<string, DepartmentConfig>;
  readonly schedules: ReadonlyMap<string, ScheduleConfig>;
}
