/**
 * Versioned migrations of alerts.db: a new database gets the current schema, older ones are
 * brought forward keeping their data, a newer one is refused.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import Database from 'better-sqlite3';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { SCHEMA_VERSION } from './migrations.js';
import { SqliteAlertStore } from './sqlite-alert-store.js';

function inspect(file: string) {
  const db = new Database(file, { readonly: true });
  try {
    const columnsOf = (table: string) => (db.prepare(`SELECT name FROM pragma_table_info(?)`).all(table) as Array<{ name: string }>).map((c) => c.name);
    const tables = { alerts: columnsOf('alerts'), outbox: columnsOf('outbox') };
    const columns = (table: keyof typeof tables) => tables[table];
    const indexes = (db.prepare(`SELECT name FROM sqlite_master WHERE type = 'index' AND name NOT LIKE 'sqlite_%' ORDER BY name`).all() as Array<{ name: string }>).map((i) => i.name);
    return { version: db.pragma('user_version', { simple: true }) as number, columns, indexes };
  } finally {
    db.close();
  }
}

describe('alerts.db migrations', () => {
  let dir: string;
  let file: string;

  beforeEach(() => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'watchpost-migrations-'));
    file = path.join(dir, 'alerts.db');
  });

  afterEach(() => fs.rmSync(dir, { recursive: true, force: true }));

  it('creates the current schema in a new database', () => {
    SqliteAlertStore.open(dir).close();
    const db = inspect(file);
    expect(db.version).toBe(SCHEMA_VERSION);
    expect(db.indexes).toEqual(
      expect.arrayContaining([
        'alert_timeline_alert',
        'alerts_asset',
        'alerts_one_open',
        'alerts_resolved',
        'alerts_started',
        'escalation_schedule_due',
        'outbox_alert',
        'outbox_digests_pending',
        'outbox_pending',
      ]),
    );
    expect(db.columns('outbox')).toContain('digest_id');
    expect(db.columns('alerts')).toContain('held_notice');
  });

  it('brings a version 1 database forward, keeping its alerts', () => {
    const store = SqliteAlertStore.open(dir);
    store.close();
    // Version 1: no digests, no held notices, none of the later indexes.
    const db = new Database(file);
    db.exec(`DROP INDEX alerts_resolved; DROP INDEX outbox_alert; DROP INDEX alerts_held; DROP TABLE outbox_digests;
      ALTER TABLE outbox DROP COLUMN digest_id; ALTER TABLE outbox DROP COLUMN claimed_by; ALTER TABLE outbox DROP COLUMN claimed_until; ALTER TABLE alerts DROP COLUMN held_notice;
      INSERT INTO alerts (id, rule_id, asset_id, sensor_id, metric, level, state, value, threshold, event_ts, started_at, updated_at,
        rule_name, asset_name, asset_type, street, message, plan)
      VALUES ('al_old', 'bridge-strain', 'lg-bridge-001', 'strain-01', 'strain', 'red', 'firing', 312.5, '300', 1, 2, 3, 'r', 'a', 'bridge', 's', 'm', '[]');
      PRAGMA user_version = 1;`);
    db.close();

    const reopened = SqliteAlertStore.open(dir);
    try {
      expect(reopened.getAlert('al_old')).toMatchObject({ id: 'al_old', state: 'firing', heldNotice: null, threshold: 300 });
      expect(reopened.pendingDigests()).toEqual([]);
    } finally {
      reopened.close();
    }
    const after = inspect(file);
    expect(after.version).toBe(SCHEMA_VERSION);
    expect(after.indexes).toContain('alerts_resolved');
    expect(after.indexes).toContain('outbox_alert');
    expect(after.columns('outbox')).toContain('digest_id');
  });

  it('adds the version 3 indexes to a version 2 database', () => {
    SqliteAlertStore.open(dir).close();
    const db = new Database(file);
    db.exec('DROP INDEX alerts_resolved; DROP INDEX outbox_alert; PRAGMA user_version = 2;');
    db.close();
    SqliteAlertStore.open(dir).close();
    expect(inspect(file)).toMatchObject({ version: SCHEMA_VERSION });
    expect(inspect(file).indexes).toEqual(expect.arrayContaining(['alerts_resolved', 'outbox_alert']));
  });

  it('adds the claim columns and the held-notice index to a version 5 database, keeping its outbox', () => {
    const store = SqliteAlertStore.open(dir);
    store.close();
    const db = new Database(file);
    db.exec(`DROP INDEX alerts_held; ALTER TABLE outbox DROP COLUMN claimed_by; ALTER TABLE outbox DROP COLUMN claimed_until;
      ALTER TABLE outbox_digests DROP COLUMN claimed_by; ALTER TABLE outbox_digests DROP COLUMN claimed_until;
      INSERT INTO alerts (id, rule_id, asset_id, sensor_id, metric, level, state, value, threshold, event_ts, started_at, updated_at,
        rule_name, asset_name, asset_type, street, message, plan)
      VALUES ('al_old', 'bridge-strain', 'lg-bridge-001', 'strain-01', 'strain', 'red', 'firing', 312.5, '300', 1, 2, 3, 'r', 'a', 'bridge', 's', 'm', '[]');
      INSERT INTO outbox (delivery_id, alert_id, channel_id, recipients, event, tier, body, status, attempts, next_attempt_at, created_at, updated_at)
      VALUES ('d-old', 'al_old', 'ops-hook', '[]', 'firing', 0, '{}', 'pending', 0, 2, 2, 2);
      PRAGMA user_version = 5;`);
    db.close();
    const reopened = SqliteAlertStore.open(dir);
    try {
      expect(reopened.claimOutbox('d-old', 'a', 10, 100)).toBe(true);
      expect(reopened.claimOutbox('d-old', 'b', 50, 150)).toBe(false);
    } finally {
      reopened.close();
    }
    const after = inspect(file);
    expect(after.version).toBe(SCHEMA_VERSION);
    expect(after.indexes).toContain('alerts_held');
    expect(after.columns('outbox')).toEqual(expect.arrayContaining(['claimed_by', 'claimed_until']));
  });

  it('refuses a database written by a newer version', () => {
    SqliteAlertStore.open(dir).close();
    const db = new Database(file);
    db.pragma(`user_version = ${SCHEMA_VERSION + 1}`);
    db.close();
    expect(() => SqliteAlertStore.open(dir)).toThrow(`alerts.db has schema version ${SCHEMA_VERSION + 1}, newer than this version of watchpost understands (${SCHEMA_VERSION})`);
  });
});
