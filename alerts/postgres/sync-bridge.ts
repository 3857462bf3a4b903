/**
 * A synchronous PostgreSQL client: the alert store's interface is synchronous (the alert stage
 * writes a transition and its effects in one call), `pg` is not. A worker thread (pg-worker.mjs)
 * owns the connection; a call posts its request to the worker and blocks in Atomics.wait on a
 * shared flag until the worker has posted the answer, which receiveMessageOnPort then takes (so
 * an answer of any size passes whole).
 *
 * Every wait is bounded: a server that does not answer makes the call throw after `waitMs`, and
 * the worker (with its connection, which rolls back whatever was open) is replaced at the next
 * call. A lost connection is opened again by the next call; while the server cannot be reached,
 * calls fail at once (the last error) between tries, so an outage does not block every call for a
 * connect timeout. Errors name the server as host:port,
 * never the password.
 */
import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { MessageChannel, receiveMessageOnPort, Worker, type MessagePort } from 'node:worker_threads';

export interface SyncBridgeOptions {
  /** How long connecting may take. */
  connectTimeoutMs?: number;
  /** How long one statement may run (PostgreSQL's statement_timeout). */
  statementTimeoutMs?: number;
  applicationName?: string;
  /**
   * How long a call waits for the worker's answer before it gives the worker up (default: the
   * connect and statement timeouts and a margin; the worker's own timeouts normally answer first).
   */
  answerTimeoutMs?: number;
}

export const DEFAULT_SYNC_BRIDGE_OPTIONS: Required<Omit<SyncBridgeOptions, 'answerTimeoutMs'>> = {
  connectTimeoutMs: 3000,
  statementTimeoutMs: 5000,
  applicationName: 'watchpost',
};

export interface QueryResult<R> {
  rows: R[];
  rowCount: number;
}

/** An error of PostgreSQL or of the connection to it; `code` is the SQLSTATE when the server answered. */
export class PostgresError extends Error {
  readonly code: string | undefined;
  readonly constraint: string | undefined;
  /** The server could not be reached or answered nothing (not an error of the statement): the API answers 503. */
  readonly unavailable: boolean;
  constructor(message: string, fields: { code?: string; constraint?: string; cause?: unknown; unavailable?: boolean } = {}) {
    super(message, fields.cause === undefined ? undefined : { cause: fields.cause });
    this.name = 'PostgresError';
    this.unavailable = fields.unavailable ?? false;
    this.code = fields.code;
    this.constraint = fields.constraint;
  }
}

interface Answer {
  id: number;
  ok: boolean;
  rows: unknown[];
  rowCount: number;
  session: number;
  error?: { message: string; code?: string; constraint?: string; detail?: string };
  /** The worker could not connect (rather than a statement failing). */
  connectFailed?: boolean;
}

type Request = { op: 'connect' } | { op: 'close' } | { op: 'query'; sql: string; params: unknown[]; name?: string; session?: number };

const SQLSTATE = /^[0-9A-Z]{5}$/;
const WORKER_FILE = fileURLToPath(new URL('./pg-worker.mjs', import.meta.url));
/** What the worker needs beyond the statement timeout: connecting, starting the thread, the answer's way back. */
const WAIT_MARGIN_MS = 2000;
const BACKOFF_FIRST_MS = 250;
// Short, so that calls work again within about a second of the server's return.
const BACKOFF_MAX_MS = 1000;

/** host:port of a postgres:// URL (for messages); throws, without echoing it, for anything else. */
export function serverOf(url: string): string {
  let parsed: URL;
  try {
    parsed = new URL(url);
  } catch {
    throw new Error('postgres_url is not a URL: use postgres://user:password@host:port/database');
  }
  if (parsed.protocol !== 'postgres:' && parsed.protocol !== 'postgresql:') throw new Error(`postgres_url must start with postgres:// (got ${parsed.protocol}//)`);
  if (!parsed.hostname) throw new Error('postgres_url names no host: use postgres://user:password@host:port/database');
  return `${parsed.hostname}:${parsed.port || '5432'}`;
}

export class SyncPgBridge {
  /** host:port, for messages. */
  readonly server: string;
  private readonly options: Required<Omit<SyncBridgeOptions, 'answerTimeoutMs'>>;
  private readonly waitMs: number;
  private worker: Worker | undefined;
  private port: MessagePort | undefined;
  private flag: Int32Array | undefined;
  private nextId = 1;
  /** Counts the workers started, so a transaction can tell that its connection was replaced. */
  private workers = 0;
  private lastSession = 0;
  private closed = false;
  /** Set while the server is unreachable: the error to throw until the next try is due. */
  private unreachable: { failures: number; error: PostgresError; retryAt: bigint } | undefined;

  constructor(
    private readonly url: string,
    options: SyncBridgeOptions = {},
    private readonly onReconnect?: (server: string) => void,
  ) {
    this.server = serverOf(url);
    const { answerTimeoutMs, ...rest } = options;
    this.options = { ...DEFAULT_SYNC_BRIDGE_OPTIONS, ...rest };
    this.waitMs = answerTimeoutMs ?? this.options.connectTimeoutMs + this.options.statementTimeoutMs + 1000 + WAIT_MARGIN_MS;
    if (!existsSync(WORKER_FILE)) throw new Error(`${WORKER_FILE} is missing (npm run build copies it beside the compiled store)`);
  }

  /** Connects now (open() fails early for a bad address or password). */
  connect(): void {
    this.call({ op: 'connect' });
  }

