/**
 * The quarantine file: points the storage backend refused for their content (a field type
 * conflict, a line it cannot parse, a point outside its retention policy) are kept here instead
 * of being dropped, one JSON record per line:
 *
 *   {"time":"2026-12-01T20:00:00.000Z","reason":"field_type_conflict","error":"HTTP 400: …","point":"strain,asset_id=… value=1 1764…"}
 *
 * `point` is the line of line protocol as it was sent (InfluxDB), or the stored point as JSON
 * (embedded store), so a record can be replayed once the conflict is resolved (e.g. with
 * `jq -r .point quarantine.jsonl | curl --data-binary @- …/write?db=…&precision=ms`).
 *
 * The file is append-only, created 0600 (it holds readings), and every add is fsynced before it
 * resolves: the batch writer commits the refused batch out of the spool only after that. When the
 * file reaches `maxBytes` it is renamed `quarantine.jsonl.1` (older ones shift up to `.{keep}`, and
 * the oldest beyond that is deleted, with a warning), so the quarantine takes at most
 * `(keep + 1) * maxBytes` of disk.
 */
import { constants, type FileHandle, open, readdir, rename, rm, stat } from 'node:fs/promises';
import { join } from 'node:path';
import type { Logger } from '../lib/logger.js';
import type { Quarantine } from './batch-writer.js';
import type { RejectionReason } from './storage-errors.js';

export const QUARANTINE_FILE = 'quarantine.jsonl';

export interface QuarantineOptions {
  /** Size at which the file is rotated (bytes). */
  maxBytes: number;
  /** Rotated files kept (quarantine.jsonl.1 … .{keep}). */
  keep: number;
}

export const DEFAULT_QUARANTINE_OPTIONS: QuarantineOptions = { maxBytes: 64 * 1024 ** 2, keep: 3 };

export interface QuarantineDeps<T> {
  /** The directory that holds the file (storage.data_dir). */
  dir: string;
  logger: Logger;
  /** The point as the record's `point` field: a string (a line) or any JSON value. */
  describe: (point: T) => unknown;
  now?: () => number;
}

export class QuarantineFile<T> implements Quarantine<T> {
  readonly location: string;
  private readonly options: QuarantineOptions;
  private readonly now: () => number;
  private handle: FileHandle | undefined;
  private size = 0;
  /** Adds run one after another, in order. */
  private tail: Promise<void> = Promise.resolve();

  constructor(
    private readonly deps: QuarantineDeps<T>,
    options: Partial<QuarantineOptions> = {},
  ) {
    this.options = { ...DEFAULT_QUARANTINE_OPTIONS, ...options };
    this.location = join(deps.dir, QUARANTINE_FILE);
    this.now = deps.now ?? Date.now;
  }

  add(points: readonly T[], reason: RejectionReason, error: string): Promise<void> {
    const time = new Date(this.now()).toISOString();
    let text = '';
    for (const point of points) text += `${JSON.stringify({ time, reason, error, point: this.deps.describe(point) })}\n`;
    const run = this.tail.then(() => this.append(Buffer.from(text, 'utf8')));
    this.tail = run.catch(() => undefined);
    return run;
  }

  /** Closes the file (it is opened again by the next add). */
  async close(): Promise<void> {
    await this.tail;
    await this.closeHandle();
  }

  private async append(bytes: Buffer): Promise<void> {
    let handle = await this.openHandle();
    // One add never spans two files; an add larger than maxBytes gets a file of its own.
    if (this.size > 0 && this.size + bytes.length > this.options.maxBytes) {
      await this.rotate();
      handle = await this.openHandle();
    }
    try {
      await handle.write(bytes, 0, bytes.length);
      await handle.datasync();
    } catch (err) {
      // A short or failed write may have left part of a record: start over on a fresh handle.
      await this.closeHandle();
      throw err;
    }
    this.size += bytes.length;
  }

  private async openHandle(): Promise<FileHandle> {
    if (this.handle) return this.handle;
    const handle = await open(this.location, constants.O_WRONLY | constants.O_APPEND | constants.O_CREAT, 0o600);
    try {
      // The mode applies only when the file is created: make an existing file private too.
      await handle.chmod(0o600);
      this.size = (await handle.stat()).size;
    } catch (err) {
      await handle.close();
      throw err;
    }
    this.handle = handle;
    return handle;
  }

  private async closeHandle(): Promise<void> {
    const handle = this.handle;
    this.handle = undefined;
    await handle?.close();
  }

  /** quarantine.jsonl -> .1 -> .2 … ; the one past `keep` is deleted. */
  private async rotate(): Promise<void> {
    await this.closeHandle();
    const { keep } = this.options;
    const oldest = `${this.location}.${keep}`;
    const gone = await stat(oldest).catch(() => undefined);
    if (gone) {
      this.deps.logger.warn({ file: oldest, bytes: gone.size }, 'quarantine is full: deleting its oldest file');
      await rm(oldest, { force: true });
    }
    for (let i = keep - 1; i >= 1; i--) await rename(`${this.location}.${i}`, `${this.location}.${i + 1}`).catch(ignoreMissing);
    if (keep >= 1) await rename(this.location, `${this.location}.1`).catch(ignoreMissing);
    else await rm(this.location, { force: true });
    await syncDir(this.deps.dir);
    this.size = 0;
  }
}

function ignoreMissing(err: NodeJS.ErrnoException): void {
  if (err.code !== 'ENOENT') throw err;
}

/** Makes renames in `dir` durable. */
async function syncDir(dir: string): Promise<void> {
  const handle = await open(dir, constants.O_RDONLY);
  try {
    await handle.sync();
  } finally {
    await handle.close();
  }
}

/** The quarantine files in `dir`, newest first (for tests and tools). */
export async function quarantineFiles(dir: string): Promise<string[]> {
  const names = (await readdir(dir)).filter((n) => n === QUARANTINE_FILE || n.startsWith(`${QUARANTINE_FILE}.`));
  const rank = (n: string) => (n === QUARANTINE_FILE ? 0 : Number(n.slice(QUARANTINE_FILE.length + 1)));
  return names.sort((a, b) => rank(a) - rank(b)).map((n) => join(dir, n));
}
