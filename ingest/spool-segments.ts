/**
 * The spool's segment files and their recovery at open. A segment is `<base>.seg`, `<base>`
 * (20 digits) the sequence number of its first record, holding records (spool-record.ts) back
 * to back. A segment grows to `segmentBytes`, is fdatasynced and closed, and the next one
 * starts, created and fsynced with its directory before records go into it; a segment is
 * deleted once every record in it is committed (spool-checkpoint.ts). The record count of a
 * closed segment is the next segment's base minus its own, so opening reads only the head
 * segment and the last one.
 *
 * Recovery at open: the last segment is read through; a torn tail (a record cut short, or whose
 * CRC does not match, as a crash during a write leaves it) is cut off, logged at warn, and never
 * read as data. Draining resumes at the checkpoint, which is checked to fall on a record
 * boundary (if not, the whole head segment is sent again; InfluxDB overwrites same series and
 * timestamp); segments before it are deleted.
 */
import { chmod, readdir, stat, unlink } from 'node:fs/promises';
import { join } from 'node:path';
import type { Logger } from '../lib/logger.js';
import type { CheckpointValue } from './spool-checkpoint.js';
import { datasync, fsyncDir, readFully, SyncFailed, type SpoolFile, type SpoolFs } from './spool-fs.js';
import { parseRecord } from './spool-record.js';

export const SPOOL_SEGMENT_SUFFIX = '.seg';
/** Bytes read from a segment at a time. */
export const READ_CHUNK = 1024 * 1024;
const SEGMENT_NAME = /^(\d{20})\.seg$/;

export interface Segment {
  base: number;
  path: string;
  /** Bytes of whole records written to it. */
  size: number;
}

/** A record boundary: in `seg` at byte `offset`, the record with sequence number `seq`. */
export interface Position {
  seg: Segment;
  offset: number;
  seq: number;
}

export function segmentName(base: number): string {
  return String(base).padStart(20, '0') + SPOOL_SEGMENT_SUFFIX;
}

/** The segments of one spool directory, oldest first; the last one is written to. */
export class SegmentLog {
  segments: Segment[] = [];
  /** Sum of `size` over `segments`. */
  totalSize = 0;
  /** Sequence number the next record appended gets. */
  nextSeq = 0;
  /** The last segment, open for appending. */
  writeHandle: SpoolFile | undefined;

  constructor(
    private readonly dir: string,
    private readonly fs: SpoolFs,
    private readonly log: Logger,
    /** Files of the spool that are not segments (not warned about). */
    private readonly otherFiles: readonly string[],
  ) {}

  last(): Segment {
    return this.segments[this.segments.length - 1]!;
  }

  /** The segment after `seg`, if any. */
  after(seg: Segment): Segment | undefined {
    return this.segments[this.segments.indexOf(seg) + 1];
  }

  // ---- opening ----

  /** Lists the segments in the directory, creating the first one in an empty spool. */
  async load(): Promise<void> {
    const names = await readdir(this.dir);
    const segments: Segment[] = [];
    for (const name of names) {
      const m = SEGMENT_NAME.exec(name);
      if (!m) {
        if (!this.otherFiles.includes(name)) this.log.warn({ dir: this.dir, file: name }, 'spool: ignoring a file that is not a segment');
        continue;
      }
      const path = join(this.dir, name);
      const info = await stat(path);
      // Created 0600; one an older version made wider is made private too.
      if ((info.mode & 0o077) !== 0) await chmod(path, 0o600);
      segments.push({ base: Number(m[1]), path, size: info.size });
    }
    segments.sort((a, b) => a.base - b.base);
    if (segments.length === 0) {
      const seg: Segment = { base: 0, path: join(this.dir, segmentName(0)), size: 0 };
      await (await this.fs.open(seg.path, 'ax', 0o600)).close();
      await fsyncDir(this.fs, this.dir);
      segments.push(seg);
    }
    this.segments = segments;
    this.totalSize = segments.reduce((sum, s) => sum + s.size, 0);
  }

  /** Reads the last segment through and cuts a torn tail; returns the bytes cut. */
  async recoverTail(): Promise<number> {
    const last = this.last();
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

  /** Where draining resumes after `checkpoint`; deletes the segments before it. */
  async findHead(checkpoint: CheckpointValue | undefined): Promise<Position> {
    const first = this.segments[0]!;
    let head: Position = { seg: first, offset: 0, seq: first.base };
    if (checkpoint) {
      const seg = this.segments.find((s) => s.base === checkpoint.segBase);
      if (seg && checkpoint.offset <= seg.size) {
        const { end, count } = await this.scan(seg, checkpoint.offset);
        if (end === checkpoint.offset) head = { seg, offset: end, seq: seg.base + count };
        else this.log.warn({ segment: seg.path, offset: checkpoint.offset }, 'spool: checkpoint is not on a record boundary; sending the segment again');
      } else if (seg && seg === this.last()) {
        // With fsync: interval a power cut can cut records that were already sent: nothing left to send there.
        this.log.warn({ segment: seg.path, offset: checkpoint.offset, size: seg.size }, 'spool: checkpoint is past the end of the last segment (cut after a power cut)');
        head = { seg, offset: seg.size, seq: this.nextSeq };
      } else if (checkpoint.segBase > this.last().base) {
        this.log.warn({ checkpoint }, 'spool: checkpoint points past the spool; sending everything in it again');
      }
    }
    const stale = this.segments.filter((s) => s.base < head.seg.base);
    this.segments = this.segments.filter((s) => s.base >= head.seg.base);
    for (const seg of stale) {
      this.totalSize -= seg.size;
      await unlink(seg.path);
    }
    return head;
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

  // ---- writing ----

  /** Opens the last segment for appending. */
  async openForAppend(): Promise<void> {
    this.writeHandle = await this.fs.open(this.last().path, 'a', 0o600);
  }

  /**
   * Closes the last segment (fdatasynced) and starts the next, created 0600 and fsynced with
   * the directory before records go into it. A failed sync is a SyncFailed.
   */
  async rotate(): Promise<void> {
    const old = this.writeHandle!;
    await datasync(old, this.last().path);
    const seg: Segment = { base: this.nextSeq, path: join(this.dir, segmentName(this.nextSeq)), size: 0 };
    const fh = await this.fs.open(seg.path, 'ax', 0o600);
    try {
      await fsyncDir(this.fs, this.dir);
    } catch (err) {
      await fh.close();
      await unlink(seg.path).catch(() => undefined);
      throw new SyncFailed(this.dir, err);
    }
    this.segments.push(seg);
    this.writeHandle = fh;
    await old.close();
  }

  /** `bytes` of `count` records were written to the last segment. */
  appended(bytes: number, count: number): void {
    this.last().size += bytes;
    this.totalSize += bytes;
    this.nextSeq += count;
  }

  /** Takes the segments before `seg` out of the log (the head moved past them) and returns them. */
  drainBefore(seg: Segment): Segment[] {
    const drained: Segment[] = [];
    while (this.segments.length > 1 && this.segments[0] !== seg) {
      const first = this.segments.shift()!;
      this.totalSize -= first.size;
      drained.push(first);
    }
    return drained;
  }

  async close(): Promise<void> {
    const handle = this.writeHandle;
    this.writeHandle = undefined;
    await handle?.close().catch(() => undefined);
  }
}
