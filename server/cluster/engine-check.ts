/**
 * Cluster mode needs both engines at start: each is tried once, with a timeout, before anything
 * is built on it, so that an unreachable one stops the start with an error naming the engine and
 * its host:port (never the URL's credentials) instead of a hang or a stack trace further in.
 */
import amqp from 'amqplib';
import pg from 'pg';
import { engineAddress, type ClusterConfig } from '../config/cluster.js';

export const AMQP_DEFAULT_PORT = 5672;
export const POSTGRES_DEFAULT_PORT = 5432;
const CHECK_TIMEOUT_MS = 10_000;

export type Engine = 'PostgreSQL' | 'RabbitMQ';

/** An engine the cluster needs that could not be used: `code` is stable for tests and logs. */
export class EngineUnreachableError extends Error {
  readonly code = 'cluster_engine_unreachable';
  constructor(
    readonly engine: Engine,
    readonly address: string,
    readonly setting: 'cluster.amqp_url' | 'cluster.postgres_url',
    reason: string,
  ) {
    super(`cannot reach ${engine} at ${address} (${setting}): ${reason}`);
  }
}

export function postgresAddress(config: ClusterConfig): string {
  return engineAddress(config.postgres_url, POSTGRES_DEFAULT_PORT);
}

export function amqpAddress(config: ClusterConfig): string {
  return engineAddress(config.amqp_url, AMQP_DEFAULT_PORT);
}

/** An error's reason without the URL it may quote (pg and amqplib quote host:port, not credentials, but be sure). */
function reasonOf(error: unknown, url: string): string {
  const err = error as { code?: unknown; message?: unknown };
  let text = typeof err?.message === 'string' && err.message !== '' ? err.message : String(error);
  if (text.includes(url)) text = text.split(url).join('(url)');
  const code = typeof err?.code === 'string' && !text.includes(err.code) ? ` (${err.code})` : '';
  return `${text}${code}`;
}

/** Connects once and runs `SELECT 1`; rejects with EngineUnreachableError. */
export async function checkPostgres(config: ClusterConfig, timeoutMs = CHECK_TIMEOUT_MS): Promise<void> {
  const client = new pg.Client({ connectionString: config.postgres_url, connectionTimeoutMillis: timeoutMs, query_timeout: timeoutMs });
  // A connection error after connect() failed must not become an uncaught 'error' event.
  client.on('error', () => undefined);
  try {
    await client.connect();
    await client.query('SELECT 1');
  } catch (error) {
    throw new EngineUnreachableError('PostgreSQL', postgresAddress(config), 'cluster.postgres_url', reasonOf(error, config.postgres_url));
  } finally {
    await client.end().catch(() => undefined);
  }
}

/** Opens one AMQP connection (handshake and login included) and closes it; rejects with EngineUnreachableError. */
export async function checkRabbitMQ(config: ClusterConfig, timeoutMs = CHECK_TIMEOUT_MS): Promise<void> {
  let connection: amqp.ChannelModel | undefined;
  try {
    connection = await amqp.connect(config.amqp_url, { timeout: timeoutMs });
    connection.on('error', () => undefined);
  } catch (error) {
    throw new EngineUnreachableError('RabbitMQ', amqpAddress(config), 'cluster.amqp_url', reasonOf(error, config.amqp_url));
  } finally {
    await connection?.close().catch(() => undefined);
  }
}

/** Both engines, at once; the first failure (PostgreSQL's when both fail) is thrown. */
export async function checkEngines(config: ClusterConfig, timeoutMs = CHECK_TIMEOUT_MS): Promise<void> {
  const [postgres, rabbit] = await Promise.allSettled([checkPostgres(config, timeoutMs), checkRabbitMQ(config, timeoutMs)]);
  if (postgres.status === 'rejected') throw postgres.reason;
  if (rabbit.status === 'rejected') throw rabbit.reason;
}
