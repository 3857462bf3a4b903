/** An AlertService on a temporary alerts.db with recording channels, for fake-timer tests of the alert stage. */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { AlertService, type AlertServiceOptions, type RuleInfo } from '../../alerts/alert-service.js';
import type { ChannelConfig, ContactConfig, EscalationConfig, RateLimit } from '../../alerts/config.js';
import type { AlertEventBody } from '../../alerts/event-body.js';
import type { Channel, DeliveryOutcome, Notification, RetryOptions } from '../../alerts/outbox.js';
import type { AlertStore } from '../../alerts/store.js';
import type { AlertEventPoint } from '../../ingest/storage.js';
import { silentLogger } from '../../lib/logger.js';
import { MetricsRegistry } from '../../lib/metrics.js';
import type { RuleEvent } from '../../rules/types.js';
import { openAlertStore } from './alert-store.js';

export const MIN = 60_000;

/** A channel that records what it is asked to send and answers from a script (delivered when empty). */
export class ScriptedChannel implements Channel {
  readonly answers: DeliveryOutcome[] = [];
  constructor(
    readonly id: string,
    readonly type: string,
    private readonly sent: Notification[],
    readonly rateLimits: readonly RateLimit[] = [],
    readonly addressing: 'group' | 'person' = 'group',
    readonly maxAgeMs = 60 * MIN,
  ) {}
  send(notification: Notification): Promise<DeliveryOutcome> {
    this.sent.push(notification);
    return Promise.resolve(this.answers.shift() ?? { outcome: 'delivered', statusCode: 200 });
  }
}

export const RULES: Record<string, RuleInfo> = {
  'bridge-strain': {
    id: 'bridge-strain',
    name: '主梁应变超限',
    message: '{asset_name} {sensor_id} 应变 {value}{unit}，超过{level_name}阈值 {threshold}',
    plan: ['通知桥梁养护单位现场核查'],
    escalation: 'bridge-duty',
  },
  'slope-tilt': { id: 'slope-tilt', name: '边坡倾斜', message: '{asset_name} 倾角 {value}', plan: [], escalation: 'bridge-duty' },
};

export const CONTACTS: ContactConfig[] = [
  { id: 'longcheng-duty', name: '龙城街道值班员', phone: '+8613800000001', email: 'duty@example.org' },
  { id: 'street-supervisor', name: '街道主管', phone: '+8613800000002' },
  { id: 'district-chief', name: '区应急办', phone: '+8613800000003' },
];

export const BRIDGE_DUTY: EscalationConfig = {
  id: 'bridge-duty',
  tiers: [
    { after: 0, notify: [{ channel: 'ops-hook', to: [] }] },
    {
      after: 10 * MIN,
      notify: [
        { channel: 'ops-hook', to: [] },
        { channel: 'sms', to: ['street-supervisor'] },
      ],
    },
  ],
  repeat: 30 * MIN,
};

export function ruleEvent(level: RuleEvent['level'], value: number, extra: Partial<RuleEvent> = {}): RuleEvent {
  return { ruleId: 'bridge-strain', assetId: 'lg-bridge-001', sensorId: 'strain-01', metric: 'strain', level, value, threshold: 300, ts: Date.now() - 1000, ...extra };
}

export interface Harness {
  dir: string;
  store: AlertStore;
  service: AlertService;
  sent: Notification[];
  channels: Map<string, ScriptedChannel>;
  published: Array<[string, string]>;
  points: AlertEventPoint[];
  metrics: MetricsRegistry;
  /**
   * What was sent since the last call, as [event, tier, channel, recipients] (digests as
   * ['digest:<events>', …]), grouped by channel (stable: each channel's own order is kept; across
   * channels deliveries run in parallel).
   */
  take(): Array<[string, number, string, string[]]>;
  /** Stops the service and opens a new one on the same data (a restart). */
  restart(): Promise<void>;
  close(): Promise<void>;
}

export interface HarnessOptions {
  escalations?: EscalationConfig[];
  channels?: Array<{ id: string; type?: string; rateLimits?: RateLimit[]; addressing?: 'group' | 'person'; maxAgeMs?: number }>;
  retry?: Partial<RetryOptions>;
  ackLinkTtlMs?: number;
  publicUrl?: string;
  /** Wraps the store the service uses (fault injection, counting queries). */
  wrapStore?: (store: AlertStore) => AlertStore;
  /** Further service options (retention, retry of a failing store, ...). */
  service?: Partial<Omit<AlertServiceOptions, 'store'>>;
}

