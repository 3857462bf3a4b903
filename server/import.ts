/**
 * `watchpost import --config DIR FILE.csv [--dry-run]`: assets and devices from a CSV export of
 * the district's component inventory, added to or replaced in registry.yaml (registry-file.ts).
 * Every row is validated as the configuration validates it (the item's schema, then the whole
 * directory with the new registry.yaml); every bad row is reported by line and column, and
 * nothing is written when any row is bad. With --dry-run nothing is written either way.
 *
 * Columns (header row required, any order; an empty cell is an absent value; lists use `;`):
 *   kind         asset or device
 *   id           the asset or device id
 *   type, name, street          asset: as in the configuration
 *   lon, lat                    asset: its location (both or neither)
 *   owner                       asset: the owning department
 *   authorities                 asset: supervising departments, `a;b`
 *   sensors                     asset: `id:metric|metric;id2` (a sensor without metrics takes any)
 *   assets                      device: the assets it reports for, `a;b`
 *   subscribe                   device: MQTT filters it may subscribe to, `f1;f2`
 *   secret_hash                 device: its scrypt hash; without one a secret is generated,
 *                               printed once (`device_id,secret`) and only its hash kept
 */
import { randomBytes } from 'node:crypto';
import type { z } from 'zod';
import { assetSchema, deviceSchema } from '../ingest/config.js';
import { hashSecret } from '../ingest/device-auth.js';
import { parseCsv, type CsvRecord } from './csv.js';
import type { ConfigError } from './config/load.js';
import { FileRegistryBackend, RegistryConflict, RegistryError, type RegistryBackend } from './registry-backend.js';
import { idsInOtherFiles, readOnlyReason, REGISTRY_FILE, renderRegistry, validateWith, type RawItem, type RegistryContent } from './registry-file.js';

export const IMPORT_COLUMNS = ['kind', 'id', 'type', 'name', 'street', 'lon', 'lat', 'owner', 'authorities', 'sensors', 'assets', 'subscribe', 'secret_hash'] as const;
type Column = (typeof IMPORT_COLUMNS)[number];
const ASSET_COLUMNS: readonly Column[] = ['type', 'name', 'street', 'lon', 'lat', 'owner', 'authorities', 'sensors'];
const DEVICE_COLUMNS: readonly Column[] = ['assets', 'subscribe', 'secret_hash'];

/** A bad row (or the file): the line and column (1-based, the column's position in the header) and its name. */
export interface ImportError {
  line: number;
  column?: number;
  name?: string;
  message: string;
}

export interface ImportReport {
  ok: boolean;
  errors: ImportError[];
  /** Errors of the configuration directory that no row explains (another file, a broken registry.yaml). */
  configErrors: ConfigError[];
  assets: { added: number; replaced: number };
  devices: { added: number; replaced: number };
  /** Secrets generated for devices without secret_hash: shown this once. Empty on a dry run. */
  secrets: Array<{ id: string; secret: string }>;
  written: boolean;
}

/** A secret_hash that passes the schema while secrets are not generated yet (dry run, validation). */
const PLACEHOLDER_HASH = `scrypt$16384$8$1$${Buffer.alloc(16).toString('base64')}$${Buffer.alloc(32).toString('base64')}`;

const list = (cell: string): string[] =>
  cell
    .split(';')
    .map((s) => s.trim())
    .filter((s) => s !== '');

interface Row {
  line: number;
  kind: 'asset' | 'device';
  item: RawItem;
  generate: boolean;
}

export interface ImportOptions {
  dryRun: boolean;
  hash?: (secret: string) => Promise<string>;
  /** Secrets hashed at once (scrypt runs on libuv's thread pool). */
  hashConcurrency?: number;
  /** Where the registry is kept: registry.yaml in the directory by default (PostgreSQL in a cluster). */
  backend?: RegistryBackend;
}

function emptyReport(errors: ImportError[], configErrors: ConfigError[] = []): ImportReport {
  return { ok: false, errors, configErrors, assets: { added: 0, replaced: 0 }, devices: { added: 0, replaced: 0 }, secrets: [], written: false };
}

/** The column a schema issue is about. */
function columnOf(kind: Row['kind'], path: readonly PropertyKey[]): Column {
  const [first, second] = path;
  if (kind === 'asset' && first === 'location') return second === 1 ? 'lat' : 'lon';
  const name = String(first ?? 'id');
  return ((IMPORT_COLUMNS as readonly string[]).includes(name) ? name : kind === 'asset' ? 'sensors' : 'assets') as Column;
}

