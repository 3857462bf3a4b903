/**
 * The webhook channel end to end: a real HTTP receiver on 127.0.0.1 (port 0) that records every
 * request, the real outbox, SQLite in a temporary data dir, real timers.
 */
import { createHmac } from 'node:crypto';
import fs from 'node:fs';
import { createServer, type IncomingHttpHeaders, type Server, type ServerResponse } from 'node:http';
import os from 'node:os';
import path from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { silentLogger } from '../lib/logger.js';
import { MetricsRegistry } from '../lib/metrics.js';
import type { AlertEventPoint } from '../ingest/storage.js';
import type { RuleEvent } from '../rules/types.js';
import { AlertService, type RuleInfo } from './alert-service.js';
import type { AlertStore } from './store.js';
import type { EscalationConfig, WebhookChannelConfig } from './config.js';
import type { RetryOptions } from './outbox.js';
import { openAlertStore } from '../test/support/alert-store.js';

const MIN = 60_000;
const SECRET = 'ops-hook-secret';
const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/;

interface Received {
  headers: IncomingHttpHeaders;
  body: string;
  at: number;
}

type Answer = { status: number; headers?: Record<string, string> } | 'hang';

interface Receiver {
  url: string;
  requests: Received[];
  /** Answers in order; 200 once they run out. */
  answers: Answer[];
  waitFor(n: number, timeoutMs?: number): Promise<void>;
  close(): Promise<void>;
}

