/**
 * Where the registry's run-time changes are kept (contract: "The registry at run time", "Cluster
 * mode"): registry.yaml in the configuration directory for a single instance, PostgreSQL for a
 * cluster (registry-postgres.ts). The registry (registry.ts) reads the current content, computes
 * the change, validates the whole directory with it and hands it to the backend to keep; the
 * configuration loader reads the backend's content in registry.yaml's place (`overrides`).
 *
 * `read()` and `overrides()` are synchronous, because the configuration loader is: a backend
 * that keeps its content elsewhere holds an in-memory copy and refreshes it itself, telling its
 * listeners (`onChange`) so that the instance reloads through the same validated path.
 */
import { readOnlyReason, readRegistry, REGISTRY_FILE, writeRegistryAtomically, type RegistryContent } from './registry-file.js';

/** A refused change: an error code of the registry API, its HTTP status and the answer's details. */
export class RegistryError extends Error {
  constructor(
    readonly code: string,
    message: string,
    readonly status: number,
    readonly details: Record<string, unknown> = {},
  ) {
    super(message);
  }
}

/** Another writer changed the registry after `base` was read: compute the change again. */
export class RegistryConflict extends Error {
  constructor(message = 'the registry was changed meanwhile') {
    super(message);
  }
}

/** The registry's content as one reader saw it, with the version a write is based on. */
export interface RegistrySnapshot {
  content: RegistryContent;
  /** Increases with every change kept; 0 for the file (its one writer is this process). */
  version: number;
}

export interface RegistryBackend {
  /** Where the changes are kept, as the answers and logs name it. */
  readonly where: string;
  /** The content in force, or undefined when it cannot be read (a broken hand edit of registry.yaml). */
  read(): RegistrySnapshot | undefined;
  /** Files the configuration loader reads instead of the directory's (the registry's content as registry.yaml). */
  overrides(): ReadonlyMap<string, string>;
  /** Why no change can be kept now, checked before a change is computed; undefined when one can. */
  unwritable(): RegistryError | undefined;
  /**
   * Runs one change: `fn` reads, computes and writes it (once at most). A backend shared by
   * several instances holds every other instance's writes off meanwhile, after bringing its copy
   * up to date, so that a change is computed from the latest content.
   */
  exclusive<T>(fn: () => Promise<T>): Promise<T>;
  /**
   * Keeps `next` (rendered as `text`, the registry.yaml it stands for), computed from `base`.
   * Rejects with RegistryConflict when the content is no longer `base` (nothing kept), with a
   * RegistryError when it cannot be kept (read-only, unreachable).
   */
  write(base: RegistrySnapshot, next: RegistryContent, text: string): Promise<void>;
  /** Called after the content changed from elsewhere (not after this instance's own writes). */
  onChange(listener: () => void): () => void;
  /** For /healthz, when the content lives elsewhere: its version and whether the last statement reached it. */
  status?(): { version: number; reachable: boolean; error?: string };
  start(): Promise<void>;
  stop(): Promise<void>;
}

const NO_OVERRIDES: ReadonlyMap<string, string> = new Map();

/**
 * registry.yaml: read as it is on disk each time, written whole and atomically. The directory
 * watcher (config-reload.ts) reloads after hand edits, so this backend tells no one.
 */
export class FileRegistryBackend implements RegistryBackend {
  readonly where = REGISTRY_FILE;

  constructor(private readonly dir: string) {}

  read(): RegistrySnapshot | undefined {
    const content = readRegistry(this.dir);
    return content ? { content, version: 0 } : undefined;
  }

  overrides(): ReadonlyMap<string, string> {
    return NO_OVERRIDES;
  }

  unwritable(): RegistryError | undefined {
    const reason = readOnlyReason(this.dir);
    return reason ? new RegistryError('read_only_config', `${reason}; run-time changes cannot be kept`, 409) : undefined;
  }

  exclusive<T>(fn: () => Promise<T>): Promise<T> {
    return fn(); // this process is the file's one writer, and the registry serialises its changes
  }

  write(_base: RegistrySnapshot, _next: RegistryContent, text: string): Promise<void> {
    try {
      writeRegistryAtomically(this.dir, text);
      return Promise.resolve();
    } catch (err) {
      const code = (err as NodeJS.ErrnoException).code;
      if (code === 'EROFS' || code === 'EACCES' || code === 'EPERM')
        return Promise.reject(new RegistryError('read_only_config', `the configuration directory ${this.dir} cannot be written (${code}); nothing changed`, 409));
      return Promise.reject(err instanceof Error ? err : new Error(String(err)));
    }
  }

  onChange(): () => void {
    return () => undefined;
  }

  start(): Promise<void> {
    return Promise.resolve();
  }

  stop(): Promise<void> {
    return Promise.resolve();
  }
}