export async function importCsv(dir: string, text: string, options: ImportOptions): Promise<ImportReport> {
  const parsed = parseCsv(text);
  if (!parsed.ok) return emptyReport([{ line: parsed.line, column: parsed.column, message: parsed.message }]);
  const [header, ...records] = parsed.records;
  if (!header) return emptyReport([{ line: 1, message: 'the file is empty; the first line names the columns' }]);
  const errors: ImportError[] = [];
  const position = new Map<Column, number>();
  header.fields.forEach((raw, index) => {
    const name = raw.trim();
    if (!(IMPORT_COLUMNS as readonly string[]).includes(name))
      errors.push({ line: header.line, column: index + 1, name, message: `unknown column "${name}" (columns: ${IMPORT_COLUMNS.join(', ')})` });
    else if (position.has(name as Column)) errors.push({ line: header.line, column: index + 1, name, message: `column "${name}" is given twice` });
    else position.set(name as Column, index);
  });
  for (const required of ['kind', 'id'] as const) if (!position.has(required)) errors.push({ line: header.line, message: `the column "${required}" is required` });
  if (errors.length > 0) return emptyReport(errors);

  const rows: Row[] = [];
  const seen = new Map<string, number>();
  const at = (record: CsvRecord, column: Column, message: string): ImportError => ({ line: record.line, column: position.get(column)! + 1, name: column, message });
  for (const record of records) {
    if (record.fields.length !== header.fields.length) {
      errors.push({ line: record.line, message: `has ${record.fields.length} fields; the header has ${header.fields.length}` });
      continue;
    }
    const cell = (column: Column): string => (position.has(column) ? record.fields[position.get(column)!]!.trim() : '');
    const kind = cell('kind');
    if (kind !== 'asset' && kind !== 'device') {
      errors.push(at(record, 'kind', `must be asset or device, not "${kind}"`));
      continue;
    }
    const misplaced = (kind === 'asset' ? DEVICE_COLUMNS : ASSET_COLUMNS).filter((c) => cell(c) !== '');
    for (const c of misplaced) errors.push(at(record, c, `is not a column of ${kind === 'asset' ? 'an asset' : 'a device'} (leave it empty)`));
    const id = cell('id');
    const key = `${kind}:${id}`;
    const earlier = seen.get(key);
    if (earlier !== undefined) errors.push(at(record, 'id', `${kind} "${id}" is already on line ${earlier}`));
    seen.set(key, record.line);

    let item: Record<string, unknown>;
    let generate = false;
    let schema: z.ZodType;
    if (kind === 'asset') {
      item = { id, type: cell('type'), name: cell('name'), street: cell('street') };
      const lon = cell('lon');
      const lat = cell('lat');
      if ((lon === '') !== (lat === '')) errors.push(at(record, lon === '' ? 'lon' : 'lat', 'give both lon and lat, or neither'));
      else if (lon !== '') item.location = [Number(lon), Number(lat)];
      if (cell('owner') !== '') item.owner = cell('owner');
      if (cell('authorities') !== '') item.authorities = list(cell('authorities'));
      if (cell('sensors') !== '') {
        item.sensors = list(cell('sensors')).map((s) => {
          const [sensorId, metrics] = s.split(':', 2) as [string, string | undefined];
          const names =
            metrics === undefined
              ? []
              : metrics
                  .split('|')
                  .map((m) => m.trim())
                  .filter((m) => m !== '');
          return names.length > 0 ? { id: sensorId.trim(), metrics: names } : { id: sensorId.trim() };
        });
      }
      schema = assetSchema;
    } else {
      item = { id, assets: list(cell('assets')) };
      if (cell('subscribe') !== '') item.subscribe = list(cell('subscribe'));
      if (cell('secret_hash') !== '') item.secret_hash = cell('secret_hash');
      else generate = true;
      schema = deviceSchema;
    }
    const checked = schema.safeParse(generate ? { ...item, secret_hash: PLACEHOLDER_HASH } : item);
    if (!checked.success) {
      for (const issue of checked.error.issues) {
        const field = issue.path.length > 1 ? ` (${issue.path.join('.')})` : '';
        errors.push(at(record, columnOf(kind, issue.path), `${issue.message}${field}`));
      }
      continue;
    }
    rows.push({ line: record.line, kind, item: item as RawItem, generate });
  }

  const backend = options.backend ?? new FileRegistryBackend(dir);
  const readOnly = options.backend ? options.backend.unwritable()?.message : readOnlyReason(dir);
  const snapshot = backend.read();
  if (!snapshot) return emptyReport(errors, [{ file: REGISTRY_FILE, path: '(root)', message: 'must be a mapping with lists of assets and devices; fix it by hand first' }]);
  const elsewhere = idsInOtherFiles(dir);
  for (const row of rows) {
    const file = (row.kind === 'asset' ? elsewhere.assets : elsewhere.devices).get(row.item.id);
    if (file !== undefined) errors.push({ line: row.line, column: position.get('id')! + 1, name: 'id', message: `${row.kind} "${row.item.id}" is defined in ${file}; change it there` });
  }

  // Secrets for new devices without a hash, before the merge, so the file validated is the file written.
  const secrets: Array<{ id: string; secret: string }> = [];
  const hashes = new Map<string, string>();
  if (!options.dryRun && !readOnly && errors.length === 0) {
    const existing = new Set(snapshot.content.devices.map((d) => d.id));
    for (const r of rows) if (r.kind === 'device' && r.generate && !existing.has(r.item.id)) secrets.push({ id: r.item.id, secret: randomBytes(32).toString('base64url') });
    const hash = options.hash ?? hashSecret;
    const concurrency = options.hashConcurrency ?? 4;
    for (let i = 0; i < secrets.length; i += concurrency) {
      const batch = secrets.slice(i, i + concurrency);
      const done = await Promise.all(batch.map((x) => hash(x.secret)));
      batch.forEach((x, j) => hashes.set(x.id, done[j]!));
    }
  }

  // Merged into the registry: replaced in place by id, else appended; the line of each item's row.
  // The report, and what to write when it is good.
  const merge = (content: RegistryContent): { report: ImportReport; write?: { content: RegistryContent; text: string } } => {
    const assets = [...content.assets];
    const devices = [...content.devices];
    const lineOf = { assets: new Map<number, number>(), devices: new Map<number, number>() };
    const indexOf = { assets: new Map(assets.map((a, i) => [a.id, i])), devices: new Map(devices.map((d, i) => [d.id, i])) };
    const report = emptyReport([]);
    for (const row of rows) {
      const target = row.kind === 'asset' ? assets : devices;
      const counts = row.kind === 'asset' ? report.assets : report.devices;
      const item = row.generate ? { ...row.item, secret_hash: hashes.get(row.item.id) ?? PLACEHOLDER_HASH } : row.item;
      const ids = row.kind === 'asset' ? indexOf.assets : indexOf.devices;
      const index = ids.get(item.id) ?? -1;
      if (index < 0) ids.set(item.id, target.length);
      if (index >= 0) {
        // A device replaced without a secret_hash keeps its credential.
        const before = target[index]!;
        target[index] =
          row.generate && row.kind === 'device' ? { ...row.item, ...(before.secret_hash !== undefined ? { secret_hash: before.secret_hash } : { secret: before.secret }) } : item;
        if (row.kind === 'device') row.generate = false;
        counts.replaced++;
      } else {
        target.push(item);
        counts.added++;
      }
      (row.kind === 'asset' ? lineOf.assets : lineOf.devices).set(index >= 0 ? index : target.length - 1, row.line);
    }

    const configErrors: ConfigError[] = [];
    const rendered = renderRegistry({ ...content, assets, devices });
    if (errors.length === 0) {
      const result = validateWith(dir, rendered);
      if (!result.ok) {
        for (const e of result.errors) {
          const m = e.file === REGISTRY_FILE ? /^(assets|devices)\[(\d+)\][^.]*\.?([a-z_]*)/.exec(e.path) : null;
          const line = m ? lineOf[m[1] as 'assets' | 'devices'].get(Number(m[2])) : undefined;
          if (line === undefined) {
            configErrors.push(e);
            continue;
          }
          const kind = m![1] === 'assets' ? 'asset' : 'device';
          const column = columnOf(kind, m![3] ? [m![3]] : ['id']);
          errors.push({ line, ...(position.has(column) ? { column: position.get(column)! + 1 } : {}), name: column, message: e.message });
        }
      }
    }
    errors.sort((a, b) => a.line - b.line || (a.column ?? 0) - (b.column ?? 0));
    if (errors.length > 0 || configErrors.length > 0) return { report: { ...report, ok: false, errors, configErrors } };
    if (options.dryRun) return { report: { ...report, ok: true } };
    if (readOnly) return { report: { ...report, ok: false, configErrors: [{ file: dir, path: '(root)', message: `${readOnly}; nothing written` }] } };
    return { report: { ...report, ok: true, secrets, written: true }, write: { content: { ...content, assets, devices }, text: rendered } };
  };

  if (options.dryRun || readOnly || errors.length > 0) return merge(snapshot.content).report;
  // Written as computed from the content the secrets were made for: a change by someone else since is refused (run it again).
  try {
    return await backend.exclusive(async () => {
      const now = backend.read();
      if (!now || now.version !== snapshot.version) throw new RegistryConflict();
      const { report, write } = merge(now.content);
      if (write) await backend.write(now, write.content, write.text);
      return report;
    });
  } catch (err) {
    const message = err instanceof RegistryConflict ? 'the registry was changed while the import ran; nothing written, run it again' : err instanceof RegistryError ? err.message : undefined;
    if (message === undefined) throw err;
    return emptyReport([], [{ file: backend.where, path: '(root)', message }]);
  }
}

/** `FILE:LINE: column N (name): message`, one line per error. */
export function formatImportErrors(file: string, errors: readonly ImportError[]): string {
  return errors.map((e) => `${file}:${e.line}: ${e.column !== undefined ? `column ${e.column}${e.name ? ` (${e.name})` : ''}: ` : ''}${e.message}`).join('\n');
}
