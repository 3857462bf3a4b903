/**
 * A second (third, …) instance of the PostgreSQL alert store in a process of its own, driven by
 * JSON lines on stdin (one answer line on stdout per command): the concurrency tests race real
 * processes against one database. Bundled by alerts/postgres/concurrency.test.ts with esbuild.
 */
import { createInterface } from 'node:readline';
import { PostgresAlertStore } from '../../alerts/postgres/postgres-alert-store.js';
import { isOpenAlertExists, type AlertKey, type AlertRecord } from '../../alerts/store.js';
import { sampleAlert } from './alert-records.js';

export type ChildCommand =
  | { op: 'open' }
  /** In one transaction: look for the key's open alert, wait windowMs, insert one when there was none. */
  | { op: 'race'; id: string; key: AlertKey; windowMs: number }
  /** `times` transactions, each reading the alert, waiting a moment and writing it back with value + 1. */
  | { op: 'increment'; id: string; times: number }
  | { op: 'close' };

export type RaceOutcome = 'inserted' | 'found' | 'conflict';

const url = process.argv[2]!;
let store: PostgresAlertStore | undefined;

function sleep(ms: number): void {
  Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, ms);
}

/** An alert of `key` with value 0. */
export function raceAlert(id: string, key: AlertKey): AlertRecord {
  return sampleAlert(id, { ...key, value: 0 });
}

function run(command: ChildCommand): unknown {
  switch (command.op) {
    case 'open':
      store = PostgresAlertStore.open(url);
      return 'open';
    case 'race': {
      const s = store!;
      try {
        return s.transaction((): RaceOutcome => {
          if (s.findOpenAlert(command.key.ruleId, command.key.assetId, command.key.sensorId)) return 'found';
          sleep(command.windowMs);
          s.insertAlert(raceAlert(command.id, command.key));
          return 'inserted';
        });
      } catch (error) {
        if (isOpenAlertExists(error)) return 'conflict';
        throw error;
      }
    }
    case 'increment': {
      const s = store!;
      for (let i = 0; i < command.times; i++) {
        s.transaction(() => {
          const a = s.getAlert(command.id)!;
          sleep(2);
          s.updateAlert({ ...a, value: a.value + 1 });
        });
      }
      return command.times;
    }
    case 'close':
      store?.close();
      setImmediate(() => process.exit(0));
      return 'closed';
  }
}

if (url) {
  const lines = createInterface({ input: process.stdin });
  lines.on('line', (line) => {
    let answer: { ok: boolean; result?: unknown; error?: string };
    try {
      answer = { ok: true, result: run(JSON.parse(line) as ChildCommand) };
    } catch (error) {
      answer = { ok: false, error: String(error) };
    }
    process.stdout.write(`${JSON.stringify(answer)}\n`);
  });
  process.stdout.write('ready\n');
}
