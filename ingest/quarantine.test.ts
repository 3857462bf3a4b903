import { mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { silentLogger } from '../lib/logger.js';
import { QUARANTINE_FILE, QuarantineFile, quarantineFiles } from './quarantine.js';

describe('QuarantineFile', () => {
  let dir: string;
  const files: Array<QuarantineFile<string>> = [];
  beforeEach(() => {
    dir = mkdtempSync(join(tmpdir(), 'watchpost-quarantine-'));
  });
  afterEach(async () => {
    await Promise.all(files.splice(0).map((f) => f.close()));
    rmSync(dir, { recursive: true, force: true });
  });

  function make(options: { maxBytes?: number; keep?: number } = {}) {
    const file = new QuarantineFile<string>({ dir, logger: silentLogger(), describe: (line) => line, now: () => Date.parse('2026-12-01T20:00:00.000Z') }, options);
    files.push(file);
    return file;
  }

  const records = (path: string) =>
    readFileSync(path, 'utf8')
      .split('\n')
      .filter(Boolean)
      .map((l) => JSON.parse(l));

  it('appends one JSON record per point, with time, reason and error, in a 0600 file', async () => {
    const file = make();
    await file.add(['m,a=1 value="x" 1', 'm,a=2 value="y" 2'], 'field_type_conflict', 'HTTP 400: partial write: field type conflict dropped=2');
    await file.add(['bad line'], 'parse_error', "HTTP 400: unable to parse 'bad line'");
    expect(file.location).toBe(join(dir, QUARANTINE_FILE));
    expect(records(file.location)).toEqual([
      { time: '2026-12-01T20:00:00.000Z', reason: 'field_type_conflict', error: 'HTTP 400: partial write: field type conflict dropped=2', point: 'm,a=1 value="x" 1' },
      { time: '2026-12-01T20:00:00.000Z', reason: 'field_type_conflict', error: 'HTTP 400: partial write: field type conflict dropped=2', point: 'm,a=2 value="y" 2' },
      { time: '2026-12-01T20:00:00.000Z', reason: 'parse_error', error: "HTTP 400: unable to parse 'bad line'", point: 'bad line' },
    ]);
    expect(statSync(file.location).mode & 0o777).toBe(0o600);
  });

  it('appends to the file a previous run left, and makes it private', async () => {
    writeFileSync(join(dir, QUARANTINE_FILE), '{"point":"old"}\n', { mode: 0o644 });
    const file = make();
    await file.add(['new'], 'rejected', 'HTTP 400: no');
    expect(records(file.location).map((r) => r.point)).toEqual(['old', 'new']);
    expect(statSync(file.location).mode & 0o777).toBe(0o600);
  });

  it('rotates at maxBytes, keeps `keep` older files and deletes the oldest beyond them', async () => {
    const file = make({ maxBytes: 300, keep: 2 });
    // Each record is about 120 bytes: two fit in 300.
    for (let i = 0; i < 7; i++) await file.add([`point-${i}`], 'rejected', 'HTTP 400: refused');
    const paths = await quarantineFiles(dir);
    expect(paths.map((p) => p.slice(dir.length + 1))).toEqual([QUARANTINE_FILE, `${QUARANTINE_FILE}.1`, `${QUARANTINE_FILE}.2`]);
    expect(paths.map((p) => records(p).map((r) => r.point))).toEqual([['point-6'], ['point-4', 'point-5'], ['point-2', 'point-3']]);
    for (const p of paths) {
      expect(statSync(p).size).toBeLessThanOrEqual(300);
      expect(statSync(p).mode & 0o777).toBe(0o600);
    }
  });

  it('rejects when the file cannot be written, and works again once it can', async () => {
    const file = new QuarantineFile<string>({ dir: join(dir, 'missing'), logger: silentLogger(), describe: (line) => line });
    files.push(file);
    await expect(file.add(['a'], 'rejected', 'HTTP 400')).rejects.toThrow(/ENOENT/);
    const good = make();
    await good.add(['b'], 'rejected', 'HTTP 400');
    expect(records(good.location).map((r) => r.point)).toEqual(['b']);
  });
});
