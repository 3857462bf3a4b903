/**
 * Several instances on one PostgreSQL database, each in a process of its own (a bundle of
 * test/support/postgres-store-child.ts): they migrate a new database once, never open two alerts
 * for one key however their transactions interleave, and serialize read-modify-write of one alert.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { copyFileSync, mkdirSync, rmSync } from 'node:fs';
import path from 'node:path';
import { createInterface, type Interface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import { buildSync } from 'esbuild';
import pg from 'pg';
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import type { ChildCommand, RaceOutcome } from '../../test/support/postgres-store-child.js';
import { raceAlert } from '../../test/support/postgres-store-child.js';
import { postgresAvailable, startPostgres, type PgServer } from '../../test/support/postgres.js';
import { SCHEMA_VERSION } from './migrations.js';
import { PostgresAlertStore } from './postgres-alert-store.js';

const here = path.dirname(fileURLToPath(import.meta.url));
const root = path.resolve(here, '../..');
// Inside the repository, so that the bundle and its worker resolve `pg` from node_modules.
const bundleDir = path.join(root, 'node_modules', '.cache', `watchpost-pg-child-${process.pid}`);
const bundle = path.join(bundleDir, 'child.mjs');

class Child {
  private readonly proc: ChildProcess;
  private readonly lines: Interface;
  private readonly waiting: Array<(line: string) => void> = [];
  private stderr = '';

  constructor(url: string) {
    this.proc = spawn(process.execPath, [bundle, url], { stdio: ['pipe', 'pipe', 'pipe'] });
    this.proc.stderr!.on('data', (d: Buffer) => (this.stderr = (this.stderr + d.toString()).slice(-4000)));
    this.lines = createInterface({ input: this.proc.stdout! });
    this.lines.on('line', (line) => this.waiting.shift()?.(line));
  }

  /** Resolves once the process listens. */
  ready(): Promise<string> {
    return this.next();
  }

  async send(command: ChildCommand): Promise<unknown> {
    const answer = this.next();
    this.proc.stdin!.write(`${JSON.stringify(command)}\n`);
    const parsed = JSON.parse(await answer) as { ok: boolean; result?: unknown; error?: string };
    if (!parsed.ok) throw new Error(`child: ${parsed.error}`);
    return parsed.result;
  }

  kill(): void {
    this.proc.kill('SIGKILL');
  }

  private next(): Promise<string> {
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`no answer from the child in 30 s; stderr: ${this.stderr}`)), 30_000);
      this.waiting.push((line) => {
        clearTimeout(timer);
        resolve(line);
      });
    });
  }
}

describe.skipIf(!postgresAvailable)('PostgreSQL alert store: several instances at once', () => {
  let server: PgServer;
  let url: string;
  let databases = 0;
  let children: Child[] = [];

  const start = async (n: number): Promise<Child[]> => {
    const started = Array.from({ length: n }, () => new Child(url));
    children.push(...started);
    await Promise.all(started.map((c) => c.ready()));
    return started;
  };

  beforeAll(async () => {
    mkdirSync(bundleDir, { recursive: true });
    buildSync({
      entryPoints: [path.join(root, 'test/support/postgres-store-child.ts')],
      bundle: true,
      platform: 'node',
      format: 'esm',
      target: 'node20',
      packages: 'external',
      outfile: bundle,
      logLevel: 'error',
    });
    copyFileSync(path.join(here, 'pg-worker.mjs'), path.join(bundleDir, 'pg-worker.mjs'));
    server = await startPostgres();
  });

  afterAll(async () => {
    await server?.destroy();
    rmSync(bundleDir, { recursive: true, force: true });
  });

  beforeEach(async () => {
    url = await server.createDatabase(`pg_race_${++databases}`);
  });

  afterEach(() => {
    for (const c of children) c.kill();
    children = [];
  });

  it('migrates a new database once when several instances open it together', async () => {
    const instances = await start(4);
    expect(await Promise.all(instances.map((c) => c.send({ op: 'open' })))).toEqual(['open', 'open', 'open', 'open']);
    const admin = new pg.Client(url);
    await admin.connect();
    try {
      expect((await admin.query('SELECT version FROM watchpost_schema ORDER BY version')).rows).toEqual(Array.from({ length: SCHEMA_VERSION }, (_, i) => ({ version: i + 1 })));
      expect((await admin.query(`SELECT count(*)::int AS n FROM pg_tables WHERE schemaname = 'public' AND tablename = 'alerts'`)).rows).toEqual([{ n: 1 }]);
    } finally {
      await admin.end();
    }
  });

  it('opens at most one alert per (rule, asset, sensor) when two instances race for it', async () => {
    const [a, b] = await start(2);
    await a!.send({ op: 'open' });
    await b!.send({ op: 'open' });
    const rounds = 8;
    const outcomes: RaceOutcome[][] = [];
    for (let i = 0; i < rounds; i++) {
      const key = { ruleId: 'bridge-strain', assetId: 'lg-bridge-001', sensorId: `strain-${i}` };
      // Both look, find nothing, and insert: the second insert waits for the first transaction, then fails.
      const round = (await Promise.all([a!.send({ op: 'race', id: `a-${i}`, key, windowMs: 300 }), b!.send({ op: 'race', id: `b-${i}`, key, windowMs: 300 })])) as RaceOutcome[];
      outcomes.push(round);
    }
    for (const round of outcomes) {
      expect(round.filter((o) => o === 'inserted')).toHaveLength(1);
      expect(round.filter((o) => o !== 'inserted')).toHaveLength(1);
    }
    // The index, not luck, decided: in most rounds both looked before either committed.
    expect(outcomes.filter((r) => r.includes('conflict')).length).toBeGreaterThan(0);
    const store = PostgresAlertStore.open(url);
    try {
      const open = store.openAlerts('bridge-strain');
      expect(open).toHaveLength(rounds);
      expect(new Set(open.map((x) => x.sensorId)).size).toBe(rounds);
    } finally {
      store.close();
    }
  });

  it('serializes read-modify-write of one alert by two instances (no lost update)', async () => {
    const store = PostgresAlertStore.open(url);
    try {
      store.insertAlert(raceAlert('al_1', { ruleId: 'bridge-strain', assetId: 'lg-bridge-001', sensorId: 'strain-01' }));
      const [a, b] = await start(2);
      await Promise.all([a!.send({ op: 'open' }), b!.send({ op: 'open' })]);
      expect(await Promise.all([a!.send({ op: 'increment', id: 'al_1', times: 25 }), b!.send({ op: 'increment', id: 'al_1', times: 25 })])).toEqual([25, 25]);
      expect(store.getAlert('al_1')?.value).toBe(50);
    } finally {
      store.close();
    }
  });
});
