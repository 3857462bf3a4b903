/**
 * alerts.db holds the key that signs acknowledgement links: it and its -wal and -shm files are
 * readable and writable by the owner only, whatever the umask, also when an older version made
 * them wider.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { SqliteAlertStore } from './sqlite/sqlite-alert-store.js';

const FILES = ['alerts.db', 'alerts.db-wal', 'alerts.db-shm'];

function modes(dir: string): Record<string, string> {
  return Object.fromEntries(FILES.map((f) => [f, (fs.statSync(path.join(dir, f)).mode & 0o777).toString(8)]));
}

describe('alerts.db file modes', () => {
  let dir: string;
  let umask: number;

  beforeEach(() => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'watchpost-alerts-mode-'));
    umask = process.umask(0o022);
  });

  afterEach(() => {
    process.umask(umask);
    fs.rmSync(dir, { recursive: true, force: true });
  });

  it('creates alerts.db, -wal and -shm with mode 0600 before the link key is written', () => {
    const store = SqliteAlertStore.open(dir);
    try {
      // The first write creates the key; every file exists by then.
      store.meta('ack_link_key', () => 'secret');
      expect(modes(dir)).toEqual({ 'alerts.db': '600', 'alerts.db-wal': '600', 'alerts.db-shm': '600' });
    } finally {
      store.close();
    }
  });

  it('narrows the files an older version left readable to others', () => {
    const first = SqliteAlertStore.open(dir);
    first.meta('ack_link_key', () => 'secret');
    for (const f of FILES) fs.chmodSync(path.join(dir, f), 0o644);
    // The WAL files stay while the first connection is open.
    const second = SqliteAlertStore.open(dir);
    try {
      expect(modes(dir)).toEqual({ 'alerts.db': '600', 'alerts.db-wal': '600', 'alerts.db-shm': '600' });
      expect(second.meta('ack_link_key', () => 'other')).toBe('secret');
    } finally {
      second.close();
      first.close();
    }
  });
});
