/**
 * Cluster mode at start, as users run it (`watchpost start`): an engine that cannot be reached
 * stops the instance with exit code 1 and a line naming the engine, its host:port and the setting,
 * never the URL's password.
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { stringify } from 'yaml';
import { freePort } from '../../test/support/binaries.js';
import { postgresAvailable, startPostgres, type PgServer } from '../../test/support/postgres.js';
import { cliBuilt, runCli } from '../../test/support/watchpost-process.js';

const PASSWORD = 'cluster-start-secret-0001';
const dirs: string[] = [];

function configDir(cluster: Record<string, unknown>): string {
  const dir = mkdtempSync(join(tmpdir(), 'watchpost-cluster-start-'));
  dirs.push(dir);
  writeFileSync(
    join(dir, 'watchpost.yaml'),
    stringify({ broker: { host: '127.0.0.1', port: 0 }, api: { host: '127.0.0.1', port: 0 }, storage: { data_dir: join(dir, 'data') }, cluster: { instance_id: 'wp-start', ...cluster } }),
  );
  return dir;
}

afterAll(() => {
  for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true });
});

describe.skipIf(!cliBuilt)('cluster mode at start', () => {
  it('PostgreSQL unreachable: exit 1, naming PostgreSQL and its host:port', async () => {
    const [pgPort, amqpPort] = [await freePort(), await freePort()];
    const dir = configDir({ amqp_url: `amqp://watchpost:${PASSWORD}@127.0.0.1:${amqpPort}/`, postgres_url: `postgres://watchpost:${PASSWORD}@127.0.0.1:${pgPort}/watchpost` });
    const result = await runCli(['start', '--config', dir], { timeoutMs: 60_000 });
    const output = result.stdout + result.stderr;
    expect(result.code).toBe(1);
    expect(output).toContain(`cannot reach PostgreSQL at 127.0.0.1:${pgPort} (cluster.postgres_url): connect ECONNREFUSED 127.0.0.1:${pgPort}`);
    expect(output).not.toContain(PASSWORD);
  }, 90_000);

  describe.skipIf(!postgresAvailable)('with PostgreSQL running', () => {
    let pg: PgServer | undefined;
    afterAll(async () => {
      await pg?.destroy();
    });

    it('RabbitMQ unreachable: exit 1, naming RabbitMQ and its host:port', async () => {
      pg = await startPostgres();
      const amqpPort = await freePort();
      const dir = configDir({ amqp_url: `amqp://watchpost:${PASSWORD}@127.0.0.1:${amqpPort}/`, postgres_url: pg.url });
      const result = await runCli(['start', '--config', dir], { timeoutMs: 60_000 });
      const output = result.stdout + result.stderr;
      expect(result.code).toBe(1);
      expect(output).toContain(`cannot reach RabbitMQ at 127.0.0.1:${amqpPort} (cluster.amqp_url): connect ECONNREFUSED 127.0.0.1:${amqpPort}`);
      expect(output).not.toContain(PASSWORD);
      expect(output).not.toContain(new URL(pg.url).password);
    }, 120_000);
  });
});
