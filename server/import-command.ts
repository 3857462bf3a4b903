/** The `watchpost import` command: reads the CSV, runs import.ts and prints its report. */
import { readFileSync } from 'node:fs';
import { formatErrors } from './config/load.js';
import { formatImportErrors, importCsv } from './import.js';
import { REGISTRY_FILE } from './registry-file.js';

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
  const report = await importCsv(configDir, text, { dryRun });
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
  process.stderr.write(dryRun ? `dry run: ${summary}; nothing written (${ms} ms)\n` : `${summary} in ${configDir}/${REGISTRY_FILE} (${ms} ms)\n`);
  return 0;
}
