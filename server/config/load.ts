/**
 * Loads a configuration directory: every *.yaml / *.yml file, sections merged across files,
 * `${NAME}` replaced from the environment, then validated against the one schema. Every error
 * names the file, the line, the path inside the file and the reason, once per cause: a file that
 * is not valid YAML gives its first syntax error and is not validated further; a missing variable
 * is reported once; an error that only follows from another one is left out (a reference to an
 * item that failed or that may be in an unreadable file, a missing field beside its misspelling).
 */
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { isAlias, isMap, isScalar, isSeq, LineCounter, parseDocument, type Document } from 'yaml';
import { z } from 'zod';
import { didYouMean, unknownFieldMessage } from '../../lib/schema.js';
import { configSchema, LIST_SECTIONS, MAP_SECTIONS, SECTIONS, SINGLE_SECTIONS, type ReferenceParams, type WatchpostConfig } from './schema.js';

export interface ConfigError {
  file: string;
  /** Where inside the file: `rules[3] (bridge-strain).levels.red`, or `(root)`. */
  path: string;
  message: string;
  /** 1-based line in the file where YAML knows it (the key's line for a field); column for syntax errors. */
  line?: number;
  column?: number;
}

export type LoadResult = { ok: true; config: WatchpostConfig; files: string[] } | { ok: false; errors: ConfigError[]; files: string[] };

type Origin = { file: string; index?: number };
type PathPart = string | number;
type ParsedFile = { doc: Document; lines: LineCounter };

const ENV_REF = /\$(\$)?\{([A-Za-z_][A-Za-z0-9_]*)\}/g;
const MAX_FILE_BYTES = 4 * 1024 * 1024;
const REQUIRED = 'is required';

export function formatPath(path: readonly PathPart[]): string {
  let out = '';
  for (const part of path) out += typeof part === 'number' ? `[${part}]` : out ? `.${part}` : part;
  return out || '(root)';
}

/** `file:line: path: message`, one line per error (`file:line:column: message` for YAML syntax). */
export function formatErrors(errors: readonly ConfigError[]): string {
  return errors
    .map((e) => {
      const at = e.line === undefined ? e.file : `${e.file}:${e.line}${e.column === undefined ? '' : `:${e.column}`}`;
      return e.path === '(root)' ? `${at}: ${e.message}` : `${at}: ${e.path}: ${e.message}`;
    })
    .join('\n');
}

/** Replaces `${NAME}` in every string; `$${NAME}` stands for a literal `${NAME}`. */
function interpolate(value: unknown, env: NodeJS.ProcessEnv, path: PathPart[], onMissing: (path: PathPart[], name: string) => void): unknown {
  if (typeof value === 'string') {
    return value.replace(ENV_REF, (whole, escaped: string | undefined, name: string) => {
      if (escaped) return whole.slice(1);
      const found = env[name];
      if (found === undefined) {
        onMissing(path, name);
        return '';
      }
      return found;
    });
  }
  if (Array.isArray(value)) return value.map((v, i) => interpolate(v, env, [...path, i], onMissing));
  if (value !== null && typeof value === 'object') {
    const out: Record<string, unknown> = {};
    for (const [k, v] of Object.entries(value)) out[k] = interpolate(v, env, [...path, k], onMissing);
    return out;
  }
  return value;
}

/** The line of the deepest node of `path` that the file has (a field's key line; a missing field's parent). */
function lineOf(parsed: ParsedFile | undefined, path: readonly PathPart[]): number | undefined {
  if (!parsed) return undefined;
  let node: unknown = parsed.doc.contents;
  let offset = (node as { range?: [number, number, number] } | null)?.range?.[0];
  for (const part of path) {
    if (isAlias(node)) node = node.resolve(parsed.doc);
    if (isMap(node)) {
      const pair = node.items.find((p) => String(isScalar(p.key) ? p.key.value : p.key) === String(part));
      if (!pair) break;
      offset = (pair.key as { range?: [number, number, number] } | null)?.range?.[0] ?? offset;
      node = pair.value;
    } else if (isSeq(node) && typeof part === 'number' && node.items[part]) {
      node = node.items[part];
      offset = (node as { range?: [number, number, number] }).range?.[0] ?? offset;
    } else break;
  }
  return offset === undefined ? undefined : parsed.lines.linePos(offset).line;
}

