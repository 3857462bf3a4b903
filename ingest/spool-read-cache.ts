/**
 * The spool's reading side: the batch writer peeks records from a cache that reads fill from
 * disk at the cursor, one read at a time. While the reader is caught up (it has read everything
 * written, the usual case when the backend keeps up), each group just written is also kept in
 * memory as written, up to `writeThroughLimit` records, and peeks take records from it: no read
 * back through the thread pool and no checksum of bytes that never left memory. Past the limit
 * (the backend is slow or down) the backlog waits on disk only and is read from there.
 *
 * Records found corrupt (a disk error under a closed segment) are skipped up to the end of that
 * segment, logged at error and counted through `onCorrupt`.
 */
import type { Logger } from '../lib/logger.js';
import { ioError, readFully, type SpoolFile, type SpoolFs } from './spool-fs.js';
import { parseRecord, writtenRecord } from './spool-record.js';
import { READ_CHUNK, type Position, type Segment, type SegmentLog } from './spool-segments.js';
import type { SpoolCodec } from './spool.js';

interface Entry<T> {
  item: T;
  seq: number;
  seg: Segment;
  start: number;
  appendedAt: number;
}

/**
 * A group written while the reader was caught up, kept as written: its records become cache
 * entries only when a peek needs them (one object per group meanwhile, not one per record, so
 * the young generation has little to copy while points wait for the next batch).
 */
interface WrittenGroup {
  buf: Buffer;
  seg: Segment;
  /** File offset of `buf`. */
  start: number;
  /** Offset in `buf` of the first record not yet in the cache, and its sequence number. */
  pos: number;
  seq: number;
  /** Records from `pos` on. */
  left: number;
}

export interface ReadCacheDeps<T> {
  segments: SegmentLog;
  codec: SpoolCodec<T>;
  fs: SpoolFs;
  logger: Logger;
  writeThroughLimit: number;
  /** The spool's head (the oldest uncommitted record). */
  head: () => Position;
  /** Everything between the head and `to` was skipped as corrupt: the head moves there. */
  skipTo: (to: Position) => void;
  onCorrupt?: (lost: number) => void;
}

export class ReadCache<T> {
  private cache: Array<Entry<T>> = [];
  /** Groups written since the reader caught up, after the cache and before the cursor. */
  private written: WrittenGroup[] = [];
  /** Records in `written`. */
  private writtenRecords = 0;
  private cursor!: Position;
  private readHandle: { seg: Segment; fh: SpoolFile } | undefined;
  private reading: Promise<unknown> = Promise.resolve();
  /** fill() calls not yet finished: while any runs, the cursor belongs to it. */
  private fills = 0;

  constructor(private readonly deps: ReadCacheDeps<T>) {}

  /** Reading starts at `head`. */
  start(head: Position): void {
    this.cursor = { ...head };
  }

  /** Records in the cache. */
  get cached(): number {
    return this.cache.length;
  }

  /** Neither the cache nor the groups kept as written hold a record. */
  isEmpty(): boolean {
    return this.cache.length === 0 && this.written.length === 0;
  }

  /** Up to `n` of the oldest uncommitted points. */
  async peek(n: number): Promise<T[]> {
    this.takeWritten(n);
    if (this.cache.length < n) await this.fill(n);
    return this.cache.slice(0, n).map((e) => e.item);
  }

  /** Drops the `n` oldest records (committed) and returns where the next one starts. */
  remove(n: number): Position {
    if (n > this.cache.length) throw new Error(`spool: commit(${n}) of more than the ${this.cache.length} records peeked`);
    this.cache.splice(0, n);
    const next = this.cache[0];
    const group = this.written[0];
    return next ? { seg: next.seg, offset: next.start, seq: next.seq } : group ? { seg: group.seg, offset: group.start + group.pos, seq: group.seq } : { ...this.cursor };
  }

  /** Append time of the oldest record it holds, if any. */
  oldestAppendedAt(): number | undefined {
    const entry = this.cache[0];
    if (entry) return entry.appendedAt;
    const group = this.written[0];
    if (group) return writtenRecord(group.buf, group.pos).appendedAt;
    return undefined;
  }

  /**
   * A group of `count` records was written to `active` at offset `start` with sequence numbers
   * from `seq`: kept as written when the reader has read everything before it and no read runs
   * (so it skips the disk on its way to the reader), within `writeThroughLimit`.
   */
  wrote(buf: Buffer, active: Segment, start: number, seq: number, count: number): void {
    const cursor = this.cursor;
    const atTail =
      this.fills === 0 && cursor.seg === active && cursor.offset === start && cursor.seq === seq && this.cache.length + this.writtenRecords + count <= this.deps.writeThroughLimit;
    if (!atTail) return;
    this.written.push({ buf, seg: active, start, pos: 0, seq, left: count });
    this.writtenRecords += count;
    cursor.offset += buf.length;
    cursor.seq += count;
  }

