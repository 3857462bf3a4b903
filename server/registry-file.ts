/**
 * `registry.yaml` in the configuration directory: the assets and devices added, replaced and
 * retired at run time (the registry API, `watchpost import`). An ordinary configuration file
 * otherwise: it is loaded and validated with the others, and may be edited by hand. Watchpost is
 * its one writer: a change is validated with the whole directory first, then written to a
 * temporary file beside it, fsynced and renamed into place, so the file is never half-written.
 * Sections other than `assets` and `devices` that a hand edit put there are kept; comments are not.
 */
import { accessSync, closeSync, constants, existsSync, fsyncSync, openSync, readdirSync, readFileSync, renameSync, statSync, unlinkSync, writeSync } from 'node:fs';
import { join } from 'node:path';
import { parse, stringify } from 'yaml';
import { loadConfig, type ConfigError, type LoadResult } from './config/load.js';

export const REGISTRY_FILE = 'registry.yaml';

/** An item of a list section as written in a file (ids checked by the schema). */
export type RawItem = Record<string, unknown> & { id: string };

/** The registry file's content: its assets and devices, and any other section a hand edit added. */
export interface RegistryContent {
  assets: RawItem[];
  devices: RawItem[];
  other: Record<string, unknown>;
}

export type RegistryFailure = { kind: 'read_only'; message: string } | { kind: 'invalid'; errors: ConfigError[] } | { kind: 'unreadable'; errors: ConfigError[] };

const HEADER = '# Assets and devices kept by Watchpost (registry API, watchpost import). Rewritten as a whole on each change: comments are not kept.\n';

const isItem = (x: unknown): x is RawItem => x !== null && typeof x === 'object' && !Array.isArray(x) && typeof (x as { id?: unknown }).id === 'string';

/** Reads registry.yaml (empty when absent); undefined when it is not a mapping of lists (a broken hand edit). */
export function readRegistry(dir: string): RegistryContent | undefined {
  const file = join(dir, REGISTRY_FILE);
  if (!existsSync(file)) return { assets: [], devices: [], other: {} };
  let raw: unknown;
  try {
    raw = parse(readFileSync(file, 'utf8'));
  } catch {
    return undefined;
  }
  if (raw === null || raw === undefined) return { assets: [], devices: [], other: {} };
  if (typeof raw !== 'object' || Array.isArray(raw)) return undefined;
  const { assets, devices, ...other } = raw as Record<string, unknown>;
  const list = (x: unknown): RawItem[] | undefined => (x === undefined || x === null ? [] : Array.isArray(x) && x.every(isItem) ? x : undefined);
  const a = list(assets);
  const d = list(devices);
  if (!a || !d) return undefined;
  return { assets: a, devices: d, other };
}

/**
 * One item per line, as a JSON flow mapping (valid YAML): quick to write for ten thousand items,
 * and a change is one line in a diff. Other sections as ordinary YAML.
 */
export function renderRegistry(content: RegistryContent): string {
  let text = HEADER;
  if (Object.keys(content.other).length > 0) text += stringify(content.other, { lineWidth: 0 });
  for (const section of ['assets', 'devices'] as const) {
    const items = content[section];
    if (items.length === 0) continue;
    text += `${section}:\n`;
    for (const item of items) text += `  - ${JSON.stringify(item)}\n`;
  }
  return text;
}

/**
 * Read-only: the directory (or registry.yaml) cannot be written, or its permission bits deny
 * writing to everyone (`chmod a-w`), which Watchpost honours even when it runs as root.
 */
export function readOnlyReason(dir: string): string | undefined {
  const file = join(dir, REGISTRY_FILE);
  try {
    if ((statSync(dir).mode & 0o222) === 0) return `the configuration directory ${dir} is read-only`;
    accessSync(dir, constants.W_OK);
    if (existsSync(file)) {
      if ((statSync(file).mode & 0o222) === 0) return `${file} is read-only`;
      accessSync(file, constants.W_OK);
    }
  } catch (err) {
    return `the configuration directory ${dir} cannot be written: ${(err as Error).message}`;
  }
  return undefined;
}

/** Which other file of the directory defines each asset and device id (registry.yaml excluded). */
export function idsInOtherFiles(dir: string): { assets: Map<string, string>; devices: Map<string, string> } {
  const found = { assets: new Map<string, string>(), devices: new Map<string, string>() };
  for (const name of readdirSync(dir).sort()) {
    if (name === REGISTRY_FILE || !/\.ya?ml$/.test(name)) continue;
    let raw: unknown;
    try {
      raw = parse(readFileSync(join(dir, name), 'utf8'));
    } catch {
      continue; // its own error comes from the validation
    }
    if (raw === null || typeof raw !== 'object') continue;
    for (const section of ['assets', 'devices'] as const) {
      const items = (raw as Record<string, unknown>)[section];
      if (!Array.isArray(items)) continue;
      for (const item of items) if (isItem(item) && !found[section].has(item.id)) found[section].set(item.id, name);
    }
  }
  return found;
}

/** Validates the directory as it would be with `text` as registry.yaml. */
export function validateWith(dir: string, text: string, load: typeof loadConfig = loadConfig): LoadResult {
  return load(dir, process.env, new Map([[REGISTRY_FILE, text]]));
}

/** Writes registry.yaml whole: a temporary file beside it, fsync, rename into place, fsync of the directory. */
export function writeRegistryAtomically(dir: string, text: string): void {
  const target = join(dir, REGISTRY_FILE);
  // Not *.yaml, so a loader never reads it half-written; the same name each time, so a crash leaves at most one.
  const temp = join(dir, `.${REGISTRY_FILE}.tmp`);
  const fd = openSync(temp, 'w', 0o640);
  try {
    const data = Buffer.from(text, 'utf8');
    let written = 0;
    while (written < data.length) written += writeSync(fd, data, written, data.length - written);
    fsyncSync(fd);
  } catch (err) {
    closeSync(fd);
    try {
      unlinkSync(temp);
    } catch {
      // already gone
    }
    throw err;
  }
  closeSync(fd);
  renameSync(temp, target);
  const dirFd = openSync(dir, 'r');
  try {
    fsyncSync(dirFd);
  } finally {
    closeSync(dirFd);
  }
}
