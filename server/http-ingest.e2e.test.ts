/**
 * HTTP push against a whole platform: 202 only once the readings are durable (then visible in
 * GET /api/v1/assets), the MQTT rejection reasons with 400/403/413, 401 with WWW-Authenticate,
 * 429 with Retry-After from the device's token bucket, 503 when the spool cannot take readings.
 */
import { connect } from 'node:net';
import fc from 'fast-check';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { params } from '../test/support/property.js';
import { failingFs, type FailingFs } from '../test/support/failing-fs.js';
import { baseConfig, DEVICE_SECRET, OTHER_SECRET, startPlatform, tempDir, VIEWER_TOKEN, type RunningPlatform } from '../test/support/platform.js';

const TS = 1_764_295_200_123;

function basic(user: string, password: string): string {
  return `Basic ${Buffer.from(`${user}:${password}`).toString('base64')}`;
}

/** A clock the test moves: the token buckets refill only when it says so. */
function manualClock(start: number) {
  let now = start;
  return { now: () => now, advance: (ms: number) => void (now += ms) };
}

describe('HTTP push', () => {
  let p: RunningPlatform;
  const clock = manualClock(TS + 60_000);
  const fs: FailingFs = failingFs();

  beforeAll(async () => {
    const config = {
      ...baseConfig({ webhookUrl: 'http://127.0.0.1:9/hook', dataDir: tempDir('http-push') }),
      broker: { host: '127.0.0.1', port: 0, max_payload_bytes: 2048, limits: { exempt: [], max_auth_failures: 5, auth_failure_window: '1d', lockout: '10m' } },
      adapters: [{ type: 'http', path: '/ingest/v1', rate_limit: { requests_per_second: 1, burst: 3 }, idle_timeout: '300ms' }],
    };
    p = await startPlatform(config, { clock, spoolFs: fs });
  });
  afterAll(() => p?.stop());

  /** POST with the bridge device's credentials; the clock moves on a minute first, so its bucket is full. */
  async function post(path: string, body: string, auth = basic('dau-bridge-001', DEVICE_SECRET), refill = true) {
    if (refill) clock.advance(60_000);
    const res = await fetch(`${p.apiUrl}${path}`, { method: 'POST', headers: { authorization: auth, 'content-type': 'application/json' }, body });
    const text = await res.text();
    return { status: res.status, headers: res.headers, body: text ? JSON.parse(text) : undefined };
  }

  it("accepts a reading with 202 once durable, and it is then the asset's latest", async () => {
    const res = await post('/ingest/v1/lg-bridge-001/strain-01', JSON.stringify({ ts: TS, values: { strain: 123.4, temperature: 21.5 } }));
    expect(res.status).toBe(202);
    expect(res.body).toEqual({ accepted: 2, rejected: [] });
    const assets = await p.api('GET', '/api/v1/assets', undefined, VIEWER_TOKEN);
    const bridge = assets.body.assets.find((a: { id: string }) => a.id === 'lg-bridge-001');
    expect(bridge.latest).toEqual([
      { sensor_id: 'strain-01', metric: 'strain', value: 123.4, ts: new Date(TS).toISOString() },
      { sensor_id: 'strain-01', metric: 'temperature', value: 21.5, ts: new Date(TS).toISOString() },
    ]);
  });

  it('stores the good readings of a batch and lists the rejected ones with their MQTT reasons', async () => {
    const batch = [
      { ts: TS + 1, values: { strain: 10 } },
      { ts: TS + 2, values: { strain: 99999 } },
      { ts: TS + 3, values: { humidity: 1 } },
    ];
    const res = await post('/ingest/v1/lg-bridge-001/strain-01', JSON.stringify(batch));
    expect(res.status).toBe(202);
    expect(res.body).toEqual({
      accepted: 1,
      rejected: [
        { index: 1, reason: 'out_of_range', detail: 'strain = 99999 is outside the plausible range [-5000, 5000]' },
        { index: 2, reason: 'unknown_metric', detail: 'metric "humidity" is not configured on sensor "strain-01"' },
      ],
    });
  });

  it('answers 400 with the reason for bad JSON, a bad shape and an unknown sensor', async () => {
    const badJson = await post('/ingest/v1/lg-bridge-001/strain-01', '{"ts": ');
    expect(badJson.status).toBe(400);
    expect(badJson.body.error).toBe('bad_json');
    expect(badJson.body.accepted).toBe(0);
    expect(badJson.body.rejected).toEqual([{ reason: 'bad_json', detail: badJson.body.message }]);
    const badShape = await post('/ingest/v1/lg-bridge-001/strain-01', JSON.stringify(42));
    expect(badShape.status).toBe(400);
    expect(badShape.body).toEqual({
      error: 'bad_shape',
      message: 'a reading must be an object { "ts", "values" }',
      accepted: 0,
      rejected: [{ reason: 'bad_shape', detail: 'a reading must be an object { "ts", "values" }' }],
    });
    const sensor = await post('/ingest/v1/lg-bridge-001/tilt-09', JSON.stringify({ ts: TS, values: { strain: 1 } }));
    expect(sensor.status).toBe(400);
    expect(sensor.body).toEqual({
      error: 'unknown_sensor',
      message: 'sensor "tilt-09" is not configured on asset "lg-bridge-001"',
      accepted: 0,
      rejected: [{ reason: 'unknown_sensor', detail: 'sensor "tilt-09" is not configured on asset "lg-bridge-001"' }],
    });
  });

  it('answers 403 for an asset the device may not publish for', async () => {
    const res = await post('/ingest/v1/bt-slope-002/tilt-01', JSON.stringify({ ts: TS, values: { strain: 1 } }));
    expect(res.status).toBe(403);
    expect(res.body).toEqual({
      error: 'not_allowed',
      message: 'device may not publish for asset "bt-slope-002"',
      accepted: 0,
      rejected: [{ reason: 'not_allowed', detail: 'device may not publish for asset "bt-slope-002"' }],
    });
  });

  it('answers 413 past broker.max_payload_bytes, counted as too_large', async () => {
    const big = JSON.stringify({ ts: TS, values: { strain: 1 }, pad: 'x'.repeat(3000) });
    const res = await post('/ingest/v1/lg-bridge-001/strain-01', big);
    expect(res.status).toBe(413);
    expect(res.body).toEqual({
      error: 'too_large',
      message: `payload is ${big.length} bytes; the limit is 2048`,
      accepted: 0,
      rejected: [{ reason: 'too_large', detail: `payload is ${big.length} bytes; the limit is 2048` }],
    });
    const metrics = await (await fetch(`${p.apiUrl}/metrics`)).text();
    expect(metrics).toMatch(/^watchpost_ingest_rejected_total\{reason="too_large"\} 1$/m);
  });

  it('answers 401 with WWW-Authenticate for a wrong secret, an unknown device and no credentials', async () => {
    for (const auth of [basic('dau-bridge-001', 'wrong-secret-00001'), basic('ghost-device', DEVICE_SECRET), 'Bearer x', '']) {
      const res = await post('/ingest/v1/lg-bridge-001/strain-01', JSON.stringify({ ts: TS, values: { strain: 1 } }), auth);
      expect(res.status, auth).toBe(401);
      expect(res.headers.get('www-authenticate')).toBe('Basic realm="watchpost", charset="UTF-8"');
      expect(res.body).toEqual({ error: 'unauthorized', message: 'HTTP Basic credentials of a device (device id and secret) are required' });
    }
  });

  it('limits each device by its token bucket: 429 with Retry-After, then accepted after the refill', async () => {
    const slope = basic('dau-slope-002', OTHER_SECRET);
    const body = JSON.stringify({ ts: TS, values: { strain: 5 } });
    clock.advance(60_000);
    const statuses: number[] = [];
    for (let i = 0; i < 4; i++) statuses.push((await post('/ingest/v1/bt-slope-002/tilt-01', body, slope, false)).status);
    expect(statuses).toEqual([202, 202, 202, 429]);
    const limited = await post('/ingest/v1/bt-slope-002/tilt-01', body, slope, false);
    expect(limited.status).toBe(429);
    expect(limited.headers.get('retry-after')).toBe('1');
    expect(limited.body).toEqual({ error: 'rate_limited', message: 'too many requests from device dau-slope-002; try again in 1 s' });
    // Another device's bucket is its own.
    expect((await post('/ingest/v1/lg-bridge-001/strain-01', JSON.stringify({ ts: TS + 10, values: { strain: 2 } }), undefined, false)).status).toBe(202);
    clock.advance(1000);
    expect((await post('/ingest/v1/bt-slope-002/tilt-01', body, slope, false)).status).toBe(202);
  });

  it('closes a request whose body stops arriving, and keeps serving others meanwhile', async () => {
    clock.advance(60_000);
    const socket = connect(Number(new URL(p.apiUrl).port), '127.0.0.1');
    const closed = new Promise<number>((resolve) => socket.once('close', () => resolve(performance.now())));
    await new Promise<void>((resolve) => socket.once('connect', () => resolve()));
    const started = performance.now();
    socket.write(
      `POST /ingest/v1/lg-bridge-001/strain-01 HTTP/1.1\r\nHost: x\r\nAuthorization: ${basic('dau-bridge-001', DEVICE_SECRET)}\r\nContent-Type: application/json\r\nContent-Length: 100\r\n\r\n{"ts":`,
    );
    // Another request is answered while that one stalls.
    expect((await post('/ingest/v1/lg-bridge-001/strain-01', JSON.stringify({ ts: TS + 30, values: { strain: 3 } }))).status).toBe(202);
    const end = await closed;
    expect(end - started).toBeGreaterThanOrEqual(250);
    expect(end - started).toBeLessThan(5000);
  });

  it('answers random and mutated bodies with 202, 400 or 413 and a reason, never an error of its own', async () => {
    const valid = JSON.stringify([
      { ts: TS + 5, values: { strain: 12.5, temperature: 3 } },
      { ts: TS + 6, values: { strain: -1 } },
    ]);
    await fc.assert(
      fc.asyncProperty(
        fc.oneof(
          fc.string({ maxLength: 300 }),
          fc.array(fc.tuple(fc.nat(valid.length - 1), fc.string({ minLength: 1, maxLength: 1 })), { minLength: 1, maxLength: 6 }).map((edits) => {
            const chars = [...valid];
            for (const [at, c] of edits) chars[at] = c;
            return chars.join('');
          }),
        ),
        async (body) => {
          const res = await post('/ingest/v1/lg-bridge-001/strain-01', body);
          expect([202, 400, 413]).toContain(res.status);
          expect(typeof res.body.accepted).toBe('number');
          if (res.status !== 202) expect(res.body.rejected[0].reason).toBe(res.body.error);
        },
      ),
      params(60),
    );
  });

  it('answers 503 with Retry-After when the spool cannot take readings, and nothing is stored', async () => {
    fs.failing = true;
    const res = await post('/ingest/v1/lg-bridge-001/strain-01', JSON.stringify({ ts: TS + 20, values: { strain: 77 } }));
    expect(res.status).toBe(503);
    expect(res.headers.get('retry-after')).toBe('5');
    expect(res.body).toEqual({
      error: 'storage_full',
      message: 'storage cannot take readings now; send them again later',
      accepted: 0,
      rejected: [{ reason: 'storage_full', detail: 'storage cannot take readings now; the message is not acknowledged, send it again later' }],
    });
    const assets = await p.api('GET', '/api/v1/assets', undefined, VIEWER_TOKEN);
    const bridge = assets.body.assets.find((a: { id: string }) => a.id === 'lg-bridge-001');
    expect(bridge.latest.find((l: { metric: string }) => l.metric === 'strain').value).toBe(3);
  });

  it('locks an address out after repeated failed logins (broker.limits), even with good credentials', async () => {
    // Four failed logins so far (the 401 test); the fifth locks the address out.
    expect((await post('/ingest/v1/lg-bridge-001/strain-01', '{}', basic('dau-bridge-001', 'guess-00000000005'))).status).toBe(401);
    const res = await post('/ingest/v1/lg-bridge-001/strain-01', JSON.stringify({ ts: TS, values: { strain: 1 } }));
    expect(res.status).toBe(429);
    expect(res.headers.get('retry-after')).toBe('540');
    expect(res.body).toEqual({ error: 'locked_out', message: 'too many failed logins from this address; try again in 540 s' });
  });
});
