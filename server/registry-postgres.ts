/**
 * The registry's run-time changes in PostgreSQL (contract: "Cluster mode"): every instance reads
 * the same configuration directory, and the assets and devices added, replaced and retired
 * through the API live in the shared database instead of registry.yaml, in registry.yaml's place
 * when the configuration is loaded.
 *
 * Tables: `registry_entries` holds one row per asset or device, its body as the JSON item
 * registry.yaml would hold (devices with `secret_hash` only: a CHECK refuses a plain `secret`),
 * the version that last changed it, and a position that keeps the order the same on every
 * instance; a retired item stays as a row without body (a tombstone), so that readers see the
 * deletion. `registry_state` holds the registry's version, which every write raises by one.
 *
 * Writes: one transaction raises the version only if it is still the one the change was computed
 * from (`WHERE version = $base`), then writes the changed items with that new version. Two
 * instances writing at once: the second finds the version moved, nothing of it is kept, and the
 * registry computes its change again from the new content (registry.ts), so neither is lost.
 *
 * Reads: an in-memory copy, so that the configuration loader stays synchronous. Every `pollMs`
 * one statement fetches the version and the items changed since the copy's; a change from another
 * instance updates the copy and tells the listeners, which reload through the validated path
 * (config-reload.ts). While PostgreSQL is unreachable the copy stays in force, writes answer 503
 * `registry_unavailable`, and the poll catches up when it is back.
 */
import pg from 'pg';
import { hashSecret } from '../ingest/device-auth.js';
import type { Logger } from '../lib/logger.js';
import type { WatchpostConfig } from './config/schema.js';
import { FileRegistryBackend, RegistryConflict, RegistryError, type RegistryBackend, type RegistrySnapshot } from './registry-backend.js';
import { readRegistry, REGISTRY_FILE, renderRegistry, type RawItem, type RegistryContent } from './registry-file.js';

/**
 * The tables, created at start if absent (the store's migrations own them too). Each statement
 * on its own, run in one transaction under an advisory lock, so instances starting together do
 * not race.
 */
export const REGISTRY_SCHEMA: readonly string[] = [
  `CREATE TABLE IF NOT EXISTS registry_state (
  id smallint PRIMARY KEY CHECK (id = 1),
  version bigint NOT NULL CHECK (version >= 0)
)`,
  `INSERT INTO registry_state (id, version) VALUES (1, 0) ON CONFLICT (id) DO NOTHING`,
  `CREATE TABLE IF NOT EXISTS registry_entries (
  kind text NOT NULL CHECK (kind IN ('asset', 'device')),
  id text NOT NULL CHECK (id ~ '^[A-Za-z0-9_.-]{1,64}$'),
  body json CHECK (body IS NULL OR (json_typeof(body) = 'object' AND body->>'id' = id)),
  position bigint NOT NULL,
  version bigint NOT NULL CHECK (version > 0),
  PRIMARY KEY (kind, id),
  CONSTRAINT registry_entries_no_plain_secret CHECK (kind <> 'device' OR body IS NULL OR body->'secret' IS NULL)
)`,
  `CREATE INDEX IF NOT EXISTS registry_entries_version ON registry_entries (version)`,
];

/** The advisory lock of the alert store's migrations (alerts/postgres/migrations.ts, "wpschema"): schema changes of one database never run side by side. */
const SCHEMA_LOCK_KEY = 0x7770736368656d61n;

type Kind = 'asset' | 'device';
/** Returned by a transaction's work to roll it back (a write whose base version is gone). */
const ROLLBACK = Symbol('rollback');
const SECTION: Record<Kind, 'assets' | 'devices'> = { asset: 'assets', device: 'devices' };

