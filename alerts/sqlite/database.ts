/**
 * The SQLite database of the alert stage, `${dataDir}/alerts.db` (WAL, synchronous=FULL, foreign
 * keys on): opened with owner-only file modes, migrated to the current schema, and a cache of
 * prepared statements. Every statement uses bound parameters; nothing from the outside is
 * spliced into SQL.
 */
import fs from 'node:fs';
import path from 'node:path';
import Database from 'better-sqlite3';
import { migrate, SCHEMA_VERSION } from './migrations.js';

export class AlertsDatabase {
  private readonly statements = new Map<string, Database.Statement>();
  private closed = false;

  private constructor(private readonly db: Database.Database) {}

  /**
   * Opens (creating if needed) `${dataDir}/alerts.db`. It holds the key that signs
   * acknowledgement links, so the file and its -wal and -shm files are readable by the owner only
   * (0600); the database file is created that way before SQLite opens it, and SQLite gives its
   * -wal and -shm files the mode of the database file.
   */
  static open(dataDir: string): AlertsDatabase {
    fs.mkdirSync(dataDir, { recursive: true });
    const file = path.join(dataDir, 'alerts.db');
    restrictToOwner(file, true);
    const db = new Database(file);
    try {
      for (const suffix of ['-wal', '-shm']) restrictToOwner(file + suffix, false);
      db.pragma('journal_mode = WAL');
      db.pragma('synchronous = FULL');
      db.pragma('foreign_keys = ON');
      db.pragma('busy_timeout = 5000');
      migrate(db);
    } catch (error) {
      db.close();
      throw error;
    }
    return new AlertsDatabase(db);
  }

  /**
   * Opens an existing `${dataDir}/alerts.db` read-only, without migrating it: it reads beside a
   * running platform (WAL), and refuses a schema other than this version's.
   */
  static openReadOnly(dataDir: string): AlertsDatabase {
    const file = path.join(dataDir, 'alerts.db');
    if (!fs.existsSync(file)) throw new Error(`${file} does not exist (has the platform run with this data_dir?)`);
    const db = new Database(file, { readonly: true, fileMustExist: true });
    try {
      db.pragma('busy_timeout = 5000');
      const version = db.pragma('user_version', { simple: true }) as number;
      if (version !== SCHEMA_VERSION)
        throw new Error(`${file} has schema version ${version}, this version of watchpost reads ${SCHEMA_VERSION}; start the platform once to bring it forward`);
    } catch (error) {
      db.close();
      throw error;
    }
    return new AlertsDatabase(db);
  }

  /** The prepared statement of `sql`, prepared once. */
  stmt(sql: string): Database.Statement {
    let statement = this.statements.get(sql);
    if (!statement) {
      statement = this.db.prepare(sql);
      this.statements.set(sql, statement);
    }
    return statement;
  }

  /** Runs fn in one IMMEDIATE transaction (called inside one, a savepoint of it). */
  transaction<T>(fn: () => T): T {
    return this.db.transaction(fn).immediate();
  }

  get isOpen(): boolean {
    return !this.closed;
  }

  close(): void {
    if (this.closed) return;
    this.closed = true;
    this.db.close();
  }
}

/** Makes `file` mode 0600 (creating it empty when `create`), also when an older version made it wider. */
function restrictToOwner(file: string, create: boolean): void {
  if (create) fs.closeSync(fs.openSync(file, fs.constants.O_RDWR | fs.constants.O_CREAT, 0o600));
  try {
    fs.chmodSync(file, 0o600);
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code !== 'ENOENT') throw error;
  }
}