/**
 * Runs a parse with zod's error map set to name unknown and missing fields with what is accepted.
 * Set globally for the duration of this synchronous call, so that schemas which parse their items
 * themselves (rules, channels) use it too; `accepted` maps each unknown-keys issue's `keys` array
 * (which re-raised issues keep) to the fields its object accepts.
 */
function withFieldMessages<T>(accepted: WeakMap<readonly string[], string[]>, run: () => T): T {
  const previous = z.config().customError;
  z.config({
    customError: (iss) => {
      if (iss.code === 'unrecognized_keys') {
        const shape = (iss.inst as { _zod?: { def?: { shape?: Record<string, unknown> } } } | undefined)?._zod?.def?.shape;
        const fields = shape ? Object.keys(shape) : [];
        accepted.set(iss.keys, fields);
        return iss.keys.map((k) => unknownFieldMessage(k, fields)).join('; ');
      }
      if (iss.code === 'invalid_type' && iss.input === undefined) return `${REQUIRED} (${iss.expected})`;
      return previous?.(iss);
    },
  });
  try {
    return run();
  } finally {
    z.config({ customError: previous });
  }
}

function listConfigFiles(dir: string): string[] {
  return readdirSync(dir)
    .filter((name) => /\.ya?ml$/.test(name) && statSync(join(dir, name)).isFile())
    .sort();
}

/**
 * `overrides`: file name -> text read instead of that file (added if it is not there), so a change
 * is validated with the rest of the directory before it is written (the registry API, import).
 */
