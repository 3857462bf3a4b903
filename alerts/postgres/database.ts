/**
 * The PostgreSQL database of the alert stage, reached synchronously through the worker bridge
 * (sync-bridge.ts): opened and migrated (migrations.ts), statements prepared once per connection
 * (named), and transactions on the one connection: BEGIN … COMMIT, a nested one a SAVEPOINT,
 * rolled back when fn throws. Every statement uses bound parameters; nothing from the outside is
 * spliced into SQL.
 */
import type { Logger } from '../../lib/logger.js';
import { migrate } from './migrations.js';
import { SyncPgBridge, type SyncBridgeOptions } from './sync-bridge.js';

export interface PostgresOpenOptions extends SyncBridgeOptions {
  logger?: Logger;
}

export class PostgresAlertsDatabase {
  private readonly names = new Map<string, string>();
  /** Open transactions: 0 outside one, 1 in a transaction, more in savepoints of it. */
  private depth = 0;
  /** The connection the open transaction runs on. */
  private txSession = '';
  /** A transaction whose connection was lost or whose statement failed: only ROLLBACK is left. */
  private txBroken = false;

  private constructor(private readonly bridge: SyncPgBridge) {}

  /** Connects to `url` and brings the schema to this version; throws (naming host:port, never the password) when it cannot. */
  static open(url: string, options: PostgresOpenOptions = {}): PostgresAlertsDatabase {
    const { logger, ...bridgeOptions } = options;
    const bridge = new SyncPgBridge(url, bridgeOptions, (server) => logger?.warn({ server }, 'connected to PostgreSQL again'));
    const db = new PostgresAlertsDatabase(bridge);
    try {
      bridge.connect();
      migrate(db, logger);
    } catch (error) {
      bridge.close();
      throw error;
    }
    return db;
  }

  /** host:port of the server. */
  get server(): string {
    return this.bridge.server;
  }

  /** The rows of one statement. */
  all<R>(sql: string, params: unknown[] = []): R[] {
    return this.exec<R>(sql, params).rows;
  }

  /** The first row of one statement. */
  get<R>(sql: string, params: unknown[] = []): R | undefined {
    return this.exec<R>(sql, params).rows[0];
  }

  /** Runs one statement; returns the rows it changed. */
  run(sql: string, params: unknown[] = []): number {
    return this.exec(sql, params).rowCount;
  }

  /** Runs one statement, prepared once per connection; `prepared` false for DDL, several statements at once, advisory locks. */
  exec<R = unknown>(sql: string, params: unknown[] = [], prepared = true): { rows: R[]; rowCount: number } {
    if (this.depth > 0) {
      if (this.txBroken) throw new Error('the transaction failed; it is rolled back when it ends');
      if (this.bridge.session !== this.txSession) throw new Error(`the connection to PostgreSQL at ${this.server} was lost during the transaction`);
    }
    try {
      return this.bridge.query<R>(sql, params, prepared ? this.nameOf(sql) : undefined, this.depth > 0);
    } catch (error) {
      // A failed statement aborts a PostgreSQL transaction; a savepoint's rollback recovers it,
      // which transaction() does when the error reaches it.
      if (this.depth > 0) this.txBroken = true;
      throw error;
    }
  }

  /** Runs fn in one transaction (called inside one, a savepoint of it); rolls back when fn throws. */
  transaction<T>(fn: () => T): T {
    if (this.depth === 0) {
      this.control('BEGIN');
      this.txSession = this.bridge.session;
      this.txBroken = false;
    } else {
      if (this.txBroken) throw new Error('the transaction failed; it is rolled back when it ends');
      this.control(`SAVEPOINT s${this.depth}`);
    }
    this.depth++;
    let result: T;
    try {
      result = fn();
    } catch (error) {
      this.depth--;
      this.rollback();
      throw error;
    }
    this.depth--;
    try {
      if (this.depth === 0) this.control('COMMIT');
      else this.control(`RELEASE SAVEPOINT s${this.depth}`);
    } catch (error) {
      if (this.depth === 0) this.endBroken();
      else this.rollback();
      throw error;
    }
    return result;
  }

  /** True inside transaction(): reads that precede a write lock their rows then. */
  get inTransaction(): boolean {
    return this.depth > 0;
  }

  get isOpen(): boolean {
    return this.bridge.isOpen;
  }

  close(): void {
    this.bridge.close();
  }

  /** Undoes the innermost transaction or savepoint (at `depth`, already left). */
  private rollback(): void {
    if (this.depth === 0) {
      this.endBroken();
      return;
    }
    // A savepoint's rollback makes the outer transaction usable again (unless its connection went).
    if (this.bridge.session !== this.txSession) return;
    try {
      this.control(`ROLLBACK TO SAVEPOINT s${this.depth}`);
      this.control(`RELEASE SAVEPOINT s${this.depth}`);
      this.txBroken = false;
    } catch {
      this.txBroken = true;
    }
  }

  /** Ends the outer transaction with ROLLBACK; on a lost connection there is nothing left to roll back. */
  private endBroken(): void {
    const sameConnection = this.bridge.session === this.txSession;
    this.txBroken = false;
    this.txSession = '';
    if (!sameConnection) return;
    try {
      this.bridge.query('ROLLBACK', [], undefined, true);
    } catch {
      // The connection went with the failure: the server rolled the transaction back.
    }
  }

  /** BEGIN may connect; every other control statement belongs to the open transaction's connection. */
  private control(sql: string): void {
    this.bridge.query(sql, [], undefined, sql !== 'BEGIN');
  }

  /** A stable name per statement, so each is parsed once per connection. */
  private nameOf(sql: string): string {
    let name = this.names.get(sql);
    if (!name) {
      name = `w${this.names.size + 1}`;
      this.names.set(sql, name);
    }
    return name;
  }
}
