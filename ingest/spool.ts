/**
 * The durable spool: an append-only log of points on disk between ingest and the storage
 * backend. Ingest acknowledges a device only once its readings are in the spool; the batch
 * writer drains it to InfluxDB (or the embedded store) oldest first and commits what the backend
 * confirmed. Nothing accepted is dropped: when the spool is full, appends are refused (and the
 * device is not acknowledged) until the backend catches up.
 *
 * Its parts, each in its own file, all in `dir` (`storage.data_dir/spool/`):
 * - spool-segments.ts: the segment files (`<base>.seg`) and their recovery at open;
 * - spool-record.ts: a record, `u32 LE body length | u32 LE CRC-32 of (length bytes + body) |
 *   body`, the body `f64 LE append time (epoch ms) | payload` (the codec's bytes: a line of
 *   line protocol, or JSON);
 * - spool-checkpoint.ts: the `checkpoint` file, where draining resumes;
 * - spool-group-commit.ts: appends gathered into groups, written and fdatasynced (`fsync`);
 * - spool-read-cache.ts: what the batch writer peeks, read from disk or kept as written;
 * - spool-fs.ts: the file operations, injectable so that tests can make a disk fail.
 * This file ties them together: the PointQueue the batch writer sees, and the lifecycle.
 *
 * A failed fdatasync (of a segment or the directory) is never retried: the kernel may have
 * dropped the dirty pages, so a retry could succeed with the data not on disk. The spool stops
 * taking appends until a restart (fail-stop: every append is refused, so devices are not
 * acknowledged and send again later), logs the file at error and calls `onFail`. What it still
 * holds is drained to the backend while Watchpost runs. What that guarantees:
 * - `always`: every acknowledged record was fdatasynced before its acknowledgement, so it is on
 *   disk; the group whose fdatasync failed was not acknowledged.
 * - `interval`: records acknowledged since the last good fdatasync (those of the last
 *   `fsyncInterval` ms, and any written while the failing fdatasync ran) are not known to be on
 *   disk. They are still sent from memory and the page cache while Watchpost runs; after a
 *   restart, any the disk lost show up as a torn tail or as corrupt records (counted through
 *   `onCorrupt`), never as wrong data.
 * A failed write() (a full disk) refuses that group and cuts it back; if that fails, the spool
 * stops the same way. A checkpoint that cannot be written or synced only sends records again.
 */
import { mkdir, statfs } from 'node:fs/promises';
import { join } from 'node:path';
import type { Logger } from '../lib/logger.js';
import type { AppendOptions, PointQueue, QueueStats } from './point-queue.js';
import { Checkpoint, readCheckpoint, SPOOL_CHECKPOINT_FILE } from './spool-checkpoint.js';
import { ioError, nodeSpoolFs, type SpoolFs } from './spool-fs.js';
import { GroupCommit } from './spool-group-commit.js';
import { ReadCache } from './spool-read-cache.js';
import { MAX_RECORD_BODY, RECORD_OVERHEAD, RECORD_TIME, writeRecord } from './spool-record.js';
import { SegmentLog, type Position } from './spool-segments.js';
import { STORAGE_ERROR_CODES, StorageError } from './storage-errors.js';

export { SPOOL_CHECKPOINT_FILE } from './spool-checkpoint.js';
export { segmentName, SPOOL_SEGMENT_SUFFIX } from './spool-segments.js';

/** How points become record payloads and back. */
export interface SpoolCodec<T> {
  encode(item: T): string | Uint8Array;
  decode(payload: Buffer): T;
}

/** Lines of line protocol, as UTF-8. */
export const lineCodec: SpoolCodec<string> = {
  encode: (line) => line,
  decode: (payload) => payload.toString('utf8'),
};

/**
 * Lines of line protocol, appended as strings and read back as their UTF-8 bytes: a view into
 * the read buffer, not a copy, so draining never decodes lines only to encode them again.
 */
