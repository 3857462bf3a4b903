/**
 * The exact HTTP requests both InfluxDB writers send, and how they answer each kind of
 * response, against a scripted HTTP server on a free port.
 */
import { createServer, type IncomingHttpHeaders, type Server } from 'node:http';
import { gunzipSync } from 'node:zlib';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { silentLogger } from '../lib/logger.js';
import { MetricsRegistry } from '../lib/metrics.js';
import { influxSchema } from './config.js';
import { createInfluxWriter, joinLines, type InfluxWriter } from './influx-writer.js';
import type { Reading } from './reading.js';
import type { AlertEventPoint } from './storage.js';

interface Captured {
  method: string;
  url: string;
  headers: IncomingHttpHeaders;
  body: string;
}

interface Scripted {
  status: number;
  body?: string;
  headers?: Record<string, string>;
  delayMs?: number;
}

const T0 = 1764295200123;

function reading(over: Partial<Reading> = {}): Reading {
  return {
    assetId: 'lg-bridge-001',
    sensorId: 'strain-01',
    assetType: 'bridge',
    street: '龙城街道',
    metric: 'strain',
    value: 123.4,
    ts: T0,
    ...over,
  };
}

const line = (value: number, ts: number) =>
  `strain,asset_id=lg-bridge-001,asset_type=bridge,sensor_id=strain-01,street=龙城街道 value=${value} ${ts}`;

const event: AlertEventPoint = {
  ruleId: 'bridge-strain',
  assetId: 'lg-bridge-001',
  level: 'red',
  event: 'firing',
  alertId: 'alert-0001',
  value: 312.5,
  message: 'strain 312.5 > 300',
  ts: T0 + 500,
};
const eventLine =
  'alert_events,asset_id=lg-bridge-001,event=firing,level=red,rule_id=bridge-strain ' +
  'alert_id="alert-0001",value=312.5,message="strain 312.5 > 300" 1764295200623';

