import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { hostname, tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { createLogger, silentLogger } from './logger.js';
import { currentHolder, DataDirLock, DataDirLockedError, LOCK_FILE } from './data-dir-lock.js';

describe('DataDirLock', () => {
  let dir: string;
  const locks: DataDirLock[] = [];
  beforeEach(() => {
    dir = mkdtempSync(join(tmpdir(), 'watchpost-lock-'));
  });
  afterEach(() => {
    for (const lock of locks.splice(0)) lock.release();
    rmSync(dir, { recursive: true, force: true });
  });

  const lockFile = () => join(dir, LOCK_FILE);
  const acquire = (logger = silentLogger()) => {
    const lock = DataDirLock.acquire(dir, logger);
    locks.push(lock);
    return lock;
  };
  function capture() {
    const lines: Array<Record<string, unknown>> = [];
    return { logger: createLogger({ level: 'debug', destination: { write: (s: string) => void lines.push(JSON.parse(s)) } }), lines };
  }
  /** The pid of a process that has exited. */
  function deadPid(): number {
    const child = spawnSync(process.execPath, ['-e', 'process.stdout.write(String(process.pid))'], { encoding: 'utf8' });
    return Number(child.stdout);
  }

  it('holds pid, host and start time in a private file, and removes it on release', () => {
    const lock = acquire();
    const holder = JSON.parse(readFileSync(lockFile(), 'utf8'));
    expect(holder).toMatchObject({ pid: process.pid, hostname: hostname() });
    expect(Date.now() - Date.parse(holder.since)).toBeLessThan(60_000);
    expect(statSync(lockFile()).mode & 0o777).toBe(0o600);
    lock.release();
    expect(existsSync(lockFile())).toBe(false);
    lock.release();
  });

  it('refuses a second holder while the first runs, naming it, and leaves its lock alone', () => {
    acquire();
    const before = readFileSync(lockFile(), 'utf8');
    let error: unknown;
    try {
      DataDirLock.acquire(dir, silentLogger());
    } catch (err) {
      error = err;
    }
    expect(error).toBeInstanceOf(DataDirLockedError);
    const locked = error as DataDirLockedError;
    expect(locked.holder).toMatchObject({ pid: process.pid, hostname: hostname() });
    expect(locked.message).toBe(
      `data_dir ${dir} is in use by another Watchpost: pid ${process.pid} on host ${hostname()}, since ${locked.holder.since} (lock file ${lockFile()}); stop it first, or give this instance its own storage.data_dir`,
    );
    expect(readFileSync(lockFile(), 'utf8')).toBe(before);
    expect(existsSync(`${lockFile()}.takeover`)).toBe(false);
  });

  it('takes over the lock of a process that has died, with a warning naming it', () => {
    const pid = deadPid();
    writeFileSync(lockFile(), JSON.stringify({ pid, hostname: hostname(), since: '2026-12-01T08:00:00.000Z' }));
    const { logger, lines } = capture();
    acquire(logger);
    expect(JSON.parse(readFileSync(lockFile(), 'utf8')).pid).toBe(process.pid);
    expect(lines.filter((l) => l.level === 40).map((l) => l.msg)).toEqual([
      `data_dir lock of a Watchpost that no longer runs (pid ${pid} on host ${hostname()}, since 2026-12-01T08:00:00.000Z): taking it over`,
    ]);
    expect(existsSync(`${lockFile()}.takeover`)).toBe(false);
  });

  it('takes over a lock whose pid now belongs to another process, or that is from an earlier boot', () => {
    const me = currentHolder();
    if (me.process_start) {
      writeFileSync(lockFile(), JSON.stringify({ ...me, process_start: '1' }));
      acquire().release();
    }
    if (me.boot_id) {
      writeFileSync(lockFile(), JSON.stringify({ ...me, boot_id: 'an-earlier-boot' }));
      acquire();
      expect(JSON.parse(readFileSync(lockFile(), 'utf8')).boot_id).toBe(me.boot_id);
    }
  });

  it('never takes over the lock of another host', () => {
    writeFileSync(lockFile(), JSON.stringify({ pid: deadPid(), hostname: 'elsewhere', since: '2026-12-01T08:00:00.000Z' }));
    expect(() => acquire()).toThrow(/pid \d+ on host elsewhere, since 2026-12-01T08:00:00.000Z .*delete .*watchpost\.lock once you are sure/);
  });

  it('release leaves a lock that is no longer its own', () => {
    const lock = acquire();
    writeFileSync(lockFile(), JSON.stringify({ pid: 1, hostname: 'elsewhere', since: 'x' }));
    lock.release();
    expect(existsSync(lockFile())).toBe(true);
  });
});
