/**
 * The file operations the spool's durability rests on (open, write, fdatasync), behind a small
 * interface so that tests can inject a disk that fails. Directory listing, stat and unlink go
 * to node:fs directly: their failures are reported as they come and acknowledge nothing.
 */
import { open } from 'node:fs/promises';
import { fdatasyncSync, writeSync } from 'node:fs';

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
