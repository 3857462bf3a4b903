/**
 * One running Watchpost per data directory. `DataDirLock.acquire` creates `watchpost.lock` in
 * the directory, holding the owner's pid, host name and start time, before anything else there
 * (spool, telemetry.db, alerts.db) is opened; `release()` removes it at shutdown, and an exit
 * hook removes it on any other orderly exit.
 *
 * The file is created whole or not at all: written to a private temporary file, then hard-linked
 * to its name, which fails if the name exists. A lock whose owner is gone is stale and taken over
 * with a warning: on the same host when that pid no longer runs, or runs another process (the
 * process start time on Linux differs, or the machine was rebooted since: another boot id). A
 * lock from another host (a shared directory) is never taken over: that host may still run it.
 * Two instances taking over the same stale lock at once are serialised by a second lock file.
 */
import { closeSync, fsyncSync, linkSync, openSync, readFileSync, unlinkSync, writeSync } from 'node:fs';
import { hostname } from 'node:os';
import { join } from 'node:path';
import type { Logger } from './logger.js';

export const LOCK_FILE = 'watchpost.lock';

/** Who holds a data directory. */
export interface LockHolder {
  pid: number;
  hostname: string;
  /** When the holder took the lock (ISO 8601). */
  since: string;
  /** Linux: the boot the holder ran in (/proc/sys/kernel/random/boot_id). */
  boot_id?: string;
  /** Linux: the holder's start time in clock ticks since boot (/proc/<pid>/stat), against pid reuse. */
  process_start?: string;
}

export class DataDirLockedError extends Error {
  readonly code = 'DATA_DIR_LOCKED';

  constructor(
    readonly dataDir: string,
    readonly lockFile: string,
    readonly holder: LockHolder,
  ) {
    super(
      `data_dir ${dataDir} is in use by another Watchpost: pid ${holder.pid} on host ${holder.hostname}, since ${holder.since} (lock file ${lockFile}); ` +
        (holder.hostname === hostname()
          ? 'stop it first, or give this instance its own storage.data_dir'
          : `another host cannot tell whether it still runs: stop it there, or delete ${lockFile} once you are sure it does not`),
    );
    this.name = 'DataDirLockedError';
  }
}

/** Attempts before giving up on a lock that keeps changing hands. */
const ATTEMPTS = 5;

export class DataDirLock {
  private released = false;
  private readonly onExit = () => this.release();

  private constructor(
    readonly path: string,
    private readonly content: string,
  ) {
    process.once('exit', this.onExit);
  }

  /** Takes the lock of `dataDir` (which must exist), or throws DataDirLockedError naming the holder. */
  static acquire(dataDir: string, logger: Logger): DataDirLock {
    const path = join(dataDir, LOCK_FILE);
    const content = `${JSON.stringify(currentHolder())}\n`;
    for (let attempt = 0; attempt < ATTEMPTS; attempt++) {
      if (createExclusive(path, content)) return new DataDirLock(path, content);
      const existing = readText(path);
      if (existing === undefined) continue; // released meanwhile
      const holder = parseHolder(existing);
      if (holder && holderRuns(holder)) throw new DataDirLockedError(dataDir, path, holder);
      if (!takeOver(path, existing, content, dataDir)) continue;
      logger.warn(
        { lock_file: path, holder: holder ?? existing.slice(0, 200) },
        holder
          ? `data_dir lock of a Watchpost that no longer runs (pid ${holder.pid} on host ${holder.hostname}, since ${holder.since}): taking it over`
          : 'data_dir lock file is unreadable: taking it over',
      );
      return new DataDirLock(path, content);
    }
    throw new Error(`cannot take the lock ${path}: it keeps changing hands`);
  }

  /** Removes the lock file if it is still ours; safe to call twice. */
  release(): void {
    if (this.released) return;
    this.released = true;
    process.off('exit', this.onExit);
    try {
      if (readText(this.path) === this.content) unlinkQuietly(this.path);
    } catch {
      // unreadable now: leave it; the next start finds it stale
    }
  }
}

/** The holder this process writes into the lock. */
export function currentHolder(): LockHolder {
  const bootId = readBootId();
  const start = processStart(process.pid);
  return {
    pid: process.pid,
    hostname: hostname(),
    since: new Date().toISOString(),
    ...(bootId ? { boot_id: bootId } : {}),
    ...(start ? { process_start: start } : {}),
  };
}

/** Whether the holder of a lock still runs (from this host's point of view: another host's holder always may). */
export function holderRuns(holder: LockHolder): boolean {
  if (holder.hostname !== hostname()) return true;
  const bootId = readBootId();
  if (holder.boot_id && bootId && holder.boot_id !== bootId) return false;
  try {
    process.kill(holder.pid, 0);
  } catch (err) {
    // EPERM: it runs, as another user.
    if ((err as NodeJS.ErrnoException).code === 'ESRCH') return false;
  }
  const start = holder.process_start ? processStart(holder.pid) : undefined;
  return !(start && start !== holder.process_start);
}

function parseHolder(text: string): LockHolder | undefined {
  try {
    const json = JSON.parse(text) as Partial<LockHolder>;
    if (!Number.isSafeInteger(json.pid) || typeof json.hostname !== 'string' || typeof json.since !== 'string') return undefined;
    return json as LockHolder;
  } catch {
    return undefined;
  }
}

/** Creates `path` holding `content`, complete, unless it exists. */
function createExclusive(path: string, content: string): boolean {
  const temporary = `${path}.${process.pid}.${Math.random().toString(36).slice(2)}.tmp`;
  const fd = openSync(temporary, 'wx', 0o600);
  try {
    writeSync(fd, content);
    fsyncSync(fd);
  } finally {
    closeSync(fd);
  }
  try {
    linkSync(temporary, path);
    return true;
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'EEXIST') return false;
    throw err;
  } finally {
    unlinkQuietly(temporary);
  }
}

/**
 * Replaces the stale lock `stale` with ours, under the takeover lock so that two instances do
 * not both remove it and each take the lock of the other. False when it changed meanwhile.
 */
function takeOver(path: string, stale: string, content: string, dataDir: string): boolean {
  const guard = `${path}.takeover`;
  if (!createExclusive(guard, content)) {
    const other = readText(guard);
    const holder = other === undefined ? undefined : parseHolder(other);
    if (holder && holderRuns(holder)) throw new DataDirLockedError(dataDir, guard, holder);
    // A takeover that died half-way: clear it, and start over.
    if (other !== undefined) unlinkQuietly(guard);
    return false;
  }
  try {
    if (readText(path) !== stale) return false;
    unlinkQuietly(path);
    return createExclusive(path, content);
  } finally {
    if (readText(guard) === content) unlinkQuietly(guard);
  }
}

function readText(path: string): string | undefined {
  try {
    return readFileSync(path, 'utf8');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw err;
  }
}

function unlinkQuietly(path: string): void {
  try {
    unlinkSync(path);
  } catch {
    // gone already
  }
}

function readBootId(): string | undefined {
  try {
    return readFileSync('/proc/sys/kernel/random/boot_id', 'utf8').trim() || undefined;
  } catch {
    return undefined;
  }
}

/** Field 22 of /proc/<pid>/stat (start time since boot); undefined where there is no /proc. */
function processStart(pid: number): string | undefined {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    // The command name (field 2) may hold spaces and parentheses: count from its closing one.
    return stat.slice(stat.lastIndexOf(')') + 2).split(' ')[19];
  } catch {
    return undefined;
  }
}