export function startHarness(options: HarnessOptions = {}): Harness {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'watchpost-alerts-'));
  const sent: Notification[] = [];
  const published: Array<[string, string]> = [];
  const points: AlertEventPoint[] = [];
  const channelSpecs = options.channels ?? [{ id: 'ops-hook' }, { id: 'sms', type: 'sms', addressing: 'person' }];
  const h = {} as Harness;
  const build = () => {
    const store = openAlertStore(dir);
    const channels = new Map(channelSpecs.map((c) => [c.id, new ScriptedChannel(c.id, c.type ?? 'webhook', sent, c.rateLimits ?? [], c.addressing ?? 'group', c.maxAgeMs)]));
    const channelConfigs: ChannelConfig[] = channelSpecs.map((c) =>
      c.type === 'sms'
        ? {
            id: c.id,
            type: 'sms',
            provider: 'http',
            url: 'http://127.0.0.1:9/sms',
            method: 'POST',
            headers: {},
            content_type: 'json',
            body: {},
            query: {},
            language: 'zh',
            time_zone: 'Asia/Shanghai',
            timeout: 1000,
            max_age: 3_600_000,
          }
        : { id: c.id, type: 'webhook', url: 'http://127.0.0.1:9/hook', headers: {}, timeout: 1000, max_age: 3_600_000 },
    );
    const metrics = new MetricsRegistry();
    const service = new AlertService({
      store: options.wrapStore ? options.wrapStore(store) : store,
      clock: { now: () => Date.now() },
      logger: silentLogger(),
      metrics,
      rules: (id) => RULES[id],
      assets: (id) =>
        id === 'lg-bridge-001'
          ? { id, name: '龙岗河大桥', type: 'bridge', street: '龙城街道' }
          : id === 'bt-slope-002'
            ? { id, name: '坂田边坡', type: 'slope', street: '坂田街道' }
            : undefined,
      units: () => 'µε',
      renderMessage: (template, vars) => (template ?? '{rule_name}').replace(/\{(\w+)\}/g, (m, k: string) => String(vars[k] ?? m)),
      escalations: options.escalations ?? [BRIDGE_DUTY],
      channels: channelConfigs,
      contacts: CONTACTS,
      publicUrl: options.publicUrl ?? 'https://watchpost.example.org',
      publish: (topic, payload) => published.push([topic, payload]),
      writeAlertEvent: (p) => points.push(p),
      createChannel: (config) => channels.get(config.id)!,
      ...(options.retry ? { retry: options.retry } : {}),
      ...(options.ackLinkTtlMs ? { ackLinkTtlMs: options.ackLinkTtlMs } : {}),
      ...options.service,
    });
    Object.assign(h, { store, service, channels, metrics });
    service.start();
  };
  Object.assign(h, {
    dir,
    sent,
    published,
    points,
    take: () =>
      sent
        .splice(0)
        .map((n) => [n.digest ? `digest:${n.digest.map((d) => d.event).join(',')}` : n.event, n.tier, n.channelId, n.recipients.map((r) => r.id)] as [string, number, string, string[]])
        .sort((a, b) => (a[2] < b[2] ? -1 : a[2] > b[2] ? 1 : 0)),
    restart: async () => {
      await h.service.stop();
      h.store.close();
      build();
    },
    close: async () => {
      await h.service.stop();
      h.store.close();
      fs.rmSync(dir, { recursive: true, force: true });
    },
  });
  build();
  return h;
}

/** An alert event body as the contract shows it, for channel and message tests. */
export const SAMPLE_BODY: AlertEventBody = {
  delivery_id: '6f1c2a8e-1b7d-4d0a-9c3e-2f5b8a7d6e41',
  event: 'firing',
  tier: 0,
  to: [],
  alert: {
    id: 'al_0123456789abcdef0123',
    rule_id: 'bridge-strain',
    rule_name: '主梁应变超限',
    level: 'red',
    state: 'firing',
    asset_id: 'lg-bridge-001',
    asset_name: '龙岗河大桥',
    asset_type: 'bridge',
    street: '龙城街道',
    sensor_id: 'strain-01',
    metric: 'strain',
    value: 312.5,
    threshold: 300,
    started_at: '2025-11-28T02:00:00.000Z',
    message: '龙岗河大桥 strain-01 应变 312.5µε，超过红色阈值 300',
    plan: ['通知桥梁养护单位现场核查', '必要时封闭交通'],
    ack_url: 'https://watchpost.example.org/ack/TOKEN',
    case: { status: 'new', department: null, work_order_id: null },
  },
};