/** The registry's statements, one named function each. */
const sql = {
  lockSchema: (): pg.QueryConfig => ({ text: 'SELECT pg_advisory_xact_lock($1)', values: [SCHEMA_LOCK_KEY.toString()] }),
  /** The version and every item changed after `since` (tombstones too), in one snapshot. */
  changesSince: (since: number): pg.QueryConfig => ({
    text: `SELECT s.version AS registry_version, e.kind, e.id, e.body, e.position, e.version
FROM registry_state s LEFT JOIN registry_entries e ON e.version > $1
WHERE s.id = 1
ORDER BY e.position`,
    values: [since],
  }),
  /** Holds every other writer off until this transaction ends (their FOR UPDATE waits for it). */
  lockRegistry: (): pg.QueryConfig => ({ text: 'SELECT version FROM registry_state WHERE id = 1 FOR UPDATE' }),
  lockTimeout: (ms: number): pg.QueryConfig => ({ text: `SET LOCAL lock_timeout = ${Math.floor(ms)}` }),
  /** Raises the version if it is still `base`; no row when another writer was first. */
  claimVersion: (base: number): pg.QueryConfig => ({ text: 'UPDATE registry_state SET version = version + 1 WHERE id = 1 AND version = $1 RETURNING version', values: [base] }),
  /**
   * Writes the changed items (body null: retired) at `version`. New items (and retired ones
   * that come back) go after every other, in the order given; replaced ones keep their place.
   */
  writeEntries: (version: number, kinds: Kind[], ids: string[], bodies: Array<string | null>): pg.QueryConfig => ({
    text: `INSERT INTO registry_entries (kind, id, body, position, version)
SELECT c.kind, c.id, c.body, (SELECT coalesce(max(position), 0) FROM registry_entries) + c.n, $1
FROM unnest($2::text[], $3::text[], $4::json[]) WITH ORDINALITY AS c(kind, id, body, n)
ON CONFLICT (kind, id) DO UPDATE SET
  body = excluded.body,
  version = excluded.version,
  position = CASE WHEN registry_entries.body IS NULL THEN excluded.position ELSE registry_entries.position END
RETURNING kind, id, position`,
    values: [version, kinds, ids, bodies],
  }),
};

export interface PostgresRegistryOptions {
  /** How often the version is polled for other instances' changes. */
  pollMs: number;
  /** A statement (or getting a connection) that takes longer counts as PostgreSQL unreachable. */
  queryTimeoutMs: number;
}

export const DEFAULT_POSTGRES_REGISTRY_OPTIONS: PostgresRegistryOptions = { pollMs: 1000, queryTimeoutMs: 5000 };

/** How long a change waits for another instance's change to finish before it gives up (409, send it again). */
const LOCK_WAIT_MS = 10_000;
/** SQLSTATE lock_not_available: the lock wait above ran out. */
const LOCK_NOT_AVAILABLE = '55P03';

export interface PostgresRegistryDeps {
  pool: pg.Pool;
  logger: Logger;
  /** The configuration directory: its registry.yaml is copied into an empty database once. */
  configDir: string;
  /** Hashes a plain `secret` of that registry.yaml (only hashes are kept in PostgreSQL). */
  hash?: (secret: string) => Promise<string>;
  /** stop() ends the pool too (the backend made it). */
  ownsPool?: boolean;
}

interface Entry {
  body: RawItem;
  position: number;
}

interface Written {
  version: number;
  rows: Array<{ kind: Kind; id: string; position: string }>;
}

interface Row {
  registry_version: string;
  kind: Kind | null;
  id: string | null;
  body: RawItem | null;
  position: string | null;
}

/** PostgreSQL's SQLSTATE classes that mean the statement itself is wrong (data, constraint, syntax): not an outage. */
const STATEMENT_ERROR_CLASSES = new Set(['22', '23', '42']);

function isOutage(err: unknown): boolean {
  const code = (err as { code?: unknown }).code;
  return !(typeof code === 'string' && code.length === 5 && STATEMENT_ERROR_CLASSES.has(code.slice(0, 2)));
}

/** An error's message, or its code (a refused connection to several addresses has no message). */
function reason(err: unknown): string {
  if (err instanceof Error && err.message !== '') return err.message;
  const code = (err as { code?: unknown } | undefined)?.code;
  return typeof code === 'string' ? code : 'unknown error';
}

export class PostgresRegistryBackend implements RegistryBackend {
  readonly where = 'the registry in PostgreSQL';
  private readonly log: Logger;
  private readonly options: PostgresRegistryOptions;
  private readonly entries: Record<'assets' | 'devices', Map<string, Entry>> = { assets: new Map(), devices: new Map() };
  private version = 0;
  private snapshot?: RegistrySnapshot;
  private rendered?: ReadonlyMap<string, string>;
  private readonly listeners = new Set<() => void>();
  private timer?: NodeJS.Timeout;
  private polling?: Promise<boolean>;
  private lastError: string | undefined;
  /** The transaction of the change in progress (exclusive), which write() commits. */
  private held?: { client: pg.PoolClient; committed: boolean };
  private changes: Promise<unknown> = Promise.resolve();

  constructor(
    private readonly deps: PostgresRegistryDeps,
    options: Partial<PostgresRegistryOptions> = {},
  ) {
    this.options = { ...DEFAULT_POSTGRES_REGISTRY_OPTIONS, ...options };
    this.log = deps.logger.child({ module: 'registry-postgres' });
  }