export const lineBytesCodec: SpoolCodec<string | Buffer> = {
  encode: (line) => line,
  decode: (payload) => payload,
};

export interface SpoolOptions {
  /** Bytes of uncommitted records the spool may hold; appends past it are refused. */
  maxBytes: number;
  /** A segment is closed and a new one started once it reaches this size. */
  segmentBytes: number;
  fsync: 'always' | 'interval';
  /** With `fsync: interval`, how often the active segment is fdatasynced (ms). */
  fsyncInterval: number;
  /** Wait this long for more appends before writing a group (ms); 0 = as soon as the previous group is done. */
  groupCommitDelay: number;
  /**
   * Groups are written (and fdatasynced) on the event loop while that takes at most this long
   * (ms) on average (inline-writes.ts); past it, the fdatasync moves to the thread pool for
   * `threadPoolPeriod` ms.
   */
  inlineWriteLimit: number;
  threadPoolPeriod: number;
  /**
   * While the reader is caught up, a written group is kept in memory for it (no read back from
   * disk, no CRC check of bytes just written) as long as at most this many records wait in
   * memory; past it (the backend is slow or down) records wait on disk only.
   */
  writeThroughLimit: number;
}

export const DEFAULT_SPOOL_OPTIONS: SpoolOptions = {
  maxBytes: 2 * 1024 ** 3,
  segmentBytes: 64 * 1024 ** 2,
  fsync: 'always',
  fsyncInterval: 1000,
  groupCommitDelay: 0,
  inlineWriteLimit: 2,
  threadPoolPeriod: 60_000,
  writeThroughLimit: 65_536,
};

export interface SpoolDeps<T> {
  dir: string;
  codec: SpoolCodec<T>;
  logger: Logger;
  now?: () => number;
  /** Records lost to corruption found while reading (never a torn tail, which was never acknowledged). */
  onCorrupt?: (lost: number) => void;
  /** Observes how long each group's write + fdatasync took (ms). */
  onSync?: (ms: number, records: number) => void;
  /** The spool stopped taking appends for good (a failed fdatasync); called once. */
  onFail?: (error: StorageError) => void;
  /** File operations; node:fs unless a test injects a failing disk. */
  fs?: SpoolFs;
}

type State = 'new' | 'open' | 'closing' | 'closed' | 'failed';

export class Spool<T> implements PointQueue<T> {
  private readonly options: SpoolOptions;
  private readonly log: Logger;
  private readonly now: () => number;
  private readonly fs: SpoolFs;
  private state: State = 'new';
  /** Set when the spool cannot open, or has stopped taking appends for good (fail-stop): every append is refused with it. */
  private failedWith: StorageError | undefined;

  private readonly segments: SegmentLog;
  private readonly checkpoint: Checkpoint;
  private readonly commits: GroupCommit;
  private readonly reader: ReadCache<T>;
  /** The oldest uncommitted record. */
  private head!: Position;
  /** Append time of the oldest record when the read cache does not hold it. */
  private oldestHint: number | undefined;

