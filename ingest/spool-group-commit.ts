/**
 * How appends reach the spool's last segment (`fsync`):
 * - `always`: appends are gathered into groups (group commit): one write() and one fdatasync()
 *   per group, and every append of the group resolves after the fdatasync. Both run on the
 *   event loop while the disk is fast, else the fdatasync runs in the thread pool (see
 *   writeAndSync). While one group is being synced the next one gathers, so throughput grows
 *   with load instead of falling.
 * - `interval`: appends resolve after write() (in the page cache: survives a crash or kill -9
 *   of Watchpost, not a power cut); the segment is fdatasynced every `fsyncInterval` ms.
 *
 * A failed fdatasync is never retried (see spool.ts, failStop): it is handed to `failStop`,
 * which refuses what is pending. A failed write() (a full disk) refuses that group and cuts it
 * back; if that fails too, the spool stops the same way.
 */
import type { Logger } from '../lib/logger.js';
import { InlineWrites } from './inline-writes.js';
import type { Checkpoint } from './spool-checkpoint.js';
import { datasync, ioError, SyncFailed, writeFullySync, type SpoolFs } from './spool-fs.js';
import type { Segment, SegmentLog } from './spool-segments.js';
import type { SpoolOptions } from './spool.js';
import type { StorageError } from './storage-errors.js';

interface PendingAppend {
  buf: Buffer;
  count: number;
  at: number;
  resolve: (ok: boolean) => void;
  reject: (err: Error) => void;
}

export interface GroupCommitDeps {
  segments: SegmentLog;
  checkpoint: Checkpoint;
  fs: SpoolFs;
  logger: Logger;
  now: () => number;
  options: SpoolOptions;
  /** The spool takes groups (open) / finishes the ones it has (open or closing). */
  isOpen: () => boolean;
  isRunning: () => boolean;
  /** Why the spool stopped taking appends, once it has. */
  failure: () => StorageError | undefined;
  /** A sync failed (or a failed write could not be cut back): stop taking appends. */
  failStop: (error: StorageError, file: string) => void;
  /**
   * A group of `count` records (`data`, the first appended at `firstAt`) was written to `active`
   * at offset `start` with sequence numbers from `seq`, before the segment log counts it.
   */
  wrote: (data: Buffer, active: Segment, start: number, seq: number, count: number, firstAt: number) => void;
  /** Observes how long each group's write + fdatasync took (ms). */
  onSync?: (ms: number, records: number) => void;
}

export class GroupCommit {
  private pending: PendingAppend[] = [];
  /** Bytes of `pending` and of the group being written. */
  private pendingBytes = 0;
  private flushTimer: { kind: 'timeout'; handle: ReturnType<typeof setTimeout> } | { kind: 'immediate'; handle: ReturnType<typeof setImmediate> } | undefined;
  private flushing: Promise<void> | undefined;
  private fsyncTimer: ReturnType<typeof setInterval> | undefined;
  private unsynced = false;
  /** Until then (epoch ms) groups are fdatasynced from the thread pool: the disk was found slow. */
  private threadPoolUntil = 0;
  private readonly inline: InlineWrites;
  private readonly options: SpoolOptions;
  private readonly log: Logger;

  constructor(private readonly deps: GroupCommitDeps) {
    this.options = deps.options;
    this.log = deps.logger;
    this.inline = new InlineWrites(this.options.inlineWriteLimit);
  }

  /** Bytes appended but not yet written. */
  get waitingBytes(): number {
    return this.pendingBytes;
  }

  /** With `fsync: interval`, starts the periodic fdatasync. */
  start(): void {
    if (this.options.fsync !== 'interval') return;
    this.fsyncTimer = setInterval(() => void this.syncNow(), this.options.fsyncInterval);
    this.fsyncTimer.unref?.();
  }

  /** Queues encoded records; resolves once they are written (and synced with `fsync: always`). */
  add(buf: Buffer, count: number, at: number): Promise<boolean> {
    this.pendingBytes += buf.length;
    return new Promise<boolean>((resolve, reject) => {
      this.pending.push({ buf, count, at, resolve, reject });
      this.scheduleFlush();
    });
  }

  /** The spool stopped: no periodic sync, and everything pending is refused with `error`. */
  failed(error: StorageError): void {
    this.stopSyncTimer();
    for (const p of this.pending.splice(0)) {
      this.pendingBytes -= p.buf.length;
      p.reject(error);
    }
  }

  // ---- closing ----

  /** Stops the timers (the periodic sync and a group waiting for `groupCommitDelay`). */
  stopTimers(): void {
    this.stopSyncTimer();
    if (this.flushTimer?.kind === 'timeout') clearTimeout(this.flushTimer.handle);
    if (this.flushTimer?.kind === 'immediate') clearImmediate(this.flushTimer.handle);
    this.flushTimer = undefined;
  }

  /** Writes what is pending and waits for the group being written. */
  async flush(): Promise<void> {
    if (this.pending.length > 0 && !this.flushing) this.flushing = this.flushLoop();
    await this.flushing;
  }

