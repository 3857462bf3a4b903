/**
 * The durable spool: an append-only log of points on disk between ingest and the storage
 * backend. Ingest acknowledges a device only once its readings are in the spool; the batch
 * writer drains it to InfluxDB (or the embedded store) oldest first and commits what the backend
 * confirmed. Nothing accepted is dropped: when the spool is full, appends are refused (and the
 * device is not acknowledged) until the backend catches up.
 *
 * Files in `dir` (`storage.data_dir/spool/`):
 * - `<base>.seg`: segments, `<base>` (20 digits) the sequence number of the segment's first
 *   record. A segment grows to `segmentBytes`, is fsynced and closed, and the next one starts;
 *   a segment is deleted once every record in it is committed. The record count of a closed
 *   segment is the next segment's base minus its own, so opening reads only the head segment
 *   and the last one.
 * - `checkpoint`: where draining resumes (segment base, byte offset), two 32-byte slots written
 *   alternately, each with a generation and a CRC, so a torn write leaves the other slot valid.
 *
 * A record (spool-record.ts) is `u32 LE body length | u32 LE CRC-32 of (length bytes + body) |
 * body`, the body `f64 LE append time (epoch ms) | payload` (the codec's bytes: a line of line
 * protocol, or JSON).
 *
 * Durability (`fsync`):
 * - `always`: appends are gathered into groups (group commit): one write() and one fdatasync()
 *   per group, and every append of the group resolves after the fdatasync. Both run on the
 *   event loop while the disk is fast, else the fdatasync runs in the thread pool (see
 *   writeAndSync). While one group is being synced the next one gathers, so throughput grows
 *   with load instead of falling.
 * - `interval`: appends resolve after write() (in the page cache: survives a crash or kill -9
 *   of Watchpost, not a power cut); the segment is fdatasynced every `fsyncInterval` ms.
 * New segment files are fsynced with their directory before records go into them.
 *
 * A failed fdatasync (of a segment or the directory) is never retried: the kernel may have
 * dropped the dirty pages, so a retry could succeed with the data not on disk. The spool stops
 * taking appends until a restart (fail-stop: every append is refused, so devices are not
 * acknowledged and send again later), logs the file at error and calls `onFail`. What it still
 * holds is drained to the backend while Watchpost runs. What that guarantees:
 * - `always`: every acknowledged record was fdatasynced before its acknowledgement, so it is on
 *   disk; the group whose fdatasync failed was not acknowledged.
 * - `interval`: records acknowledged since the last good fdatasync (at most `fsyncInterval` ms
 *   of them) are not known to be on disk. They are still sent from memory and the page cache
 *   while Watchpost runs; after a restart, any the disk lost show up as a torn tail or as
 *   corrupt records (counted through `onCorrupt`), never as wrong data.
 * A failed write() (a full disk) refuses that group and cuts it back; if that fails, the spool
 * stops the same way. A checkpoint that cannot be written or synced only sends records again.
 *
 * Reading: the batch writer peeks records from a read cache that reads fill from disk. While the
 * reader is caught up (it has read everything written, the usual case when the backend keeps
 * up), each group just written is also kept in memory as written, up to `writeThroughLimit`
 * records, and peeks take records from it: no read back through the thread pool and no checksum
 * of bytes that never left memory. Past the limit (the backend is slow or down) the backlog
 * waits on disk only and is read from there.
 *
 * Recovery at open: the last segment is read through; a torn tail (a record cut short, or whose
 * CRC does not match, as a crash during a write leaves it) is cut off, logged at warn, and never
 * read as data. Draining resumes at the checkpoint, which is checked to fall on a record
 * boundary (if not, the whole head segment is sent again; InfluxDB overwrites same series and
 * timestamp). Records found corrupt later (a disk error under a closed segment) are skipped up to
 * the end of that segment, logged at error and counted through `onCorrupt`.
 */
