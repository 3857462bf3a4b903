/**
 * `watchpost replay` as users run it (node dist/server/cli.js): from a JSONL file, from a time
 * range in a real InfluxDB 1.x, and from the embedded store written by a running platform; and
 * SIGHUP reloading the rules of `watchpost start`.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { cpSync, existsSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parse, stringify } from 'yaml';
import { waitFor } from '../test/support/binaries.js';
import { influxdAvailable, startInfluxd, type Influxd } from '../test/support/influxd.js';
import { baseConfig, DEVICE_SECRET, startPlatform, tempDir } from '../test/support/platform.js';
import { CLI, ROOT, runCli } from '../test/support/watchpost-process.js';
import { copyDemoConfig } from '../test/support/demo-config.js';

/** Rules in the YAML files of a configuration directory, counted from the files themselves. */
function countDemoRules(dir: string): number {
  return readdirSync(dir)
    .filter((f) => f.endsWith('.yaml'))
    .reduce((n, f) => n + ((parse(readFileSync(join(dir, f), 'utf8')) as { rules?: unknown[] } | null)?.rules ?? []).length, 0);
}

const T0 = Date.parse('2025-06-01T00:00:00+08:00');

/** Hydrant hp-03 sagging below 0.25 and 0.14 MPa and recovering, every 5 s. */
function hydrantSag(): Array<{ ts: number; value: number }> {
  const p = (s: number) => (s < 60 ? 0.32 : s < 300 ? Math.max(0.1, 0.32 - 0.001 * (s - 60)) : Math.min(0.32, 0.1 + 0.004 * (s - 300)));
  return Array.from({ length: 90 }, (_, i) => ({ ts: T0 + i * 5000, value: Number(p(i * 5).toFixed(3)) }));
}

const HYDRANT_TIMELINE = [
  'time                  event     alert  level          rule                  asset/sensor          metric            value     threshold  note',
  '2025-05-31T16:02:20Z  firing    #1     yellow         hydrant-pressure-low  lg-hydrant-001/hp-03  hydrant_pressure  0.24 MPa  0.25 MPa',
  '2025-05-31T16:03:10Z  raised    #1     yellow→orange  hydrant-pressure-low  lg-hydrant-001/hp-03  hydrant_pressure  0.19 MPa  0.2 MPa',
  '2025-05-31T16:04:10Z  raised    #1     orange→red     hydrant-pressure-low  lg-hydrant-001/hp-03  hydrant_pressure  0.13 MPa  0.14 MPa',
  // the way back with 0.02 MPa hysteresis: red is left at 0.16, orange at 0.22, yellow at 0.27
  '2025-05-31T16:05:15Z  dropped   #1     red→orange     hydrant-pressure-low  lg-hydrant-001/hp-03  hydrant_pressure  0.16 MPa  0.2 MPa',
  '2025-05-31T16:05:30Z  dropped   #1     orange→yellow  hydrant-pressure-low  lg-hydrant-001/hp-03  hydrant_pressure  0.22 MPa  0.25 MPa',
  '2025-05-31T16:05:45Z  resolved  #1     yellow         hydrant-pressure-low  lg-hydrant-001/hp-03  hydrant_pressure  0.28 MPa  0.25 MPa',
];

