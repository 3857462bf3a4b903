import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { engineAddress } from './cluster.js';
import { formatErrors, loadConfig } from './load.js';

const dirs: string[] = [];
function load(text: string, env: NodeJS.ProcessEnv = {}) {
  const dir = mkdtempSync(join(tmpdir(), 'watchpost-cluster-config-'));
  dirs.push(dir);
  writeFileSync(join(dir, 'cluster.yaml'), text);
  return loadConfig(dir, env);
}
const errorsOf = (text: string, env: NodeJS.ProcessEnv = {}): string => {
  const result = load(text, env);
  if (result.ok) throw new Error('expected errors');
  return formatErrors(result.errors);
};
afterEach(() => {
  for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true });
});

describe('cluster section', () => {
  it('is absent by default: one instance on SQLite', () => {
    const result = load('assets: []\n');
    if (!result.ok) throw new Error(formatErrors(result.errors));
    expect(result.config.cluster).toBeUndefined();
  });

  it('takes its URLs from the environment and defaults to 16 partitions', () => {
    const result = load(
      'cluster:\n  instance_id: ${HOSTNAME}\n  amqp_url: amqp://watchpost:${AMQP_PASSWORD}@rabbit.internal:5672/\n  postgres_url: postgres://watchpost:${PG_PASSWORD}@pg.internal:5432/watchpost\n',
      { HOSTNAME: 'wp-2', AMQP_PASSWORD: 'a-secret', PG_PASSWORD: 'p-secret' },
    );
    if (!result.ok) throw new Error(formatErrors(result.errors));
    expect(result.config.cluster).toEqual({
      instance_id: 'wp-2',
      amqp_url: 'amqp://watchpost:a-secret@rabbit.internal:5672/',
      postgres_url: 'postgres://watchpost:p-secret@pg.internal:5432/watchpost',
      partitions: 16,
    });
  });

  it('names each missing URL', () => {
    expect(errorsOf('cluster:\n  instance_id: wp-1\n')).toBe(
      [
        'cluster.yaml:1: cluster.amqp_url: is required (the RabbitMQ URL, such as amqp://watchpost:secret@rabbit.internal:5672/)',
        'cluster.yaml:1: cluster.postgres_url: is required (the PostgreSQL URL, such as postgres://watchpost:secret@pg.internal:5432/watchpost)',
      ].join('\n'),
    );
    expect(errorsOf('cluster:\n  amqp_url: amqp://h/\n  postgres_url: postgres://h/db\n')).toBe(
      "cluster.yaml:1: cluster.instance_id: is required (this instance's name in the cluster, unique among the instances)",
    );
  });

  it('refuses other schemes, bad instance ids and partition counts out of range', () => {
    expect(errorsOf('cluster:\n  instance_id: -wp\n  amqp_url: http://rabbit:5672/\n  postgres_url: mysql://pg/db\n  partitions: 1025\n')).toBe(
      [
        'cluster.yaml:2: cluster.instance_id: must be 1-64 characters of A-Z a-z 0-9 _ . - starting with a letter or digit',
        'cluster.yaml:3: cluster.amqp_url: must use amqp:// or amqps:// (the RabbitMQ URL), not http://',
        'cluster.yaml:4: cluster.postgres_url: must use postgres:// or postgresql:// (the PostgreSQL URL), not mysql://',
        'cluster.yaml:5: cluster.partitions: Too big: expected number to be <=1024',
      ].join('\n'),
    );
    expect(errorsOf('cluster:\n  instance_id: wp\n  amqp_url: not a url\n  postgres_url: postgres://pg/db\n  partitions: 0\n')).toContain(
      'cluster.amqp_url: is not a URL (the RabbitMQ URL, such as amqp://watchpost:secret@rabbit.internal:5672/)',
    );
  });

  it('is one section: a second file may not define it again', () => {
    const dir = mkdtempSync(join(tmpdir(), 'watchpost-cluster-config-'));
    dirs.push(dir);
    const text = 'cluster:\n  instance_id: wp\n  amqp_url: amqp://h/\n  postgres_url: postgres://h/db\n';
    writeFileSync(join(dir, 'a.yaml'), text);
    writeFileSync(join(dir, 'b.yaml'), text);
    const result = loadConfig(dir, {});
    expect(result.ok ? '' : formatErrors(result.errors)).toBe('b.yaml:1: cluster: already defined in a.yaml; a cluster section may appear in one file only');
  });

  it('addresses name host and port, never the credentials', () => {
    expect(engineAddress('amqp://watchpost:secret@rabbit.internal/', 5672)).toBe('rabbit.internal:5672');
    expect(engineAddress('postgres://watchpost:secret@10.0.0.5:6432/watchpost', 5432)).toBe('10.0.0.5:6432');
  });
});
