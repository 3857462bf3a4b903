import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { silentLogger } from '../lib/logger.js';
import { ruleSchema } from '../rules/config.js';
import { RuleRunner } from '../rules/rule-runner.js';
import { postgresAvailable, startPostgres, type PgServer } from '../test/support/postgres.js';
import { PartitionLeasing } from './partition-leasing.js';
import { CheckpointFencedError } from './rule-checkpoints.js';

describe.skipIf(!postgresAvailable)('leases and fenced checkpoints on one pool', () => {
  let server: PgServer;

  beforeAll(async () => {
    server = await startPostgres();
  }, 120_000);

  afterAll(async () => {
    await server?.destroy();
  });

  it('the holder of a partition writes its checkpoints; after stop() nobody writes in its name', async () => {
    const url = await server.createDatabase('partition_leasing');
    const leasing = new PartitionLeasing({ url, instanceId: 'wp-a', partitions: 4, logger: silentLogger(), ttlMs: 1500, renewMs: 300 });
    const acquired: number[] = [];
    const lost: number[] = [];
    let leader = 0;
    await leasing.start({
      acquire: async (p) => void acquired.push(p),
      lose: async (p) => void lost.push(p),
      leadershipChanged: () => void leader++,
    });
    const deadline = Date.now() + 5000;
    while (acquired.length < 4 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20));
    expect(acquired.sort()).toEqual([0, 1, 2, 3]);
    expect(leasing.held()).toEqual([0, 1, 2, 3]);
    expect(leasing.isLeader()).toBe(true);
    expect(leader).toBe(1);
    expect(leasing.status()).toMatchObject({ instanceId: 'wp-a', connected: true, owned: [0, 1, 2, 3], leader: true, live: 1, share: 4 });

    const runner = new RuleRunner([ruleSchema.parse({ id: 'high', match: { metric: 'level' }, levels: { red: { above: 5 } } })]);
    runner.process([{ assetId: 'a1', assetType: 'slope', street: 's', sensorId: 's1', metric: 'level', value: 9, ts: 1000 }]);
    const snapshots = runner.exportAssets(new Set(['a1']));
    await leasing.checkpoints.save(2, snapshots);
    expect(await leasing.checkpoints.load(2, ['a1'])).toEqual(snapshots);

    await leasing.stop();
    expect(lost.sort()).toEqual([0, 1, 2, 3]);
    expect(leasing.isLeader()).toBe(false);
    await expect(leasing.checkpoints.save(2, snapshots)).rejects.toThrow(CheckpointFencedError);
    await leasing.close();
  }, 60_000);
});
