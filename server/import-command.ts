/**
 * The `watchpost import` command: reads the CSV, runs import.ts and prints its report. With a
 * `cluster` section the registry is the cluster's, in PostgreSQL (registry-postgres.ts).
 */
import { readFileSync } from 'node:fs';
import { silentLogger } from '../lib/logger.js';
import { engineAddress, type ClusterConfig } from './config/cluster.js';
import { formatErrors, loadConfig } from './config/load.js';
import { formatImportErrors, importCsv, type ImportReport } from './import.js';
import { REGISTRY_FILE } from './registry-file.js';
import { registryBackend } from './registry-postgres.js';

const POSTGRES_PORT = 5432;

/** Imports into the cluster's registry in PostgreSQL; undefined (after the error on stderr) when it cannot be reached. */
async function importIntoPostgres(configDir: string, cluster: ClusterConfig, text: string, dryRun: boolean): Promise<ImportReport | undefined> {
  // No other instance's change is awaited here: one poll a minute is only its timer.
  const backend = registryBackend({ cluster }, { configDir, logger: silentLogger() }, { pollMs: 60_000 });
  try {
    await backend.start();
    return await importCsv(configDir, text, { dryRun, backend });
  } catch (err) {
    process.stderr.write(`watchpost import: ${(err as Error).message} (${engineAddress(cluster.postgres_url, POSTGRES_PORT)})\n`);
    return undefined;
  } finally {
    await backend.stop();
  }
}

export async function runImport(configDir: string, positionals: readonly string[], dryRun: boolean): Promise<number> {
  if (positionals.length !== 1) {
    process.stderr.write(`watchpost import: give one CSV file (see: watchpost import --help)\n`);
    return 2;
  }
  const file = positionals[0]!;
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (err) {
    process.stderr.write(`watchpost import: cannot read ${file}: ${(err as Error).message}\n`);
    return 2;
  }
  const started = Date.now();
  const loaded = loadConfig(configDir);
  const cluster = loaded.ok ? loaded.config.cluster : undefined;
  const report = cluster ? await importIntoPostgres(configDir, cluster, text, dryRun) : await importCsv(configDir, text, { dryRun });
  if (!report) return 1;
  const ms = Date.now() - started;
  if (!report.ok) {
    if (report.errors.length > 0) process.stderr.write(`${formatImportErrors(file, report.errors)}\n`);
    if (report.configErrors.length > 0) process.stderr.write(`${formatErrors(report.configErrors)}\n`);
    const n = report.errors.length + report.configErrors.length;
    process.stderr.write(`${n} error${n === 1 ? '' : 's'}; nothing written\n`);
    return 1;
  }
  const summary = `${report.assets.added} assets added, ${report.assets.replaced} replaced; ${report.devices.added} devices added, ${report.devices.replaced} replaced`;
  if (report.secrets.length > 0) {
    process.stderr.write(`generated secrets follow on stdout (device_id,secret): shown this once, only their hashes are kept\n`);
    process.stdout.write(`device_id,secret\n${report.secrets.map((s) => `${s.id},${s.secret}`).join('\n')}\n`);
  }
  const where = cluster ? `the registry in PostgreSQL (${engineAddress(cluster.postgres_url, POSTGRES_PORT)})` : `${configDir}/${REGISTRY_FILE}`;
  process.stderr.write(dryRun ? `dry run: ${summary}; nothing written (${ms} ms)\n` : `${summary} in ${where} (${ms} ms)\n`);
  return 0;
}
