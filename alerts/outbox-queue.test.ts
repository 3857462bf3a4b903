/** The outbox sender's index: per-key order by seq, also when a row shows up below rows already indexed. */
import { describe, expect, it } from 'vitest';
import { PendingOutbox, type PendingRow } from './outbox-queue.js';

function row(seq: number, extra: Partial<PendingRow> = {}): PendingRow {
  return {
    seq,
    deliveryId: `d${seq}`,
    alertId: 'al_1',
    channelId: 'ops-hook',
    recipients: [],
    event: 'firing',
    tier: 0,
    attempts: 0,
    nextAttemptAt: 0,
    createdAt: 0,
    digestId: null,
    ...extra,
  };
}

describe('the pending outbox index', () => {
  it('puts a row that appears late ahead of a waiting head with a higher seq', () => {
    const index = new PendingOutbox((r) => r.channelId);
    index.add([row(5), row(7)]);
    index.add([row(3)]);
    expect(index.takeDue(0)?.deliveryId).toBe('d3');
    expect(index.takeDue(0)).toBeUndefined();
    index.done(index.get('d3')!);
    expect(index.takeDue(0)?.deliveryId).toBe('d5');
    index.done(index.get('d5')!);
    expect(index.takeDue(0)?.deliveryId).toBe('d7');
    expect(index.lastSeq).toBe(7);
  });

  it('keeps a head that is being sent first and queues the late row right behind it', () => {
    const index = new PendingOutbox((r) => r.channelId);
    index.add([row(5), row(7)]);
    const inFlight = index.takeDue(0)!;
    expect(inFlight.deliveryId).toBe('d5');
    index.add([row(3), row(5)]);
    expect(index.takeDue(0)).toBeUndefined();
    index.done(inFlight);
    expect(index.takeDue(0)?.deliveryId).toBe('d3');
    index.done(index.get('d3')!);
    expect(index.takeDue(0)?.deliveryId).toBe('d7');
    expect(index.size).toBe(1);
  });
});
