/**
 * `watchpost receive` on a free port: a delivery sent by the platform's own webhook channel
 * (signed with the channel's secret) is printed and answered 200; a forged, a stale and an
 * unsigned one are refused with 401; a repeat is marked.
 */
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { WebhookChannel, signWebhook } from '../alerts/webhook-channel.js';
import type { Notification } from '../alerts/outbox.js';
import { WebhookReceiver } from './receive.js';

const SECRET = 'demo-ops-hook-secret-longgang';
const NOW = Date.UTC(2026, 11, 1, 0, 30, 0);
const TS = String(NOW / 1000);

const BODY = JSON.stringify({
  delivery_id: '7d3c8a9e-1111-4222-8333-944445555666',
  event: 'firing',
  tier: 0,
  to: [{ id: 'longgang-duty-officer', name: '龙岗区应急管理局值班员' }],
  alert: {
    id: 'a1',
    rule_id: 'bridge-strain',
    rule_name: '主梁应变超限',
    level: 'red',
    state: 'firing',
    asset_id: 'lg-bridge-001',
    asset_name: '龙岗大道龙岗河大桥',
    asset_type: 'bridge',
    street: '龙城街道',
    sensor_id: 'strain-01',
    metric: 'strain',
    value: 312.5,
    threshold: 300,
    started_at: '2026-12-01T00:29:50.000Z',
    message: '龙岗大道龙岗河大桥 strain-01 主梁应变 312.5µε，超过红色阈值 300µε',
    plan: ['通知桥梁养护单位现场核查'],
    ack_url: 'http://127.0.0.1:8080/ack/v1~a1~token',
  },
});

const PRINTED = `── 2026-12-01 08:30:00 (UTC+8)  firing · red · 龙岗大道龙岗河大桥 (lg-bridge-001) · tier 0  [signature ok]
   rule:       主梁应变超限
   message:    龙岗大道龙岗河大桥 strain-01 主梁应变 312.5µε，超过红色阈值 300µε
   reading:    strain-01 strain = 312.5 (threshold 300)
   to:         龙岗区应急管理局值班员
   ack_url:    http://127.0.0.1:8080/ack/v1~a1~token
   delivery:   7d3c8a9e-1111-4222-8333-944445555666
`;

describe('watchpost receive', () => {
  let printed: string[];
  let receiver: WebhookReceiver;
  let url: string;

  beforeEach(async () => {
    printed = [];
    receiver = new WebhookReceiver({ port: 0, secret: SECRET, print: (t) => printed.push(t), now: () => NOW });
    url = `http://127.0.0.1:${await receiver.start()}/alerts`;
  });
  afterEach(() => receiver.stop());

  const post = (headers: Record<string, string>, body = BODY) => fetch(url, { method: 'POST', headers: { 'content-type': 'application/json', ...headers }, body });

  it('prints a delivery sent by the webhook channel and answers 200', async () => {
    const channel = new WebhookChannel({ id: 'ops-hook', type: 'webhook', url, secret: SECRET, headers: {}, timeout: 5_000, max_age: 60_000 }, { clock: { now: () => NOW } });
    const outcome = await channel.send({ deliveryId: '7d3c8a9e-1111-4222-8333-944445555666', body: BODY } as Notification, new AbortController().signal);
    expect(outcome).toEqual({ outcome: 'delivered', statusCode: 200 });
    expect(printed).toEqual([PRINTED]);

    // The same delivery again (at-least-once): answered 200, marked as a repeat.
    const again = await post({ 'x-watchpost-timestamp': TS, 'x-watchpost-signature': `sha256=${signWebhook(SECRET, TS, BODY)}` });
    expect(again.status).toBe(200);
    expect(printed[1]).toBe(PRINTED.replace('[signature ok]', '[signature ok; repeat of an earlier delivery]'));
  });

  it('refuses a forged, a changed, a stale and an unsigned delivery with 401', async () => {
    const forged = await post({ 'x-watchpost-timestamp': TS, 'x-watchpost-signature': `sha256=${signWebhook('not-the-secret', TS, BODY)}` });
    expect(forged.status).toBe(401);
    expect(await forged.json()).toEqual({ error: 'bad_signature', message: 'bad signature (wrong secret, or the body was changed)' });

    const changed = await post({ 'x-watchpost-timestamp': TS, 'x-watchpost-signature': `sha256=${signWebhook(SECRET, TS, BODY)}` }, BODY.replace('312.5', '12.5'));
    expect(changed.status).toBe(401);

    const old = String(NOW / 1000 - 301);
    const stale = await post({ 'x-watchpost-timestamp': old, 'x-watchpost-signature': `sha256=${signWebhook(SECRET, old, BODY)}` });
    expect(stale.status).toBe(401);
    expect(await stale.json()).toEqual({ error: 'bad_signature', message: 'timestamp 301 s away from this clock (at most 300 s)' });

    const unsigned = await post({ 'x-watchpost-timestamp': TS });
    expect(unsigned.status).toBe(401);

    expect(printed).toEqual([
      '── 2026-12-01 08:30:00 (UTC+8)  REFUSED POST /alerts: bad signature (wrong secret, or the body was changed) (answered 401)\n',
      '── 2026-12-01 08:30:00 (UTC+8)  REFUSED POST /alerts: bad signature (wrong secret, or the body was changed) (answered 401)\n',
      '── 2026-12-01 08:30:00 (UTC+8)  REFUSED POST /alerts: timestamp 301 s away from this clock (at most 300 s) (answered 401)\n',
      '── 2026-12-01 08:30:00 (UTC+8)  REFUSED POST /alerts: missing X-Watchpost-Signature (answered 401)\n',
    ]);
  });

  it('without a secret prints deliveries and says the signature was not checked', async () => {
    await receiver.stop();
    receiver = new WebhookReceiver({ port: 0, print: (t) => printed.push(t), now: () => NOW });
    url = `http://127.0.0.1:${await receiver.start()}/alerts`;
    const res = await post({});
    expect(res.status).toBe(200);
    expect(printed).toEqual([PRINTED.replace('[signature ok]', '[signature not checked: no --secret]')]);
    expect((await fetch(url)).status).toBe(405);
    expect((await post({}, 'not json')).status).toBe(400);
  });
});