  /**
   * The connection a call used: changes when the connection or the worker was replaced, which
   * breaks a transaction open on the old one.
   */
  get session(): string {
    return `${this.workers}.${this.lastSession}`;
  }

  /**
   * Runs one statement. `pinned`: only on the connection of the last answer (a transaction's); the
   * worker then refuses to run it on a new one, so a statement of a transaction whose connection
   * was lost fails instead of running on its own.
   */
  query<R>(sql: string, params: unknown[] = [], name?: string, pinned = false): QueryResult<R> {
    const answer = this.call({ op: 'query', sql, params, ...(name ? { name } : {}), ...(pinned ? { session: this.lastSession } : {}) });
    return { rows: answer.rows as R[], rowCount: answer.rowCount };
  }

  get isOpen(): boolean {
    return !this.closed;
  }

  /** Ends the connection and the worker. */
  close(): void {
    if (this.closed) return;
    this.closed = true;
    if (!this.worker) return;
    try {
      this.roundTrip({ op: 'close' }, Math.min(this.waitMs, 5000));
    } catch {
      // A worker that does not answer is terminated below all the same.
    }
    this.stopWorker();
  }

  private call(request: Request): Answer {
    if (this.closed) throw new Error(`the PostgreSQL alert store (${this.server}) is closed`);
    // A server that could not be reached a moment ago is not tried again by every call: each try
    // can block the thread for the connect timeout.
    if (this.unreachable && process.hrtime.bigint() < this.unreachable.retryAt && request.op !== 'close') throw this.unreachable.error;
    if (!this.worker) this.startWorker();
    let answer: Answer;
    try {
      answer = this.roundTrip(request, this.waitMs);
    } catch (error) {
      this.backOff(error as PostgresError);
      throw error;
    }
    if (answer.session !== this.lastSession) {
      if (this.lastSession !== 0 || this.workers > 1) this.onReconnect?.(this.server);
      this.lastSession = answer.session;
    }
    if (!answer.ok) {
      const e = answer.error ?? { message: 'unknown error' };
      // Not a SQLSTATE (ECONNREFUSED, a timeout), a lost connection, refused credentials, no such database.
      const connectionLevel = e.code === undefined || !SQLSTATE.test(e.code) || /^(08|57P|28)/.test(e.code) || e.code === '3D000';
      const message = connectionLevel ? `PostgreSQL at ${this.server}: ${e.message}` : e.detail ? `${e.message} (${e.detail})` : e.message;
      const error = new PostgresError(message, { ...(e.code ? { code: e.code } : {}), ...(e.constraint ? { constraint: e.constraint } : {}), unavailable: connectionLevel });
      if (answer.connectFailed) this.backOff(error);
      throw error;
    }
    this.unreachable = undefined;
    return answer;
  }

  /** Calls fail at once for a while (250 ms, doubling to 1 s) after the server could not be reached. */
  private backOff(error: PostgresError): void {
    const failures = (this.unreachable?.failures ?? 0) + 1;
    const ms = Math.min(BACKOFF_FIRST_MS * 2 ** (failures - 1), BACKOFF_MAX_MS);
    this.unreachable = { failures, error, retryAt: process.hrtime.bigint() + BigInt(ms) * 1_000_000n };
  }

  private startWorker(): void {
    const { port1, port2 } = new MessageChannel();
    const signal = new SharedArrayBuffer(4);
    const worker = new Worker(WORKER_FILE, {
      workerData: {
        port: port2,
        signal,
        url: this.url,
        connectTimeoutMs: this.options.connectTimeoutMs,
        statementTimeoutMs: this.options.statementTimeoutMs,
        applicationName: this.options.applicationName,
      },
      transferList: [port2],
    });
    // Neither keeps the process alive: a store nobody closed does not hold up the exit.
    worker.unref();
    port1.unref();
    // Its errors arrive as timeouts of the waiting call; this only keeps them from being unhandled.
    worker.on('error', () => undefined);
    this.worker = worker;
    this.port = port1;
    this.flag = new Int32Array(signal);
    this.workers++;
  }

  private stopWorker(): void {
    const worker = this.worker;
    this.worker = undefined;
    this.port?.close();
    this.port = undefined;
    this.flag = undefined;
    if (worker) void worker.terminate();
  }

  private roundTrip(request: Request, waitMs: number): Answer {
    const port = this.port!;
    const flag = this.flag!;
    const id = this.nextId++;
    Atomics.store(flag, 0, 0);
    port.postMessage({ id, ...request });
    // Real time (not Date.now, which a test's fake clock may hold still).
    const deadline = process.hrtime.bigint() + BigInt(waitMs) * 1_000_000n;
    for (;;) {
      const received: { message: Answer } | undefined = receiveMessageOnPort(port);
      if (received) {
        if (received.message.id === id) return received.message;
        continue;
      }
      const left = Number(deadline - process.hrtime.bigint()) / 1e6;
      if (left <= 0 || Atomics.wait(flag, 0, 0, left) === 'timed-out') break;
      Atomics.store(flag, 0, 0);
    }
    const late: { message: Answer } | undefined = receiveMessageOnPort(port);
    if (late?.message.id === id) return late.message;
    // No answer: the worker may be stuck on a dead connection. Replace it; the server rolls back
    // whatever the old connection had open when it goes.
    this.stopWorker();
    throw new PostgresError(`PostgreSQL at ${this.server} did not answer within ${waitMs} ms`, { code: undefined, unavailable: true });
  }
}