  /** Creates the tables if absent, copies registry.yaml into an empty registry, loads the copy and starts polling. */
  async start(): Promise<void> {
    try {
      await this.transaction(async (client) => {
        await this.query(client, sql.lockSchema());
        for (const statement of REGISTRY_SCHEMA) await this.query(client, { text: statement });
      });
      await this.refresh();
    } catch (err) {
      throw new Error(`PostgreSQL (the registry): ${reason(err)}`, { cause: err });
    }
    await this.seedFromFile();
    if (!this.timer) {
      this.timer = setInterval(() => void this.poll(), this.options.pollMs);
      this.timer.unref();
    }
  }

  async stop(): Promise<void> {
    if (this.timer) clearInterval(this.timer);
    this.timer = undefined;
    await this.polling;
    if (this.deps.ownsPool) await this.deps.pool.end();
  }

  read(): RegistrySnapshot {
    this.snapshot ??= {
      version: this.version,
      content: { assets: this.items('assets'), devices: this.items('devices'), other: {} },
    };
    return this.snapshot;
  }

  overrides(): ReadonlyMap<string, string> {
    this.rendered ??= new Map([[REGISTRY_FILE, renderRegistry(this.read().content)]]);
    return this.rendered;
  }

  unwritable(): undefined {
    return undefined; // known only by trying: a write answers 503 while PostgreSQL is unreachable
  }

  onChange(listener: () => void): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  /** For /healthz and logs: the copy's version and whether the last statement reached PostgreSQL. */
  status(): { version: number; reachable: boolean; error?: string } {
    return { version: this.version, reachable: this.lastError === undefined, ...(this.lastError !== undefined ? { error: this.lastError } : {}) };
  }

  /**
   * Runs one change in a transaction that holds the registry's row lock: another instance's
   * change waits for it, and the copy is brought up to the latest version before `fn` reads it.
   * write() commits the transaction; without a write it is rolled back.
   */
  exclusive<T>(fn: () => Promise<T>): Promise<T> {
    // One at a time in this process too: the held transaction is the backend's.
    const run = this.changes.then(
      () => this.locked(fn),
      () => this.locked(fn),
    );
    this.changes = run.catch(() => undefined);
    return run;
  }

  private async locked<T>(fn: () => Promise<T>): Promise<T> {
    let client: pg.PoolClient;
    try {
      client = await this.connect();
    } catch (err) {
      throw this.unavailable(err);
    }
    try {
      await this.query(client, { text: 'BEGIN' });
      await this.query(client, sql.lockTimeout(LOCK_WAIT_MS));
      await this.query(client, sql.lockRegistry(), this.options.queryTimeoutMs + LOCK_WAIT_MS);
      const changed = await this.refresh(client);
      this.reachable();
      if (changed) this.notify();
    } catch (err) {
      client.release(err as Error);
      if ((err as { code?: unknown }).code === LOCK_NOT_AVAILABLE) throw new RegistryConflict('another change of the registry took too long');
      if (!isOutage(err)) throw err;
      throw this.unavailable(err);
    }
    const held = { client, committed: false };
    this.held = held;
    try {
      return await fn();
    } finally {
      this.held = undefined;
      if (held.committed) client.release();
      else {
        try {
          await this.query(client, { text: 'ROLLBACK' });
          client.release();
        } catch (err) {
          client.release(err as Error);
        }
      }
    }
  }

  async write(base: RegistrySnapshot, next: RegistryContent, _text: string): Promise<void> {
    if (base.version !== this.version) throw new RegistryConflict();
    const kinds: Kind[] = [];
    const ids: string[] = [];
    const bodies: Array<string | null> = [];
    for (const kind of ['asset', 'device'] as const) {
      const section = SECTION[kind];
      const before = new Map(base.content[section].map((item) => [item.id, item]));
      const after = new Set<string>();
      for (const item of next[section]) {
        after.add(item.id);
        if (kind === 'device' && item.secret !== undefined) throw new Error(`device "${item.id}" has a plain secret: only its scrypt hash may be kept in PostgreSQL`);
        const body = JSON.stringify(item);
        const old = before.get(item.id);
        if (old !== undefined && JSON.stringify(old) === body) continue;
        kinds.push(kind);
        ids.push(item.id);
        bodies.push(body);
      }
      for (const id of before.keys()) {
        if (after.has(id)) continue;
        kinds.push(kind);
        ids.push(id);
        bodies.push(null);
      }
    }
    if (kinds.length === 0) return;

    const held = this.held;
    let written: Written | undefined;
    try {
      if (held) {
        written = await this.writeChanges(held.client, base.version, kinds, ids, bodies);
        if (written) {
          await this.query(held.client, { text: 'COMMIT' });
          held.committed = true;
        }
      } else {
        written = await this.transaction(async (client) => (await this.writeChanges(client, base.version, kinds, ids, bodies)) ?? ROLLBACK);
      }
    } catch (err) {
      if (!isOutage(err)) throw err;
      throw this.unavailable(err);
    }
    this.reachable();
    if (!written) {
      // Another instance was first: take its change, then the registry computes this one again.
      if (!held) await this.refresh().catch((err: unknown) => this.unreachable(err));
      throw new RegistryConflict();
    }
    const position = new Map(written.rows.map((r) => [`${r.kind}\u0000${r.id}`, Number(r.position)]));
    for (let i = 0; i < kinds.length; i++) {
      const map = this.entries[SECTION[kinds[i]!]];
      const body = bodies[i]!;
      if (body === null) map.delete(ids[i]!);
      else map.set(ids[i]!, { body: JSON.parse(body) as RawItem, position: position.get(`${kinds[i]}\u0000${ids[i]}`)! });
    }
    // A poll that fetched this version already has applied it.
    this.version = Math.max(this.version, written.version);
    this.invalidate();
  }

