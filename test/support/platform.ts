/** Starts a whole Watchpost in-process on free ports, from a configuration object, for e2e tests. */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import mqtt, { type MqttClient } from 'mqtt';
import { stringify } from 'yaml';
import { silentLogger } from '../../lib/logger.js';
import { formatErrors, loadConfig } from '../../server/config/load.js';
import { Platform, type PlatformOptions } from '../../server/platform.js';

export const DEVICE_SECRET = 'bridge-secret-0001';
export const OTHER_SECRET = 'slope-secret-00002';
export const OPS_TOKEN = 'operator-token-0123456789';
export const ADMIN_TOKEN = 'admin-token-0123456789abc';
export const VIEWER_TOKEN = 'viewer-token-0123456789ab';
export const HOOK_SECRET = 'hook-secret-xyz';

/** A small Longgang configuration: one bridge, one slope, two devices, one rule, one webhook. */
export function baseConfig(options: { webhookUrl: string; influx?: Record<string, unknown>; dataDir: string; broker?: Record<string, unknown> }) {
  return {
    broker: options.broker ?? { host: '127.0.0.1', port: 0 },
    api: {
      host: '127.0.0.1',
      port: 0,
      public_url: 'https://watchpost.example.org',
      tokens: [
        { name: 'duty-officer', token: OPS_TOKEN, role: 'operator' },
        { name: 'platform-admin', token: ADMIN_TOKEN, role: 'admin' },
        { name: 'screen', token: VIEWER_TOKEN, role: 'viewer' },
      ],
    },
    storage: { data_dir: options.dataDir, ...(options.influx ? { influx: { flush_interval: '100ms', ...options.influx } } : {}) },
    assets: [
      {
        id: 'lg-bridge-001',
        type: 'bridge',
        name: '龙岗河大桥',
        street: '龙城街道',
        location: [114.2466, 22.7209],
        sensors: [{ id: 'strain-01', metrics: ['strain', 'temperature'] }],
      },
      { id: 'bt-slope-002', type: 'slope', name: '坂田边坡', street: '坂田街道' },
    ],
    metrics: { strain: { unit: 'µε', min: -5000, max: 5000 }, temperature: { unit: '°C', min: -40, max: 80 } },
    devices: [
      { id: 'dau-bridge-001', secret: DEVICE_SECRET, assets: ['lg-bridge-001'] },
      { id: 'dau-slope-002', secret: OTHER_SECRET, assets: ['bt-slope-002'] },
    ],
    rules: [
      {
        id: 'bridge-strain',
        name: '主梁应变超限',
        match: { asset_type: 'bridge', metric: 'strain' },
        levels: { red: { above: 300 }, orange: { above: 250 }, yellow: { above: 200 } },
        hysteresis: 20,
        escalation: 'bridge-duty',
        message: '{asset_name} {sensor_id} 应变 {value}{unit}，超过{level}阈值 {threshold}',
        plan: ['通知桥梁养护单位现场核查', '必要时封闭交通'],
      },
    ],
    channels: [{ id: 'ops-hook', type: 'webhook', url: options.webhookUrl, secret: HOOK_SECRET }],
    escalations: [
      {
        id: 'bridge-duty',
        tiers: [
          { after: '0s', notify: ['ops-hook'] },
          { after: '10m', notify: ['ops-hook'] },
        ],
      },
    ],
  };
}

export interface RunningPlatform {
  platform: Platform;
  mqttUrl: string;
  apiUrl: string;
  dataDir: string;
  /** The configuration directory the platform was started from (one file, watchpost.yaml). */
  configDir: string;
  api(method: string, path: string, body?: unknown, token?: string): Promise<{ status: number; body: any }>;
  connect(username: string, password: string, clientId?: string): Promise<MqttClient>;
  stop(): Promise<void>;
}

export function tempDir(prefix: string): string {
  return mkdtempSync(join(tmpdir(), `watchpost-${prefix}-`));
}

export async function startPlatform(config: object, options: Partial<Omit<PlatformOptions, 'configDir'>> = {}): Promise<RunningPlatform> {
  const dir = tempDir('e2e-config');
  writeFileSync(join(dir, 'watchpost.yaml'), stringify(config));
  const loaded = loadConfig(dir, {});
  if (!loaded.ok) throw new Error(formatErrors(loaded.errors));
  const platform = new Platform(loaded.config, { logger: silentLogger(), configDir: dir, ...options });
  await platform.start();
  const mqttPort = platform.mqttPort();
  const apiUrl = `http://127.0.0.1:${platform.httpPort()}`;
  const clients: MqttClient[] = [];
  return {
    platform,
    configDir: dir,
    mqttUrl: `mqtt://127.0.0.1:${mqttPort}`,
    apiUrl,
    dataDir: loaded.config.storage.data_dir,
    async api(method, path, body, token = OPS_TOKEN) {
      const res = await fetch(`${apiUrl}${path}`, {
        method,
        headers: { authorization: `Bearer ${token}`, ...(body !== undefined ? { 'content-type': 'application/json' } : {}) },
        body: body !== undefined ? JSON.stringify(body) : undefined,
      });
      const text = await res.text();
      return { status: res.status, body: text ? JSON.parse(text) : undefined };
    },
    async connect(username, password, clientId) {
      const client = await mqtt.connectAsync(`mqtt://127.0.0.1:${mqttPort}`, {
        username,
        password,
        clientId,
        protocolVersion: 4,
        reconnectPeriod: 0,
        connectTimeout: 5000,
      });
      clients.push(client);
      return client;
    },
    async stop() {
      await Promise.all(clients.map((c) => c.endAsync(true).catch(() => undefined)));
      await platform.stop();
      rmSync(dir, { recursive: true, force: true });
    },
  };
}