  constructor(
    private readonly deps: SpoolDeps<T>,
    options: Partial<SpoolOptions> = {},
  ) {
    this.options = { ...DEFAULT_SPOOL_OPTIONS, ...options };
    this.log = deps.logger;
    this.now = deps.now ?? Date.now;
    this.fs = deps.fs ?? nodeSpoolFs;
    this.segments = new SegmentLog(deps.dir, this.fs, this.log, [SPOOL_CHECKPOINT_FILE]);
    this.checkpoint = new Checkpoint(join(deps.dir, SPOOL_CHECKPOINT_FILE), this.fs, this.log, this.options.fsync === 'always', () => this.head);
    this.reader = new ReadCache<T>({
      segments: this.segments,
      codec: deps.codec,
      fs: this.fs,
      logger: this.log,
      writeThroughLimit: this.options.writeThroughLimit,
      head: () => this.head,
      skipTo: (to) => this.moveHead(to),
      ...(deps.onCorrupt ? { onCorrupt: deps.onCorrupt } : {}),
    });
    this.commits = new GroupCommit({
      segments: this.segments,
      checkpoint: this.checkpoint,
      fs: this.fs,
      logger: this.log,
      now: this.now,
      options: this.options,
      isOpen: () => this.state === 'open',
      isRunning: () => this.state === 'open' || this.state === 'closing',
      failure: () => this.failedWith,
      failStop: (error, file) => this.failStop(error, file),
      wrote: (data, active, start, seq, count, firstAt) => {
        if (this.size() === 0 && this.reader.cached === 0) this.oldestHint = firstAt;
        this.reader.wrote(data, active, start, seq, count);
      },
      ...(deps.onSync ? { onSync: deps.onSync } : {}),
    });
  }

  // ---- lifecycle ----

  async open(): Promise<void> {
    if (this.state !== 'new') return;
    const { dir } = this.deps;
    try {
      await mkdir(dir, { recursive: true, mode: 0o700 });
      await this.segments.load();
      const truncated = await this.segments.recoverTail();
      const checkpoint = await readCheckpoint(this.fs, this.checkpoint.file);
      this.head = await this.segments.findHead(checkpoint);
      this.reader.start(this.head);
      await this.segments.openForAppend();
      await this.checkpoint.open(checkpoint?.generation ?? 0);
      this.state = 'open';
      await this.checkpoint.write();
      this.commits.start();
      this.log.info({ dir, depth: this.size(), bytes: this.liveBytes(), segments: this.segments.segments.length, truncated_bytes: truncated, fsync: this.options.fsync }, 'spool open');
      await this.warnIfDiskSmall();
      if (this.size() > 0) await this.reader.fill(1);
    } catch (err) {
      this.state = 'failed';
      this.failedWith = err instanceof StorageError ? err : ioError('cannot open', err);
      await this.releaseHandles();
      throw this.failedWith;
    }
  }

  /**
   * Writes what is pending, syncs, records the checkpoint and closes the files. After a fail-stop
   * nothing is pending and the segment is not fdatasynced again (a second fdatasync after a
   * failed one can succeed without the data being on disk); the checkpoint is still recorded.
   */
  async close(): Promise<void> {
    if (this.state !== 'open' && this.state !== 'failed') return;
    const failed = this.state === 'failed';
    this.state = 'closing';
    this.commits.stopTimers();
    if (!failed) {
      await this.commits.flush();
      await this.reader.settled();
      try {
        await this.commits.syncLast();
        await this.checkpoint.settled();
        await this.checkpoint.write(true);
      } catch (err) {
        this.log.error({ err: (err as Error).message }, 'spool: final sync failed');
      }
    }
    this.commits.refusePending();
    await this.releaseHandles();
    this.state = 'closed';
  }

  private async releaseHandles(): Promise<void> {
    await Promise.all([this.segments.close(), this.reader.close(), this.checkpoint.close()]);
  }

  // ---- PointQueue ----

  size(): number {
    return this.state === 'new' ? 0 : this.segments.nextSeq - this.head.seq;
  }

  stats(): QueueStats {
    const depth = this.size();
    return {
      depth,
      bytes: this.state === 'new' ? 0 : this.liveBytes(),
      capacityBytes: this.options.maxBytes,
      oldestAppendedAt: depth === 0 ? undefined : (this.reader.oldestAppendedAt() ?? this.oldestHint),
    };
  }

  /** Why the spool refuses every append until a restart (it could not open, or an fdatasync failed); undefined while it takes them. */
  failure(): StorageError | undefined {
    return this.failedWith;
  }