  /** Raises the version from `base` and writes the changed items at the new one; undefined when `base` is gone. */
  private async writeChanges(client: pg.PoolClient, base: number, kinds: Kind[], ids: string[], bodies: Array<string | null>): Promise<Written | undefined> {
    const claimed = await this.query<{ version: string }>(client, sql.claimVersion(base));
    if (claimed.rowCount !== 1) return undefined;
    const version = Number(claimed.rows[0]!.version);
    const result = await this.query<{ kind: Kind; id: string; position: string }>(client, sql.writeEntries(version, kinds, ids, bodies));
    return { version, rows: result.rows };
  }

  /** The answer to a change while PostgreSQL cannot be reached. */
  private unavailable(err: unknown): RegistryError {
    this.unreachable(err);
    return new RegistryError('registry_unavailable', `PostgreSQL (the registry) cannot be reached: ${reason(err)}; nothing changed`, 503);
  }

  /**
   * Fetches the changes since the copy's version and applies them; true when something changed.
   * Rejects when PostgreSQL cannot be reached (the copy stays as it is).
   */
  async refresh(client?: pg.PoolClient): Promise<boolean> {
    const since = this.version;
    let rows = await this.changesSince(since, client);
    const latest = Number(rows[0]?.registry_version ?? 0);
    if (latest === since) return false;
    const fresh = latest < since; // the database was replaced: start again from nothing
    if (fresh) rows = await this.changesSince(0, client);
    if (this.version !== since) return false; // a write of this instance came in between: the next poll takes it from there
    if (fresh) for (const map of Object.values(this.entries)) map.clear();
    for (const row of rows) {
      if (row.kind === null || row.id === null) continue;
      const map = this.entries[SECTION[row.kind]];
      if (row.body === null) map.delete(row.id);
      else map.set(row.id, { body: row.body, position: Number(row.position) });
    }
    this.version = Number(rows[0]!.registry_version);
    this.invalidate();
    return true;
  }

  /** One poll at a time; a change tells the listeners, an outage is logged once. */
  private poll(): Promise<boolean> {
    this.polling ??= this.refresh()
      .then((changed) => {
        this.reachable();
        if (changed) this.notify();
        return changed;
      })
      .catch((err: unknown) => {
        this.unreachable(err);
        return false;
      })
      .finally(() => {
        this.polling = undefined;
      });
    return this.polling;
  }

  private async changesSince(since: number, held?: pg.PoolClient): Promise<Row[]> {
    if (held) return (await this.query<Row>(held, sql.changesSince(since))).rows;
    const client = await this.connect();
    try {
      const result = await this.query<Row>(client, sql.changesSince(since));
      client.release();
      return result.rows;
    } catch (err) {
      client.release(err as Error);
      throw err;
    }
  }

  /**
   * An empty registry (version 0) takes the directory's registry.yaml once, so that a single
   * instance's changes carry over into the cluster; plain secrets there are hashed first.
   * Another instance seeding at the same time wins or loses the version like any writer.
   */
  private async seedFromFile(): Promise<void> {
    if (this.version !== 0) return;
    const content = readRegistry(this.deps.configDir);
    if (!content || content.assets.length + content.devices.length === 0) return;
    const hash = this.deps.hash ?? hashSecret;
    const devices: RawItem[] = [];
    for (const device of content.devices) {
      const { secret, ...rest } = device;
      devices.push(typeof secret === 'string' && rest.secret_hash === undefined ? { ...rest, secret_hash: await hash(secret) } : rest);
    }
    const next = { assets: content.assets, devices, other: {} };
    const seeded = await this.exclusive(async () => {
      if (this.version !== 0) return false; // another instance was first
      await this.write(this.read(), next, renderRegistry(next));
      return true;
    });
    if (seeded) this.log.info({ assets: next.assets.length, devices: next.devices.length }, `the empty registry in PostgreSQL took the items of ${REGISTRY_FILE}`);
  }

