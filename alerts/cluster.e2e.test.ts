/**
 * Two alert stages on one shared store (cluster mode), end to end: real webhook receivers on
 * 127.0.0.1 (port 0), the real outbox and timers, two store connections to one location (the
 * backend of test/support/alert-store.ts; SQLite serialises writers, PostgreSQL row locks).
 * Leadership is a flag the test moves; each service asks it through `cluster.isLeader()`.
 */
import fs from 'node:fs';
import { createServer, type Server } from 'node:http';
import os from 'node:os';
import path from 'node:path';
import { afterAll, afterEach, beforeEach, describe, expect, it } from 'vitest';
import { silentLogger } from '../lib/logger.js';
import { MetricsRegistry } from '../lib/metrics.js';
import type { RuleEvent } from '../rules/types.js';
import { AlertService, type AlertServiceOptions, type RuleInfo } from './alert-service.js';
import type { DepartmentConfig, EscalationConfig, WebhookChannelConfig } from './config.js';
import type { AlertEventBody } from './event-body.js';
import type { AlertStore } from './store.js';
import { openAlertStore, releaseAlertStoreBackends } from '../test/support/alert-store.js';

const POLL_MS = 100;

interface Received {
  body: AlertEventBody;
  at: number;
}

interface Receiver {
  url: string;
  requests: Received[];
  /** How long each answer waits (a slow receiver keeps a delivery in flight). */
  delayMs: number;
  close(): Promise<void>;
}

async function startReceiver(): Promise<Receiver> {
  const requests: Received[] = [];
  const r = { delayMs: 0 } as Receiver;
  const server: Server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      requests.push({ body: JSON.parse(Buffer.concat(chunks).toString('utf8')) as AlertEventBody, at: Date.now() });
      setTimeout(() => {
        res.writeHead(200, { 'content-type': 'text/plain' });
        res.end('ok');
      }, r.delayMs);
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as { port: number };
  return Object.assign(r, {
    url: `http://127.0.0.1:${port}/alerts`,
    requests,
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  });
}

async function until(condition: () => boolean, timeoutMs = 10_000, describe = () => 'condition not met'): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!condition()) {
    if (Date.now() > deadline) throw new Error(`timed out: ${describe()}`);
    await new Promise((resolve) => setTimeout(resolve, 10));
  }
}

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

const RULE: RuleInfo = { id: 'bridge-strain', name: '主梁应变超限', message: '{asset_name} 应变 {value}', plan: [], escalation: 'bridge-duty' };

function event(level: RuleEvent['level'], value: number, extra: Partial<RuleEvent> = {}): RuleEvent {
  return { ruleId: 'bridge-strain', assetId: 'lg-bridge-001', sensorId: 'strain-01', metric: 'strain', level, value, threshold: 300, ts: Date.now() - 1000, ...extra };
}

/** Four tiers 400 ms apart, each to the ops webhook. */
const STAIRS: EscalationConfig = {
  id: 'bridge-duty',
  tiers: [0, 400, 800, 1200].map((after) => ({ after, notify: [{ channel: 'ops-hook', to: [] }] })),
};

/** One tier: the notification only. */
const ONCE: EscalationConfig = { id: 'bridge-duty', tiers: [{ after: 0, notify: [{ channel: 'ops-hook', to: [] }] }] };

const DEPARTMENTS: DepartmentConfig[] = [{ id: 'lg-water', name: '龙岗水务集团', kind: 'owner', notify: [{ channel: 'dept-hook', to: [] }] }];

