/**
 * The spool's checkpoint: where draining resumes (segment base, byte offset) in the file
 * `checkpoint`, two 32-byte slots written alternately, each `u32 LE magic | u32 LE CRC-32 of
 * the rest | f64 LE generation | f64 LE segment base | f64 LE offset`, so a torn write leaves
 * the other slot valid; the slot with the highest generation wins.
 *
 * Moves of the head are recorded in the background (and fdatasynced with `fsync: always`), and
 * segments drained by them are deleted once a checkpoint past them is written: the batch
 * writer's next request does not wait for two thread-pool round trips. A crash before the
 * checkpoint is on disk only sends those records again. Moves made while a checkpoint waits its
 * turn share one write.
 */
import { constants } from 'node:fs';
import { chmod, unlink } from 'node:fs/promises';
import { crc32 } from 'node:zlib';
import type { Logger } from '../lib/logger.js';
import { readFully, type SpoolFile, type SpoolFs } from './spool-fs.js';
import type { Position, Segment } from './spool-segments.js';

export const SPOOL_CHECKPOINT_FILE = 'checkpoint';

const CHECKPOINT_MAGIC = 0x3150_4b57; // "WKP1" little-endian
const CHECKPOINT_SLOT = 32;

export interface CheckpointValue {
  generation: number;
  segBase: number;
  offset: number;
}

/** The checkpoint in `file`, if either slot is intact; undefined when there is none. */
export async function readCheckpoint(fs: SpoolFs, file: string): Promise<CheckpointValue | undefined> {
  let buf: Buffer;
  try {
    const fh = await fs.open(file, 'r');
    try {
      buf = await readFully(fh, 0, 2 * CHECKPOINT_SLOT);
    } finally {
      await fh.close();
    }
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw err;
  }
  let best: CheckpointValue | undefined;
  for (let i = 0; i + CHECKPOINT_SLOT <= buf.length; i += CHECKPOINT_SLOT) {
    const slot = buf.subarray(i, i + CHECKPOINT_SLOT);
    if (slot.readUInt32LE(0) !== CHECKPOINT_MAGIC || slot.readUInt32LE(4) !== crc32(slot.subarray(8))) continue;
    const value = { generation: slot.readDoubleLE(8), segBase: slot.readDoubleLE(16), offset: slot.readDoubleLE(24) };
    if (!best || value.generation > best.generation) best = value;
  }
  return best;
}

export class Checkpoint {
  private handle: SpoolFile | undefined;
  private generation = 0;
  private chain: Promise<unknown> = Promise.resolve();
  /** A write is queued and will record the head as it is when it runs. */
  private queued = false;
  /** Segments drained but not yet deleted: deleted once a checkpoint past them is written. */
  private drained: Segment[] = [];

  constructor(
    readonly file: string,
    private readonly fs: SpoolFs,
    private readonly log: Logger,
    /** fdatasync every write (`fsync: always`); else only forced ones. */
    private readonly syncEach: boolean,
    /** The head to record, read when a write runs. */
    private readonly head: () => Position,
  ) {}

  /** Opens (or creates, 0600; an existing file is made 0600 too) the file; writes go on from `generation`. */
  async open(generation: number): Promise<void> {
    this.generation = generation;
    this.handle = await this.fs.open(this.file, constants.O_RDWR | constants.O_CREAT, 0o600);
    await chmod(this.file, 0o600);
  }

  /** The head moved past `drained` segments: record it in the background, then delete them. */
  advance(drained: readonly Segment[]): void {
    this.drained.push(...drained);
    if (this.queued) return;
    this.queued = true;
    this.chain = this.chain.then(async () => {
      this.queued = false;
      // Closed meanwhile: the segments stay, and the next open deletes what its checkpoint passed.
      if (!this.handle) return;
      const gone = this.drained.splice(0);
      try {
        await this.writeNow(false);
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

  /** Records the head after whatever checkpoint work is queued; fdatasynced if `force`. */
  write(force = false): Promise<void> {
    const run = this.chain.then(() => this.writeNow(force));
    this.chain = run.catch((err: Error) => this.log.error({ err: err.message }, 'spool: cannot write the checkpoint'));
    return run;
  }

  /** Waits for the checkpoint work queued so far. */
  settled(): Promise<void> {
    return this.chain.then(
      () => undefined,
      () => undefined,
    );
  }

  /** fdatasyncs what was written (`fsync: interval`). */
  async sync(): Promise<void> {
    await this.handle?.datasync();
  }

  async close(): Promise<void> {
    const handle = this.handle;
    this.handle = undefined;
    await handle?.close().catch(() => undefined);
  }

  /** Records the head in the slot not written last. */
  private async writeNow(force: boolean): Promise<void> {
    const fh = this.handle;
    if (!fh) return;
    const head = this.head();
    const generation = ++this.generation;
    const slot = Buffer.alloc(CHECKPOINT_SLOT);
    slot.writeUInt32LE(CHECKPOINT_MAGIC, 0);
    slot.writeDoubleLE(generation, 8);
    slot.writeDoubleLE(head.seg.base, 16);
    slot.writeDoubleLE(head.offset, 24);
    slot.writeUInt32LE(crc32(slot.subarray(8)), 4);
    await fh.write(slot, 0, CHECKPOINT_SLOT, (generation % 2) * CHECKPOINT_SLOT);
    if (force || this.syncEach) await fh.datasync();
  }
}