describe('InfluxDB writers on the wire', () => {
  let server: Server;
  let baseUrl: string;
  const requests: Captured[] = [];
  const script: Scripted[] = [];
  const writers: InfluxWriter[] = [];

  beforeAll(async () => {
    server = createServer((req, res) => {
      const chunks: Buffer[] = [];
      req.on('data', (c: Buffer) => chunks.push(c));
      req.on('end', () => {
        const raw = Buffer.concat(chunks);
        const body = (req.headers['content-encoding'] === 'gzip' ? gunzipSync(raw) : raw).toString('utf8');
        requests.push({ method: req.method!, url: req.url!, headers: req.headers, body });
        const answer = script.shift() ?? { status: 204 };
        setTimeout(() => {
          res.writeHead(answer.status, { 'content-type': 'application/json', ...answer.headers });
          res.end(answer.body ?? '');
        }, answer.delayMs ?? 0);
      });
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    baseUrl = `http://127.0.0.1:${(server.address() as { port: number }).port}`;
  });
  afterEach(async () => {
    await Promise.all(writers.splice(0).map((w) => w.stop()));
    requests.length = 0;
    script.length = 0;
  });
  afterAll(async () => {
    server.closeAllConnections();
    await new Promise((resolve) => server.close(resolve));
  });

  async function start(config: Record<string, unknown>, metrics = new MetricsRegistry()): Promise<InfluxWriter> {
    const writer = createInfluxWriter(
      influxSchema.parse({ url: baseUrl, ...config }),
      { logger: silentLogger(), metrics, random: () => 0.5 },
      { flushInterval: 60_000, minRetryDelay: 20, maxRetryDelay: 100 },
    );
    writers.push(writer);
    await writer.start();
    return writer;
  }

  const count = (metrics: MetricsRegistry, name: string, labels?: Record<string, string>) =>
    metrics.counter(`watchpost_storage_${name}_total`, '').get(labels);

  it('v1 posts our lines to /write with db, rp, ms precision and basic auth, batch_size lines at a time', async () => {
    const writer = await start({
      url: `${baseUrl}/`,
      version: 1,
      database: 'telemetry',
      retention_policy: 'autogen',
      username: 'watchpost',
      password: 's3cret',
      batch_size: 2,
    });
    await writer.writeReadings([reading(), reading({ value: 124, ts: T0 + 1 }), reading({ value: 125, ts: T0 + 2 })]);
    writer.writeAlertEvent(event);
    await expect.poll(() => writer.status().pending).toBe(4);
    await writer.flush();

    expect(requests.map((r) => [r.method, r.url, r.headers.authorization, r.headers['content-type'], r.body])).toEqual([
      [
        'POST',
        '/write?db=telemetry&precision=ms&rp=autogen',
        `Basic ${Buffer.from('watchpost:s3cret').toString('base64')}`,
        'text/plain; charset=utf-8',
        `${line(123.4, T0)}\n${line(124, T0 + 1)}`,
      ],
      [
        'POST',
        '/write?db=telemetry&precision=ms&rp=autogen',
        `Basic ${Buffer.from('watchpost:s3cret').toString('base64')}`,
        'text/plain; charset=utf-8',
        `${line(125, T0 + 2)}\n${eventLine}`,
      ],
    ]);
  });

  it('v2 posts exactly our lines to /api/v2/write with org, bucket, ms precision and the token', async () => {
    const writer = await start({ version: 2, org: 'longgang', bucket: 'telemetry', token: 'test-token', batch_size: 3 });
    await writer.writeReadings([reading(), reading({ value: 124, ts: T0 + 1 })]);
    writer.writeAlertEvent(event);
    await expect.poll(() => writer.status().pending).toBe(3);
    await writer.flush();
    await writer.writeReadings([reading({ value: 125, ts: T0 + 2 })]);
    await writer.flush();

    expect(requests.map((r) => [r.method, r.url, r.headers.authorization, r.body])).toEqual([
      [
        'POST',
        '/api/v2/write?org=longgang&bucket=telemetry&precision=ms',
        'Token test-token',
        `${line(123.4, T0)}\n${line(124, T0 + 1)}\n${eventLine}`,
      ],
      ['POST', '/api/v2/write?org=longgang&bucket=telemetry&precision=ms', 'Token test-token', line(125, T0 + 2)],
    ]);
  });

  for (const version of [1, 2] as const) {
    const config =
      version === 1 ? { version, database: 'telemetry' } : { version, org: 'longgang', bucket: 'telemetry', token: 't' };

    it(`v${version} retries the same batch, unchanged and first, after 500, 503, 429 and 408`, async () => {
      const metrics = new MetricsRegistry();
      script.push(
        { status: 500, body: '{"error":"engine: cache maximum memory size exceeded"}' },
        { status: 503, body: '' },
        { status: 429, body: '{"code":"too many requests","message":"slow down"}', headers: { 'retry-after': '0' } },
        { status: 408, body: '' },
      );
      const writer = await start(config, metrics);
      await writer.writeReadings([reading(), reading({ value: 124, ts: T0 + 1 })]);
      await writer.flush();
      expect(writer.status()).toMatchObject({ state: 'degraded', pending: 2 });
      await writer.writeReadings([reading({ value: 125, ts: T0 + 2 })]);
      await expect.poll(() => writer.status().pending, { timeout: 5000 }).toBe(0);

      const bodies = requests.map((r) => r.body);
      const first = `${line(123.4, T0)}\n${line(124, T0 + 1)}`;
      // The batch failed alone; the third point joined the queue behind it and went with its retry.
      expect(bodies[0]).toBe(first);
      expect(bodies.slice(1)).toEqual(Array(4).fill(`${first}\n${line(125, T0 + 2)}`));
      expect(count(metrics, 'retries')).toBe(4);
      expect(count(metrics, 'written')).toBe(3);
      expect(writer.status()).toMatchObject({ state: 'ok', pending: 0, accepting: true });
      expect(writer.status().reason).toBeUndefined();
    });

    it(`v${version} drops a batch refused with another 4xx, logs the server message and moves on`, async () => {
      const metrics = new MetricsRegistry();
      script.push({ status: 401, body: '{"code":"unauthorized","message":"unauthorized access"}' });
      const writer = await start(config, metrics);
      await writer.writeReadings([reading(), reading({ ts: T0 + 1 })]);
      await writer.flush();
      expect(writer.status()).toMatchObject({
        state: 'ok',
        pending: 0,
        accepting: true,
        lastError: 'HTTP 401: unauthorized access',
      });
      await writer.writeReadings([reading({ ts: T0 + 2 })]);
      await writer.flush();
      expect(requests).toHaveLength(2);
      expect(count(metrics, 'failed', { reason: 'rejected' })).toBe(2);
      expect(count(metrics, 'retries')).toBe(0);
      expect(count(metrics, 'written')).toBe(1);
    });
  }

  it('retries a request that times out', async () => {
    const metrics = new MetricsRegistry();
    script.push({ status: 204, delayMs: 1500 });
    const writer = await start({ version: 1, database: 'telemetry', timeout: '300ms' }, metrics);
    await writer.writeReadings([reading()]);
    await writer.flush();
    expect(writer.status()).toMatchObject({ state: 'degraded', pending: 1, lastError: 'request timed out' });
    await expect.poll(() => writer.status().pending, { timeout: 5000 }).toBe(0);
    expect(requests.map((r) => r.body)).toEqual([line(123.4, T0), line(123.4, T0)]);
    expect(count(metrics, 'retries')).toBe(1);
  });

  it('splits a batch the server finds too large (413) and sends the same points in halves', async () => {
    const metrics = new MetricsRegistry();
    script.push({ status: 413, body: '{"error":"Request Entity Too Large"}' });
    const writer = await start({ version: 1, database: 'telemetry' }, metrics);
    await writer.writeReadings([1, 2, 3, 4].map((v) => reading({ value: v, ts: T0 + v })));
    await writer.flush();
    expect(requests.map((r) => r.body)).toEqual([
      [1, 2, 3, 4].map((v) => line(v, T0 + v)).join('\n'),
      [1, 2].map((v) => line(v, T0 + v)).join('\n'),
      [3, 4].map((v) => line(v, T0 + v)).join('\n'),
    ]);
    expect(count(metrics, 'written')).toBe(4);
    expect(count(metrics, 'failed', { reason: 'rejected' })).toBe(0);
  });

  it('keeps retrying while the backend is unreachable and reports degraded', async () => {
    const metrics = new MetricsRegistry();
    const probe = createServer();
    await new Promise<void>((resolve) => probe.listen(0, '127.0.0.1', resolve));
    const closedPort = (probe.address() as { port: number }).port;
    await new Promise((resolve) => probe.close(resolve));

    const writer = createInfluxWriter(
      influxSchema.parse({ url: `http://127.0.0.1:${closedPort}`, version: 1, database: 'telemetry' }),
      { logger: silentLogger(), metrics, random: () => 0.5 },
      { flushInterval: 60_000, minRetryDelay: 20, maxRetryDelay: 100 },
    );
    writers.push(writer);
    await writer.start();
    await writer.writeReadings([reading()]);
    await writer.flush();
    await expect.poll(() => count(metrics, 'retries'), { timeout: 5000 }).toBeGreaterThanOrEqual(3);
    expect(writer.status()).toMatchObject({ state: 'degraded', pending: 1, accepting: true });
    expect(writer.status().lastError).toMatch(/^cannot reach InfluxDB: ECONNREFUSED/);
  });
});

describe('joinLines', () => {
  it('joins lines by \\n, whether they are strings or UTF-8 bytes read back from the spool', () => {
    const a = 'strain,asset_id=lg-bridge-001,street=龙城街道 value=1 1700000000000';
    const b = 'strain,asset_id=lg-bridge-002,street=坂田街道 value=2.5 1700000000001';
    expect(joinLines([a, b])).toBe(`${a}\n${b}`);
    const mixed = joinLines([Buffer.from(a), b, Buffer.from(b)]);
    expect(Buffer.isBuffer(mixed)).toBe(true);
    expect(mixed.toString()).toBe(`${a}\n${b}\n${b}`);
    expect(joinLines([Buffer.from(a)]).toString()).toBe(a);
  });
});
