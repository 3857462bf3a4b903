/**
 * What the command line tells about itself: `--version`, `--help`, `<command> --help`, and
 * clear errors for unknown commands and options (run as users run it: dist/server/cli.js).
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { CLI, ROOT, cliBuilt, runCli } from '../test/support/watchpost-process.js';

const COMMANDS = ['start', 'simulate', 'check', 'replay', 'hash-secret', 'receive', 'report'];

describe.skipIf(!cliBuilt)('watchpost --version and --help', () => {
  it('--version prints the package version', async () => {
    const { version } = JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8')) as { version: string };
    expect(await runCli(['--version'])).toEqual({ code: 0, stdout: `${version}\n`, stderr: '' });
  });

  it('--help lists every command with a summary', async () => {
    const result = await runCli(['--help']);
    expect(result.code).toBe(0);
    expect(result.stderr).toBe('');
    const listed = [...result.stdout.matchAll(/^ {2}([a-z-]+) {2,}\S/gm)].map((m) => m[1]);
    expect(listed).toEqual(expect.arrayContaining(COMMANDS));
    expect(result.stdout).toContain('watchpost <command> --help');
  });

  it.each(COMMANDS)('%s --help prints its usage and options and exits 0', async (command) => {
    const result = await runCli([command, '--help']);
    expect(result.stderr).toBe('');
    expect(result.code).toBe(0);
    expect(result.stdout.startsWith(`usage: watchpost ${command}`)).toBe(true);
    expect(result.stdout).toContain('-h, --help');
    // `help <command>` says the same.
    expect((await runCli(['help', command])).stdout).toBe(result.stdout);
  });

  it('documents every option a command accepts, and replay --config as optional', async () => {
    const help = (await runCli(['replay', '--help'])).stdout;
    for (const option of ['--config DIR', '--input FILE', '--from-influx', '--start TIME', '--end TIME', '--tz', '--json']) expect(help).toContain(option);
    expect(help).toMatch(/^usage: watchpost replay \[--config DIR\] --input FILE/);
    const simulate = (await runCli(['simulate', '--help'])).stdout;
    for (const option of ['--config', '--url', '--scenario', '--devices', '--connections', '--rate', '--speed', '--duration', '--start', '--seed'])
      expect(simulate).toContain(`  ${option} `);
  });

  it('names an unknown option and points to the command help', async () => {
    expect(await runCli(['start', '--confg', 'x'])).toEqual({ code: 2, stdout: '', stderr: 'watchpost start: unknown option --confg (see: watchpost start --help)\n' });
    // An option of another command is unknown here too.
    expect((await runCli(['check', '--seed', '3'])).stderr).toBe('watchpost check: unknown option --seed (see: watchpost check --help)\n');
  });

  it('says which option lacks a value, and refuses stray arguments', async () => {
    expect(await runCli(['check', '--config'])).toEqual({ code: 2, stdout: '', stderr: 'watchpost check: option --config needs a value (see: watchpost check --help)\n' });
    expect(await runCli(['check', 'config-demo'])).toEqual({ code: 2, stdout: '', stderr: 'watchpost check: unexpected argument config-demo (see: watchpost check --help)\n' });
  });

  it('refuses an unknown command, and no command at all', async () => {
    expect(await runCli(['strat'])).toEqual({ code: 2, stdout: '', stderr: 'watchpost: unknown command "strat" (see: watchpost --help)\n' });
    expect(await runCli(['--config', 'x', 'start'])).toEqual({ code: 2, stdout: '', stderr: 'watchpost: unknown option --config; options follow the command (see: watchpost --help)\n' });
    const none = await runCli([]);
    expect(none.code).toBe(2);
    expect(none.stderr).toMatch(/^usage: watchpost <command>/);
  });

  it('the built file is the package bin', () => {
    const pkg = JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8')) as { bin: Record<string, string> };
    expect(join(ROOT, pkg.bin.watchpost!)).toBe(CLI);
  });
});
