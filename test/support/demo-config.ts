/**
 * A copy of the demo configuration for a test: every listener on a free port (MQTT, HTTP, the
 * GB/T 26875.3 adapter) and `data_dir` in the given folder, so tests that run the demo can run
 * side by side.
 */
import { cpSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { ROOT } from './watchpost-process.js';

/** Listener ports the demo files name, each replaced by 0. */
const DEMO_PORTS: ReadonlyArray<[file: string, port: number]> = [
  ['platform.yaml', 1883],
  ['platform.yaml', 8080],
  ['gb26875.yaml', 9026],
];

/** Copies config-demo into `configDir`; `storage` (optional) is appended to the storage section after data_dir. */
export function copyDemoConfig(configDir: string, dataDir: string, storage = ''): void {
  cpSync(join(ROOT, 'config-demo'), configDir, { recursive: true });
  for (const [file, port] of DEMO_PORTS) {
    const path = join(configDir, file);
    const text = readFileSync(path, 'utf8');
    const freed = text.replace(new RegExp(`port: ${port}\\b`), 'port: 0');
    if (freed === text) throw new Error(`config-demo/${file} no longer names port ${port}: update test/support/demo-config.ts`);
    writeFileSync(path, freed);
  }
  const platformPath = join(configDir, 'platform.yaml');
  const platform = readFileSync(platformPath, 'utf8');
  const moved = platform.replace(/data_dir: \.\/data/, `data_dir: ${dataDir}${storage}`);
  if (moved === platform) throw new Error('config-demo/platform.yaml no longer has data_dir: ./data: update test/support/demo-config.ts');
  writeFileSync(platformPath, moved);
}
