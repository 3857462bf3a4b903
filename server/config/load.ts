/**
 * Loads a configuration directory: every *.yaml / *.yml file, sections merged across files,
 * `${NAME}` replaced from the environment, then validated against the one schema. Every error
 * names the file, the path inside it and the reason.
 */
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { parseDocument } from 'yaml';
import { configSchema, LIST_SECTIONS, MAP_SECTIONS, SECTIONS, SINGLE_SECTIONS, type WatchpostConfig } from './schema.js';

export interface ConfigError {
  file: string;
  path: string;
  message: string;
}

export type LoadResult = { ok: true; config: WatchpostConfig; files: string[] } | { ok: false; errors: ConfigError[]; files: string[] };

type Origin = { file: string; index?: number };
type PathPart = string | number;

const ENV_REF = /\$(\$)?\{([A-Za-z_][A-Za-z0-9_]*)\}/g;
const MAX_FILE_BYTES = 4 * 1024 * 1024;

export function formatPath(path: readonly PathPart[]): string {
  let out = '';
  for (const part of path) out += typeof part === 'number' ? `[${part}]` : out ? `.${part}` : part;
  return out || '(root)';
}

export function formatErrors(errors: readonly ConfigError[]): string {
  return errors.map((e) => `${e.file}: ${e.path}: ${e.message}`).join('\n');
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

function listConfigFiles(dir: string): string[] {
  return readdirSync(dir)
    .filter((name) => /\.ya?ml$/.test(name) && statSync(join(dir, name)).isFile())
    .sort();
}

export function loadConfig(dir: string, env: NodeJS.ProcessEnv = process.env): LoadResult {
  const errors: ConfigError[] = [];
  let files: string[];
  try {
    if (!statSync(dir).isDirectory()) return { ok: false, files: [], errors: [{ file: dir, path: '(root)', message: 'is not a directory' }] };
    files = listConfigFiles(dir);
  } catch (err) {
    return { ok: false, files: [], errors: [{ file: dir, path: '(root)', message: `cannot read configuration directory: ${(err as Error).message}` }] };
  }
  if (files.length === 0) errors.push({ file: dir, path: '(root)', message: 'no *.yaml or *.yml files found' });

  const merged: Record<string, unknown> = {};
  const origins = new Map<string, Origin[] | Origin>();
  /** Values whose environment variable was missing: their schema errors would only repeat that. */
  const unresolved = new Set<string>();

  for (const file of files) {
    const full = join(dir, file);
    if (statSync(full).size > MAX_FILE_BYTES) {
      errors.push({ file, path: '(root)', message: `file is larger than ${MAX_FILE_BYTES} bytes` });
      continue;
    }
    const doc = parseDocument(readFileSync(full, 'utf8'), { uniqueKeys: true, prettyErrors: true });
    if (doc.errors.length > 0) {
      for (const e of doc.errors) {
        const pos = e.linePos?.[0];
        errors.push({ file, path: pos ? `line ${pos.line}, column ${pos.col}` : '(root)', message: `YAML: ${e.message.split('\n')[0]!.replace(/ at line \d+, column \d+:?$/, '')}` });
      }
      continue;
    }
    let raw: unknown;
    try {
      raw = doc.toJS({ maxAliasCount: 100 });
    } catch (err) {
      // An alias without its anchor, or too many aliases: the parser reports these only here.
      errors.push({ file, path: '(root)', message: `YAML: ${(err as Error).message.split('\n')[0]}` });
      continue;
    }
    if (raw === null || raw === undefined) continue;
    if (typeof raw !== 'object' || Array.isArray(raw)) {
      errors.push({ file, path: '(root)', message: 'must be a mapping of sections (broker, api, storage, assets, ...)' });
      continue;
    }
    const data = interpolate(raw, env, [], (path, name) => {
      errors.push({ file, path: formatPath(path), message: `environment variable ${name} is not set` });
      unresolved.add(`${file}|${formatPath(path)}`);
    }) as Record<string, unknown>;

    for (const [section, value] of Object.entries(data)) {
      if (!(SECTIONS as readonly string[]).includes(section)) {
        errors.push({ file, path: section, message: `unknown section (expected one of ${SECTIONS.join(', ')})` });
        continue;
      }
      if ((LIST_SECTIONS as readonly string[]).includes(section)) {
        if (value === null) continue;
        if (!Array.isArray(value)) {
          errors.push({ file, path: section, message: 'must be a list' });
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
          errors.push({ file, path: section, message: 'must be a mapping' });
          continue;
        }
        const map = (merged[section] ??= {}) as Record<string, unknown>;
        for (const [key, item] of Object.entries(value)) {
          const previous = origins.get(`${section}.${key}`) as Origin | undefined;
          if (previous) {
            errors.push({ file, path: `${section}.${key}`, message: `already defined in ${previous.file}` });
            continue;
          }
          map[key] = item;
          origins.set(`${section}.${key}`, { file });
        }
      } else if ((SINGLE_SECTIONS as readonly string[]).includes(section)) {
        const previous = origins.get(section) as Origin | undefined;
        if (previous) {
          errors.push({ file, path: section, message: `already defined in ${previous.file}; a ${section} section may appear in one file only` });
          continue;
        }
        merged[section] = value ?? undefined;
        origins.set(section, { file });
      }
    }
  }

  const parsed = configSchema.safeParse(merged);
  if (!parsed.success) {
    for (const issue of parsed.error.issues) {
      const path = issue.path as PathPart[];
      const [section, index, ...rest] = path;
      let file = files.length === 1 ? files[0]! : dir;
      let localPath: PathPart[] = path;
      const origin = section === undefined ? undefined : origins.get(String(section));
      if (Array.isArray(origin) && typeof index === 'number' && origin[index]) {
        file = origin[index]!.file;
        localPath = [section!, origin[index]!.index!, ...rest];
      } else if (origin && !Array.isArray(origin)) {
        file = origin.file;
      } else if (section !== undefined && index !== undefined) {
        const keyOrigin = origins.get(`${String(section)}.${String(index)}`);
        if (keyOrigin && !Array.isArray(keyOrigin)) file = keyOrigin.file;
      }
      if (unresolved.has(`${file}|${formatPath(localPath)}`)) continue;
      // Name the offending item by id where it has one: "rules[3] (bridge-strain).levels.red".
      let label = formatPath(localPath);
      if (Array.isArray(origin) && typeof index === 'number') {
        const item = (merged[String(section)] as unknown[])[index] as { id?: unknown } | undefined;
        if (item && typeof item.id === 'string') label = label.replace(`[${String(localPath[1])}]`, `[${String(localPath[1])}] (${item.id})`);
      }
      errors.push({ file, path: label, message: issue.message });
    }
  }
  if (errors.length > 0 || !parsed.success) {
    // Grouped by file (stable, so each file's errors keep their order).
    errors.sort((a, b) => (a.file < b.file ? -1 : a.file > b.file ? 1 : 0));
    return { ok: false, errors, files };
  }
  return { ok: true, config: parsed.data, files };
}
