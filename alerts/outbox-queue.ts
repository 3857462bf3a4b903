/**
 * The outbox sender's index of pending rows, kept in memory so that a pump costs what it
 * dispatches rather than what is pending: rows are read from the store once at start and then
 * only as they are added (by seq), and each outcome updates the index in place.
 *
 * Order: rows of one (alert, channel, recipients) form a queue; only its oldest pending row (the
 * head) may be sent, so a receiver gets an alert's notifications in the order they happened. A
 * head taken into a digest still holds back the rows behind it until the digest is settled.
 * Waiting heads sit in a min-heap by due time (then seq) and in a set per rate-limit key.
 */
import type { PendingRow } from './store.js';

export type { PendingRow } from './store.js';

interface Entry {
  at: number;
  seq: number;
  row: PendingRow;
  token: number;
}

function queueKey(row: PendingRow): string {
  return `${row.alertId}\u0000${row.channelId}\u0000${row.recipients.join(',')}`;
}

export class PendingOutbox {
  private readonly queues = new Map<string, PendingRow[]>();
  private readonly byId = new Map<string, PendingRow>();
  /** Waiting heads per rate-limit key, with the token of their live heap entry and its due time. */
  private readonly waiting = new Map<string, Map<PendingRow, { token: number; at: number }>>();
  private heap: Entry[] = [];
  private nextToken = 1;
  private maxSeq = 0;

  constructor(private readonly rateKey: (row: PendingRow) => string) {}

  /** The highest seq seen; rows added later have a higher one. */
  get lastSeq(): number {
    return this.maxSeq;
  }

  get size(): number {
    return this.byId.size;
  }

  get(deliveryId: string): PendingRow | undefined {
    return this.byId.get(deliveryId);
  }

  /**
   * Adds pending rows read from the store, in seq order; rows already indexed are skipped. A row
   * below the seq of rows already queued (a shared store shows rows at commit, not in seq order)
   * takes its place by seq, ahead of the head only while the head is merely waiting.
   */
  add(rows: readonly PendingRow[]): void {
    for (const row of rows) {
      if (this.byId.has(row.deliveryId)) continue;
      this.maxSeq = Math.max(this.maxSeq, row.seq);
      this.byId.set(row.deliveryId, row);
      const key = queueKey(row);
      const queue = this.queues.get(key);
      if (!queue) {
        this.queues.set(key, [row]);
        if (row.digestId === null) this.wait(row, row.nextAttemptAt);
        continue;
      }
      let at = queue.length;
      while (at > 0 && queue[at - 1]!.seq > row.seq) at--;
      const head = queue[0]!;
      if (at === 0 && !(this.isWaiting(head) && row.digestId === null)) at = 1;
      queue.splice(at, 0, row);
      if (at === 0) {
        this.unwait(head);
        this.wait(row, row.nextAttemptAt);
      }
    }
  }

  private isWaiting(row: PendingRow): boolean {
    return this.waiting.get(this.rateKey(row))?.has(row) === true;
  }

  /** Makes a head wait until `at` (its next attempt, or later when a limit holds it back). */
  wait(row: PendingRow, at: number): void {
    const key = this.rateKey(row);
    let set = this.waiting.get(key);
    if (!set) this.waiting.set(key, (set = new Map<PendingRow, { token: number; at: number }>()));
    const token = this.nextToken++;
    set.set(row, { token, at });
    this.push({ at, seq: row.seq, row, token });
  }

  /** Takes the earliest waiting head due at `now`, if any. */
  takeDue(now: number): PendingRow | undefined {
    const top = this.peekLive();
    if (!top || top.at > now) return undefined;
    this.pop();
    this.unwait(top.row);
    return top.row;
  }

  /** Takes every waiting head of a rate-limit key that is due at `now`. */
  takeDueOfKey(key: string, now: number): PendingRow[] {
    const set = this.waiting.get(key);
    if (!set) return [];
    const due: PendingRow[] = [];
    for (const [row, w] of set) if (w.at <= now) due.push(row);
    for (const row of due) this.unwait(row);
    return due;
  }

  /** The earliest due time of a waiting head. */
  nextDue(): number | undefined {
    return this.peekLive()?.at;
  }

  /** The rows were merged into a digest: they stay heads of their queues until it is settled. */
  joinDigest(rows: readonly PendingRow[], digestId: string): void {
    for (const row of rows) {
      this.unwait(row);
      row.digestId = digestId;
    }
  }

  /** The row is no longer pending (delivered, failed, or gone): the next row of its queue is the head. */
  done(row: PendingRow): void {
    if (this.byId.get(row.deliveryId) !== row) return;
    this.byId.delete(row.deliveryId);
    this.unwait(row);
    const key = queueKey(row);
    const queue = this.queues.get(key);
    if (!queue) return;
    const i = queue.indexOf(row);
    if (i >= 0) queue.splice(i, 1);
    if (queue.length === 0) {
      this.queues.delete(key);
      return;
    }
    const head = queue[0]!;
    if (i === 0 && head.digestId === null) this.wait(head, head.nextAttemptAt);
  }

  private unwait(row: PendingRow): void {
    const key = this.rateKey(row);
    const set = this.waiting.get(key);
    if (!set?.delete(row)) return;
    if (set.size === 0) this.waiting.delete(key);
  }

  private isLive(e: Entry): boolean {
    return this.waiting.get(this.rateKey(e.row))?.get(e.row)?.token === e.token;
  }

  /** The top live entry; stale entries (heads taken or re-armed since) are dropped on the way. */
  private peekLive(): Entry | undefined {
    while (this.heap.length > 0 && !this.isLive(this.heap[0]!)) this.pop();
    return this.heap[0];
  }

  private less(a: Entry, b: Entry): boolean {
    return a.at < b.at || (a.at === b.at && a.seq < b.seq);
  }

  private push(e: Entry): void {
    const heap = this.heap;
    heap.push(e);
    let i = heap.length - 1;
    while (i > 0) {
      const parent = (i - 1) >> 1;
      if (!this.less(heap[i]!, heap[parent]!)) break;
      [heap[i], heap[parent]] = [heap[parent]!, heap[i]!];
      i = parent;
    }
  }

  private pop(): void {
    const heap = this.heap;
    const last = heap.pop();
    if (heap.length === 0 || !last) return;
    heap[0] = last;
    let i = 0;
    for (;;) {
      const l = 2 * i + 1;
      const r = l + 1;
      let m = i;
      if (l < heap.length && this.less(heap[l]!, heap[m]!)) m = l;
      if (r < heap.length && this.less(heap[r]!, heap[m]!)) m = r;
      if (m === i) break;
      [heap[i], heap[m]] = [heap[m]!, heap[i]!];
      i = m;
    }
  }
}
