/** `npm run schema`: writes watchpost.schema.json at the package root from the configuration schema. */
import { writeFileSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { configJsonSchemaText } from './json-schema.js';

/** dist/server/config/ -> the package root. */
export const CONFIG_JSON_SCHEMA_FILE = join(resolve(dirname(fileURLToPath(import.meta.url)), '..', '..', '..'), 'watchpost.schema.json');

writeFileSync(CONFIG_JSON_SCHEMA_FILE, configJsonSchemaText());
process.stdout.write(`wrote ${CONFIG_JSON_SCHEMA_FILE}\n`);