import { mkdir, readdir, stat, statfs, unlink } from 'node:fs/promises';
import { constants } from 'node:fs';
import { join } from 'node:path';
import { crc32 } from 'node:zlib';
import type { Logger } from '../lib/logger.js';
import { InlineWrites } from './inline-writes.js';
import { nodeSpoolFs, type SpoolFile, type SpoolFs } from './spool-fs.js';
import { MAX_RECORD_BODY, RECORD_OVERHEAD, RECORD_TIME, parseRecord, writeRecord, writtenRecord } from './spool-record.js';
import type { AppendOptions, PointQueue, QueueStats } from './point-queue.js';
import { STORAGE_ERROR_CODES, StorageError } from './storage-errors.js';

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

export const SPOOL_SEGMENT_SUFFIX = '.seg';
export const SPOOL_CHECKPOINT_FILE = 'checkpoint';

const READ_CHUNK = 1024 * 1024;
const SEGMENT_NAME = /^(\d{20})\.seg$/;
const CHECKPOINT_MAGIC = 0x3150_4b57; // "WKP1" little-endian
const CHECKPOINT_SLOT = 32;

interface Segment {
  base: number;
  path: string;
  /** Bytes of whole records written to it. */
  size: number;
}

interface Position {
  seg: Segment;
  offset: number;
  seq: number;
}

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

interface PendingAppend {
  buf: Buffer;
  count: number;
  at: number;
  resolve: (ok: boolean) => void;
  reject: (err: Error) => void;
}

type State = 'new' | 'open' | 'closing' | 'closed' | 'failed';

export function segmentName(base: number): string {
  return String(base).padStart(20, '0') + SPOOL_SEGMENT_SUFFIX;
}

function writeFullySync(fs: SpoolFs, fd: number, buf: Buffer): void {
  let written = 0;
  while (written < buf.length) {
    const bytes = fs.writeSync(fd, buf, written, buf.length - written);
    if (bytes <= 0) throw new Error('write() wrote nothing');
    written += bytes;
  }
}

async function readFully(fh: SpoolFile, position: number, length: number): Promise<Buffer> {
  const buf = Buffer.allocUnsafe(length);
  let got = 0;
  while (got < length) {
    const { bytesRead } = await fh.read(buf, got, length - got, position + got);
    if (bytesRead === 0) break;
    got += bytesRead;
  }
  return got === length ? buf : buf.subarray(0, got);
}

async function fsyncDir(fs: SpoolFs, dir: string): Promise<void> {
  const fh = await fs.open(dir, 'r');
  try {
    await fh.sync();
  } finally {
    await fh.close();
  }
}

function ioError(what: string, err: unknown): StorageError {
  return new StorageError(STORAGE_ERROR_CODES.LOCAL_STORE, `spool: ${what}: ${(err as Error).message ?? String(err)}`, { cause: err });
}

/** An fdatasync (or fsync) of `file` failed: the spool stops taking appends (Spool.failStop). */
class SyncFailed extends Error {
  readonly error: StorageError;

  constructor(
    readonly file: string,
    cause: unknown,
  ) {
    super(`fdatasync of ${file} failed`);
    this.error = ioError(`fdatasync of ${file} failed`, cause);
  }
}

async function datasync(fh: SpoolFile, file: string): Promise<void> {
  try {
    await fh.datasync();
  } catch (err) {
    throw new SyncFailed(file, err);
  }
}

export class Spool<T> implements PointQueue<T> {
  private readonly options: SpoolOptions;
  private readonly log: Logger;
  private readonly now: () => number;
  private readonly fs: SpoolFs;
  private state: State = 'new';
  /** Set when the spool cannot open, or has stopped taking appends for good (fail-stop): every append is refused with it. */
  private failedWith: StorageError | undefined;

  private segments: Segment[] = [];
  /** Sum of `size` over `segments`. */
  private totalSize = 0;
  private nextSeq = 0;
  private head!: Position;
  private writeHandle: SpoolFile | undefined;

