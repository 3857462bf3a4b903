/** `watchpost import` as users run it (the built CLI): exit codes, the report, --dry-run, --help. */
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parse, stringify } from 'yaml';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { cliBuilt, runCli } from '../test/support/watchpost-process.js';

let dir: string;
beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), 'watchpost-import-cli-'));
  writeFileSync(join(dir, 'watchpost.yaml'), stringify({ storage: { data_dir: join(dir, 'data') } }));
});
afterEach(() => rmSync(dir, { recursive: true, force: true }));

describe.skipIf(!cliBuilt)('watchpost import', () => {
  it('imports, printing generated secrets once; --dry-run writes nothing; a bad row exits 1 naming line and column', async () => {
    const csv = join(dir, 'inventory.csv');
    writeFileSync(csv, 'kind,id,type,name,street,sensors,assets\nasset,lg-gas-001,gas,燃气井 1,龙城街道,ch4:gas,\ndevice,dau-gas-001,,,,,lg-gas-001\n');
    const dry = await runCli(['import', '--config', dir, csv, '--dry-run']);
    expect(dry.code).toBe(0);
    expect(dry.stderr).toMatch(/^dry run: 1 assets added, 0 replaced; 1 devices added, 0 replaced; nothing written \(\d+ ms\)\n$/);
    expect(existsSync(join(dir, 'registry.yaml'))).toBe(false);

    const run = await runCli(['import', '--config', dir, csv]);
    expect(run.code).toBe(0);
    const [head, line, ...rest] = run.stdout.split('\n');
    expect([head, rest]).toEqual(['device_id,secret', ['']]);
    expect(line).toMatch(/^dau-gas-001,[A-Za-z0-9_-]{43}$/);
    const registry = readFileSync(join(dir, 'registry.yaml'), 'utf8');
    expect(registry).not.toContain(line!.split(',')[1]);
    expect(parse(registry).devices[0]).toEqual({ id: 'dau-gas-001', assets: ['lg-gas-001'], secret_hash: expect.stringMatching(/^scrypt\$/) });
    expect((await runCli(['check', '--config', dir])).code).toBe(0);

    writeFileSync(csv, 'kind,id,type,name,street\nasset,ok-1,gas,a,b\nasset,BAD ID,gas,a,b\n');
    const bad = await runCli(['import', '--config', dir, csv]);
    expect(bad.code).toBe(1);
    expect(bad.stderr).toBe(`${csv}:3: column 2 (id): must be 1-64 characters of A-Z a-z 0-9 _ . -\n1 error; nothing written\n`);
    expect(readFileSync(join(dir, 'registry.yaml'), 'utf8')).toBe(registry);
  }, 60_000);

  it('--help names the columns document and --dry-run', async () => {
    const help = await runCli(['import', '--help']);
    expect(help.code).toBe(0);
    expect(help.stdout).toContain('usage: watchpost import [--config DIR] FILE.csv [--dry-run]');
    expect(help.stdout).toContain('docs/registry.md');
  });
});