  private items(section: 'assets' | 'devices'): RawItem[] {
    return [...this.entries[section].values()].sort((a, b) => a.position - b.position).map((e) => e.body);
  }

  private invalidate(): void {
    this.snapshot = undefined;
    this.rendered = undefined;
  }

  private notify(): void {
    for (const listener of this.listeners) {
      try {
        listener();
      } catch (err) {
        this.log.error({ err }, 'applying a registry change from PostgreSQL failed');
      }
    }
  }

  private reachable(): void {
    if (this.lastError === undefined) return;
    this.lastError = undefined;
    this.log.info({ version: this.version }, 'PostgreSQL (the registry) is reachable again');
  }

  private unreachable(err: unknown): void {
    const message = reason(err);
    if (this.lastError === undefined) this.log.warn({ err: message }, 'PostgreSQL (the registry) cannot be reached: the last copy stays in force, changes are refused');
    this.lastError = message;
  }

  /** A pooled connection, or a rejection after queryTimeoutMs (the pool alone may wait forever). */
  private async connect(): Promise<pg.PoolClient> {
    const pending = this.deps.pool.connect();
    let timer: NodeJS.Timeout | undefined;
    const timeout = new Promise<never>((_, reject) => {
      timer = setTimeout(() => reject(new Error(`no connection within ${this.options.queryTimeoutMs} ms`)), this.options.queryTimeoutMs);
    });
    try {
      return await Promise.race([pending, timeout]);
    } catch (err) {
      pending.then(
        (client) => client.release(),
        () => undefined,
      );
      throw err;
    } finally {
      clearTimeout(timer);
    }
  }

  private query<R extends pg.QueryResultRow>(client: pg.PoolClient, config: pg.QueryConfig, timeoutMs = this.options.queryTimeoutMs): Promise<pg.QueryResult<R>> {
    // query_timeout per statement: pg honours it on the query's config (its types omit it).
    return client.query<R>({ ...config, query_timeout: timeoutMs } as pg.QueryConfig);
  }

  /** Runs `fn` in a transaction: committed, or rolled back when it returns ROLLBACK (then undefined). */
  private async transaction<T>(fn: (client: pg.PoolClient) => Promise<T | typeof ROLLBACK>): Promise<T | undefined> {
    const client = await this.connect();
    try {
      await this.query(client, { text: 'BEGIN' });
      const result = await fn(client);
      await this.query(client, { text: result === ROLLBACK ? 'ROLLBACK' : 'COMMIT' });
      client.release();
      return result === ROLLBACK ? undefined : result;
    } catch (err) {
      // The connection's state is unknown (a timeout, a dropped socket): it is not reused.
      client.release(err as Error);
      throw err;
    }
  }
}

/** Connections of a pool the backend makes itself: a poll and a change in progress at most. */
const OWN_POOL_SIZE = 2;

/**
 * Where the registry keeps its changes for this configuration: PostgreSQL when it has a
 * `cluster` section, registry.yaml in the directory otherwise. In a cluster it uses `pool`
 * if given, else a small pool of its own on `cluster.postgres_url` that stop() ends.
 */
export function registryBackend(
  config: Pick<WatchpostConfig, 'cluster'>,
  deps: { configDir: string; logger: Logger; pool?: pg.Pool; hash?: (secret: string) => Promise<string> },
  options: Partial<PostgresRegistryOptions> = {},
): RegistryBackend {
  if (!config.cluster) return new FileRegistryBackend(deps.configDir);
  let pool = deps.pool;
  if (!pool) {
    const timeoutMs = options.queryTimeoutMs ?? DEFAULT_POSTGRES_REGISTRY_OPTIONS.queryTimeoutMs;
    pool = new pg.Pool({ connectionString: config.cluster.postgres_url, max: OWN_POOL_SIZE, connectionTimeoutMillis: timeoutMs, idleTimeoutMillis: 30_000 });
    // An idle connection PostgreSQL dropped: the next statement reports the outage (an unhandled 'error' would end the process).
    pool.on('error', () => undefined);
  }
  return new PostgresRegistryBackend({ pool, logger: deps.logger, configDir: deps.configDir, ownsPool: !deps.pool, ...(deps.hash ? { hash: deps.hash } : {}) }, options);
}
