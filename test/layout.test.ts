/**
 * The layout the parts keep: the build (tsconfig.build.json) compiles no test code, and the device
 * simulators and the dashboards use the parts below them, never the server that composes them.
 */
import { execFileSync } from 'node:child_process';
import { readdirSync, readFileSync } from 'node:fs';
import { join, relative, resolve } from 'node:path';
import { describe, expect, it } from 'vitest';

const ROOT = resolve(import.meta.dirname, '..');

/** Non-test TypeScript sources under `dir`, relative to the root. */
function sources(dir: string): string[] {
  return readdirSync(join(ROOT, dir), { recursive: true, encoding: 'utf8' })
    .filter((f) => f.endsWith('.ts') && !f.endsWith('.test.ts'))
    .map((f) => join(dir, f));
}

describe('layout', () => {
  it('the build compiles no file under test/ and no test file', () => {
    const tsc = join(ROOT, 'node_modules', 'typescript', 'bin', 'tsc');
    const listed = execFileSync(process.execPath, [tsc, '-p', 'tsconfig.build.json', '--listFilesOnly'], { cwd: ROOT, encoding: 'utf8' })
      .split('\n')
      .filter((f) => f !== '' && !f.includes('/node_modules/'))
      .map((f) => relative(ROOT, f));
    expect(listed).toContain('server/cli.ts');
    expect(listed.filter((f) => f.startsWith('test/') || f.endsWith('.test.ts'))).toEqual([]);
  }, 60_000);

  it('simulators/ and dashboards/ import nothing from server/ or test/', () => {
    const upward = [...sources('simulators'), ...sources('dashboards')].flatMap((file) =>
      [...readFileSync(join(ROOT, file), 'utf8').matchAll(/from '(\.\.\/(?:server|test)\/[^']*)'/g)].map((m) => `${file}: ${m[1]}`),
    );
    expect(upward).toEqual([]);
  });
});
