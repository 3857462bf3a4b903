/**
 * The queue between a telemetry writer and its backend. The batch writer appends, peeks the
 * oldest points and commits them once the backend has confirmed (or refused them for good). Two
 * queues implement it: the durable on-disk spool (ingest/spool.ts), which every platform writer
 * uses, and a bounded in-memory FIFO for tests and tools.
 *
 * `append` resolves once the points are as durable as the queue makes them (for the spool: on
 * disk, fsynced with `fsync: always`), so a caller that acknowledges a device only after it
 * resolves never acknowledges a point it could lose. Appends resolve in the order they were made.
 * A crash between peek and commit sends the batch again, which InfluxDB's idempotency (same
 * series + timestamp overwrites) makes harmless.
 */
export interface AppendOptions {
  /**
   * Take the points even past the queue's capacity. For the platform's own rare points (alert
   * events), which must not be lost while readings from devices are being refused.
   */
  force?: boolean;
}

export interface QueueStats {
  /** Points waiting to be written. */
  depth: number;
  /** Bytes they take (on disk for the spool). */
  bytes: number;
  /** The capacity `bytes` is measured against. */
  capacityBytes: number;
  /** When the oldest waiting point was appended (epoch ms); undefined when empty or not known yet. */
  oldestAppendedAt: number | undefined;
}

export interface PointQueue<T> {
  /** Opens files and recovers what a previous run left; the in-memory queue has nothing to open. */
  open?(): Promise<void>;
  /** Points waiting to be written. */
  size(): number;
  /**
   * Appends all of `items` or none of them. Resolves true once they are durable, false when they
   * do not fit; rejects when the queue cannot store them (an I/O error): nothing was appended.
   */
  append(items: readonly T[], options?: AppendOptions): Promise<boolean>;
  /** Up to `n` of the oldest points, oldest first, without removing them. */
  peek(n: number): Promise<T[]>;
  /** Removes the `n` oldest points (they were written, or refused for good); n <= what peek returned. */
  commit(n: number): Promise<void>;
  stats(): QueueStats;
  /** Waits for pending appends, then releases files and handles. */
  close?(): Promise<void>;
}

/** One million lines of line protocol is roughly 150-250 MB of heap. */
export const DEFAULT_MEMORY_QUEUE_CAPACITY = 1_000_000;

/** Committed slots are reclaimed once at least this many have piled up at the head. */
const COMPACT_AFTER = 4096;

/** A bounded FIFO in memory, capacity in points. Points in it are lost if the process dies. */
export class MemoryPointQueue<T> implements PointQueue<T> {
  private items: T[] = [];
  private appendedAt: number[] = [];
  private head = 0;

  constructor(
    readonly capacity: number = DEFAULT_MEMORY_QUEUE_CAPACITY,
    private readonly now: () => number = Date.now,
  ) {}

  size(): number {
    return this.items.length - this.head;
  }

  async append(items: readonly T[], options: AppendOptions = {}): Promise<boolean> {
    if (!options.force && this.size() + items.length > this.capacity) return false;
    const at = this.now();
    for (const item of items) {
      this.items.push(item);
      this.appendedAt.push(at);
    }
    return true;
  }

  async peek(n: number): Promise<T[]> {
    return this.items.slice(this.head, this.head + n);
  }

  async commit(n: number): Promise<void> {
    this.head = Math.min(this.head + n, this.items.length);
    if (this.head === this.items.length) {
      this.items = [];
      this.appendedAt = [];
      this.head = 0;
    } else if (this.head >= COMPACT_AFTER && this.head * 2 >= this.items.length) {
      this.items = this.items.slice(this.head);
      this.appendedAt = this.appendedAt.slice(this.head);
      this.head = 0;
    }
  }

  stats(): QueueStats {
    return { depth: this.size(), bytes: this.size(), capacityBytes: this.capacity, oldestAppendedAt: this.size() > 0 ? this.appendedAt[this.head] : undefined };
  }
}