  /** Reads records at the cursor into the cache until it holds `n` or nothing more is written. Reads run one at a time. */
  fill(n: number): Promise<void> {
    this.fills += 1;
    const run = this.reading
      .then(async () => {
        // Records kept as written come before the cursor; the disk is read only once they are all taken.
        this.takeWritten(n);
        while (this.cache.length < n) {
          if (!(await this.readChunk(n - this.cache.length))) break;
        }
        // Everything between the head and the cursor was skipped as corrupt: commit the gap.
        if (this.cache.length === 0 && this.written.length === 0 && this.cursor.seq !== this.deps.head().seq) this.deps.skipTo({ ...this.cursor });
      })
      .finally(() => {
        this.fills -= 1;
      });
    this.reading = run.catch(() => undefined);
    return run;
  }

  /** Waits for the read under way, if any. */
  async settled(): Promise<void> {
    await this.reading.catch(() => undefined);
  }

  async close(): Promise<void> {
    const handle = this.readHandle?.fh;
    this.readHandle = undefined;
    await handle?.close().catch(() => undefined);
  }

  /**
   * Moves records of groups kept as written into the cache until it holds `n`, as a read would.
   * The bytes are the ones written, so no checksum is checked. A payload the codec cannot
   * decode (it just encoded it) is counted as corrupt, as a read would count it.
   */
  private takeWritten(n: number): void {
    while (this.cache.length < n && this.written.length > 0) {
      const group = this.written[0]!;
      const buf = group.buf;
      while (group.left > 0 && this.cache.length < n) {
        const pos = group.pos;
        const record = writtenRecord(buf, pos);
        group.pos = pos + record.length;
        group.left -= 1;
        this.writtenRecords -= 1;
        const seq = group.seq++;
        let item: T;
        try {
          item = this.deps.codec.decode(record.payload);
        } catch (err) {
          this.corrupt(group.seg, group.start + pos, 1, `payload cannot be decoded: ${(err as Error).message}`);
          continue;
        }
        this.cache.push({ item, seq, seg: group.seg, start: group.start + pos, appendedAt: record.appendedAt });
      }
      if (group.left === 0) this.written.shift();
    }
  }

  /** Reads one chunk at the cursor; false when there is nothing more to read now. */
  private async readChunk(want: number): Promise<boolean> {
    const seg = this.cursor.seg;
    if (this.cursor.offset >= seg.size) {
      const next = this.deps.segments.after(seg);
      if (!next) return false;
      if (next.base > this.cursor.seq) this.corrupt(seg, this.cursor.offset, next.base - this.cursor.seq, 'records missing at the end of a closed segment');
      this.cursor = { seg: next, offset: 0, seq: next.base };
      return true;
    }
    const available = seg.size - this.cursor.offset;
    let buf = await this.readAt(seg, this.cursor.offset, Math.min(available, READ_CHUNK));
    let pos = 0;
    let added = 0;
    while (pos < buf.length && (added < want || pos === 0)) {
      const rec = parseRecord(buf, pos);
      if (rec.kind === 'incomplete') {
        if (pos > 0) break;
        if (rec.need > available || buf.length < Math.min(available, READ_CHUNK)) {
          this.skipRestOfSegment(seg, this.cursor.offset, 'record runs past the written end');
          return true;
        }
        buf = await this.readAt(seg, this.cursor.offset, rec.need);
        continue;
      }
      if (rec.kind === 'corrupt') {
        this.cursor.offset += pos;
        this.skipRestOfSegment(seg, this.cursor.offset, rec.why);
        return true;
      }
      let item: T;
      try {
        item = this.deps.codec.decode(rec.payload);
      } catch (err) {
        this.corrupt(seg, this.cursor.offset + pos, 1, `payload cannot be decoded: ${(err as Error).message}`);
        pos += rec.length;
        this.cursor.seq += 1;
        continue;
      }
      this.cache.push({ item, seq: this.cursor.seq, seg, start: this.cursor.offset + pos, appendedAt: rec.appendedAt });
      pos += rec.length;
      this.cursor.seq += 1;
      added += 1;
    }
    this.cursor.offset += pos;
    return true;
  }

  /** Moves the cursor past the rest of `seg` after corruption at `offset`, counting what is lost. */
  private skipRestOfSegment(seg: Segment, offset: number, why: string): void {
    const next = this.deps.segments.after(seg);
    const endSeq = next ? next.base : this.deps.segments.nextSeq;
    this.corrupt(seg, offset, Math.max(0, endSeq - this.cursor.seq), why);
    this.cursor = { seg, offset: seg.size, seq: endSeq };
  }

  private corrupt(seg: Segment, offset: number, lost: number, why: string): void {
    this.deps.logger.error({ segment: seg.path, offset, lost }, `spool: corrupt record skipped (${why})`);
    if (lost > 0) this.deps.onCorrupt?.(lost);
  }

  private async readAt(seg: Segment, position: number, length: number): Promise<Buffer> {
    if (this.readHandle?.seg !== seg) {
      const previous = this.readHandle?.fh;
      this.readHandle = undefined;
      await previous?.close().catch(() => undefined);
      this.readHandle = { seg, fh: await this.deps.fs.open(seg.path, 'r') };
    }
    try {
      return await readFully(this.readHandle.fh, position, length);
    } catch (err) {
      throw ioError(`cannot read ${seg.path}`, err);
    }
  }
}