  /** fdatasyncs what `fsync: interval` left unsynced, unless a sync has failed (a second one proves nothing). */
  async syncLast(): Promise<void> {
    if (this.unsynced && !this.deps.failure()) await this.deps.segments.writeHandle?.datasync();
  }

  /** Appends still pending are refused (false: not stored, not acknowledged). */
  refusePending(): void {
    for (const p of this.pending.splice(0)) p.resolve(false);
  }

  // ---- writing groups ----

  private stopSyncTimer(): void {
    clearInterval(this.fsyncTimer);
    this.fsyncTimer = undefined;
  }

  private scheduleFlush(): void {
    if (this.flushing || this.flushTimer !== undefined) return;
    const run = () => {
      this.flushTimer = undefined;
      if (!this.flushing) this.flushing = this.flushLoop();
    };
    this.flushTimer = this.options.groupCommitDelay > 0 ? { kind: 'timeout', handle: setTimeout(run, this.options.groupCommitDelay) } : { kind: 'immediate', handle: setImmediate(run) };
  }

  /** Writes groups until nothing is pending; appends made meanwhile form the next group. */
  private async flushLoop(): Promise<void> {
    try {
      while (this.pending.length > 0 && this.deps.isRunning()) {
        const group = this.pending;
        this.pending = [];
        await this.writeGroup(group);
      }
    } finally {
      this.flushing = undefined;
      if (this.pending.length > 0 && this.deps.isOpen()) this.scheduleFlush();
    }
  }

  private async writeGroup(group: PendingAppend[]): Promise<void> {
    const segments = this.deps.segments;
    let bytes = 0;
    let count = 0;
    for (const p of group) {
      bytes += p.buf.length;
      count += p.count;
    }
    const started = performance.now();
    let data: Buffer;
    try {
      const active = segments.last();
      if (active.size >= this.options.segmentBytes) await this.rotate();
      data =
        group.length === 1
          ? group[0]!.buf
          : Buffer.concat(
              group.map((p) => p.buf),
              bytes,
            );
      await this.writeAndSync(data);
    } catch (err) {
      this.pendingBytes -= bytes;
      if (err instanceof SyncFailed) {
        // The group may be in the file, but is not known to be on disk: refused, and no more I/O to cut it back.
        this.deps.failStop(err.error, err.file);
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
    const active = segments.last();
    this.deps.wrote(data, active, active.size, segments.nextSeq, count, group[0]!.at);
    segments.appended(bytes, count);
    // A periodic fdatasync failed while this group was written: it is in the file (and is sent) but not acknowledged.
    const failure = this.deps.failure();
    if (failure) for (const p of group) p.reject(failure);
    else for (const p of group) p.resolve(true);
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
    const handle = this.deps.segments.writeHandle!;
    const path = this.deps.segments.last().path;
    const sync = this.options.fsync === 'always';
    if (this.deps.now() < this.threadPoolUntil) {
      // The write only copies into the page cache (with fsync: always little is ever dirty, so it
      // is not throttled); the fdatasync is what waits for the disk. One round trip, not two.
      writeFullySync(this.deps.fs, handle.fd, buf);
      if (sync) await datasync(handle, path);
      else this.unsynced = true;
      return;
    }
    const started = performance.now();
    writeFullySync(this.deps.fs, handle.fd, buf);
    if (sync) {
      try {
        this.deps.fs.fdatasyncSync(handle.fd);
      } catch (err) {
        throw new SyncFailed(path, err);
      }
    } else this.unsynced = true;
    const took = performance.now() - started;
    if (this.inline.tooSlow(took)) {
      this.threadPoolUntil = this.deps.now() + this.options.threadPoolPeriod;
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
    const segments = this.deps.segments;
    const active = segments.last();
    try {
      await segments.writeHandle!.truncate(active.size);
      await segments.writeHandle!.datasync();
      this.log.error({ err: error.message, segment: active.path }, 'spool: write failed; the appends were refused and the segment cut back');
    } catch (err) {
      this.deps.failStop(ioError(`cannot cut ${active.path} back after a failed write (${error.message})`, err), active.path);
    }
  }

  private async rotate(): Promise<void> {
    await this.deps.segments.rotate();
    this.unsynced = false;
  }

  /**
   * `fsync: interval`: fdatasync what was written, even while groups keep being written (under
   * steady load they always are). A failure is not retried: it stops the spool.
   */
  private async syncNow(): Promise<void> {
    const segments = this.deps.segments;
    if (!this.unsynced || !this.deps.isOpen() || this.deps.failure()) return;
    const fh = segments.writeHandle;
    const path = segments.last().path;
    this.unsynced = false;
    try {
      await fh?.datasync();
    } catch (err) {
      // A segment closed by a rotation meanwhile was fdatasynced by the rotation itself.
      if (fh !== segments.writeHandle && (err as NodeJS.ErrnoException).code === 'EBADF') return;
      this.deps.failStop(ioError(`fdatasync of ${path} failed`, err), path);
      return;
    }
    try {
      await this.deps.checkpoint.sync();
    } catch (err) {
      // The checkpoint only says where draining resumes: a stale one sends records again, and loses none.
      this.log.error({ err: (err as Error).message, file: this.deps.checkpoint.file }, 'spool: cannot fdatasync the checkpoint');
    }
  }
}