describe.skipIf(!existsSync(CLI))('watchpost replay', () => {
  const dirs: string[] = [];
  afterAll(() => dirs.forEach((d) => rmSync(d, { recursive: true, force: true })));

  it('prints the same timeline for the same JSONL input, on stdin too, and lists rejected lines on stderr', async () => {
    const dir = tempDir('replay-input');
    dirs.push(dir);
    const lines = hydrantSag().map((r) => JSON.stringify({ asset_id: 'lg-hydrant-001', sensor_id: 'hp-03', ts: r.ts, values: { hydrant_pressure: r.value } }));
    lines.splice(3, 0, JSON.stringify({ asset_id: 'lg-hydrant-001', sensor_id: 'hp-99', ts: T0, values: { hydrant_pressure: 0.3 } }));
    const file = join(dir, 'hydrant.jsonl');
    writeFileSync(file, `${lines.join('\n')}\n`);
    const first = await runCli(['replay', '--config', 'config-demo', '--input', file]);
    expect(first.stderr).toBe('line 4: unknown_sensor: sensor "hp-99" is not configured on asset "lg-hydrant-001"\n');
    expect(first.code).toBe(0);
    expect(first.stdout.split('\n')).toEqual([
      ...HYDRANT_TIMELINE,
      '',
      '90 readings (1 input line rejected), 2025-05-31T16:00:00Z .. 2025-05-31T16:07:25Z',
      '1 alert, 0 still open at the end',
      '',
    ]);
    const again = await runCli(['replay', '--config', 'config-demo', '--input', '-'], { input: lines.join('\n') });
    expect(again.stdout).toBe(first.stdout);
    const json = await runCli(['replay', '--config', 'config-demo', '--input', file, '--json']);
    expect(JSON.parse(json.stdout).alerts).toEqual([
      {
        alert: 1,
        rule_id: 'hydrant-pressure-low',
        asset_id: 'lg-hydrant-001',
        sensor_id: 'hp-03',
        fired_at: '2025-05-31T16:02:20Z',
        resolved_at: '2025-05-31T16:05:45Z',
        highest_level: 'red',
        events: 6,
      },
    ]);
  });

  it('refuses bad usage with exit 2', async () => {
    expect((await runCli(['replay', '--config', 'config-demo'])).code).toBe(2);
    const noEnd = await runCli(['replay', '--config', 'config-demo', '--from-influx', '--start', '2025-06-01T00:00:00Z']);
    expect([noEnd.code, noEnd.stderr]).toEqual([2, '--from-influx needs --start and --end\n']);
    const badTz = await runCli(['replay', '--config', 'config-demo', '--input', '-', '--tz', 'CST']);
    expect([badTz.code, badTz.stderr]).toEqual([2, '--tz must be Z or an offset such as +08:00 (got "CST")\n']);
  });

  describe.skipIf(!influxdAvailable)('--from-influx against InfluxDB 1.x', () => {
    let influxd: Influxd;
    beforeAll(async () => {
      influxd = await startInfluxd({ database: 'telemetry' });
    });
    afterAll(async () => influxd?.stop());

    it('replays a time range read back from InfluxDB', async () => {
      const body = hydrantSag()
        .map((r) => `hydrant_pressure,asset_id=lg-hydrant-001,asset_type=fire,sensor_id=hp-03,street=龙岗街道 value=${r.value} ${r.ts}`)
        .concat([`strain,asset_id=lg-bridge-001,asset_type=bridge,sensor_id=strain-01,street=龙城街道 value=120 ${T0}`])
        .join('\n');
      const res = await fetch(`${influxd.url}/write?db=telemetry&precision=ms`, { method: 'POST', body });
      expect(res.status).toBe(204);
      const dir = tempDir('replay-influx');
      dirs.push(dir);
      cpSync(join(ROOT, 'config-demo'), dir, { recursive: true });
      const platform = parse(readFileSync(join(dir, 'platform.yaml'), 'utf8')) as Record<string, Record<string, unknown>>;
      platform.storage = { data_dir: join(dir, 'data'), influx: { url: influxd.url, version: 1, database: 'telemetry' } };
      writeFileSync(join(dir, 'platform.yaml'), stringify(platform));
      // [start, end): the last two hydrant readings (16:07:20, 16:07:25) are after the end.
      const result = await runCli(['replay', '--config', dir, '--from-influx', '--start', '2025-05-31T16:00:00Z', '--end', '2025-05-31T16:07:20Z']);
      expect(result.stderr).toBe('');
      expect(result.stdout.split('\n')).toEqual([
        // The bridge reading of 16:00 falls silent: stale at 16:10 is after the end, so not shown.
        ...HYDRANT_TIMELINE,
        '',
        '89 readings, 2025-05-31T16:00:00Z .. 2025-05-31T16:07:20Z',
        '1 alert, 0 still open at the end',
        '',
      ]);
    });
  });

  it('--from-influx without an influx section replays the embedded store a platform wrote', async () => {
    const dataDir = tempDir('replay-embedded-data');
    dirs.push(dataDir);
    const config = baseConfig({ webhookUrl: 'http://127.0.0.1:9/unused', dataDir });
    const p = await startPlatform(config);
    const configDir = tempDir('replay-embedded-config');
    dirs.push(configDir);
    writeFileSync(join(configDir, 'watchpost.yaml'), readFileSync(join(p.configDir, 'watchpost.yaml')));
    const device = await p.connect('dau-bridge-001', DEVICE_SECRET);
    const strain = [150, 210, 320, 305, 150].map((v, i) => ({ ts: T0 + i * 60_000, values: { strain: v } }));
    await device.publishAsync('telemetry/lg-bridge-001/strain-01', JSON.stringify(strain), { qos: 1 });
    await waitFor('the live alert', async () => ((await p.api('GET', '/api/v1/alerts?state=resolved')).body.alerts.length === 1 ? true : undefined));
    await p.stop(); // flushes the store
    const result = await runCli(['replay', '--config', configDir, '--from-influx', '--start', String(T0), '--end', String(T0 + 3_600_000)]);
    expect(result.stderr).toBe('');
    expect(result.stdout.split('\n')).toEqual([
      'time                  event     alert  level       rule           asset/sensor             metric  value   threshold  note',
      '2025-05-31T16:01:00Z  firing    #1     yellow      bridge-strain  lg-bridge-001/strain-01  strain  210 µε  200 µε',
      '2025-05-31T16:02:00Z  raised    #1     yellow→red  bridge-strain  lg-bridge-001/strain-01  strain  320 µε  300 µε',
      '2025-05-31T16:04:00Z  resolved  #1     red         bridge-strain  lg-bridge-001/strain-01  strain  150 µε  300 µε',
      '',
      '5 readings, 2025-05-31T16:00:00Z .. 2025-05-31T17:00:00Z',
      '1 alert, 0 still open at the end',
      '',
    ]);
  });
});