describe('two alert stages on one store', () => {
  let dir: string;
  let ops: Receiver;
  let dept: Receiver;
  let leader: string | undefined;
  const running: Array<{ service: AlertService; store: AlertStore }> = [];

  function webhook(id: string, url: string): WebhookChannelConfig {
    return { id, type: 'webhook', url, headers: {}, timeout: 5000, max_age: 3_600_000 };
  }

  function instance(
    id: string,
    options: { escalation?: EscalationConfig; pollIntervalMs?: number; wrapStore?: (s: AlertStore) => AlertStore; metrics?: MetricsRegistry; isLeader?: () => boolean } = {},
  ): AlertService {
    const store = openAlertStore(dir);
    const config: AlertServiceOptions = {
      store: options.wrapStore ? options.wrapStore(store) : store,
      clock: { now: () => Date.now() },
      logger: silentLogger(),
      metrics: options.metrics ?? new MetricsRegistry(),
      rules: (ruleId) => (ruleId === RULE.id ? RULE : undefined),
      assets: (assetId) => (assetId === 'lg-bridge-001' ? { id: assetId, name: '龙岗河大桥', type: 'bridge', street: '龙城街道' } : undefined),
      units: () => 'µε',
      renderMessage: (template, vars) => (template ?? '').replace(/\{(\w+)\}/g, (m, k: string) => String(vars[k] ?? m)),
      escalations: [options.escalation ?? STAIRS],
      channels: [webhook('ops-hook', ops.url), webhook('dept-hook', dept.url)],
      contacts: [],
      departments: DEPARTMENTS,
      assetDepartments: (assetId) => (assetId === 'lg-bridge-001' ? { owner: 'lg-water' } : undefined),
      publicUrl: 'https://watchpost.example.org',
      publish: () => {},
      writeAlertEvent: () => {},
      retry: { baseDelayMs: 50, maxDelayMs: 200, jitter: 0 },
      cluster: { instanceId: id, isLeader: options.isLeader ?? (() => leader === id), pollIntervalMs: options.pollIntervalMs ?? POLL_MS },
    };
    const service = new AlertService(config);
    running.push({ service, store });
    service.start();
    return service;
  }

  /** Moves leadership; both hear of it at once, as the lease holder's callback would tell them. */
  function lead(id: string | undefined, ...services: AlertService[]): void {
    leader = id;
    for (const s of services) s.leadershipChanged();
  }

  beforeEach(async () => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'watchpost-cluster-alerts-'));
    ops = await startReceiver();
    dept = await startReceiver();
    leader = undefined;
  });

  afterAll(() => releaseAlertStoreBackends());

  afterEach(async () => {
    for (const { service, store } of running.splice(0)) {
      await service.stop();
      store.close();
    }
    await ops.close();
    await dept.close();
    fs.rmSync(dir, { recursive: true, force: true });
  });

  it('escalates an alert opened on A through every tier exactly once while leadership moves from A to B', async () => {
    const metricsA = new MetricsRegistry();
    const metricsB = new MetricsRegistry();
    const a = instance('a', { metrics: metricsA });
    const b = instance('b', { metrics: metricsB });
    lead('a', a, b);
    await a.handle([event('red', 320)]);
    await until(
      () => ops.requests.length >= 2,
      10_000,
      () => `tiers sent: ${ops.requests.length}`,
    );
    lead('b', a, b);
    expect([a.isLeading(), b.isLeading()]).toEqual([false, true]);
    await until(
      () => ops.requests.length >= 4,
      10_000,
      () => `tiers sent: ${ops.requests.length}`,
    );
    // Nothing more comes: no tier twice, no repeat.
    await sleep(800);

    const sent = ops.requests.map((r) => [r.body.event, r.body.tier]);
    expect(sent).toEqual([
      ['firing', 0],
      ['escalated', 1],
      ['escalated', 2],
      ['escalated', 3],
    ]);
    const ids = ops.requests.map((r) => r.body.delivery_id);
    expect(new Set(ids).size).toBe(4);
    const alertId = ops.requests[0]!.body.alert.id;
    for (const service of [a, b]) {
      const detail = service.get(alertId);
      expect(detail.timeline.filter((e) => e.type === 'escalated').map((e) => e.tier)).toEqual([1, 2, 3]);
      expect(detail.timeline.filter((e) => e.type === 'delivered').map((e) => e.delivery_id)).toEqual(ids);
    }
    // Tier 3 came due only after the hand-over: B sent it (and A sent tiers 0 and 1).
    const delivered = async (m: MetricsRegistry) => Number(/watchpost_deliveries_total\{channel="ops-hook",outcome="delivered"\} (\d+)/.exec(await m.render())?.[1] ?? 0);
    const [byA, byB] = [await delivered(metricsA), await delivered(metricsB)];
    expect(byA + byB).toBe(4);
    expect(byA).toBeGreaterThanOrEqual(2);
    expect(byB).toBeGreaterThanOrEqual(1);
  });

  it('polls only the holds and open counts on a follower; the leader also looks at the outbox and due times', async () => {
    const calls = new Map<string, Map<string, number>>();
    const counting = (id: string) => (store: AlertStore) => {
      const mine = new Map<string, number>();
      calls.set(id, mine);
      return new Proxy(store, {
        get(target, prop, receiver) {
          const value = Reflect.get(target, prop, receiver) as unknown;
          if (typeof value !== 'function') return value;
          return (...args: unknown[]) => {
            mine.set(String(prop), (mine.get(String(prop)) ?? 0) + 1);
            return (value as (...x: unknown[]) => unknown).apply(target, args);
          };
        },
      });
    };
    instance('a', { escalation: ONCE, wrapStore: counting('a') });
    instance('b', { escalation: ONCE, wrapStore: counting('b') });
    leader = 'b';
    await sleep(3 * POLL_MS);
    for (const m of calls.values()) m.clear();
    await sleep(5 * POLL_MS);
    expect([...calls.get('a')!.keys()].sort()).toEqual(['flappingKeys', 'openCountsByLevel', 'silencesEndingAfter']);
    expect([...calls.get('b')!.keys()]).toEqual(expect.arrayContaining(['silencesEndingAfter', 'pendingOutboxRows', 'nextScheduleDue', 'nextAckDeadline']));
    expect(calls.get('a')!.get('silencesEndingAfter')).toBeGreaterThanOrEqual(3);
    expect(calls.get('a')!.get('silencesEndingAfter')).toBeLessThanOrEqual(7);
  });

  it('sends rows a follower wrote from the leader within a poll', async () => {
    const a = instance('a', { escalation: ONCE, pollIntervalMs: 1000 });
    const b = instance('b', { escalation: ONCE, pollIntervalMs: 1000 });
    lead('b', a, b);
    const latencies: number[] = [];
    for (let i = 1; i <= 5; i++) {
      await a.handle([event('red', 320, { sensorId: `strain-0${i}` })]);
      const stored = Date.now();
      await until(
        () => ops.requests.length >= i,
        5000,
        () => `sent ${ops.requests.length} of ${i}`,
      );
      latencies.push(ops.requests[i - 1]!.at - stored);
    }
    latencies.sort((x, y) => x - y);
    expect(latencies[2]!).toBeLessThan(1000);
    expect(ops.requests.map((r) => r.body.alert.sensor_id)).toEqual(['strain-01', 'strain-02', 'strain-03', 'strain-04', 'strain-05']);
  });

  it('sends a row that became visible below the highest seq the leader had seen (commit order differs from seq order)', async () => {
    const a = instance('a', { escalation: ONCE });
    const hidden = new Set<string>();
    const b = instance('b', {
      escalation: ONCE,
      wrapStore: (store) =>
        new Proxy(store, {
          get(target, prop, receiver) {
            const value = Reflect.get(target, prop, receiver) as unknown;
            if (prop === 'pendingOutboxRows') return (afterSeq?: number) => target.pendingOutboxRows(afterSeq).filter((r) => !hidden.has(r.deliveryId));
            return typeof value === 'function' ? (value as (...x: unknown[]) => unknown).bind(target) : value;
          },
        }),
    });
    lead('b', a, b);
    // B's first look at the outbox (a microtask of its start) comes first.
    await new Promise((resolve) => setImmediate(resolve));
    // A's first row stays invisible to B until after its second (as when the first transaction
    // commits last); only microtasks run between the commit and hiding it, B's poll is a timer.
    await a.handle([event('red', 320)]);
    const first = a.get(a.list()[0]!.id).timeline.find((e) => e.type === 'queued')!.delivery_id as string;
    hidden.add(first);
    await a.handle([event('red', 320, { sensorId: 'strain-02' })]);
    await until(() => ops.requests.length >= 1);
    await sleep(3 * POLL_MS);
    expect(ops.requests.map((r) => r.body.alert.sensor_id)).toEqual(['strain-02']);
    hidden.clear();
    await until(
      () => ops.requests.length >= 2,
      5000,
      () => 'the row committed late was never sent',
    );
    expect(ops.requests.map((r) => r.body.alert.sensor_id)).toEqual(['strain-02', 'strain-01']);
    expect(ops.requests[1]!.body.delivery_id).toBe(first);
  });

  it('holds an alert handled on A under a silence created on B, and releases it when B ends the silence', async () => {
    const a = instance('a', { escalation: ONCE });
    const b = instance('b', { escalation: ONCE });
    lead('a', a, b);
    const silence = b.createSilence({ matchers: { asset_id: ['lg-bridge-001'] }, ends_at: new Date(Date.now() + 3_600_000).toISOString(), reason: '检修' }, 'ops');
    // Within a poll A holds it too.
    await sleep(3 * POLL_MS);
    await a.handle([event('red', 320)]);
    const alertId = a.list()[0]!.id;
    await sleep(5 * POLL_MS);
    expect(ops.requests).toEqual([]);
    expect(a.get(alertId).timeline.find((e) => e.type === 'held')).toMatchObject({ reason: 'silence', notice: 'firing', silence_ids: [silence.id] });

    b.deleteSilence(silence.id, 'ops');
    await until(
      () => ops.requests.length >= 1,
      5000,
      () => 'the held notification was not released',
    );
    await sleep(5 * POLL_MS);
    expect(ops.requests.map((r) => [r.body.event, r.body.tier, r.body.alert.id])).toEqual([['firing', 0, alertId]]);
  });

  it('acknowledges through a link minted on A when it is used on B, and takes a work-order link of A on B', async () => {
    const a = instance('a', { escalation: ONCE });
    const b = instance('b', { escalation: ONCE });
    lead('a', a, b);
    await a.handle([event('red', 320)]);
    await until(() => ops.requests.length >= 1);
    const token = ops.requests[0]!.body.alert.ack_url.split('/ack/')[1]!;
    expect(b.ackLink(token)).toMatchObject({ kind: 'valid' });
    expect(b.acknowledgeByLink(token, '已到场')).toMatchObject({ kind: 'acknowledged', already: false });
    const alertId = ops.requests[0]!.body.alert.id;
    expect(a.get(alertId).state).toBe('acknowledged');
    expect(a.acknowledgeByLink(token)).toMatchObject({ kind: 'used' });
    await until(() => ops.requests.length >= 2);
    expect(ops.requests[1]!.body).toMatchObject({ event: 'acknowledged', alert: { id: alertId, state: 'acknowledged' } });

    const { work_order: order } = a.dispatch(alertId, { by: 'duty-officer', department: 'lg-water' });
    await until(() => dept.requests.length >= 1);
    const url = dept.requests[0]!.body.work_order!.url;
    const woToken = url.split('/wo/')[1]!;
    expect(b.workOrderLink(woToken)).toMatchObject({ kind: 'valid', order: { id: order.id } });
    expect(b.actOnWorkOrder(woToken, 'arrive', '到场')).toMatchObject({ kind: 'done', action: 'arrive', order: { id: order.id, status: 'on_site' } });
    expect(a.workOrders()[0]).toMatchObject({ id: order.id, status: 'on_site' });
  });

  it('never sends a row twice at once when both instances believe they lead', async () => {
    const both: EscalationConfig = {
      id: 'bridge-duty',
      tiers: [
        { after: 0, notify: [{ channel: 'ops-hook', to: [] }] },
        { after: 300, notify: [{ channel: 'ops-hook', to: [] }] },
      ],
    };
    ops.delayMs = 400;
    // Each believes it leads (a lease hand-over seen late by the old leader).
    const a = instance('a', { escalation: both, pollIntervalMs: 50, isLeader: () => true });
    const b = instance('b', { escalation: both, pollIntervalMs: 50, isLeader: () => true });
    await a.handle([event('red', 320)]);
    await b.handle([event('red', 320, { sensorId: 'strain-02' })]);
    await until(
      () => ops.requests.length >= 4,
      10_000,
      () => `sent ${ops.requests.length}`,
    );
    await sleep(1500);
    const ids = ops.requests.map((r) => r.body.delivery_id);
    expect(ids.length).toBe(4);
    expect(new Set(ids).size).toBe(4);
    expect(ops.requests.map((r) => `${r.body.alert.sensor_id}:${r.body.event}:${r.body.tier}`).sort()).toEqual([
      'strain-01:escalated:1',
      'strain-01:firing:0',
      'strain-02:escalated:1',
      'strain-02:firing:0',
    ]);
  });

  it('lets a delivery in flight finish and be recorded when the leader stops, so the next leader does not send it again', async () => {
    ops.delayMs = 300;
    const a = instance('a', { escalation: ONCE });
    const b = instance('b', { escalation: ONCE });
    lead('a', a, b);
    await a.handle([event('red', 320)]);
    await until(() => ops.requests.length >= 1);
    const stopping = running.findIndex((r) => r.service === a);
    const { store } = running.splice(stopping, 1)[0]!;
    await a.stop();
    store.close();
    lead('b', b);
    await sleep(5 * POLL_MS);
    expect(ops.requests).toHaveLength(1);
    const id = ops.requests[0]!.body.alert.id;
    expect(
      b
        .get(id)
        .timeline.filter((e) => e.kind === 'delivery')
        .map((e) => e.type),
    ).toEqual(['queued', 'delivered']);
  });

  it('applies an event to the alert another instance opened first instead of losing it (the one-open-alert race)', async () => {
    const a = instance('a');
    // B's first look finds nothing open, as a transaction that started before A's commit would.
    let stale = 1;
    const b = instance('b', {
      wrapStore: (store) =>
        new Proxy(store, {
          get(target, prop, receiver) {
            const value = Reflect.get(target, prop, receiver) as unknown;
            if (prop === 'findOpenAlert') return (...args: Parameters<AlertStore['findOpenAlert']>) => (stale-- > 0 ? undefined : target.findOpenAlert(...args));
            return typeof value === 'function' ? (value as (...x: unknown[]) => unknown).bind(target) : value;
          },
        }),
    });
    lead('a', a, b);
    await Promise.all([a.handle([event('orange', 310)]), b.handle([event('red', 330)])]);
    expect(stale).toBeLessThan(0);
    const open = b.openAlerts();
    expect(open).toHaveLength(1);
    expect(open[0]).toMatchObject({ level: 'red', value: 330 });
    expect(
      a
        .get(open[0]!.id)
        .timeline.filter((e) => e.kind === 'event')
        .map((e) => [e.type, e.level]),
    ).toEqual([
      ['firing', 'orange'],
      ['level_raised', 'red'],
    ]);

    // The same race at the level the alert has: ignored, not a second alert.
    stale = 1;
    await b.handle([event('red', 331)]);
    expect(b.openAlerts()).toHaveLength(1);
    expect(a.get(open[0]!.id).timeline.filter((e) => e.kind === 'event')).toHaveLength(2);
  });
});
