/**
 * The registry in PostgreSQL, against a real server: two instances (two configuration
 * directories with the same files, one database), each with its own registry and reloader as the
 * platform wires them. A change through one reaches the other through its poll and its validated
 * reload; concurrent changes of one device keep both; a rotated secret works on the other
 * instance and the old one no longer does; with PostgreSQL stopped, writes answer 503 and reads
 * keep the last copy, and changes made once it is back reach every instance.
 */
import { existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import fc from 'fast-check';
import pg from 'pg';
import { stringify } from 'yaml';
import { afterAll, afterEach, beforeAll, describe, expect, it, vi } from 'vitest';
import { hashSecret, SecretVerifier } from '../ingest/device-auth.js';
import { silentLogger } from '../lib/logger.js';
import { RuleRunner } from '../rules/rule-runner.js';
import { freePort } from '../test/support/binaries.js';
import { params } from '../test/support/property.js';
import { postgresAvailable, startPostgres, type PgServer } from '../test/support/postgres.js';
import { ConfigReloader, type ConfigChanges } from './config-reload.js';
import { loadConfig } from './config/load.js';
import { runImport } from './import-command.js';
import type { WatchpostConfig } from './config/schema.js';
import { Registry, RegistryError } from './registry.js';
import { PostgresRegistryBackend, REGISTRY_SCHEMA, registryBackend } from './registry-postgres.js';

const POLL_MS = 200;
const fastHash = (secret: string) => Promise.resolve(`scrypt$16384$8$1$${Buffer.from(secret.slice(0, 12)).toString('base64')}$${Buffer.alloc(32, 7).toString('base64')}`);

interface Instance {
  dir: string;
  pool: pg.Pool;
  backend: PostgresRegistryBackend;
  registry: Registry;
  reloader: ConfigReloader;
  current: () => WatchpostConfig;
  /** The changes of every reload this instance applied, in order. */
  reloads: ConfigChanges[];
}

/** Waits until `check` holds, polling every 20 ms, at most `ms`; returns how long it took. */
async function until(what: string, check: () => boolean, ms: number): Promise<number> {
  const started = Date.now();
  for (;;) {
    if (check()) return Date.now() - started;
    if (Date.now() - started > ms) throw new Error(`${what}: not within ${ms} ms`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

describe.skipIf(!postgresAvailable)('the registry in PostgreSQL (two instances, one database)', () => {
  let server: PgServer;
  let databases = 0;
  const open: Instance[] = [];
  const dirs: string[] = [];

  beforeAll(async () => {
    server = await startPostgres();
  }, 120_000);

  afterAll(async () => {
    await server?.destroy();
  });

  afterEach(async () => {
    for (const i of open.splice(0)) {
      i.reloader.stop();
      await i.backend.stop();
      await i.pool.end();
    }
    for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true });
  });

  /** A configuration directory with the same base files each time (data_dir apart). */
  function configDir(): string {
    const dir = mkdtempSync(join(tmpdir(), 'watchpost-registry-pg-'));
    dirs.push(dir);
    writeFileSync(
      join(dir, 'watchpost.yaml'),
      stringify({
        storage: { data_dir: join(tmpdir(), 'watchpost-registry-pg-data') },
        assets: [{ id: 'base-asset', type: 'bridge', name: 'base', street: 's' }],
        devices: [{ id: 'base-device', secret: 'base-secret-01', assets: ['base-asset'] }],
      }),
    );
    return dir;
  }

  async function instance(url: string, options: { pollMs?: number; hash?: (s: string) => Promise<string> } = {}): Promise<Instance> {
    const dir = configDir();
    const pool = new pg.Pool({ connectionString: url, max: 4 });
    pool.on('error', () => undefined); // idle connections dropped while the server is stopped
    const backend = new PostgresRegistryBackend({ pool, logger: silentLogger(), configDir: dir }, { pollMs: options.pollMs ?? POLL_MS, queryTimeoutMs: 3000 });
    await backend.start();
    const load = (d: string) => loadConfig(d, {}, backend.overrides());
    const first = load(dir);
    if (!first.ok) throw new Error(`the base configuration is invalid: ${JSON.stringify(first.errors)}`);
    let current = first.config;
    const reloads: ConfigChanges[] = [];
    const reloader = new ConfigReloader(
      {
        configDir: dir,
        runner: new RuleRunner(current.rules),
        clock: { now: () => Date.now() },
        logger: silentLogger(),
        current: () => current,
        apply: (next, changes) => {
          current = next;
          reloads.push(changes);
        },
        load,
      },
      { watch: false },
    );
    backend.onChange(() => void reloader.reload('registry'));
    const registry = new Registry({
      configDir: dir,
      current: () => current,
      apply: (next) => void reloader.applyConfig(next, 'api'),
      hash: options.hash ?? fastHash,
      backend,
      load: (d, env, overrides) => loadConfig(d, {}, overrides),
    });
    const made: Instance = { dir, pool, backend, registry, reloader, current: () => current, reloads };
    open.push(made);
    return made;
  }

  async function database(): Promise<string> {
    return server.createDatabase(`registry_${++databases}`);
  }

  it('an asset added through A is in B within the poll interval (1 s) and a margin, through B’s validated reload', async () => {
    const url = await database();
    const a = await instance(url, { pollMs: 1000 });
    const b = await instance(url, { pollMs: 1000 });
    const started = Date.now();
    const put = await a.registry.putAsset('lg-slope-007', { type: 'slope', name: '坡 7', street: '布吉街道', sensors: [{ id: 'tilt-01', metrics: ['tilt'] }] });
    expect(put.created).toBe(true);
    expect(a.current().assets.map((x) => x.id)).toEqual(['lg-slope-007', 'base-asset']); // registry.yaml's place: before watchpost.yaml
    await until('the asset in B', () => b.current().assets.some((x) => x.id === 'lg-slope-007'), 1000 + 2000);
    expect(Date.now() - started).toBeLessThan(1000 + 2000);
    expect(b.current().assets.find((x) => x.id === 'lg-slope-007')).toEqual(a.current().assets.find((x) => x.id === 'lg-slope-007'));
    expect(b.reloads.at(-1)?.assets).toEqual({ added: ['lg-slope-007'], removed: [], changed: [] });
    // Both instances render the same registry, and a third loading it afresh sees the same.
    expect(b.backend.overrides()).toEqual(a.backend.overrides());
    const c = await instance(url);
    expect(c.current().assets).toEqual(a.current().assets);

    await b.registry.deleteAsset('lg-slope-007');
    await until('the deletion in A', () => !a.current().assets.some((x) => x.id === 'lg-slope-007'), 1000 + 2000);
    expect(a.reloads.at(-1)?.assets).toEqual({ added: [], removed: ['lg-slope-007'], changed: [] });
  }, 30_000);

  it('concurrent changes of one device from A and B: both are kept, none lost', async () => {
    const url = await database();
    const a = await instance(url);
    const b = await instance(url);
    await a.registry.putAsset('x1', { type: 'bridge', name: 'x1', street: 's' });
    await a.registry.putAsset('x2', { type: 'bridge', name: 'x2', street: 's' });
    await a.registry.putDevice('dev-1', { assets: ['x1'], secret: 'initial-secret-1' });
    await until('dev-1 in B', () => b.current().devices.some((d) => d.id === 'dev-1'), 5000);

    // B changes the device's assets while A rotates its secret, from the same version.
    const [assets, rotated] = await Promise.all([b.registry.putDevice('dev-1', { assets: ['x1', 'x2'] }), a.registry.rotateSecret('dev-1')]);
    expect(assets.created).toBe(false);
    const expected = { assets: ['x1', 'x2'], secret_hash: await fastHash(rotated.secret) };
    for (const i of [a, b]) {
      await until(
        `both changes in ${i === a ? 'A' : 'B'}`,
        () => {
          const d = i.current().devices.find((x) => x.id === 'dev-1');
          return d !== undefined && d.secret_hash === expected.secret_hash && d.assets.length === 2;
        },
        5000,
      );
      expect(i.current().devices.find((x) => x.id === 'dev-1')).toMatchObject(expected);
    }

    // Many writes from both at once: every one kept, in one version each.
    const puts = await Promise.all(Array.from({ length: 20 }, (_, n) => (n % 2 === 0 ? a : b).registry.putAsset(`many-${n}`, { type: 'slope', name: `坡 ${n}`, street: 's' })));
    expect(puts.every((p) => p.created)).toBe(true);
    const ids = Array.from({ length: 20 }, (_, n) => `many-${n}`).sort();
    for (const i of [a, b]) await until('all twenty', () => ids.every((id) => i.current().assets.some((x) => x.id === id)), 5000);
    const version = await a.pool.query<{ version: string }>('SELECT version FROM registry_state');
    // 2 assets + 1 device + 2 device changes + 20 assets.
    expect(Number(version.rows[0]!.version)).toBe(25);
  }, 60_000);

  it('a secret rotated through A logs in on B and the old one no longer does; B’s reload names the device changed (its connections close)', async () => {
    const url = await database();
    const a = await instance(url, { hash: (s) => hashSecret(s) });
    const b = await instance(url, { hash: (s) => hashSecret(s) });
    await a.registry.putAsset('r1', { type: 'bridge', name: 'r1', street: 's' });
    const created = await a.registry.putDevice('dev-r', { assets: ['r1'] });
    expect(created.secret).toMatch(/^[A-Za-z0-9_-]{43}$/);
    await until('dev-r in B', () => b.current().devices.some((d) => d.id === 'dev-r'), 5000);
    const logsIn = async (i: Instance, secret: string) => {
      const device = i.current().devices.find((d) => d.id === 'dev-r');
      return new SecretVerifier(i.current().devices).verify(device, Buffer.from(secret));
    };
    expect(await logsIn(b, created.secret!)).toBe(true);

    const rotated = await a.registry.rotateSecret('dev-r');
    expect(rotated.secret).not.toBe(created.secret);
    await until('the rotation in B', () => b.reloads.some((r) => r.devices.changed.includes('dev-r')), 5000);
    expect(await logsIn(b, rotated.secret)).toBe(true);
    expect(await logsIn(b, created.secret!)).toBe(false);

    // Only scrypt hashes in PostgreSQL, never a secret.
    const rows = await a.pool.query<{ body: string }>("SELECT body::text AS body FROM registry_entries WHERE kind = 'device'");
    expect(rows.rows).toHaveLength(1);
    expect(rows.rows[0]!.body).not.toContain(rotated.secret);
    expect(rows.rows[0]!.body).not.toContain(created.secret!);
    expect(JSON.parse(rows.rows[0]!.body)).toEqual({ id: 'dev-r', secret_hash: expect.stringMatching(/^scrypt\$16384\$8\$1\$/), assets: ['r1'] });
    await expect(
      a.pool.query(`INSERT INTO registry_entries (kind, id, body, position, version) VALUES ('device', 'plain', '{"id":"plain","secret":"in-clear-123","assets":[]}', 99, 99)`),
    ).rejects.toThrow(/registry_entries_no_plain_secret/);
  }, 60_000);

  it('PostgreSQL down: writes answer 503, reads keep the last copy; once it is back, changes reach every instance', async () => {
    const url = await database();
    const a = await instance(url);
    const b = await instance(url);
    await a.registry.putAsset('kept', { type: 'bridge', name: 'kept', street: 's' });
    await until('kept in B', () => b.current().assets.some((x) => x.id === 'kept'), 5000);

    await server.stop();
    try {
      const refused = await a.registry.putAsset('while-down', { type: 'bridge', name: 'd', street: 's' }).catch((err: unknown) => err);
      expect(refused).toBeInstanceOf(RegistryError);
      expect(refused).toMatchObject({ code: 'registry_unavailable', status: 503 });
      expect((refused as Error).message).toMatch(/^PostgreSQL \(the registry\) cannot be reached: .+; nothing changed$/);
      // Nothing applied, nothing kept in the copy; both instances keep the last one.
      expect(a.current().assets.map((x) => x.id)).toEqual(['kept', 'base-asset']);
      expect(a.backend.read().content.assets.map((x) => x.id)).toEqual(['kept']);
      await until('B notices the outage', () => !b.backend.status().reachable, 5000);
      expect(b.current().assets.map((x) => x.id)).toEqual(['kept', 'base-asset']);
      expect(b.backend.overrides().get('registry.yaml')).toContain('"id":"kept"');
    } finally {
      await server.start();
    }
    await a.registry.putAsset('after', { type: 'bridge', name: 'after', street: 's' });
    for (const i of [a, b]) await until('after everywhere', () => i.current().assets.some((x) => x.id === 'after') && i.backend.status().reachable, 10_000);
    expect(b.current().assets.map((x) => x.id)).toEqual(['kept', 'after', 'base-asset']);
  }, 120_000);

  it('creates its tables idempotently, and an empty registry takes the directory’s registry.yaml once (plain secrets hashed)', async () => {
    const url = await database();
    const dir = configDir();
    writeFileSync(
      join(dir, 'registry.yaml'),
      'assets:\n  - {"id":"from-file","type":"bridge","name":"f","street":"s"}\ndevices:\n  - {"id":"file-dev","secret":"plain-secret-9","assets":["from-file"]}\n',
    );
    const pool = new pg.Pool({ connectionString: url, max: 2 });
    try {
      const seeded = new PostgresRegistryBackend({ pool, logger: silentLogger(), configDir: dir, hash: fastHash }, { pollMs: POLL_MS });
      const other = new PostgresRegistryBackend({ pool, logger: silentLogger(), configDir: dir, hash: fastHash }, { pollMs: POLL_MS });
      await Promise.all([seeded.start(), other.start()]);
      await Promise.all([seeded.stop(), other.stop()]);
      await other.refresh();
      for (const backend of [seeded, other]) {
        expect(backend.read()).toEqual({
          version: 1,
          content: {
            assets: [{ id: 'from-file', type: 'bridge', name: 'f', street: 's' }],
            devices: [{ id: 'file-dev', assets: ['from-file'], secret_hash: await fastHash('plain-secret-9') }],
            other: {},
          },
        });
      }
      for (const statement of REGISTRY_SCHEMA) await pool.query(statement);
      const again = new PostgresRegistryBackend({ pool, logger: silentLogger(), configDir: dir, hash: fastHash }, { pollMs: POLL_MS });
      await again.start();
      await again.stop();
      expect(again.read().version).toBe(1);
    } finally {
      await pool.end();
    }
  }, 30_000);

  it('watchpost import with a cluster section writes into PostgreSQL, and every instance takes the rows', async () => {
    const url = await database();
    const b = await instance(url);
    const dir = configDir();
    writeFileSync(join(dir, 'cluster.yaml'), stringify({ cluster: { instance_id: 'importer', amqp_url: 'amqp://u:p@127.0.0.1:5672/', postgres_url: url } }));
    const csv = join(dir, 'inventory.csv');
    writeFileSync(csv, 'kind,id,type,name,street,sensors,assets,secret_hash\nasset,imp-1,bridge,桥,街道,strain-01:strain,,\ndevice,imp-dev,,,,,imp-1,\n');
    const stdout = vi.spyOn(process.stdout, 'write').mockImplementation(() => true);
    const stderr = vi.spyOn(process.stderr, 'write').mockImplementation(() => true);
    let code: number;
    let err: string;
    let printed: string;
    try {
      code = await runImport(dir, [csv], false);
    } finally {
      err = stderr.mock.calls.map((c) => String(c[0])).join('');
      printed = stdout.mock.calls.map((c) => String(c[0])).join('');
      stdout.mockRestore();
      stderr.mockRestore();
    }
    expect(err).toMatch(/1 assets added, 0 replaced; 1 devices added, 0 replaced in the registry in PostgreSQL \(127\.0\.0\.1:\d+\)/);
    expect(code).toBe(0);
    const secret = /^imp-dev,(.+)$/m.exec(printed)?.[1];
    expect(secret).toMatch(/^[A-Za-z0-9_-]{43}$/);
    expect(existsSync(join(dir, 'registry.yaml'))).toBe(false);
    await until('the import in B', () => b.current().assets.some((x) => x.id === 'imp-1') && b.current().devices.some((d) => d.id === 'imp-dev'), 5000);
    const device = b.current().devices.find((d) => d.id === 'imp-dev')!;
    expect(await new SecretVerifier(b.current().devices).verify(device, Buffer.from(secret!))).toBe(true);
  }, 60_000);

  it('random changes through either instance: both converge on what a fresh load of the database gives, refused ones change nothing', async () => {
    type Op = { on: 0 | 1; kind: 'putAsset' | 'deleteAsset' | 'putDevice' | 'deleteDevice' | 'rotate'; id: string; assets: string[]; type: string };
    const op: fc.Arbitrary<Op> = fc.record({
      on: fc.constantFrom(0 as const, 1 as const),
      kind: fc.constantFrom('putAsset' as const, 'putAsset' as const, 'deleteAsset' as const, 'putDevice' as const, 'putDevice' as const, 'deleteDevice' as const, 'rotate' as const),
      id: fc.constantFrom('p1', 'p2', 'base-asset', 'base-device'),
      assets: fc.subarray(['p1', 'p2', 'base-asset', 'nowhere'], { maxLength: 2 }),
      type: fc.constantFrom('bridge', 'slope', 'Bad!'),
    });
    const view = (c: WatchpostConfig) => ({
      assets: c.assets.map((a) => ({ id: a.id, type: a.type })),
      devices: c.devices.map((d) => ({ id: d.id, assets: d.assets, secret_hash: d.secret_hash })),
    });
    await fc.assert(
      fc.asyncProperty(fc.array(op, { minLength: 1, maxLength: 10 }), async (ops) => {
        const url = await database();
        const pair = [await instance(url), await instance(url)] as const;
        for (const o of ops) {
          const r = pair[o.on].registry;
          const before = pair[o.on].backend.read().version;
          let refused = false;
          try {
            if (o.kind === 'putAsset') await r.putAsset(o.id, { type: o.type, name: o.id, street: 's' });
            else if (o.kind === 'deleteAsset') await r.deleteAsset(o.id);
            else if (o.kind === 'putDevice') await r.putDevice(o.id, { assets: o.assets, secret: `secret-of-${o.id}` });
            else if (o.kind === 'deleteDevice') await r.deleteDevice(o.id);
            else await r.rotateSecret(o.id);
          } catch (err) {
            if (!(err instanceof RegistryError) || err.status >= 500) throw err;
            refused = true;
          }
          const version = pair[o.on].backend.read().version;
          if (refused) expect(version).toBe(before);
          const other = pair[1 - o.on]!;
          await until('the other instance at the same version', () => other.backend.read().version === version, 5000);
          await until('the other instance reloaded', () => JSON.stringify(view(other.current())) === JSON.stringify(view(pair[o.on].current())), 5000);
        }
        const fresh = await instance(url);
        expect(view(fresh.current())).toEqual(view(pair[0].current()));
        expect(view(pair[1].current())).toEqual(view(pair[0].current()));
        for (const i of open.splice(0)) {
          await i.backend.stop();
          await i.pool.end();
        }
      }),
      params(6),
    );
  }, 180_000);

  it('an unreachable PostgreSQL at start is a clear error naming it', async () => {
    const port = await freePort();
    const backend = registryBackend(
      { cluster: { instance_id: 'i1', amqp_url: 'amqp://u:p@127.0.0.1:5672/', postgres_url: `postgres://watchpost:x@127.0.0.1:${port}/watchpost`, partitions: 16 } },
      { configDir: configDir(), logger: silentLogger() },
      { queryTimeoutMs: 2000 },
    );
    try {
      await expect(backend.start()).rejects.toThrow(/^PostgreSQL \(the registry\): .*ECONNREFUSED/);
    } finally {
      await backend.stop();
    }
  });
});