  private pending: PendingAppend[] = [];
  private pendingBytes = 0;
  private flushTimer: { kind: 'timeout'; handle: ReturnType<typeof setTimeout> } | { kind: 'immediate'; handle: ReturnType<typeof setImmediate> } | undefined;
  private flushing: Promise<void> | undefined;
  private fsyncTimer: ReturnType<typeof setInterval> | undefined;
  private unsynced = false;
  /** Until then (epoch ms) groups are fdatasynced from the thread pool: the disk was found slow. */
  private threadPoolUntil = 0;
  private readonly inline: InlineWrites;
  /** Append time of the oldest record when the read cache does not hold it. */
  private oldestHint: number | undefined;

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

  private checkpointHandle: SpoolFile | undefined;
  private checkpointGeneration = 0;
  private checkpointChain: Promise<unknown> = Promise.resolve();
  /** A checkpoint write is queued and will record the head as it is when it runs. */
  private checkpointQueued = false;
  /** Segments drained but not yet deleted: deleted once a checkpoint past them is written. */
  private drained: Segment[] = [];

  constructor(
    private readonly deps: SpoolDeps<T>,
    options: Partial<SpoolOptions> = {},
  ) {
    this.options = { ...DEFAULT_SPOOL_OPTIONS, ...options };
    this.inline = new InlineWrites(this.options.inlineWriteLimit);
    this.log = deps.logger;
    this.now = deps.now ?? Date.now;
    this.fs = deps.fs ?? nodeSpoolFs;
  }

  // ---- lifecycle ----

