/**
 * A disk whose fdatasync fails on demand, for the spool (ingest/spool-fs.ts): node:fs
 * underneath, so what is written really is in the files; only the syncs of spool segments
 * (`*.seg`) answer EIO while `failing` is set, and every attempt is counted.
 */
import { basename } from 'node:path';
import { nodeSpoolFs, type SpoolFile, type SpoolFs } from '../../ingest/spool-fs.js';

export interface FailingFs extends SpoolFs {
  /** Segment fdatasyncs answer EIO while true. */
  failing: boolean;
  /** fdatasync attempts on segments (inline and in the thread pool), failed ones included. */
  segmentSyncs: number;
}

function eio(path: string): NodeJS.ErrnoException {
  return Object.assign(new Error(`EIO: i/o error, fdatasync '${path}'`), { code: 'EIO', errno: -5, syscall: 'fdatasync', path });
}

export function failingFs(): FailingFs {
  const segments = new Map<number, string>();
  const fs: FailingFs = {
    failing: false,
    segmentSyncs: 0,
    async open(path, flags, mode) {
      const file = await nodeSpoolFs.open(path, flags, mode);
      if (!basename(path).endsWith('.seg')) return file;
      segments.set(file.fd, path);
      const wrapped: SpoolFile = {
        fd: file.fd,
        read: (buffer, offset, length, position) => file.read(buffer, offset, length, position),
        write: (buffer, offset, length, position) => file.write(buffer, offset, length, position),
        truncate: (length) => file.truncate(length),
        datasync: async () => {
          fs.segmentSyncs += 1;
          if (fs.failing) throw eio(path);
          await file.datasync();
        },
        sync: () => file.sync(),
        close: async () => {
          segments.delete(file.fd);
          await file.close();
        },
      };
      return wrapped;
    },
    writeSync: (fd, buffer, offset, length) => nodeSpoolFs.writeSync(fd, buffer, offset, length),
    fdatasyncSync(fd) {
      const path = segments.get(fd);
      if (path !== undefined) {
        fs.segmentSyncs += 1;
        if (fs.failing) throw eio(path);
      }
      nodeSpoolFs.fdatasyncSync(fd);
    },
  };
  return fs;
}
