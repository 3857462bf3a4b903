/**
 * The exact HTTP requests both InfluxDB writers send, and how they answer each kind of
 * response, against a scripted HTTP server on a free port.
 */
import { createServer, type IncomingHttpHeaders, type Server } from 'node:http';
import { gunzipSync } from 'node:zlib';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { createLogger, silentLogger } from '../lib/logger.js';
import { MetricsRegistry } from '../lib/metrics.js';
import { influxSchema } from './config.js';
import { createInfluxWriter, joinLines, lineMeasurement, splitRefusedLines, type InfluxWriter } from './influx-writer.js';
import { httpStorageError } from './storage-errors.js';
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

const SHOW_TELEMETRY = JSON.stringify({ results: [{ statement_id: 0, series: [{ name: 'databases', columns: ['name'], values: [['_internal'], ['telemetry']] }] }] });
const SHOW_NONE = JSON.stringify({ results: [{ statement_id: 0, series: [{ name: 'databases', columns: ['name'] }] }] });
const ONE_BUCKET = JSON.stringify({ buckets: [{ id: '0123', name: 'telemetry' }] });

/** A logger that keeps every line (level, msg and fields) for assertions. */
function capturingLogger() {
  const lines: Array<Record<string, unknown>> = [];
  const logger = createLogger({ level: 'debug', destination: { write: (s: string) => void lines.push(JSON.parse(s)) } });
  return { logger, lines, messages: (level: number) => lines.filter((l) => l.level === level).map((l) => l.msg) };
}

const line = (value: number, ts: number) => `strain,asset_id=lg-bridge-001,asset_type=bridge,sensor_id=strain-01,street=龙城街道 value=${value} ${ts}`;

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
const eventLine = 'alert_events,asset_id=lg-bridge-001,event=firing,level=red,rule_id=bridge-strain ' + 'alert_id="alert-0001",value=312.5,message="strain 312.5 > 300" 1764295200623';

