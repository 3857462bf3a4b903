import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import Database from 'better-sqlite3';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { SCHEMA_VERSION } from './migrations.js';
import { SqliteAlertStore } from './sqlite-alert-store.js';

describe('alerts.db opened read-only', () => {
  let dir: string;

  beforeEach(() => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'watchpost-readonly-'));
  });
  afterEach(() => fs.rmSync(dir, { recursive: true, force: true }));

  it('reads beside an open writer, and refuses every write', () => {
    const writer = SqliteAlertStore.open(dir);
    try {
      writer.appendAudit({ at: 1, actor: 'ops', method: 'POST', path: '/api/v1/silences', outcome: 201 });
      const reader = SqliteAlertStore.openReadOnly(dir);
      try {
        expect(reader.auditEntries().map((e) => e.actor)).toEqual(['ops']);
        writer.appendAudit({ at: 2, actor: 'admin', method: 'PUT', path: '/api/v1/assets/a', outcome: 200 });
        expect(reader.auditEntries().map((e) => e.actor)).toEqual(['admin', 'ops']);
        expect(() => reader.appendAudit({ at: 3, actor: 'x', method: 'POST', path: '/x', outcome: 200 })).toThrow(/readonly/);
      } finally {
        reader.close();
      }
    } finally {
      writer.close();
    }
  });

  it('refuses a missing database and one of another schema version, without creating or migrating it', () => {
    expect(() => SqliteAlertStore.openReadOnly(dir)).toThrow(`${path.join(dir, 'alerts.db')} does not exist (has the platform run with this data_dir?)`);
    expect(fs.existsSync(path.join(dir, 'alerts.db'))).toBe(false);
    SqliteAlertStore.open(dir).close();
    const db = new Database(path.join(dir, 'alerts.db'));
    db.pragma(`user_version = ${SCHEMA_VERSION - 1}`);
    db.close();
    expect(() => SqliteAlertStore.openReadOnly(dir)).toThrow(`has schema version ${SCHEMA_VERSION - 1}, this version of watchpost reads ${SCHEMA_VERSION}`);
    const again = new Database(path.join(dir, 'alerts.db'), { readonly: true });
    expect(again.pragma('user_version', { simple: true })).toBe(SCHEMA_VERSION - 1);
    again.close();
  });
});
