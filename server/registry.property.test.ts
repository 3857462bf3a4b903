/**
 * Random sequences of registry operations (create, replace, delete assets and devices, rotate
 * secrets, some of them invalid): after each one, the configuration directory reloads to exactly
 * the state the registry applied (what the API reports), a refused operation changes nothing,
 * and registry.yaml is always a whole, valid file.
 */
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import fc from 'fast-check';
import { stringify } from 'yaml';
import { describe, expect, it } from 'vitest';
import { params } from '../test/support/property.js';
import { loadConfig } from './config/load.js';
import type { WatchpostConfig } from './config/schema.js';
import { Registry, RegistryError } from './registry.js';

const ASSET_IDS = ['a1', 'a2', 'a3', 'base-asset'];
const DEVICE_IDS = ['d1', 'd2', 'd3', 'base-device'];
const fastHash = (secret: string) => Promise.resolve(`scrypt$16384$8$1$${Buffer.from(secret.slice(0, 12)).toString('base64')}$${Buffer.alloc(32, 7).toString('base64')}`);

type Op =
  | { kind: 'putAsset'; id: string; type: string; name: string }
  | { kind: 'deleteAsset'; id: string }
  | { kind: 'putDevice'; id: string; assets: string[]; secret?: string }
  | { kind: 'deleteDevice'; id: string }
  | { kind: 'rotate'; id: string };

const op: fc.Arbitrary<Op> = fc.oneof(
  {
    weight: 3,
    arbitrary: fc.record({
      kind: fc.constant('putAsset' as const),
      id: fc.constantFrom(...ASSET_IDS),
      type: fc.constantFrom('bridge', 'slope', 'slope', 'Bad!'),
      name: fc.constantFrom('桥', 'slope 2', 'x', ''),
    }),
  },
  { weight: 1, arbitrary: fc.record({ kind: fc.constant('deleteAsset' as const), id: fc.constantFrom(...ASSET_IDS) }) },
  {
    weight: 4,
    arbitrary: fc.record(
      {
        kind: fc.constant('putDevice' as const),
        id: fc.constantFrom(...DEVICE_IDS),
        assets: fc.oneof({ weight: 4, arbitrary: fc.subarray(ASSET_IDS, { maxLength: 2 }) }, { weight: 1, arbitrary: fc.constant<string[]>(['a1', 'nowhere']) }),
        secret: fc.constantFrom('short', 'long-enough-secret'),
      },
      { requiredKeys: ['kind', 'id', 'assets'] },
    ),
  },
  { weight: 1, arbitrary: fc.record({ kind: fc.constant('deleteDevice' as const), id: fc.constantFrom(...DEVICE_IDS) }) },
  { weight: 1, arbitrary: fc.record({ kind: fc.constant('rotate' as const), id: fc.constantFrom(...DEVICE_IDS) }) },
);

const view = (config: Pick<WatchpostConfig, 'assets' | 'devices'>) => ({
  assets: config.assets.map((a) => ({ id: a.id, type: a.type, name: a.name })).sort((x, y) => x.id.localeCompare(y.id)),
  devices: config.devices.map((d) => ({ id: d.id, assets: d.assets, secret_hash: d.secret_hash, secret: d.secret })).sort((x, y) => x.id.localeCompare(y.id)),
});

describe('the registry file', () => {
  it('always reloads to the state the registry reports; refused operations change nothing', async () => {
    await fc.assert(
      fc.asyncProperty(fc.array(op, { minLength: 1, maxLength: 16 }), async (ops) => {
        const dir = mkdtempSync(join(tmpdir(), 'watchpost-registry-prop-'));
        try {
          writeFileSync(
            join(dir, 'watchpost.yaml'),
            stringify({
              storage: { data_dir: join(dir, 'data') },
              assets: [{ id: 'base-asset', type: 'bridge', name: 'base', street: 's' }],
              devices: [{ id: 'base-device', secret: 'base-secret-01', assets: ['base-asset'] }],
            }),
          );
          const start = loadConfig(dir, {});
          if (!start.ok) throw new Error('the base configuration is invalid');
          let current: WatchpostConfig = start.config;
          const registry = new Registry({ configDir: dir, current: () => current, apply: (next) => (current = next), hash: fastHash });
          const file = () => {
            try {
              return readFileSync(join(dir, 'registry.yaml'), 'utf8');
            } catch {
              return '';
            }
          };
          for (const o of ops) {
            const before = { text: file(), state: view(current) };
            let refused: RegistryError | undefined;
            try {
              if (o.kind === 'putAsset') await registry.putAsset(o.id, { type: o.type, name: o.name, street: '街道' });
              else if (o.kind === 'deleteAsset') await registry.deleteAsset(o.id);
              else if (o.kind === 'putDevice') await registry.putDevice(o.id, { assets: o.assets, ...(o.secret ? { secret: o.secret } : {}) });
              else if (o.kind === 'deleteDevice') await registry.deleteDevice(o.id);
              else await registry.rotateSecret(o.id);
            } catch (err) {
              if (!(err instanceof RegistryError)) throw err;
              refused = err;
            }
            const loaded = loadConfig(dir, {});
            expect(loaded.ok).toBe(true);
            if (!loaded.ok) return;
            expect(view(loaded.config)).toEqual(view(current));
            if (refused) {
              expect([400, 404, 409]).toContain(refused.status);
              expect(file()).toBe(before.text);
              expect(view(current)).toEqual(before.state);
            }
            // Items of watchpost.yaml are never taken over.
            if (o.id.startsWith('base-')) expect(refused).toBeDefined();
          }
        } finally {
          rmSync(dir, { recursive: true, force: true });
        }
      }),
      params(40),
    );
  }, 120_000);

  it('concurrent changes keep every one of them, and the file whole', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'watchpost-registry-concurrent-'));
    try {
      writeFileSync(join(dir, 'watchpost.yaml'), stringify({ storage: { data_dir: join(dir, 'data') }, assets: [{ id: 'base-asset', type: 'bridge', name: 'base', street: 's' }] }));
      const start = loadConfig(dir, {});
      if (!start.ok) throw new Error('the base configuration is invalid');
      let current: WatchpostConfig = start.config;
      let applied = 0;
      const slowHash = (secret: string) => new Promise<string>((resolve) => setTimeout(() => resolve(fastHash(secret)), Math.floor(Math.random() * 20)));
      const registry = new Registry({ configDir: dir, current: () => current, apply: (next) => ((current = next), applied++), hash: slowHash });
      const n = 30;
      const outcomes = await Promise.all(
        Array.from({ length: n }, (_, i) =>
          i % 3 === 0 ? registry.putAsset(`c-asset-${i}`, { type: 'slope', name: `坡 ${i}`, street: 's' }) : registry.putDevice(`c-dev-${i}`, { assets: ['base-asset'] }),
        ),
      );
      expect(outcomes.every((o) => o.created)).toBe(true);
      expect(applied).toBe(n);
      const loaded = loadConfig(dir, {});
      expect(loaded.ok).toBe(true);
      if (!loaded.ok) return;
      expect(view(loaded.config)).toEqual(view(current));
      expect(loaded.config.assets).toHaveLength(1 + n / 3);
      expect(loaded.config.devices).toHaveLength(n - n / 3);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
