/**
 * The queue between a telemetry writer and its backend. The batch writer only appends, peeks
 * the oldest points and commits them once the backend has confirmed (or refused them for
 * good), so a durable on-disk spool can take the in-memory queue's place without the writer
 * changing: a crash between peek and commit sends the batch again, which InfluxDB's
 * idempotency (same series + timestamp overwrites) makes harmless.
 *
 * The methods are synchronous: `append` sits on the ingest hot path and must answer at once
 * whether the points were taken; a spool on SQLite or an append-only file can do that.
 */
export interface PointQueue<T> {
  /** Points waiting to be written. */
  size(): number;
  /** Appends all of `items` or none of them; false when they do not fit. */
  append(items: readonly T[]): boolean;
  /** Up to `n` of the oldest points, oldest first, without removing them. */
  peek(n: number): T[];
  /** Removes the `n` oldest points (they were written, or refused for good). */
  commit(n: number): void;
  /** Releases files or handles; the in-memory queue has none. */
  close?(): void | Promise<void>;
}

/** One million lines of line protocol is roughly 150-250 MB of heap. */
export const DEFAULT_MEMORY_QUEUE_CAPACITY = 1_000_000;

/** Committed slots are reclaimed once at least this many have piled up at the head. */
const COMPACT_AFTER = 4096;

/** A bounded FIFO in memory. Points in it are lost if the process dies. */
export class MemoryPointQueue<T> implements PointQueue<T> {
  private items: T[] = [];
  private head = 0;

  constructor(readonly capacity: number = DEFAULT_MEMORY_QUEUE_CAPACITY) {}

  size(): number {
    return this.items.length - this.head;
  }

  append(items: readonly T[]): boolean {
    if (this.size() + items.length > this.capacity) return false;
    for (const item of items) this.items.push(item);
    return true;
  }

  peek(n: number): T[] {
    return this.items.slice(this.head, this.head + n);
  }

  commit(n: number): void {
    this.head = Math.min(this.head + n, this.items.length);
    if (this.head === this.items.length) {
      this.items = [];
      this.head = 0;
    } else if (this.head >= COMPACT_AFTER && this.head * 2 >= this.items.length) {
      this.items = this.items.slice(this.head);
      this.head = 0;
    }
  }
}
