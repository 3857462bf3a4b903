/**
 * The worker thread behind the synchronous PostgreSQL bridge (sync-bridge.ts): it owns one `pg`
 * Client and runs the requests of the main thread one at a time, in order. Each answer is posted
 * on the MessagePort, then the shared signal is set and notified; the main thread, blocked in
 * Atomics.wait, wakes and takes the answer with receiveMessageOnPort (so no answer is too big for
 * a buffer: the message carries it).
 *
 * A lost connection is dropped and the next request connects again; `session` counts the
 * connections, so that the main thread can tell that a transaction's connection is gone.
 * Plain JavaScript, so that the same file runs from the sources (tests) and from dist/ (copied
 * there by `npm run build`).
 */
import { workerData } from 'node:worker_threads';
import pg from 'pg';

/** @type {{ port: import('node:worker_threads').MessagePort, signal: SharedArrayBuffer, url: string, connectTimeoutMs: number, statementTimeoutMs: number, applicationName: string }} */
const { port, signal, url, connectTimeoutMs, statementTimeoutMs, applicationName } = workerData;
const flag = new Int32Array(signal);

const INT8_OID = 20;
const JSON_OID = 114;
const JSONB_OID = 3802;

/** BIGINT (epoch ms, seq, counts) as a number; JSON as its text, parsed by the row mappers. */
const types = {
  getTypeParser(oid, format) {
    if (format !== 'binary' && oid === INT8_OID) return (value) => Number(value);
    if (format !== 'binary' && (oid === JSON_OID || oid === JSONB_OID)) return (value) => value;
    return pg.types.getTypeParser(oid, format);
  },
};

/** @type {pg.Client | undefined} */
let client;
let session = 0;

async function connect() {
  const c = new pg.Client({
    connectionString: url,
    connectionTimeoutMillis: connectTimeoutMs,
    statement_timeout: statementTimeoutMs,
    // The client gives up a bit after the server would have cancelled the statement: a server
    // that stopped answering (network gone) fails the call instead of hanging it.
    query_timeout: statementTimeoutMs + 1000,
    lock_timeout: statementTimeoutMs,
    idle_in_transaction_session_timeout: Math.max(statementTimeoutMs * 6, 30_000),
    application_name: applicationName,
    keepAlive: true,
    types,
  });
  // A connection lost between requests: forget it, the next request connects again.
  c.on('error', () => drop(c));
  try {
    await c.connect();
  } catch (err) {
    drop(c);
    throw err;
  }
  client = c;
  session++;
}

function drop(c) {
  if (client === c) client = undefined;
  c.end().catch(() => undefined);
}

/** A server error (SQLSTATE) other than a lost or shut-down connection keeps the connection usable. */
function connectionUsable(err) {
  const code = typeof err?.code === 'string' ? err.code : '';
  if (!/^[0-9A-Z]{5}$/.test(code)) return false;
  return !code.startsWith('08') && !code.startsWith('57P');
}

function reply(message) {
  port.postMessage(message);
  Atomics.store(flag, 0, 1);
  Atomics.notify(flag, 0);
}

function errorOf(err) {
  const e = err instanceof Error ? err : new Error(String(err));
  return {
    message: e.message,
    code: typeof e.code === 'string' ? e.code : undefined,
    constraint: typeof e.constraint === 'string' ? e.constraint : undefined,
    detail: typeof e.detail === 'string' ? e.detail : undefined,
  };
}

async function handle(request) {
  const { id, op } = request;
  if (op === 'close') {
    const c = client;
    client = undefined;
    if (c) await c.end().catch(() => undefined);
    reply({ id, ok: true, rows: [], rowCount: 0, session });
    port.close();
    return;
  }
  let c;
  try {
    // A statement of a transaction runs on the transaction's connection or not at all.
    if (request.session !== undefined && (client === undefined || request.session !== session)) {
      reply({ id, ok: false, error: { message: 'the connection was lost during the transaction', code: '08003' }, session });
      return;
    }
    if (!client) {
      try {
        await connect();
      } catch (err) {
        reply({ id, ok: false, error: errorOf(err), session, connectFailed: true });
        return;
      }
    }
    c = client;
    if (op === 'connect') {
      reply({ id, ok: true, rows: [], rowCount: 0, session });
      return;
    }
    const result = await c.query({ text: request.sql, values: request.params, ...(request.name ? { name: request.name } : {}) });
    reply({ id, ok: true, rows: result.rows, rowCount: result.rowCount ?? 0, session });
  } catch (err) {
    if (c && !connectionUsable(err)) drop(c);
    reply({ id, ok: false, error: errorOf(err), session });
  }
}

let queue = Promise.resolve();
port.on('message', (request) => {
  queue = queue.then(() => handle(request));
});