  async open(): Promise<void> {
    if (this.state !== 'new') return;
    const { dir } = this.deps;
    try {
      await mkdir(dir, { recursive: true, mode: 0o700 });
      await this.loadSegments();
      const truncated = await this.recoverTail();
      await this.findHead();
      this.writeHandle = await this.fs.open(this.lastSegment().path, 'a', 0o600);
      this.checkpointHandle = await this.fs.open(join(dir, SPOOL_CHECKPOINT_FILE), constants.O_RDWR | constants.O_CREAT, 0o600);
      this.state = 'open';
      await this.writeCheckpoint();
      if (this.options.fsync === 'interval') {
        this.fsyncTimer = setInterval(() => void this.syncNow(), this.options.fsyncInterval);
        this.fsyncTimer.unref?.();
      }
      this.log.info(
        { dir, depth: this.size(), bytes: this.liveBytes(), segments: this.segments.length, truncated_bytes: truncated, fsync: this.options.fsync },
        'spool open',
      );
      await this.warnIfDiskSmall();
      if (this.size() > 0) await this.fill(1);
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
    clearInterval(this.fsyncTimer);
    this.fsyncTimer = undefined;
    if (this.flushTimer?.kind === 'timeout') clearTimeout(this.flushTimer.handle);
    if (this.flushTimer?.kind === 'immediate') clearImmediate(this.flushTimer.handle);
    this.flushTimer = undefined;
    if (!failed) {
      if (this.pending.length > 0 && !this.flushing) this.flushing = this.flushLoop();
      await this.flushing;
      await this.reading.catch(() => undefined);
      try {
        if (this.unsynced && !this.failedWith) await this.writeHandle?.datasync();
        await this.checkpointChain.catch(() => undefined);
        await this.writeCheckpoint(true);
      } catch (err) {
        this.log.error({ err: (err as Error).message }, 'spool: final sync failed');
      }
    }
    for (const p of this.pending.splice(0)) p.resolve(false);
    await this.releaseHandles();
    this.state = 'closed';
  }

  private async releaseHandles(): Promise<void> {
    const handles = [this.writeHandle, this.readHandle?.fh, this.checkpointHandle];
    this.writeHandle = this.checkpointHandle = undefined;
    this.readHandle = undefined;
    await Promise.all(handles.map((h) => h?.close().catch(() => undefined)));
  }

  // ---- PointQueue ----

  size(): number {
    return this.state === 'new' ? 0 : this.nextSeq - this.head.seq;
  }

  stats(): QueueStats {
    const depth = this.size();
    return {
      depth,
      bytes: this.state === 'new' ? 0 : this.liveBytes(),
      capacityBytes: this.options.maxBytes,
      oldestAppendedAt: depth === 0 ? undefined : this.oldestAppendedAt(),
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
    if (!options.force && this.liveBytes() + this.pendingBytes + buf.length > this.options.maxBytes) return Promise.resolve(false);
    this.pendingBytes += buf.length;
    return new Promise<boolean>((resolve, reject) => {
      this.pending.push({ buf, count: items.length, at, resolve, reject });
      this.scheduleFlush();
    });
  }

  async peek(n: number): Promise<T[]> {
    if (this.state !== 'open' && this.state !== 'closing') return [];
    this.takeWritten(n);
    if (this.cache.length < n) await this.fill(n);
    return this.cache.slice(0, n).map((e) => e.item);
  }

  async commit(n: number): Promise<void> {
    if (n <= 0) return;
    if (n > this.cache.length) throw new Error(`spool: commit(${n}) of more than the ${this.cache.length} records peeked`);
    this.cache.splice(0, n);
    const next = this.cache[0];
    const group = this.written[0];
    this.moveHead(
      next
        ? { seg: next.seg, offset: next.start, seq: next.seq }
        : group
          ? { seg: group.seg, offset: group.start + group.pos, seq: group.seq }
          : { ...this.cursor },
    );
    // Read the new oldest record now (the next peek needs it anyway), so its age is known.
    if (this.cache.length === 0 && this.size() > 0 && this.state === 'open') await this.fill(1);
  }

  // ---- appending ----

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

  private scheduleFlush(): void {
    if (this.flushing || this.flushTimer !== undefined) return;
    const run = () => {
      this.flushTimer = undefined;
      if (!this.flushing) this.flushing = this.flushLoop();
    };
    this.flushTimer =
      this.options.groupCommitDelay > 0
        ? { kind: 'timeout', handle: setTimeout(run, this.options.groupCommitDelay) }
        : { kind: 'immediate', handle: setImmediate(run) };
  }

  /** Writes groups until nothing is pending; appends made meanwhile form the next group. */
  private async flushLoop(): Promise<void> {
    try {
      while (this.pending.length > 0 && (this.state === 'open' || this.state === 'closing')) {
        const group = this.pending;
        this.pending = [];
        await this.writeGroup(group);
      }
    } finally {
      this.flushing = undefined;
      if (this.pending.length > 0 && this.state === 'open') this.scheduleFlush();
    }
  }

  private async writeGroup(group: PendingAppend[]): Promise<void> {
    let bytes = 0;
    let count = 0;
    for (const p of group) {
      bytes += p.buf.length;
      count += p.count;
    }
    const started = performance.now();
    let data: Buffer;
    try {
      const active = this.lastSegment();
      if (active.size >= this.options.segmentBytes) await this.rotate();
      data = group.length === 1 ? group[0]!.buf : Buffer.concat(group.map((p) => p.buf), bytes);
      await this.writeAndSync(data);
    } catch (err) {
      this.pendingBytes -= bytes;
      if (err instanceof SyncFailed) {
        // The group may be in the file, but is not known to be on disk: refused, and no more I/O to cut it back.
        this.failStop(err.error, err.file);
        for (const p of group) p.reject(err.error);
        return;
      }
      const error = ioError('write failed', err);
      await this.undoPartialWrite(error);
      for (const p of group) p.reject(error);
      return;
    }
    this.deps.onSync?.(performance.now() - started, count);
    this.pendingBytes -= bytes;
    if (this.size() === 0 && this.cache.length === 0) this.oldestHint = group[0]!.at;
    const active = this.lastSegment();
    if (this.readerAtTail(active, count)) {
      this.written.push({ buf: data, seg: active, start: active.size, pos: 0, seq: this.nextSeq, left: count });
      this.writtenRecords += count;
      this.cursor.offset += bytes;
      this.cursor.seq += count;
    }
    active.size += bytes;
    this.totalSize += bytes;
    this.nextSeq += count;
    // A periodic fdatasync failed while this group was written: it is in the file (and is sent) but not acknowledged.
    if (this.failedWith) for (const p of group) p.reject(this.failedWith);
    else for (const p of group) p.resolve(true);
  }

  /** The reader has read everything written to `active` and no read runs: a group of `count` records can skip the disk on its way to the reader. */
  private readerAtTail(active: Segment, count: number): boolean {
    const cursor = this.cursor;
    return (
      this.fills === 0 &&
      cursor.seg === active &&
      cursor.offset === active.size &&
      cursor.seq === this.nextSeq &&
      this.cache.length + this.writtenRecords + count <= this.options.writeThroughLimit
    );
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

  /** Append time of the oldest uncommitted record, when known. */
  private oldestAppendedAt(): number | undefined {
    const entry = this.cache[0];
    if (entry) return entry.appendedAt;
    const group = this.written[0];
    if (group) return writtenRecord(group.buf, group.pos).appendedAt;
    return this.oldestHint;
  }

  /**
   * Writes a group and, with `fsync: always`, fdatasyncs it. On the event loop (blocking calls)
   * while the disk answers within `inlineWriteLimit`: under load each thread-pool round trip
   * waits for a whole turn of a busy event loop, and a group made two of them (write, then
   * fdatasync): at 18,000 readings/s that was 20-70 ms per group for 0.1 ms of disk time. A slow
   * disk, or big groups (batched readings), would stall every connection instead, so groups over
   * the limit on average (or one stalled group) move the fdatasync to the thread pool for
   * `threadPoolPeriod`; then the event loop is tried again.
   */
  private async writeAndSync(buf: Buffer): Promise<void> {
    const handle = this.writeHandle!;
    const path = this.lastSegment().path;
    const sync = this.options.fsync === 'always';
    if (this.now() < this.threadPoolUntil) {
      // The write only copies into the page cache (with fsync: always little is ever dirty, so it
      // is not throttled); the fdatasync is what waits for the disk. One round trip, not two.
      writeFullySync(this.fs, handle.fd, buf);
      if (sync) await datasync(handle, path);
      else this.unsynced = true;
      return;
    }
    const started = performance.now();
    writeFullySync(this.fs, handle.fd, buf);
    if (sync) {
      try {
        this.fs.fdatasyncSync(handle.fd);
      } catch (err) {
        throw new SyncFailed(path, err);
      }
    } else this.unsynced = true;
    const took = performance.now() - started;
    if (this.inline.tooSlow(took)) {
      this.threadPoolUntil = this.now() + this.options.threadPoolPeriod;
      this.inline.reset();
      // Info, not a warning: a big group (batched readings under load) takes longer on any disk.
      this.log.info(
        { ms: Number(took.toFixed(2)), bytes: buf.length, limit_ms: this.options.inlineWriteLimit, for_ms: this.options.threadPoolPeriod },
        'spool: groups take too long to sync on the event loop; their fdatasync runs in the thread pool for a while',
      );
    }
  }

  /**
   * After a failed write() (a full disk, say) the file may hold part of the group: cut it back
   * and keep going, since what was acknowledged before is untouched. If that fails too, stop.
   */
  private async undoPartialWrite(error: StorageError): Promise<void> {
    const active = this.lastSegment();
    try {
      await this.writeHandle!.truncate(active.size);
      await this.writeHandle!.datasync();
      this.log.error({ err: error.message, segment: active.path }, 'spool: write failed; the appends were refused and the segment cut back');
    } catch (err) {
      this.failStop(ioError(`cannot cut ${active.path} back after a failed write (${error.message})`, err), active.path);
    }
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
    clearInterval(this.fsyncTimer);
    this.fsyncTimer = undefined;
    this.log.error(
      { err: error.message, file, fsync: this.options.fsync },
      'spool: fdatasync failed; no more readings are accepted (devices are not acknowledged) until Watchpost restarts on a working disk',
    );
    for (const p of this.pending.splice(0)) {
      this.pendingBytes -= p.buf.length;
      p.reject(error);
    }
    this.deps.onFail?.(error);
  }

  private async rotate(): Promise<void> {
    const old = this.writeHandle!;
    const oldPath = this.lastSegment().path;
    await datasync(old, oldPath);
    const seg: Segment = { base: this.nextSeq, path: join(this.deps.dir, segmentName(this.nextSeq)), size: 0 };
    const fh = await this.fs.open(seg.path, 'ax', 0o600);
    try {
      await fsyncDir(this.fs, this.deps.dir);
    } catch (err) {
      await fh.close();
      await unlink(seg.path).catch(() => undefined);
      throw new SyncFailed(this.deps.dir, err);
    }
    this.segments.push(seg);
    this.writeHandle = fh;
    this.unsynced = false;
    await old.close();
  }

  /**
   * `fsync: interval`: fdatasync what was written, even while groups keep being written (under
   * steady load they always are). A failure is not retried: it stops the spool (failStop).
   */
  private async syncNow(): Promise<void> {
    if (!this.unsynced || this.state !== 'open' || this.failedWith) return;
    const fh = this.writeHandle;
    const path = this.lastSegment().path;
    this.unsynced = false;
    try {
      await fh?.datasync();
    } catch (err) {
      // A segment closed by a rotation meanwhile was fdatasynced by the rotation itself.
      if (fh !== this.writeHandle && (err as NodeJS.ErrnoException).code === 'EBADF') return;
      this.failStop(ioError(`fdatasync of ${path} failed`, err), path);
      return;
    }
    try {
      await this.checkpointHandle?.datasync();
    } catch (err) {
      // The checkpoint only says where draining resumes: a stale one sends records again, and loses none.
      this.log.error({ err: (err as Error).message, file: join(this.deps.dir, SPOOL_CHECKPOINT_FILE) }, 'spool: cannot fdatasync the checkpoint');
    }
  }

  // ---- reading ----

  /** Reads records at the cursor into the cache until it holds `n` or nothing more is written. Reads run one at a time. */
  private fill(n: number): Promise<void> {
    this.fills += 1;
    const run = this.reading
      .then(async () => {
        // Records kept as written come before the cursor; the disk is read only once they are all taken.
        this.takeWritten(n);
        while (this.cache.length < n) {
          if (!(await this.readChunk(n - this.cache.length))) break;
        }
        // Everything between the head and the cursor was skipped as corrupt: commit the gap.
        if (this.cache.length === 0 && this.written.length === 0 && this.cursor.seq !== this.head.seq) this.moveHead({ ...this.cursor });
      })
      .finally(() => {
        this.fills -= 1;
      });
    this.reading = run.catch(() => undefined);
    return run;
  }

  /** Reads one chunk at the cursor; false when there is nothing more to read now. */
  private async readChunk(want: number): Promise<boolean> {
    const seg = this.cursor.seg;
    if (this.cursor.offset >= seg.size) {
      const i = this.segments.indexOf(seg);
      const next = this.segments[i + 1];
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
    const i = this.segments.indexOf(seg);
    const next = this.segments[i + 1];
    const endSeq = next ? next.base : this.nextSeq;
    this.corrupt(seg, offset, Math.max(0, endSeq - this.cursor.seq), why);
    this.cursor = { seg, offset: seg.size, seq: endSeq };
  }

  private corrupt(seg: Segment, offset: number, lost: number, why: string): void {
    this.log.error({ segment: seg.path, offset, lost }, `spool: corrupt record skipped (${why})`);
    if (lost > 0) this.deps.onCorrupt?.(lost);
  }

  private async readAt(seg: Segment, position: number, length: number): Promise<Buffer> {
    if (this.readHandle?.seg !== seg) {
      const previous = this.readHandle?.fh;
      this.readHandle = undefined;
      await previous?.close().catch(() => undefined);
      this.readHandle = { seg, fh: await this.fs.open(seg.path, 'r') };
    }
    try {
      return await readFully(this.readHandle.fh, position, length);
    } catch (err) {
      throw ioError(`cannot read ${seg.path}`, err);
    }
  }

  // ---- committing ----

  /**
   * Moves the head past committed records. The checkpoint that records it is written (and
   * fdatasynced with `fsync: always`) in the background, and segments drained by the move are
   * deleted after it: the batch writer's next request does not wait for two thread-pool round
   * trips. A crash before the checkpoint is on disk only sends those records again. Moves made
   * while a checkpoint waits its turn share one write.
   */
  private moveHead(position: Position): void {
    this.head = position;
    while (this.segments.length > 1 && this.segments[0] !== position.seg) {
      const seg = this.segments.shift()!;
      this.totalSize -= seg.size;
      this.drained.push(seg);
    }
    if (this.cache.length === 0 && this.written.length === 0 && this.size() > 0) this.oldestHint = undefined;
    if (this.checkpointQueued) return;
    this.checkpointQueued = true;
    this.checkpointChain = this.checkpointChain.then(async () => {
      this.checkpointQueued = false;
      // Closed meanwhile: the segments stay, and the next open deletes what its checkpoint passed.
      if (!this.checkpointHandle) return;
      const gone = this.drained.splice(0);
      try {
        await this.writeCheckpointNow(false);
      } catch (err) {
        // Keep the segments the checkpoint on disk may still point into; the next move tries again.
        this.drained.unshift(...gone);
        this.log.error({ err: (err as Error).message }, 'spool: cannot write the checkpoint');
        return;
      }
      for (const seg of gone) {
        await unlink(seg.path).catch((err: Error) => this.log.warn({ segment: seg.path, err: err.message }, 'spool: cannot delete a drained segment'));
      }
    });
  }

  /** Records the head after whatever checkpoint work is queued. */
  private writeCheckpoint(force = false): Promise<void> {
    const run = this.checkpointChain.then(() => this.writeCheckpointNow(force));
    this.checkpointChain = run.catch((err: Error) => this.log.error({ err: err.message }, 'spool: cannot write the checkpoint'));
    return run;
  }

  /** Records the head in the slot not written last; fdatasync with `fsync: always` (or `force`). */
  private async writeCheckpointNow(force: boolean): Promise<void> {
    const fh = this.checkpointHandle;
    if (!fh) return;
    const generation = ++this.checkpointGeneration;
    const slot = Buffer.alloc(CHECKPOINT_SLOT);
    slot.writeUInt32LE(CHECKPOINT_MAGIC, 0);
    slot.writeDoubleLE(generation, 8);
    slot.writeDoubleLE(this.head.seg.base, 16);
    slot.writeDoubleLE(this.head.offset, 24);
    slot.writeUInt32LE(crc32(slot.subarray(8)), 4);
    await fh.write(slot, 0, CHECKPOINT_SLOT, (generation % 2) * CHECKPOINT_SLOT);
    if (force || this.options.fsync === 'always') await fh.datasync();
  }

  // ---- opening ----

  private async loadSegments(): Promise<void> {
    const names = await readdir(this.deps.dir);
    const segments: Segment[] = [];
    for (const name of names) {
      const m = SEGMENT_NAME.exec(name);
      if (!m) {
        if (name !== SPOOL_CHECKPOINT_FILE) this.log.warn({ dir: this.deps.dir, file: name }, 'spool: ignoring a file that is not a segment');
        continue;
      }
      const path = join(this.deps.dir, name);
      segments.push({ base: Number(m[1]), path, size: (await stat(path)).size });
    }
    segments.sort((a, b) => a.base - b.base);
    if (segments.length === 0) {
      const seg: Segment = { base: 0, path: join(this.deps.dir, segmentName(0)), size: 0 };
      await (await this.fs.open(seg.path, 'ax', 0o600)).close();
      await fsyncDir(this.fs, this.deps.dir);
      segments.push(seg);
    }
    this.segments = segments;
    this.totalSize = segments.reduce((sum, s) => sum + s.size, 0);
  }

  /** Reads the last segment through and cuts a torn tail; returns the bytes cut. */
  private async recoverTail(): Promise<number> {
    const last = this.lastSegment();
    const { end, count } = await this.scan(last, last.size);
    const cut = last.size - end;
    if (cut > 0) {
      const fh = await this.fs.open(last.path, 'r+');
      try {
        await fh.truncate(end);
        await fh.datasync();
      } finally {
        await fh.close();
      }
      this.log.warn({ segment: last.path, offset: end, bytes: cut }, 'spool: cut a torn tail left by a crash (those records were never acknowledged with fsync: always)');
      this.totalSize -= cut;
      last.size = end;
    }
    this.nextSeq = last.base + count;
    return cut;
  }

  /** Whole, intact records of `seg` from its start up to `limit` bytes: where they end and how many. */
  private async scan(seg: Segment, limit: number): Promise<{ end: number; count: number }> {
    const fh = await this.fs.open(seg.path, 'r');
    try {
      let offset = 0;
      let count = 0;
      for (;;) {
        if (offset >= limit) break;
        let buf = await readFully(fh, offset, Math.min(READ_CHUNK, limit - offset));
        let pos = 0;
        let stop = false;
        while (pos < buf.length) {
          const rec = parseRecord(buf, pos);
          if (rec.kind === 'record') {
            pos += rec.length;
            count += 1;
            continue;
          }
          if (rec.kind === 'incomplete' && pos === 0 && rec.need <= limit - offset && rec.need > buf.length) {
            buf = await readFully(fh, offset, rec.need);
            continue;
          }
          stop = rec.kind === 'corrupt' || pos === 0;
          break;
        }
        offset += pos;
        if (stop || pos === 0) break;
      }
      return { end: offset, count };
    } finally {
      await fh.close();
    }
  }

  private async findHead(): Promise<void> {
    const checkpoint = await this.readCheckpoint();
    const first = this.segments[0]!;
    let head: Position = { seg: first, offset: 0, seq: first.base };
    if (checkpoint) {
      const seg = this.segments.find((s) => s.base === checkpoint.segBase);
      if (seg && checkpoint.offset <= seg.size) {
        const { end, count } = await this.scan(seg, checkpoint.offset);
        if (end === checkpoint.offset) head = { seg, offset: end, seq: seg.base + count };
        else this.log.warn({ segment: seg.path, offset: checkpoint.offset }, 'spool: checkpoint is not on a record boundary; sending the segment again');
      } else if (seg && seg === this.lastSegment()) {
        // With fsync: interval a power cut can cut records that were already sent: nothing left to send there.
        this.log.warn({ segment: seg.path, offset: checkpoint.offset, size: seg.size }, 'spool: checkpoint is past the end of the last segment (cut after a power cut)');
        head = { seg, offset: seg.size, seq: this.nextSeq };
      } else if (checkpoint.segBase > this.lastSegment().base) {
        this.log.warn({ checkpoint }, 'spool: checkpoint points past the spool; sending everything in it again');
      }
      this.checkpointGeneration = checkpoint.generation;
    }
    this.head = head;
    this.cursor = { ...head };
    const stale = this.segments.filter((s) => s.base < head.seg.base);
    this.segments = this.segments.filter((s) => s.base >= head.seg.base);
    for (const seg of stale) {
      this.totalSize -= seg.size;
      await unlink(seg.path);
    }
  }

  private async readCheckpoint(): Promise<{ generation: number; segBase: number; offset: number } | undefined> {
    let buf: Buffer;
    try {
      const fh = await this.fs.open(join(this.deps.dir, SPOOL_CHECKPOINT_FILE), 'r');
      try {
        buf = await readFully(fh, 0, 2 * CHECKPOINT_SLOT);
      } finally {
        await fh.close();
      }
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
      throw err;
    }
    let best: { generation: number; segBase: number; offset: number } | undefined;
    for (let i = 0; i + CHECKPOINT_SLOT <= buf.length; i += CHECKPOINT_SLOT) {
      const slot = buf.subarray(i, i + CHECKPOINT_SLOT);
      if (slot.readUInt32LE(0) !== CHECKPOINT_MAGIC || slot.readUInt32LE(4) !== crc32(slot.subarray(8))) continue;
      const value = { generation: slot.readDoubleLE(8), segBase: slot.readDoubleLE(16), offset: slot.readDoubleLE(24) };
      if (!best || value.generation > best.generation) best = value;
    }
    return best;
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

  // ---- helpers ----

  private lastSegment(): Segment {
    return this.segments[this.segments.length - 1]!;
  }

  /** Bytes of records not yet committed. */
  private liveBytes(): number {
    return this.totalSize - this.head.offset;
  }
}