  append(items: readonly T[], options: AppendOptions = {}): Promise<boolean> {
    if (this.failedWith) return Promise.reject(this.failedWith);
    if (this.state !== 'open') return Promise.resolve(false);
    if (items.length === 0) return Promise.resolve(true);
    const at = this.now();
    let buf: Buffer;
    try {
      buf = this.encode(items, at);
    } catch (err) {
      return Promise.reject(err);
    }
    if (!options.force && this.liveBytes() + this.commits.waitingBytes + buf.length > this.options.maxBytes) return Promise.resolve(false);
    return this.commits.add(buf, items.length, at);
  }

  async peek(n: number): Promise<T[]> {
    if (this.state !== 'open' && this.state !== 'closing') return [];
    return this.reader.peek(n);
  }

  async commit(n: number): Promise<void> {
    if (n <= 0) return;
    this.moveHead(this.reader.remove(n));
    // Read the new oldest record now (the next peek needs it anyway), so its age is known.
    if (this.reader.cached === 0 && this.size() > 0 && this.state === 'open') await this.reader.fill(1);
  }

  // ---- internals ----

  private encode(items: readonly T[], at: number): Buffer {
    const payloads = new Array<string | Uint8Array>(items.length);
    const sizes = new Array<number>(items.length);
    let total = 0;
    for (let i = 0; i < items.length; i++) {
      const payload = this.deps.codec.encode(items[i]!);
      const bytes = typeof payload === 'string' ? Buffer.byteLength(payload, 'utf8') : payload.length;
      if (RECORD_TIME + bytes > MAX_RECORD_BODY) {
        throw new StorageError(STORAGE_ERROR_CODES.INVALID_POINT, `spool: a point of ${bytes} bytes exceeds the record limit of ${MAX_RECORD_BODY}`);
      }
      payloads[i] = payload;
      sizes[i] = bytes;
      total += RECORD_OVERHEAD + bytes;
    }
    const out = Buffer.allocUnsafe(total);
    let offset = 0;
    for (let i = 0; i < items.length; i++) offset = writeRecord(out, offset, payloads[i]!, sizes[i]!, at);
    return out;
  }

  /** Moves the head past committed records; the checkpoint records it and deletes drained segments (spool-checkpoint.ts). */
  private moveHead(position: Position): void {
    this.head = position;
    const drained = this.segments.drainBefore(position.seg);
    if (this.reader.isEmpty() && this.size() > 0) this.oldestHint = undefined;
    this.checkpoint.advance(drained);
  }

  /**
   * Stops taking appends until Watchpost restarts. After a failed fdatasync the kernel may have
   * dropped the dirty pages and marked them clean, so a second fdatasync can succeed with the
   * data not on disk: what was written since the last good one is not known to be durable, and
   * nothing more may be acknowledged as if it were. Pending appends are refused; reading and
   * committing go on, so what the spool holds still reaches the backend while Watchpost runs.
   */
  private failStop(error: StorageError, file: string): void {
    if (this.failedWith) return;
    this.failedWith = error;
    this.log.error(
      { err: error.message, file, fsync: this.options.fsync },
      'spool: fdatasync failed; no more readings are accepted (devices are not acknowledged) until Watchpost restarts on a working disk',
    );
    this.commits.failed(error);
    this.deps.onFail?.(error);
  }

  private async warnIfDiskSmall(): Promise<void> {
    try {
      const fs = await statfs(this.deps.dir);
      const free = fs.bavail * fs.bsize;
      const room = this.options.maxBytes - this.liveBytes();
      if (free < room) {
        this.log.warn(
          { dir: this.deps.dir, free_bytes: free, max_bytes: this.options.maxBytes },
          'spool: the disk has less free space than storage.spool.max_bytes allows; a long outage will fill the disk first (appends then fail and devices are not acknowledged)',
        );
      }
    } catch {
      // statfs is informational only
    }
  }

  /** Bytes of records not yet committed. */
  private liveBytes(): number {
    return this.segments.totalSize - this.head.offset;
  }
}