describe('InfluxDB writers on the wire', () => {
  let server: Server;
  let baseUrl: string;
  const requests: Captured[] = [];
  const script: Scripted[] = [];
  const checks: Captured[] = [];
  const checkScript: Scripted[] = [];
  const writers: InfluxWriter[] = [];

  beforeAll(async () => {
    server = createServer((req, res) => {
      const chunks: Buffer[] = [];
      req.on('data', (c: Buffer) => chunks.push(c));
      req.on('end', () => {
        const raw = Buffer.concat(chunks);
        const body = (req.headers['content-encoding'] === 'gzip' ? gunzipSync(raw) : raw).toString('utf8');
        // The start checks (SHOW/CREATE DATABASE, the bucket lookup) have their own record and script.
        const checking = req.url!.startsWith('/query') || req.url!.startsWith('/api/v2/buckets');
        (checking ? checks : requests).push({ method: req.method!, url: req.url!, headers: req.headers, body });
        const answer = checking ? (checkScript.shift() ?? { status: 200, body: req.url!.startsWith('/query') ? SHOW_TELEMETRY : ONE_BUCKET }) : (script.shift() ?? { status: 204 });
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
    checks.length = 0;
    checkScript.length = 0;
  });
  afterAll(async () => {
    server.closeAllConnections();
    await new Promise((resolve) => server.close(resolve));
  });

  async function start(config: Record<string, unknown>, metrics = new MetricsRegistry(), logger = silentLogger()): Promise<InfluxWriter> {
    const writer = createInfluxWriter(
      influxSchema.parse({ url: baseUrl, ...config }),
      { logger, metrics, random: () => 0.5 },
      { flushInterval: 60_000, minRetryDelay: 20, maxRetryDelay: 100 },
    );
    writers.push(writer);
    await writer.start();
    return writer;
  }

  const count = (metrics: MetricsRegistry, name: string, labels?: Record<string, string>) => metrics.counter(`watchpost_storage_${name}_total`, '').get(labels);

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
      ['POST', '/api/v2/write?org=longgang&bucket=telemetry&precision=ms', 'Token test-token', `${line(123.4, T0)}\n${line(124, T0 + 1)}\n${eventLine}`],
      ['POST', '/api/v2/write?org=longgang&bucket=telemetry&precision=ms', 'Token test-token', line(125, T0 + 2)],
    ]);
  });

  for (const version of [1, 2] as const) {
    const config = version === 1 ? { version, database: 'telemetry' } : { version, org: 'longgang', bucket: 'telemetry', token: 't' };

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

    it(`v${version} keeps a batch refused with 401 in the queue, reports why, and writes it once the credentials work`, async () => {
      const metrics = new MetricsRegistry();
      script.push({ status: 401, body: '{"code":"unauthorized","message":"unauthorized access"}' });
      const writer = await start(config, metrics);
      await writer.writeReadings([reading(), reading({ ts: T0 + 1 })]);
      await writer.flush();
      expect(writer.status()).toMatchObject({
        state: 'degraded',
        reason: 'unauthorized',
        pending: 2,
        accepting: true,
        lastError: 'HTTP 401: unauthorized access',
      });
      await expect.poll(() => writer.status().pending, { timeout: 5000 }).toBe(0);
      expect(requests.map((r) => r.body)).toEqual(Array(2).fill(`${line(123.4, T0)}\n${line(123.4, T0 + 1)}`));
      expect(count(metrics, 'failed', { reason: 'rejected' })).toBe(0);
      expect(count(metrics, 'retries')).toBe(1);
      expect(count(metrics, 'written')).toBe(2);
      expect(writer.status()).toMatchObject({ state: 'ok', pending: 0 });
    });

    it(`v${version} splits a batch with a field type conflict by the measurement InfluxDB names, and drops only the conflicting lines without a quarantine`, async () => {
      const metrics = new MetricsRegistry();
      const conflict = 'partial write: field type conflict: input field \\"value\\" on measurement \\"temperature\\" is type float, already exists as type string dropped=2';
      script.push({ status: 400, body: `{"error":"${conflict}"}` }, { status: 204 }, { status: 400, body: `{"error":"${conflict}"}` });
      const writer = await start(config, metrics);
      await writer.writeReadings([
        reading(),
        reading({ metric: 'temperature', value: 21, ts: T0 }),
        reading({ value: 124, ts: T0 + 1 }),
        reading({ metric: 'temperature', value: 22, ts: T0 + 1 }),
      ]);
      await writer.flush();
      const temperature = (value: number, ts: number) => line(value, ts).replace(/^strain/, 'temperature');
      expect(requests.map((r) => r.body)).toEqual([
        [line(123.4, T0), temperature(21, T0), line(124, T0 + 1), temperature(22, T0 + 1)].join('\n'),
        [line(123.4, T0), line(124, T0 + 1)].join('\n'),
        [temperature(21, T0), temperature(22, T0 + 1)].join('\n'),
      ]);
      expect(count(metrics, 'written')).toBe(2);
      expect(count(metrics, 'failed', { reason: 'field_type_conflict' })).toBe(2);
      expect(writer.status()).toMatchObject({ state: 'ok', pending: 0 });
    });
  }

  it('v1 at start leaves an existing database alone', async () => {
    await start({ version: 1, database: 'telemetry', username: 'watchpost', password: 's3cret' });
    expect(checks.map((c) => [c.method, c.url, c.headers.authorization, c.body])).toEqual([
      ['POST', '/query', `Basic ${Buffer.from('watchpost:s3cret').toString('base64')}`, 'q=SHOW+DATABASES'],
    ]);
  });

  it('v1 at start creates a missing database, with the configured credentials, and says so', async () => {
    const { logger, messages } = capturingLogger();
    checkScript.push({ status: 200, body: SHOW_NONE }, { status: 200, body: '{"results":[{"statement_id":0}]}' });
    await start({ version: 1, database: 'tele"metry', username: 'watchpost', password: 's3cret' }, new MetricsRegistry(), logger);
    expect(checks.map((c) => [c.url, c.headers.authorization, new URLSearchParams(c.body).get('q')])).toEqual([
      ['/query', `Basic ${Buffer.from('watchpost:s3cret').toString('base64')}`, 'SHOW DATABASES'],
      ['/query', `Basic ${Buffer.from('watchpost:s3cret').toString('base64')}`, 'CREATE DATABASE "tele\\"metry"'],
    ]);
    expect(messages(30)).toContain('created the InfluxDB database "tele"metry" (it did not exist)');
  });

  it('v1 at start says the database is missing and how to create it when the user may not, and keeps the readings', async () => {
    const { logger, lines } = capturingLogger();
    checkScript.push(
      { status: 200, body: SHOW_NONE },
      { status: 403, body: '{"error":"error authorizing query: writer not authorized to execute statement \'CREATE DATABASE telemetry\', requires admin privilege"}' },
    );
    script.push({ status: 404, body: '{"error":"database not found: \\"telemetry\\""}' });
    const writer = await start({ version: 1, database: 'telemetry', username: 'writer', password: 'pw-writer' }, new MetricsRegistry(), logger);
    const errors = lines.filter((l) => l.level === 50);
    expect(errors.map((l) => [l.msg, l.status, l.err])).toEqual([
      [
        'InfluxDB database "telemetry" does not exist (or user "writer" has no privilege on it), and these credentials may not create it: as an InfluxDB admin run  CREATE DATABASE "telemetry"  and  GRANT WRITE ON "telemetry" TO "writer" (e.g. influx -execute \'…\'); until then readings are kept in the spool and /healthz reports degraded',
        403,
        "HTTP 403: error authorizing query: writer not authorized to execute statement 'CREATE DATABASE telemetry', requires admin privilege",
      ],
    ]);
    await writer.writeReadings([reading()]);
    await writer.flush();
    expect(writer.status()).toMatchObject({ state: 'degraded', reason: 'database_not_found', pending: 1 });
    // The failure is explained once, when it starts.
    expect(lines.filter((l) => l.level === 50).map((l) => l.msg)).toContain(
      'InfluxDB database "telemetry" does not exist: as an InfluxDB admin run  CREATE DATABASE "telemetry"  (e.g. influx -execute \'…\'); readings are kept in the spool meanwhile',
    );
    await expect.poll(() => writer.status().pending, { timeout: 5000 }).toBe(0);
  });

  it('v2 at start looks the bucket up and says when it is missing', async () => {
    const { logger, messages } = capturingLogger();
    checkScript.push({ status: 200, body: '{"buckets":[]}' });
    await start({ version: 2, org: 'longgang', bucket: 'telemetry', token: 'test-token' }, new MetricsRegistry(), logger);
    expect(checks.map((c) => [c.method, c.url, c.headers.authorization])).toEqual([['GET', '/api/v2/buckets?org=longgang&name=telemetry', 'Token test-token']]);
    expect(messages(50)).toEqual([
      'InfluxDB bucket "telemetry" does not exist in org "longgang": create it (influx bucket create --name telemetry --org longgang); readings are kept in the spool meanwhile',
    ]);
  });

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

describe('splitRefusedLines', () => {
  const a = 'strain,asset_id=a value=1 1';
  const b = 'rain\\ fall,asset_id=a value=2 1';
  const c = 'strain,asset_id=b value=3 1';
  it('reads the measurement of a line, unescaped', () => {
    expect(lineMeasurement(a)).toBe('strain');
    expect(lineMeasurement(Buffer.from(b))).toBe('rain fall');
    expect(lineMeasurement('a\\,b value=1')).toBe('a,b');
  });
  it('puts the lines of the measurement with a field type conflict apart', () => {
    const error = httpStorageError(400, 'partial write: field type conflict: input field "value" on measurement "rain fall" is type float, already exists as type string dropped=1');
    expect(splitRefusedLines([a, Buffer.from(b), c], error)).toEqual([[a, c], [Buffer.from(b)]]);
    // All of one measurement: nothing to tell apart (the writer halves).
    expect(splitRefusedLines([b, b], error)).toEqual([]);
  });
  it('puts the lines InfluxDB quotes as unparsable apart', () => {
    const error = httpStorageError(400, `partial write: unable to parse '${c}': invalid field format dropped=0`);
    expect(splitRefusedLines([a, b, c], error)).toEqual([[a, b], [c]]);
    expect(splitRefusedLines([a, b], httpStorageError(400, 'something else'))).toEqual([]);
  });
});