describe.skipIf(!existsSync(CLI))('watchpost start: SIGHUP reloads the rules', () => {
  let platform: ChildProcess | undefined;
  const dirs: string[] = [];
  afterAll(() => {
    if (platform && platform.exitCode === null) platform.kill('SIGKILL');
    dirs.forEach((d) => rmSync(d, { recursive: true, force: true }));
  });

  it('an invalid edit is refused (by the watcher, then by SIGHUP) and a valid one applied', async () => {
    const config = tempDir('sighup-config');
    const data = tempDir('sighup-data');
    dirs.push(config, data);
    copyDemoConfig(config, data);
    const proc = spawn(process.execPath, [CLI, 'start', '--config', config], { cwd: ROOT, env: { ...process.env, WATCHPOST_LOG_LEVEL: 'info' } });
    platform = proc;
    let logs = '';
    proc.stdout.on('data', (d: Buffer) => (logs += d.toString()));
    proc.stderr.on('data', (d: Buffer) => (logs += d.toString()));
    const started = await waitFor('watchpost started', async () => logs.split('\n').find((l) => l.includes('"msg":"watchpost started"')), 30_000);
    const apiUrl = `http://127.0.0.1:${(JSON.parse(started) as { http_port: number }).http_port}`;
    const rules = async () =>
      (await (await fetch(`${apiUrl}/api/v1/rules`, { headers: { authorization: 'Bearer demo-viewer-token-longgang' } })).json()) as {
        rules: Array<{ id: string }>;
        error: { at: string; trigger: string; errors: Array<{ path: string; message: string }> } | null;
      };
    // Every rule of the demo's files is in force.
    const demoRules = (await rules()).rules.length;
    expect(demoRules).toBeGreaterThan(1);
    expect(demoRules).toBe(countDemoRules(config));

    const rulesFile = join(config, 'rules.yaml');
    const original = readFileSync(rulesFile, 'utf8');
    const edited = original.replace('    stale: 10m\n', '    stale: ten minutes\n');
    writeFileSync(rulesFile, edited);
    const editedLine = edited.split('\n').indexOf('    stale: ten minutes') + 1;
    const byFile = await waitFor('refused by the watcher', async () => {
      const r = await rules();
      return r.error?.trigger === 'file' ? r.error : undefined;
    });
    expect(byFile.errors).toEqual([
      { file: 'rules.yaml', line: editedLine, path: 'rules[14] (sensor-silent).stale', message: '"ten minutes" is not a duration (use 500ms, 30s, 10m, 6h or 1d)' },
    ]);
    proc.kill('SIGHUP');
    await waitFor('refused on SIGHUP', async () => ((await rules()).error?.trigger === 'signal' ? true : undefined));
    expect((await rules()).rules).toHaveLength(demoRules);

    const doc = parse(original) as { rules: Array<{ id: string }> };
    writeFileSync(rulesFile, stringify({ rules: doc.rules.filter((r) => r.id !== 'dau-offline') }));
    proc.kill('SIGHUP');
    await waitFor('reloaded', async () => {
      const r = await rules();
      return r.error === null && r.rules.length === demoRules - 1 ? true : undefined;
    });
    await waitFor('the reload logged', async () => (logs.includes('"msg":"configuration reloaded"') ? true : undefined));

    const exited = new Promise<number | null>((r) => proc.once('exit', (code) => r(code)));
    proc.kill('SIGTERM');
    expect(await exited).toBe(0);
  });
});