export function loadConfig(dir: string, env: NodeJS.ProcessEnv = process.env, overrides: ReadonlyMap<string, string> = new Map()): LoadResult {
  const errors: ConfigError[] = [];
  let files: string[];
  try {
    if (!statSync(dir).isDirectory()) return { ok: false, files: [], errors: [{ file: dir, path: '(root)', message: 'is not a directory' }] };
    files = [...new Set([...listConfigFiles(dir), ...overrides.keys()])].sort();
  } catch (err) {
    return { ok: false, files: [], errors: [{ file: dir, path: '(root)', message: `cannot read configuration directory: ${(err as Error).message}` }] };
  }
  if (files.length === 0) errors.push({ file: dir, path: '(root)', message: 'no *.yaml or *.yml files found' });

  const merged: Record<string, unknown> = {};
  const origins = new Map<string, Origin[] | Origin>();
  const parsedFiles = new Map<string, ParsedFile>();
  /** Values whose environment variable was missing: their schema errors would only repeat that. */
  const unresolved = new Set<string>();
  /** The first report of each missing variable, to which later uses are added. */
  const missing = new Map<string, { error: ConfigError; also: string[] }>();
  /**
   * Sections that may hold more than was read (a file that is not valid YAML, a misspelt or
   * malformed section): "unknown asset" and the like would only follow from that.
   */
  const uncertain = new Set<string>();
  const unreadable = (file: string, error: Omit<ConfigError, 'file'>) => {
    errors.push({ file, ...error });
    for (const section of SECTIONS) uncertain.add(section);
  };

  for (const file of files) {
    const full = join(dir, file);
    const override = overrides.get(file);
    if ((override === undefined ? statSync(full).size : Buffer.byteLength(override)) > MAX_FILE_BYTES) {
      unreadable(file, { path: '(root)', message: `file is larger than ${MAX_FILE_BYTES} bytes` });
      continue;
    }
    const lines = new LineCounter();
    const doc = parseDocument(override ?? readFileSync(full, 'utf8'), { uniqueKeys: true, prettyErrors: true, lineCounter: lines });
    const syntax = doc.errors[0];
    if (syntax) {
      // Only the first: after a syntax error the parser's further errors are mostly its consequences.
      const pos = syntax.linePos?.[0];
      const message = `YAML: ${syntax.message.split('\n')[0]!.replace(/ at line \d+, column \d+:?$/, '')}`;
      unreadable(file, pos ? { path: '(root)', message, line: pos.line, column: pos.col } : { path: '(root)', message });
      continue;
    }
    let raw: unknown;
    try {
      raw = doc.toJS({ maxAliasCount: 100 });
    } catch (err) {
      // An alias without its anchor, or too many aliases: the parser reports these only here.
      unreadable(file, { path: '(root)', message: `YAML: ${(err as Error).message.split('\n')[0]}` });
      continue;
    }
    if (raw === null || raw === undefined) continue;
    if (typeof raw !== 'object' || Array.isArray(raw)) {
      unreadable(file, { path: '(root)', message: 'must be a mapping of sections (broker, api, storage, assets, ...)', line: 1 });
      continue;
    }
    const parsed: ParsedFile = { doc, lines };
    parsedFiles.set(file, parsed);
    const data = interpolate(raw, env, [], (path, name) => {
      const where = formatPath(path);
      unresolved.add(`${file}|${where}`);
      const first = missing.get(name);
      if (first) first.also.push(first.error.file === file ? where : `${file}: ${where}`);
      else {
        const error = { file, path: where, message: `environment variable ${name} is not set`, line: lineOf(parsed, path) };
        errors.push(error);
        missing.set(name, { error, also: [] });
      }
    }) as Record<string, unknown>;

    for (const [section, value] of Object.entries(data)) {
      const line = lineOf(parsed, [section]);
      if (!(SECTIONS as readonly string[]).includes(section)) {
        errors.push({ file, path: section, message: unknownFieldMessage(section, SECTIONS, 'section'), line });
        const near = didYouMean(section, SECTIONS);
        if (near !== undefined) uncertain.add(near);
        continue;
      }
      if ((LIST_SECTIONS as readonly string[]).includes(section)) {
        if (value === null) continue;
        if (!Array.isArray(value)) {
          errors.push({ file, path: section, message: 'must be a list', line });
          uncertain.add(section);
          continue;
        }
        const list = (merged[section] ??= []) as unknown[];
        const listOrigins = (origins.get(section) as Origin[] | undefined) ?? [];
        value.forEach((item, index) => {
          list.push(item);
          listOrigins.push({ file, index });
        });
        origins.set(section, listOrigins);
      } else if ((MAP_SECTIONS as readonly string[]).includes(section)) {
        if (value === null) continue;
        if (typeof value !== 'object' || Array.isArray(value)) {
          errors.push({ file, path: section, message: 'must be a mapping', line });
          uncertain.add(section);
          continue;
        }
        const map = (merged[section] ??= {}) as Record<string, unknown>;
        for (const [key, item] of Object.entries(value)) {
          const previous = origins.get(`${section}.${key}`) as Origin | undefined;
          if (previous) {
            errors.push({ file, path: `${section}.${key}`, message: `already defined in ${previous.file}`, line: lineOf(parsed, [section, key]) });
            continue;
          }
          map[key] = item;
          origins.set(`${section}.${key}`, { file });
        }
      } else if ((SINGLE_SECTIONS as readonly string[]).includes(section)) {
        const previous = origins.get(section) as Origin | undefined;
        if (previous) {
          errors.push({ file, path: section, message: `already defined in ${previous.file}; a ${section} section may appear in one file only`, line });
          continue;
        }
        merged[section] = value ?? undefined;
        origins.set(section, { file });
      }
    }
  }
  for (const { error, also } of missing.values()) if (also.length > 0) error.message += ` (also used at ${also.join(', ')})`;

  const accepted = new WeakMap<readonly string[], string[]>();
  const result = withFieldMessages(accepted, () => {
    const parsed = configSchema.safeParse(merged);
    // Issues may be finalised (their messages made) when first read: read them while the map is set.
    if (!parsed.success) void parsed.error.issues.length;
    return parsed;
  });
  if (!result.success) {
    /** Ids each list section has in the input, valid or not. */
    const ids = new Map<string, Set<unknown>>();
    const present = (section: string): Set<unknown> => {
      let found = ids.get(section);
      if (!found) {
        const items = Array.isArray(merged[section]) ? (merged[section] as unknown[]) : [];
        found = new Set(items.map((item) => (item !== null && typeof item === 'object' ? (item as { id?: unknown }).id : undefined)));
        ids.set(section, found);
      }
      return found;
    };
    const schemaErrors: Array<ConfigError & { at: string; kind: 'unknown' | 'required' | 'other' }> = [];
    /**
     * `file|path` of fields probably meant by a misspelt field beside them, and of the objects that
     * hold one: "is required" there, or the object's own "needs one of ...", only follows from it.
     */
    const meant = new Set<string>();
    const misspeltIn = new Set<string>();
    const locate = (path: PathPart[], message: string): (ConfigError & { at: string }) | undefined => {
      const [section, index, ...rest] = path;
      let file = files.length === 1 ? files[0]! : dir;
      let localPath: PathPart[] = path;
      const origin = section === undefined ? undefined : origins.get(String(section));
      if (Array.isArray(origin) && typeof index === 'number' && origin[index]) {
        file = origin[index].file;
        localPath = [section!, origin[index].index!, ...rest];
      } else if (origin && !Array.isArray(origin)) {
        file = origin.file;
      } else if (section !== undefined && index !== undefined) {
        const keyOrigin = origins.get(`${String(section)}.${String(index)}`);
        if (keyOrigin && !Array.isArray(keyOrigin)) file = keyOrigin.file;
      }
      const at = `${file}|${formatPath(localPath)}`;
      if (unresolved.has(at)) return undefined;
      // Name the offending item by id where it has one: "rules[3] (bridge-strain).levels.red".
      let label = formatPath(localPath);
      if (Array.isArray(origin) && typeof index === 'number') {
        const item = (merged[String(section)] as unknown[])[index] as { id?: unknown } | undefined;
        if (item && typeof item.id === 'string') label = label.replace(`[${String(localPath[1])}]`, `[${String(localPath[1])}] (${item.id})`);
      }
      const line = lineOf(parsedFiles.get(file), localPath);
      return line === undefined ? { file, path: label, message, at } : { file, path: label, message, line, at };
    };
    for (const issue of result.error.issues) {
      const path = issue.path as PathPart[];
      const reference = (issue as { params?: Partial<ReferenceParams> }).params?.reference;
      // The referenced item failed (its own error says why), or may be in what could not be read.
      if (reference && (uncertain.has(reference.section) || present(reference.section).has(reference.id))) continue;
      const keys = (issue as { keys?: unknown }).keys;
      if (Array.isArray(keys)) {
        for (const key of keys as string[]) {
          const fields = accepted.get(keys) ?? [];
          const error = locate([...path, key], unknownFieldMessage(key, fields));
          if (!error) continue;
          schemaErrors.push({ ...error, kind: 'unknown' });
          const near = didYouMean(key, fields);
          if (near === undefined) continue;
          const parent = error.at.slice(0, error.at.length - key.length - 1);
          meant.add(`${parent}.${near}`);
          misspeltIn.add(parent);
        }
        continue;
      }
      const error = locate(path, issue.message);
      if (error) schemaErrors.push({ ...error, kind: issue.code === 'invalid_type' && issue.message.startsWith(REQUIRED) ? 'required' : 'other' });
    }
    for (const { at, kind, ...error } of schemaErrors) {
      if ((kind === 'required' && meant.has(at)) || (kind === 'other' && misspeltIn.has(at))) continue;
      errors.push(error);
    }
  }
  if (errors.length > 0 || !result.success) {
    // Grouped by file, in line order within a file (stable, so errors on one line keep their order).
    errors.sort((a, b) => (a.file < b.file ? -1 : a.file > b.file ? 1 : (a.line ?? 0) - (b.line ?? 0)));
    return { ok: false, errors, files };
  }
  return { ok: true, config: result.data, files };
}