async function startReceiver(): Promise<Receiver> {
  const requests: Received[] = [];
  const answers: Answer[] = [];
  const hanging: ServerResponse[] = [];
  const server: Server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      requests.push({ headers: req.headers, body: Buffer.concat(chunks).toString('utf8'), at: Date.now() });
      const answer = answers.shift() ?? { status: 200 };
      if (answer === 'hang') {
        hanging.push(res);
        return;
      }
      res.writeHead(answer.status, { 'content-type': 'text/plain', ...answer.headers });
      res.end(answer.status < 300 ? 'ok' : 'nope');
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as { port: number };
  return {
    url: `http://127.0.0.1:${port}/alerts`,
    requests,
    answers,
    waitFor: (n, timeoutMs = 10_000) =>
      until(
        () => requests.length >= n,
        timeoutMs,
        () => `expected ${n} requests, got ${requests.length}`,
      ),
    close: () =>
      new Promise<void>((resolve) => {
        for (const res of hanging) res.destroy();
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}

async function until(condition: () => boolean, timeoutMs = 10_000, describe = () => 'condition not met'): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!condition()) {
    if (Date.now() > deadline) throw new Error(`timed out: ${describe()}`);
    await new Promise((resolve) => setTimeout(resolve, 10));
  }
}

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

const RULE: RuleInfo = {
  id: 'bridge-strain',
  name: '主梁应变超限',
  message: '{asset_name} {sensor_id} 应变 {value}{unit}，超过{level_name}阈值 {threshold}',
  plan: ['通知桥梁养护单位现场核查', '必要时封闭交通'],
  escalation: 'bridge-duty',
};

function redEvent(): RuleEvent {
  return { ruleId: 'bridge-strain', assetId: 'lg-bridge-001', sensorId: 'strain-01', metric: 'strain', level: 'red', value: 312.5, threshold: 300, ts: Date.now() - 2000 };
}

describe('webhook delivery end to end', () => {
  let dir: string;
  let hook: Receiver;
  let audit: Receiver;
  let store: AlertStore;
  let service: AlertService;
  let metrics: MetricsRegistry;
  let points: AlertEventPoint[];
  /** Added to the real time: lets a test jump the platform clock forward across a restart. */
  let offset: number;
  const stores: AlertStore[] = [];
  const services: AlertService[] = [];

  function webhook(id: string, url: string, extra: Partial<WebhookChannelConfig> = {}): WebhookChannelConfig {
    return { id, type: 'webhook', url, headers: {}, timeout: 2000, max_attempts: 3, max_age: 3_600_000, ...extra };
  }

  function build(escalation: EscalationConfig, retry: Partial<RetryOptions> = {}): AlertService {
    store = openAlertStore(dir);
    metrics = new MetricsRegistry();
    service = new AlertService({
      store,
      clock: { now: () => Date.now() + offset },
      logger: silentLogger(),
      metrics,
      rules: (id) => (id === RULE.id ? RULE : undefined),
      assets: (id) => (id === 'lg-bridge-001' ? { id, name: '龙岗河大桥', type: 'bridge', street: '龙城街道' } : undefined),
      units: () => 'µε',
      renderMessage: (template, vars) => (template ?? '').replace(/\{(\w+)\}/g, (m, k: string) => String(vars[k] ?? m)),
      escalations: [escalation],
      channels: [webhook('ops-hook', hook.url, { secret: SECRET, headers: { 'X-Tenant': 'longgang' } }), webhook('audit-hook', audit.url)],
      contacts: [],
      publicUrl: 'https://watchpost.example.org',
      publish: () => {},
      writeAlertEvent: (p) => points.push(p),
      retry: { baseDelayMs: 50, maxDelayMs: 200, jitter: 0, ...retry },
    });
    stores.push(store);
    services.push(service);
    return service;
  }

  const opsOnly: EscalationConfig = { id: 'bridge-duty', tiers: [{ after: 0, notify: [{ channel: 'ops-hook', to: [] }] }] };

  beforeEach(async () => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'watchpost-webhook-'));
    hook = await startReceiver();
    audit = await startReceiver();
    points = [];
    offset = 0;
  });

  afterEach(async () => {
    for (const s of services.splice(0)) await s.stop();
    for (const s of stores.splice(0)) s.close();
    await hook.close();
    await audit.close();
    fs.rmSync(dir, { recursive: true, force: true });
  });

  it('POSTs exactly the contract body with delivery, timestamp, signature and extra headers', async () => {
    build(opsOnly).start();
    const before = Math.floor(Date.now() / 1000);
    void service.handle([redEvent()]);
    await hook.waitFor(1);
    const after = Math.floor(Date.now() / 1000);
    const [req] = hook.requests;
    const alert = service.list()[0]!;
    const deliveryId = req!.headers['x-watchpost-delivery'] as string;
    expect(deliveryId).toMatch(UUID);
    const ackUrl = (JSON.parse(req!.body) as { alert: { ack_url: string } }).alert.ack_url;
    expect(req!.body).toBe(
      JSON.stringify({
        delivery_id: deliveryId,
        event: 'firing',
        tier: 0,
        to: [],
        alert: {
          id: alert.id,
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
          started_at: alert.started_at,
          message: '龙岗河大桥 strain-01 应变 312.5µε，超过红色阈值 300',
          plan: ['通知桥梁养护单位现场核查', '必要时封闭交通'],
          ack_url: ackUrl,
          case: { status: 'new', department: null, work_order_id: null },
        },
      }),
    );
    // Each notification carries its own signed, single-use acknowledgement link.
    expect(ackUrl).toMatch(new RegExp(`^https://watchpost\\.example\\.org/ack/v1~${alert.id}~[0-9a-z]+~[A-Za-z0-9_-]{16}~zh~ops-hook~-~[A-Za-z0-9_-]{22}$`));
    expect(alert.ack_url).toBe(`https://watchpost.example.org/api/v1/alerts/${alert.id}`);
    expect(alert.started_at).toMatch(/^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$/);
    expect(alert.id).toMatch(/^al_[0-9a-f]{20}$/);
    const timestamp = req!.headers['x-watchpost-timestamp'] as string;
    expect(timestamp).toMatch(/^\d+$/);
    expect(Number(timestamp)).toBeGreaterThanOrEqual(before);
    expect(Number(timestamp)).toBeLessThanOrEqual(after);
    expect(req!.headers['content-type']).toBe('application/json');
    expect(req!.headers['x-tenant']).toBe('longgang');
    const expected = createHmac('sha256', SECRET).update(`${timestamp}.${req!.body}`).digest('hex');
    expect(req!.headers['x-watchpost-signature']).toBe(`sha256=${expected}`);
    await until(() => service.get(alert.id).timeline.some((e) => e.type === 'delivered'));
    expect(await metrics.render()).toContain('watchpost_deliveries_total{channel="ops-hook",outcome="delivered"} 1');
  });

  it('retries a 503 under the same delivery_id with the same bytes, then records the delivery', async () => {
    hook.answers.push({ status: 503 });
    build(opsOnly).start();
    void service.handle([redEvent()]);
    await hook.waitFor(2);
    const [first, second] = hook.requests;
    expect(second!.headers['x-watchpost-delivery']).toBe(first!.headers['x-watchpost-delivery']);
    expect(second!.body).toBe(first!.body);
    const id = service.list()[0]!.id;
    await until(() => service.get(id).timeline.some((e) => e.type === 'delivered'));
    const deliveryId = first!.headers['x-watchpost-delivery'];
    const deliveries = service
      .get(id)
      .timeline.filter((e) => e.kind === 'delivery')
      .map(({ seq: _seq, at: _at, next_attempt_at: _next, ...rest }) => rest);
    expect(deliveries).toEqual([
      { kind: 'delivery', type: 'queued', level: 'red', state: 'firing', tier: 0, channel: 'ops-hook', delivery_id: deliveryId, event: 'firing', recipients: [] },
      { kind: 'delivery', type: 'retry', tier: 0, channel: 'ops-hook', delivery_id: deliveryId, event: 'firing', attempt: 1, status_code: 503, error: 'HTTP 503: nope' },
      { kind: 'delivery', type: 'delivered', tier: 0, channel: 'ops-hook', delivery_id: deliveryId, event: 'firing', attempt: 2, status_code: 200 },
    ]);
    expect(await metrics.render()).toContain('watchpost_deliveries_total{channel="ops-hook",outcome="retry"} 1');
    expect(await metrics.render()).toContain('watchpost_deliveries_total{channel="ops-hook",outcome="delivered"} 1');
  });

  it("keeps an alert's notifications to one receiver in order while an earlier one is retried", async () => {
    hook.answers.push({ status: 503 });
    build(opsOnly).start();
    void service.handle([redEvent()]);
    service.resolve(service.list()[0]!.id, { by: 'duty-officer' });
    await hook.waitFor(3);
    await sleep(200);
    const seen = hook.requests.map((r) => [(JSON.parse(r.body) as { event: string }).event, r.headers['x-watchpost-delivery']]);
    expect(seen.map(([event]) => event)).toEqual(['firing', 'firing', 'resolved']);
    expect(seen[1]![1]).toBe(seen[0]![1]);
    expect(seen[2]![1]).not.toBe(seen[0]![1]);
    expect((JSON.parse(hook.requests[2]!.body) as { alert: { state: string } }).alert.state).toBe('resolved');
  });

  it('honours Retry-After on 429', async () => {
    hook.answers.push({ status: 429, headers: { 'Retry-After': '1' } });
    build(opsOnly).start();
    void service.handle([redEvent()]);
    await hook.waitFor(2);
    const [first, second] = hook.requests;
    // The backoff alone would wait 50 ms.
    expect(second!.at - first!.at).toBeGreaterThanOrEqual(950);
    expect(second!.headers['x-watchpost-delivery']).toBe(first!.headers['x-watchpost-delivery']);
  });

  it('fails a 400 for good, once, and records it on the alert', async () => {
    hook.answers.push({ status: 400 });
    build(opsOnly).start();
    void service.handle([redEvent()]);
    await hook.waitFor(1);
    const id = service.list().find((a) => a.rule_id === 'bridge-strain')!.id;
    await until(() => service.get(id).timeline.some((e) => e.type === 'delivery_failed'));
    await sleep(300);
    expect(hook.requests.length).toBe(1);
    const failed = service.get(id).timeline.find((e) => e.type === 'delivery_failed')!;
    expect(failed).toMatchObject({
      kind: 'delivery',
      channel: 'ops-hook',
      delivery_id: hook.requests[0]!.headers['x-watchpost-delivery'],
      attempt: 1,
      status_code: 400,
      error: 'HTTP 400: nope',
      event: 'firing',
    });
    expect(await metrics.render()).toContain('watchpost_deliveries_total{channel="ops-hook",outcome="failed"} 1');
    // A delivery_failed alert for (asset, channel); without a `fallback` escalation it is recorded, not notified.
    const df = service.list().find((a) => a.rule_id === 'delivery_failed')!;
    expect(df).toMatchObject({ asset_id: 'lg-bridge-001', sensor_id: 'ops-hook', metric: 'delivery', level: 'red', state: 'firing', escalation: null, rule_name: '通知投递失败' });
    expect(df.message).toBe('通知渠道 ops-hook 投递失败：龙岗河大桥「主梁应变超限」红色预警的告警通知未送达（HTTP 400: nope）');
    expect(points.map((p) => p.event)).toEqual(['firing', 'delivery_failed', 'firing']);
  });

  it('gives up on network errors after max_attempts', async () => {
    const closed = await startReceiver();
    const deadUrl = closed.url;
    await closed.close();
    const escalation: EscalationConfig = { id: 'bridge-duty', tiers: [{ after: 0, notify: [{ channel: 'dead-hook', to: [] }] }] };
    store = openAlertStore(dir);
    metrics = new MetricsRegistry();
    service = new AlertService({
      store,
      clock: { now: () => Date.now() },
      logger: silentLogger(),
      metrics,
      rules: () => RULE,
      assets: () => undefined,
      units: () => '',
      renderMessage: () => 'm',
      escalations: [escalation],
      channels: [webhook('dead-hook', deadUrl)],
      contacts: [],
      publicUrl: 'http://localhost:8080',
      publish: () => {},
      writeAlertEvent: () => {},
      retry: { baseDelayMs: 20, maxDelayMs: 50, jitter: 0 },
    });
    stores.push(store);
    services.push(service);
    service.start();
    void service.handle([redEvent()]);
    const id = service.list()[0]!.id;
    await until(() => service.get(id).timeline.some((e) => e.type === 'delivery_failed'));
    const outcomes = service
      .get(id)
      .timeline.filter((e) => e.kind === 'delivery')
      .map((e) => [e.type, e.attempt ?? null]);
    expect(outcomes).toEqual([
      ['queued', null],
      ['retry', 1],
      ['retry', 2],
      ['delivery_failed', 3],
    ]);
    expect(String(service.get(id).timeline.at(-1)!.error)).toMatch(/ECONNREFUSED.*\(gave up after 3 attempts\)$/);
    expect(service.get(id)).toMatchObject({ asset_name: 'lg-bridge-001', asset_type: '', street: '' });
  });

  it('after a restart resumes a pending delivery under its delivery_id, does not fire again and skips no tier', async () => {
    const escalation: EscalationConfig = {
      id: 'bridge-duty',
      tiers: [
        { after: 0, notify: [{ channel: 'ops-hook', to: [] }] },
        { after: 10 * MIN, notify: [{ channel: 'audit-hook', to: [] }] },
      ],
    };
    // The first attempt reaches the receiver, but the platform stops before it hears back:
    // the delivery was made and never recorded, as in a crash between sending and recording.
    hook.answers.push('hang');
    build(escalation).start();
    void service.handle([redEvent()]);
    await hook.waitFor(1);
    const alertId = service.list()[0]!.id;
    await service.stop();
    store.close();

    // Down for 11 minutes: tier 1 (10m) came due meanwhile.
    offset += 11 * MIN;
    build(escalation);
    // The rules stage restarted too and reports the same level again.
    void service.handle([redEvent()]);
    service.start();
    await hook.waitFor(2);
    await audit.waitFor(1);
    await sleep(300);
    expect(hook.requests.length).toBe(2);
    expect(audit.requests.length).toBe(1);
    expect(hook.requests[1]!.headers['x-watchpost-delivery']).toBe(hook.requests[0]!.headers['x-watchpost-delivery']);
    expect(hook.requests[1]!.body).toBe(hook.requests[0]!.body);
    const escalated = JSON.parse(audit.requests[0]!.body) as { delivery_id: string; event: string; tier: number; alert: { id: string; state: string } };
    expect(escalated).toMatchObject({ event: 'escalated', tier: 1, alert: { id: alertId, state: 'firing' } });
    expect(audit.requests[0]!.headers['x-watchpost-delivery']).toBe(escalated.delivery_id);
    expect(audit.requests[0]!.headers['x-watchpost-signature']).toBeUndefined();

    // A third start over the same data sends nothing again.
    await service.stop();
    store.close();
    build(escalation).start();
    await sleep(300);
    expect(hook.requests.length).toBe(2);
    expect(audit.requests.length).toBe(1);
    expect(service.list().map((a) => [a.id, a.state, a.tier])).toEqual([[alertId, 'firing', 1]]);
    const timeline = service.get(alertId).timeline.map((e) => [e.kind, e.type, e.channel ?? null, e.attempt ?? null]);
    expect(timeline.slice(0, 4)).toEqual([
      ['event', 'firing', null, null],
      ['delivery', 'queued', 'ops-hook', null],
      ['event', 'escalated', null, null],
      ['delivery', 'queued', 'audit-hook', null],
    ]);
    // The two receivers answer in either order.
    expect(timeline.slice(4).sort()).toEqual([
      ['delivery', 'delivered', 'audit-hook', 1],
      ['delivery', 'delivered', 'ops-hook', 1],
    ]);
  });
});
