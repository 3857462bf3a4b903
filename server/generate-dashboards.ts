/**
 * Writes the Grafana dashboards of a configuration (see dashboards/README.md):
 *
 *   node dist/server/generate-dashboards.js [--config DIR] [--out DIR]   (default: config-demo, dashboards/json)
 *
 * Loads and validates the configuration here, so that dashboards/ only turns configuration data
 * into dashboard JSON.
 */
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { generateDashboards, writeDashboards } from '../dashboards/generate.js';
import { formatErrors, loadConfig } from './config/load.js';

function main(argv: string[]): number {
  const { values } = parseArgs({ args: argv, options: { config: { type: 'string' }, out: { type: 'string' } } });
  const dir = values.config ?? 'config-demo';
  const loaded = loadConfig(dir);
  if (!loaded.ok) {
    process.stderr.write(`${formatErrors(loaded.errors)}\n`);
    return 1;
  }
  for (const { path, written } of writeDashboards(generateDashboards(loaded.config), values.out ?? join('dashboards', 'json'))) {
    process.stdout.write(`${written ? 'wrote' : 'unchanged'} ${path}\n`);
  }
  return 0;
}

process.exitCode = main(process.argv.slice(2));
