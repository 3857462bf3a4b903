/**
 * The versioned schema owns the tables of the cluster's parts too (leases, rule checkpoints, the
 * run-time registry), which create them themselves when they start first: whichever runs first,
 * the tables come out the same, and the other finds nothing left to do.
 */
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { CLUSTER_LEASES_DDL } from '../../cluster/leases.js';
import { RULE_CHECKPOINTS_DDL } from '../../cluster/rule-checkpoints.js';
import { REGISTRY_SCHEMA } from '../../server/registry-postgres.js';
import { postgresAvailable, startPostgres, type PgServer } from '../../test/support/postgres.js';
import { SCHEMA_VERSION } from './migrations.js';
import { PostgresAlertStore } from './postgres-alert-store.js';

const TABLES = ['cluster_instances', 'cluster_leases', 'rule_checkpoints', 'registry_state', 'registry_entries'];

async function withClient<T>(url: string, fn: (c: pg.Client) => Promise<T>): Promise<T> {
  const client = new pg.Client(url);
  await client.connect();
  try {
    return await fn(client);
  } finally {
    await client.end();
  }
}

/** Columns, constraints and indexes of the shared tables, comparable across databases. */
function shape(url: string) {
  return withClient(url, async (c) => ({
    columns: (
      await c.query(
        `SELECT table_name, column_name, data_type, is_nullable, column_default FROM information_schema.columns WHERE table_name = ANY($1) ORDER BY table_name, ordinal_position`,
        [TABLES],
      )
    ).rows,
    constraints: (
      await c.query(`SELECT conrelid::regclass::text AS table_name, conname, pg_get_constraintdef(oid) AS def FROM pg_constraint WHERE conrelid::regclass::text = ANY($1) ORDER BY 1, 2`, [
        TABLES,
      ])
    ).rows,
    indexes: (await c.query(`SELECT tablename, indexname, indexdef FROM pg_indexes WHERE tablename = ANY($1) ORDER BY 1, 2`, [TABLES])).rows,
    registry: (await c.query('SELECT id, version FROM registry_state')).rows,
  }));
}

async function theirDdl(url: string): Promise<void> {
  await withClient(url, async (c) => {
    await c.query(CLUSTER_LEASES_DDL);
    await c.query(RULE_CHECKPOINTS_DDL);
    for (const sql of REGISTRY_SCHEMA) await c.query(sql);
  });
}

describe.skipIf(!postgresAvailable)('PostgreSQL schema shared with the cluster', () => {
  let server: PgServer;

  beforeAll(async () => {
    server = await startPostgres();
  });

  afterAll(async () => {
    await server?.destroy();
  });

  it('comes out the same whether the store or the cluster parts create the tables first', async () => {
    const storeFirst = await server.createDatabase('store_first');
    const partsFirst = await server.createDatabase('parts_first');

    PostgresAlertStore.open(storeFirst).close();
    await theirDdl(storeFirst);

    await theirDdl(partsFirst);
    PostgresAlertStore.open(partsFirst).close();

    const a = await shape(storeFirst);
    expect(a.columns.map((r) => `${r.table_name}.${r.column_name}`)).toEqual([
      'cluster_instances.instance_id',
      'cluster_instances.heartbeat_at',
      'cluster_instances.started_at',
      'cluster_leases.name',
      'cluster_leases.owner',
      'cluster_leases.epoch',
      'cluster_leases.expires_at',
      'registry_entries.kind',
      'registry_entries.id',
      'registry_entries.body',
      'registry_entries.position',
      'registry_entries.version',
      'registry_state.id',
      'registry_state.version',
      'rule_checkpoints.asset_id',
      'rule_checkpoints.partition',
      'rule_checkpoints.state',
      'rule_checkpoints.updated_at',
    ]);
    expect(await shape(partsFirst)).toEqual(a);
    for (const url of [storeFirst, partsFirst]) {
      expect(await withClient(url, async (c) => (await c.query('SELECT version FROM watchpost_schema ORDER BY version')).rows)).toEqual(
        Array.from({ length: SCHEMA_VERSION }, (_, i) => ({ version: i + 1 })),
      );
    }
  });
});
