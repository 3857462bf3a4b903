/**
 * The partition node with a real RuleRunner and in-memory stand-ins for RabbitMQ and the
 * checkpoint store: what an instance judges is exactly its partitions' assets, and a hand-over
 * continues from the checkpoint.
 */
import { describe, expect, it } from 'vitest';
import type { PartitionMessage } from '../../cluster/messages.js';
import { readingMessages } from '../../cluster/messages.js';
import { createLogger } from '../../lib/logger.js';
import type { AssetSnapshot } from '../../rules/state-codec.js';
import type { RuleEvent } from '../../rules/types.js';
import { runnerOf, T0 } from '../../test/support/rules.js';
import { ClusterNode, type CheckpointStore, type PartitionTransport } from './cluster-node.js';

const ASSETS = [
  { id: 'a0', type: 'bridge', street: 's' },
  { id: 'a1', type: 'bridge', street: 's' },
];
/** a0 in partition 0, a1 in partition 1. */
const partitionOf = (assetId: string) => Number(assetId.slice(1));
const RULES = [
  { id: 'silent', match: { asset_type: 'bridge' }, stale: '10s', level: 'yellow' },
  { id: 'strain', match: { asset_type: 'bridge', metric: 'strain' }, levels: { red: { above: 300 } }, for: '2s' },
];
const logger = createLogger({ level: 'silent' });

function setup(shared: Map<string, AssetSnapshot> = new Map(), publish: PartitionTransport['publish'] = () => Promise.resolve()) {
  const clock = {
    t: T0,
    now() {
      return this.t;
    },
  };
  const handlers = new Map<number, (messages: PartitionMessage[]) => Promise<void>>();
  const transport: PartitionTransport = {
    connected: () => true,
    publish,
    consume: (p, handler) => {
      handlers.set(p, handler);
      return Promise.resolve({ cancel: () => Promise.resolve(void handlers.delete(p)) });
    },
  };
  const checkpoints: CheckpointStore = {
    load: (_p, ids) => Promise.resolve(ids.flatMap((id) => (shared.has(id) ? [shared.get(id)!] : []))),
    save: (_p, snapshots) => Promise.resolve(void snapshots.forEach((s) => shared.set(s.assetId, s))),
  };
  const stored: RuleEvent[] = [];
  const rules = runnerOf(RULES);
  const node = new ClusterNode({
    instanceId: 'wp-test',
    partitions: 2,
    partitionOf,
    readingMessages,
    transport,
    checkpoints,
    rules,
    handle: (events) => Promise.resolve(void stored.push(...events)),
    openAlerts: () => [],
    assets: () => ASSETS,
    sensors: () => ASSETS.map((a) => ({ assetId: a.id, sensorId: 's1', assetType: a.type, street: a.street, metrics: ['strain'] })),
    deviceRef: (deviceId) => ({ deviceId, assets: [] }),
    clock,
    logger,
  });
  const deliver = (p: number, assetId: string, value: number) =>
    handlers.get(p)!([{ v: 1, kind: 'readings', instance: 'wp-other', readings: [{ assetId, sensorId: 's1', assetType: 'bridge', street: 's', metric: 'strain', value, ts: clock.t }] }]);
  const line = (e: RuleEvent) => `${e.ruleId} ${e.assetId} ${e.level ?? 'resolved'}`;
  return { node, clock, stored, shared, handlers, deliver, line, rules };
}

describe('ClusterNode', () => {
  it('publishes the readings of one turn as one message per partition, in order, and answers each caller for its own partitions', async () => {
    const published: Array<{ partition: number; message: PartitionMessage }> = [];
    let refuse = -1;
    const { node, clock } = setup(new Map(), (partition, message) => {
      published.push({ partition, message });
      return partition === refuse ? Promise.reject(new Error('nacked')) : Promise.resolve();
    });
    const reading = (assetId: string, value: number) => ({ assetId, sensorId: 's1', assetType: 'bridge', street: 's', metric: 'strain', value, ts: clock.t });
    const first = node.publishReadings([reading('a0', 1), reading('a1', 2)]);
    const second = node.publishReadings([reading('a0', 3)]);
    await expect(Promise.all([first, second])).resolves.toEqual([true, true]);
    expect(published.map((m) => [m.partition, m.message.kind === 'readings' ? m.message.readings.map((r) => r.value) : []])).toEqual([
      [0, [1, 3]],
      [1, [2]],
    ]);
    // A refusal in partition 1 fails only the caller with readings there.
    refuse = 1;
    published.length = 0;
    const both = node.publishReadings([reading('a0', 4), reading('a1', 5)]);
    const zeroOnly = node.publishReadings([reading('a0', 6)]);
    await expect(Promise.all([both, zeroOnly])).resolves.toEqual([false, true]);
    expect(published).toHaveLength(2);
  });

  it('judges stale sensors of owned partitions only', async () => {
    const { node, clock, stored, line, rules } = setup();
    await node.acquire(0);
    expect(node.ownedPartitions()).toEqual([0]);
    // The runner holds the owned sensor only (the tick would drop others' events, but they are not even watched).
    expect(rules.stats().staleSensors).toBe(1);
    clock.t += 11_000;
    node.tick();
    await new Promise((r) => setTimeout(r, 0));
    expect(stored.map(line)).toEqual(['silent a0 yellow']);
  });

  it('forgets a lost partition: its stale sensors do not fire here', async () => {
    const { node, clock, stored, rules } = setup();
    await node.acquire(0);
    clock.t += 5000;
    await node.lose(0);
    expect(rules.stats().staleSensors).toBe(0);
    clock.t += 10_000;
    node.tick();
    await new Promise((r) => setTimeout(r, 0));
    expect(stored).toEqual([]);
    expect(node.ownedPartitions()).toEqual([]);
  });

  it('a new owner continues a `for` run from the checkpoint the old owner wrote before its ack', async () => {
    const shared = new Map<string, AssetSnapshot>();
    const first = setup(shared);
    await first.node.acquire(1);
    await first.deliver(1, 'a1', 400); // the `for: 2s` run starts
    expect(first.stored).toEqual([]);
    expect(shared.has('a1')).toBe(true);
    await first.node.lose(1);

    const second = setup(shared);
    second.clock.t = first.clock.t + 2500;
    await second.node.acquire(1);
    await second.deliver(1, 'a1', 401); // 2.5 s into the run: red now, not 2 s from here
    expect(second.stored.map(second.line)).toEqual(['strain a1 red']);
  });

  it('refuses a batch of a partition it does not own (it returns to the queue)', async () => {
    const { node, handlers } = setup();
    await node.acquire(0);
    const handler = handlers.get(0)!;
    await node.lose(0);
    await expect(
      handler([{ v: 1, kind: 'readings', instance: 'x', readings: [{ assetId: 'a0', sensorId: 's1', assetType: 'bridge', street: 's', metric: 'strain', value: 1, ts: T0 }] }]),
    ).rejects.toThrow('partition 0 was handed over');
  });
});
