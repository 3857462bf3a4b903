/**
 * Text with U+0000 is refused by the API with 400 before it reaches the alert store (PostgreSQL
 * text cannot hold it): in a JSON body, a query and a link page's form, and the alert is unchanged.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { containsNul } from './nul-guard.js';
import { baseConfig, DEVICE_SECRET, startPlatform, tempDir, type RunningPlatform } from '../test/support/platform.js';
import { startReceiver, type Receiver } from '../test/support/receiver.js';

describe('containsNul', () => {
  it('finds U+0000 in strings, keys and nested values, and ignores buffers', () => {
    expect(containsNul('a\u0000b')).toBe(true);
    expect(containsNul({ note: ['ok', { deep: 'x\u0000' }] })).toBe(true);
    expect(containsNul({ ['k\u0000']: 1 })).toBe(true);
    expect(containsNul({ note: '已到场', n: 1, b: true, z: null })).toBe(false);
    expect(containsNul(Buffer.from([0, 0, 0]))).toBe(false);
  });
});

describe('the API refuses NUL in text', () => {
  let receiver: Receiver;
  let p: RunningPlatform;

  beforeAll(async () => {
    receiver = await startReceiver();
    p = await startPlatform(baseConfig({ webhookUrl: receiver.url, dataDir: tempDir('nul') }));
  });
  afterAll(async () => {
    await p?.stop();
    await receiver?.close();
  });

  it('answers 400 for a note, a query and a link form holding U+0000, and the alert stays firing', async () => {
    const device = await p.connect('dau-bridge-001', DEVICE_SECRET);
    await device.publishAsync('telemetry/lg-bridge-001/strain-01', JSON.stringify({ ts: Date.now(), values: { strain: 310 } }), { qos: 1 });
    const [firing] = await receiver.waitForRequests(1);
    const alert = (JSON.parse(firing!.body) as { alert: { id: string; ack_url: string } }).alert;

    const ack = await p.api('POST', `/api/v1/alerts/${alert.id}/ack`, { note: 'on\u0000site' });
    expect(ack).toEqual({ status: 400, body: { error: 'bad_request', message: "the request's body contains the NUL character (U+0000), which text may not hold" } });
    const list = await p.api('GET', '/api/v1/alerts?asset_id=a%00b');
    expect(list.status).toBe(400);
    expect(list.body.message).toContain("request's query");
    const form = await fetch(`${p.apiUrl}${new URL(alert.ack_url).pathname}`, { method: 'POST', headers: { 'content-type': 'application/x-www-form-urlencoded' }, body: 'note=a%00b' });
    expect(form.status).toBe(400);

    const after = await p.api('GET', `/api/v1/alerts/${alert.id}`);
    expect(after.status).toBe(200);
    expect(after.body.state).toBe('firing');
    // A clean note still works.
    expect((await p.api('POST', `/api/v1/alerts/${alert.id}/ack`, { note: 'on site' })).status).toBe(200);
  });
});
