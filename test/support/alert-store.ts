/**
 * The alert store backends the behavioural tests run against. Every test that needs an alert
 * store opens it through openAlertStore(), so every backend in ALERT_STORE_BACKENDS runs the same
 * tests; WATCHPOST_TEST_ALERT_STORE picks the backend (default sqlite).
 *
 * The PostgreSQL backend (present when PostgreSQL 15 is installed) starts one private server per
 * test process on first use and gives every location a database of its own.
 */
import { createHash } from 'node:crypto';
import path from 'node:path';
import { PostgresAlertStore } from '../../alerts/postgres/postgres-alert-store.js';
import { SqliteAlertStore } from '../../alerts/sqlite/sqlite-alert-store.js';
import type { AlertStore } from '../../alerts/store.js';
import { postgresAvailable, startPostgresSync, type PgServerSync } from './postgres.js';

/**
 * Opens a store on a private location named by a fresh temporary directory (a server backend
 * derives its schema or database name from it). Opening the same location again reopens the same
 * data, as a restart does.
 */
export type AlertStoreBackend = (dir: string) => AlertStore;

let postgres: { server: PgServerSync; databases: Map<string, string> } | undefined;

/** The database of `dir` on this process's PostgreSQL (started on first use), created on first use. */
function postgresStore(dir: string): AlertStore {
  postgres ??= { server: startPostgresSync(), databases: new Map() };
  const name = `store_${createHash('sha256').update(path.resolve(dir)).digest('hex').slice(0, 24)}`;
  let url = postgres.databases.get(name);
  if (!url) {
    url = postgres.server.createDatabase(name);
    postgres.databases.set(name, url);
  }
  return PostgresAlertStore.open(url);
}

/** Stops the PostgreSQL the backend started (afterAll of a file that used it); the next use starts another. */
export function releaseAlertStoreBackends(): void {
  postgres?.server.destroy();
  postgres = undefined;
}

export const ALERT_STORE_BACKENDS: Readonly<Record<string, AlertStoreBackend>> = {
  sqlite: (dir) => SqliteAlertStore.open(dir),
  ...(postgresAvailable ? { postgres: postgresStore } : {}),
};

export function alertStoreBackendName(): string {
  const name = process.env.WATCHPOST_TEST_ALERT_STORE ?? 'sqlite';
  if (!(name in ALERT_STORE_BACKENDS)) throw new Error(`WATCHPOST_TEST_ALERT_STORE: unknown alert store backend "${name}"; use one of ${Object.keys(ALERT_STORE_BACKENDS).join(', ')}`);
  return name;
}

export function openAlertStore(dir: string): AlertStore {
  return ALERT_STORE_BACKENDS[alertStoreBackendName()]!(dir);
}

/** While `on`, every call of the store but close() throws SQLITE_FULL, as a full disk would (only `only`, when given). */
export interface StoreFault {
  on: boolean;
  only?: string;
  /** Calls that failed. */
  calls: number;
}

export function failingAlertStore(store: AlertStore, fault: StoreFault): AlertStore {
  return new Proxy(store, {
    get(target, prop, receiver) {
      const value = Reflect.get(target, prop, receiver) as unknown;
      if (typeof value !== 'function' || prop === 'close') return value;
      return (...args: unknown[]) => {
        if (fault.on && (fault.only === undefined || fault.only === prop)) {
          fault.calls++;
          throw Object.assign(new Error('database or disk is full'), { code: 'SQLITE_FULL' });
        }
        return (value as (...a: unknown[]) => unknown).apply(target, args);
      };
    },
  });
}
