/**
 * The file operations the spool's durability rests on (open, write, fdatasync), behind a small
 * interface so that tests can inject a disk that fails, and the helpers built on them. Directory
 * listing, stat and unlink go to node:fs directly: their failures are reported as they come and
 * acknowledge nothing.
 */
import { open } from 'node:fs/promises';
import { fdatasyncSync, writeSync } from 'node:fs';
import { STORAGE_ERROR_CODES, StorageError } from './storage-errors.js';

/** The part of node's FileHandle the spool uses. */
export interface SpoolFile {
  readonly fd: number;
  read(buffer: Buffer, offset: number, length: number, position: number): Promise<{ bytesRead: number }>;
  write(buffer: Buffer, offset: number, length: number, position: number): Promise<unknown>;
  truncate(length: number): Promise<void>;
  datasync(): Promise<void>;
  sync(): Promise<void>;
  close(): Promise<void>;
}

export interface SpoolFs {
  open(path: string, flags: string | number, mode?: number): Promise<SpoolFile>;
  /** write(2) on the event loop; returns the bytes written. */
  writeSync(fd: number, buffer: Buffer, offset: number, length: number): number;
  /** fdatasync(2) on the event loop. */
  fdatasyncSync(fd: number): void;
}

export const nodeSpoolFs: SpoolFs = {
  open: (path, flags, mode) => open(path, flags, mode),
  writeSync: (fd, buffer, offset, length) => writeSync(fd, buffer, offset, length),
  fdatasyncSync: (fd) => fdatasyncSync(fd),
};

export function ioError(what: string, err: unknown): StorageError {
  return new StorageError(STORAGE_ERROR_CODES.LOCAL_STORE, `spool: ${what}: ${(err as Error).message ?? String(err)}`, { cause: err });
}

/** An fdatasync (or fsync) of `file` failed: the spool stops taking appends (Spool.failStop). */
export class SyncFailed extends Error {
  readonly error: StorageError;

  constructor(
    readonly file: string,
    cause: unknown,
  ) {
    super(`fdatasync of ${file} failed`);
    this.error = ioError(`fdatasync of ${file} failed`, cause);
  }
}

/** fdatasync in the thread pool; a failure is a SyncFailed naming `file`. */
export async function datasync(fh: SpoolFile, file: string): Promise<void> {
  try {
    await fh.datasync();
  } catch (err) {
    throw new SyncFailed(file, err);
  }
}

export function writeFullySync(fs: SpoolFs, fd: number, buf: Buffer): void {
  let written = 0;
  while (written < buf.length) {
    const bytes = fs.writeSync(fd, buf, written, buf.length - written);
    if (bytes <= 0) throw new Error('write() wrote nothing');
    written += bytes;
  }
}

/** `length` bytes at `position`, or fewer at the end of the file. */
export async function readFully(fh: SpoolFile, position: number, length: number): Promise<Buffer> {
  const buf = Buffer.allocUnsafe(length);
  let got = 0;
  while (got < length) {
    const { bytesRead } = await fh.read(buf, got, length - got, position + got);
    if (bytesRead === 0) break;
    got += bytesRead;
  }
  return got === length ? buf : buf.subarray(0, got);
}

export async function fsyncDir(fs: SpoolFs, dir: string): Promise<void> {
  const fh = await fs.open(dir, 'r');
  try {
    await fh.sync();
  } finally {
    await fh.close();
  }
}
