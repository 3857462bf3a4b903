import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { isDeepStrictEqual } from 'node:util';
import { afterEach, describe, expect, it } from 'vitest';
import { loadConfig, type LoadResult } from './load.js';

// The worker runs compiled JavaScript, so the built module is tested (npm test builds first).
const BUILT = new URL('../../dist/server/config/load-isolated.js', import.meta.url).href;
const DEMO = fileURLToPath(new URL('../../config-demo', import.meta.url));
const { loadConfigIsolated } = (await import(BUILT)) as { loadConfigIsolated: (dir: string, env?: NodeJS.ProcessEnv) => Promise<LoadResult> };

describe('loadConfigIsolated', () => {
  const dirs: string[] = [];
  afterEach(() => dirs.splice(0).forEach((d) => rmSync(d, { recursive: true, force: true })));

  it('returns exactly what loadConfig returns for a valid directory', async () => {
    const isolated = await loadConfigIsolated(DEMO);
    expect(isolated.ok).toBe(true);
    // Deep equality including prototypes: the copy from the worker is the same plain data.
    expect(isDeepStrictEqual(isolated, loadConfig(DEMO))).toBe(true);
  });

  it('returns the errors of an invalid directory, with environment variables from the given env', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'watchpost-isolated-'));
    dirs.push(dir);
    writeFileSync(join(dir, 'a.yaml'), 'broker: { port: 70000 }\ndevices:\n  - { id: d1, secret: "${WATCHPOST_ISOLATED_VAR}", assets: [] }\n');
    const result = await loadConfigIsolated(dir, { WATCHPOST_ISOLATED_VAR: 'from-env-0001' });
    expect(result.ok).toBe(false);
    expect(result).toEqual(loadConfig(dir, { WATCHPOST_ISOLATED_VAR: 'from-env-0001' }));
    if (!result.ok) expect(result.errors.map((e) => `${e.file}: ${e.path}`)).toEqual(['a.yaml: broker.port']);
  });
});
