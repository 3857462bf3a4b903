/**
 * The registry at run time against `watchpost start` (the built CLI): assets and devices created,
 * replaced, rotated and retired through the API take effect without a restart and are kept in
 * registry.yaml; a changed webhook URL in a YAML file takes effect on SIGHUP; a broken hand edit
 * and a read-only directory are refused with the last good state kept.
 */
import { chmodSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import mqtt, { type MqttClient } from 'mqtt';
import { parse, stringify } from 'yaml';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ADMIN_TOKEN, baseConfig, DEVICE_SECRET, OPS_TOKEN, tempDir, VIEWER_TOKEN } from '../test/support/platform.js';
import { startReceiver, type Receiver } from '../test/support/receiver.js';
import { cliBuilt, startWatchpostProcess, type WatchpostProcess } from '../test/support/watchpost-process.js';
import { loadConfig } from './config/load.js';

/** Polls `condition` until it holds (bounded). */
async function until(what: string, condition: () => boolean | Promise<boolean>, timeoutMs = 10_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await condition())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

const strain = (value: number) => JSON.stringify({ ts: Date.now(), values: { strain: value } });

describe.skipIf(!cliBuilt)('the registry at run time (watchpost start)', () => {
  let first: Receiver;
  let second: Receiver;
  let dir: string;
  let wp: WatchpostProcess;
  const clients: MqttClient[] = [];
  let config: ReturnType<typeof baseConfig>;

  async function api(method: string, path: string, body?: unknown, token = ADMIN_TOKEN): Promise<{ status: number; body: any }> {
    const res = await fetch(`${wp.apiUrl}${path}`, {
      method,
      headers: { authorization: `Bearer ${token}`, ...(body !== undefined ? { 'content-type': 'application/json' } : {}) },
      body: body !== undefined ? JSON.stringify(body) : undefined,
    });
    const text = await res.text();
    return { status: res.status, body: text ? JSON.parse(text) : undefined };
  }

  /** Connects, or resolves with the refusal's return code. */
  function connect(username: string, password: string): Promise<MqttClient | { refused: number | undefined }> {
    return new Promise((resolve) => {
      const client = mqtt.connect(`mqtt://127.0.0.1:${wp.mqttPort}`, { username, password, protocolVersion: 4, reconnectPeriod: 0, connectTimeout: 5000 });
      client.once('connect', () => {
        clients.push(client);
        resolve(client);
      });
      client.once('error', (err: Error & { code?: number }) => {
        client.end(true);
        resolve({ refused: err.code });
      });
    });
  }

  async function connected(username: string, password: string): Promise<MqttClient> {
    const c = await connect(username, password);
    if (!('publishAsync' in c)) throw new Error(`${username} was refused: ${String(c.refused)}`);
    return c;
  }

  const openAlerts = async (assetId: string) =>
    (await api('GET', `/api/v1/alerts?asset_id=${assetId}`, undefined, VIEWER_TOKEN)).body.alerts as Array<{ state: string; resolve_reason: string | null; rule_id: string }>;

  beforeAll(async () => {
    first = await startReceiver('/first');
    second = await startReceiver('/second');
    dir = tempDir('registry-e2e');
    config = baseConfig({ webhookUrl: first.url, dataDir: join(dir, 'data') });
    writeFileSync(join(dir, 'watchpost.yaml'), stringify(config));
    wp = await startWatchpostProcess(dir);
  }, 60_000);

  afterAll(async () => {
    chmodSync(dir, 0o755);
    await Promise.all(clients.map((c) => c.endAsync(true).catch(() => undefined)));
    await wp?.stop();
    await first?.close();
    await second?.close();
  });

  it('a device created through the API connects with its returned secret and publishes to an asset created the same way', async () => {
    const asset = { type: 'bridge', name: '布吉河桥', street: '布吉街道', location: [114.12, 22.6], sensors: [{ id: 'strain-02', metrics: ['strain'] }] };
    const created = await api('PUT', '/api/v1/assets/bj-bridge-009', asset);
    expect(created).toEqual({ status: 201, body: { id: 'bj-bridge-009', ...asset } });
    expect((await api('PUT', '/api/v1/assets/bj-bridge-009', asset)).status).toBe(200);

    const device = await api('PUT', '/api/v1/devices/dau-bridge-009', { assets: ['bj-bridge-009'] });
    expect(device.status).toBe(201);
    expect(device.body).toEqual({ id: 'dau-bridge-009', assets: ['bj-bridge-009'], subscribe: [], secret: expect.stringMatching(/^[A-Za-z0-9_-]{43}$/) });
    const secret = device.body.secret as string;

    // Only the scrypt hash is kept.
    const registry = readFileSync(join(dir, 'registry.yaml'), 'utf8');
    expect(registry).not.toContain(secret);
    expect(parse(registry).devices).toEqual([{ id: 'dau-bridge-009', secret_hash: expect.stringMatching(/^scrypt\$16384\$8\$1\$/), assets: ['bj-bridge-009'] }]);

    const client = await connected('dau-bridge-009', secret);
    await client.publishAsync('telemetry/bj-bridge-009/strain-02', strain(120), { qos: 1 });
    await until('the reading in GET /api/v1/assets', async () => {
      const assets = (await api('GET', '/api/v1/assets', undefined, VIEWER_TOKEN)).body.assets as Array<{ id: string; latest: Array<{ sensor_id: string; metric: string; value: number }> }>;
      const found = assets.find((a) => a.id === 'bj-bridge-009');
      return found?.latest.some((l) => l.sensor_id === 'strain-02' && l.metric === 'strain' && l.value === 120) ?? false;
    });

    const devices = (await api('GET', '/api/v1/devices', undefined, VIEWER_TOKEN)).body.devices as Array<Record<string, unknown>>;
    const listed = devices.find((d) => d.id === 'dau-bridge-009')!;
    expect(listed).toMatchObject({ id: 'dau-bridge-009', assets: ['bj-bridge-009'], subscribe: [] });
    expect(typeof listed.last_seen).toBe('string');
    expect(JSON.stringify(devices)).not.toMatch(/secret/);

    // The file reloads to what the API reports.
    const loaded = loadConfig(dir, {});
    expect(loaded.ok && loaded.config.devices.map((d) => d.id).sort()).toEqual(devices.map((d) => d.id).sort());
  }, 30_000);

  it('rotation closes the connection and refuses the old secret; the new one logs in', async () => {
    const device = await api('PUT', '/api/v1/devices/dau-rotate-01', { assets: ['lg-bridge-001'] });
    expect(device.status).toBe(201);
    const old = device.body.secret as string;
    const client = await connected('dau-rotate-01', old);
    const closed = new Promise<void>((resolve) => client.once('close', () => resolve()));

    const rotated = await api('POST', '/api/v1/devices/dau-rotate-01/rotate-secret');
    expect(rotated.status).toBe(200);
    expect(rotated.body).toEqual({ id: 'dau-rotate-01', secret: expect.stringMatching(/^[A-Za-z0-9_-]{43}$/) });
    expect(rotated.body.secret).not.toBe(old);
    await closed;

    expect(await connect('dau-rotate-01', old)).toEqual({ refused: 4 });
    const again = await connected('dau-rotate-01', rotated.body.secret as string);
    await again.publishAsync('telemetry/lg-bridge-001/strain-01', strain(10), { qos: 1 });
  }, 30_000);

  it('refuses what would make the configuration invalid (every error), ids of other files, short secrets and assets still in use', async () => {
    const bad = await api('PUT', '/api/v1/devices/dau-bad-01', { assets: ['no-such-asset', 'nor-this'], subscribe: [] });
    expect(bad.status).toBe(400);
    expect(bad.body.error).toBe('invalid_config');
    expect((bad.body.errors as Array<{ message: string }>).map((e) => e.message)).toEqual(['unknown asset "no-such-asset"', 'unknown asset "nor-this"']);

    const body = await api('PUT', '/api/v1/assets/bad-asset', { type: 'Bridge!', street: '' });
    expect(body.status).toBe(400);
    expect((body.body.errors as Array<{ path: string }>).map((e) => e.path).sort()).toEqual(['name', 'street', 'type']);

    const short = await api('PUT', '/api/v1/devices/dau-short-01', { assets: ['lg-bridge-001'], secret: 'short' });
    expect(short.status).toBe(400);
    expect(short.body.errors).toEqual([{ file: '(request body)', path: 'secret', message: 'must be at least 8 characters' }]);

    const taken = await api('PUT', '/api/v1/devices/dau-bridge-001', { assets: ['lg-bridge-001'] });
    expect(taken).toEqual({
      status: 409,
      body: { error: 'device_defined_elsewhere', message: 'device "dau-bridge-001" is defined in watchpost.yaml; change it there', file: 'watchpost.yaml' },
    });

    await api('PUT', '/api/v1/assets/inuse-asset', { type: 'slope', name: '边坡', street: '坂田街道' });
    await api('PUT', '/api/v1/devices/dau-inuse-01', { assets: ['inuse-asset'], secret_hash: 'scrypt$16384$8$1$AAAAAAAAAAAAAAAAAAAAAA==$AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=' });
    await api('PUT', '/api/v1/devices/dau-inuse-02', { assets: ['inuse-asset'], secret: 'a-long-enough-secret' });
    const inUse = await api('DELETE', '/api/v1/assets/inuse-asset');
    expect(inUse).toEqual({
      status: 409,
      body: { error: 'asset_in_use', message: 'asset "inuse-asset" is still referenced by devices dau-inuse-01, dau-inuse-02', devices: ['dau-inuse-01', 'dau-inuse-02'] },
    });

    expect((await api('PUT', '/api/v1/assets/x-1', { type: 'slope', name: 'x', street: 'y' }, OPS_TOKEN)).status).toBe(403);
    expect(parse(readFileSync(join(dir, 'registry.yaml'), 'utf8')).devices.map((d: { id: string }) => d.id)).not.toContain('dau-bad-01');

    const audit = (await api('GET', '/api/v1/audit?limit=100')).body.audit as Array<{ actor: string; method: string; path: string; outcome: number }>;
    expect(audit).toContainEqual(expect.objectContaining({ actor: 'platform-admin', method: 'DELETE', path: '/api/v1/assets/inuse-asset', outcome: 409 }));
    expect(audit).toContainEqual(expect.objectContaining({ actor: 'platform-admin', method: 'POST', path: '/api/v1/devices/dau-rotate-01/rotate-secret', outcome: 200 }));
  }, 30_000);

  it('a removed asset resolves its open alerts with reason asset_removed, and its device is disconnected', async () => {
    await api('PUT', '/api/v1/assets/gone-bridge', { type: 'bridge', name: '旧桥', street: '龙城街道', sensors: [{ id: 's1' }] });
    const device = await api('PUT', '/api/v1/devices/dau-gone-01', { assets: ['gone-bridge'] });
    const client = await connected('dau-gone-01', device.body.secret as string);
    await client.publishAsync('telemetry/gone-bridge/s1', strain(350), { qos: 1 });
    await until('the alert of gone-bridge', async () => (await openAlerts('gone-bridge')).some((a) => a.state === 'firing' && a.rule_id === 'bridge-strain'));

    const closed = new Promise<void>((resolve) => client.once('close', () => resolve()));
    expect((await api('DELETE', '/api/v1/devices/dau-gone-01')).status).toBe(204);
    await closed;
    expect((await api('DELETE', '/api/v1/assets/gone-bridge')).status).toBe(204);
    const alerts = await openAlerts('gone-bridge');
    expect(alerts.map((a) => [a.state, a.resolve_reason])).toEqual([['resolved', 'asset_removed']]);
    expect((await api('DELETE', '/api/v1/assets/gone-bridge')).status).toBe(404);
  }, 30_000);

  it('a changed webhook URL in a YAML file takes effect on SIGHUP for the next notification', async () => {
    const client = await connected('dau-bridge-001', DEVICE_SECRET);
    await client.publishAsync('telemetry/lg-bridge-001/strain-01', strain(320), { qos: 1 });
    const about = (r: { body: string }) => {
      const body = JSON.parse(r.body) as { event: string; alert: { asset_id: string } };
      return { event: body.event, asset_id: body.alert.asset_id };
    };
    await until('the firing notification', () => first.requests.some((r) => about(r).event === 'firing' && about(r).asset_id === 'lg-bridge-001'));
    const before = first.requests.length;

    const edited = { ...config, channels: [{ ...config.channels[0]!, url: second.url }] };
    writeFileSync(join(dir, 'watchpost.yaml'), stringify(edited));
    const from = wp.logs().length;
    wp.child.kill('SIGHUP');
    await until('the reload', () => wp.logs().slice(from).includes('"msg":"configuration reloaded"'));

    await client.publishAsync('telemetry/lg-bridge-001/strain-01', strain(100), { qos: 1 });
    const [resolved] = await second.waitForRequests(1);
    expect(about(resolved!)).toEqual({ event: 'resolved', asset_id: 'lg-bridge-001' });
    expect(first.requests.length).toBe(before);
  }, 30_000);

  it('a broken hand edit of registry.yaml is refused and the last good state stays', async () => {
    const file = join(dir, 'registry.yaml');
    const good = readFileSync(file, 'utf8');
    const devicesBefore = (await api('GET', '/api/v1/devices', undefined, VIEWER_TOKEN)).body.devices as Array<{ id: string }>;
    writeFileSync(file, good.replace('assets:\n', 'assets:\n  - { id: broken, type: Bad!, name: x, street: y }\n'));
    const reload = await api('POST', '/api/v1/config/reload');
    expect(reload.status).toBe(400);
    expect(reload.body.error).toBe('invalid_config');
    expect(reload.body.errors).toContainEqual(expect.objectContaining({ file: 'registry.yaml', path: 'assets[0] (broken).type' }));
    expect(((await api('GET', '/api/v1/devices', undefined, VIEWER_TOKEN)).body.devices as Array<{ id: string }>).map((d) => d.id)).toEqual(devicesBefore.map((d) => d.id));
    expect((await api('GET', '/api/v1/rules', undefined, VIEWER_TOKEN)).body.error.errors.length).toBeGreaterThan(0);
    // A change through the API is refused as well while the file is broken; the file is not rewritten.
    const put = await api('PUT', '/api/v1/assets/while-broken', { type: 'slope', name: 'x', street: 'y' });
    expect(put.status).toBe(400);
    expect(readFileSync(file, 'utf8')).toContain('id: broken');
    writeFileSync(file, good);
    expect((await api('POST', '/api/v1/rules/reload')).status).toBe(200);
  }, 30_000);

  it('answers 409 read_only_config on a read-only configuration directory', async () => {
    chmodSync(dir, 0o555);
    try {
      const put = await api('PUT', '/api/v1/assets/ro-asset', { type: 'slope', name: 'x', street: 'y' });
      expect(put.status).toBe(409);
      expect(put.body.error).toBe('read_only_config');
      expect((await api('POST', '/api/v1/devices/dau-rotate-01/rotate-secret')).body.error).toBe('read_only_config');
    } finally {
      chmodSync(dir, 0o755);
    }
    expect((await api('PUT', '/api/v1/assets/ro-asset', { type: 'slope', name: 'x', street: 'y' })).status).toBe(201);
  }, 30_000);
});
