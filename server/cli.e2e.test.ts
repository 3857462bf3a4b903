/**
 * The command line as users run it: `node dist/server/cli.js …` (npm test builds dist first).
 * `start` on a copy of the demo configuration with free ports, `simulate` against it, an alert
 * visible through the API, and a clean SIGTERM shutdown.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { tempDir } from '../test/support/platform.js';
import { CLI, ROOT, runCli } from '../test/support/watchpost-process.js';
import { copyDemoConfig } from '../test/support/demo-config.js';

const VIEWER = 'demo-viewer-token-longgang';

describe.skipIf(!existsSync(CLI))('watchpost CLI', () => {
  const dirs: string[] = [];
  afterAll(() => dirs.forEach((d) => rmSync(d, { recursive: true, force: true })));

  it('check passes the bundled demo configuration', async () => {
    const result = await runCli(['check', '--config', 'config-demo']);
    expect(result.stderr).toBe('');
    expect(result.code).toBe(0);
    expect(result.stdout).toMatch(/config-demo: valid \(8 files; 7 assets, 8 devices, 17 rules, 1 escalations\)/);
  });

  it('check lists every error with file, path and reason, and exits non-zero', async () => {
    const dir = tempDir('bad-config');
    dirs.push(dir);
    writeFileSync(join(dir, 'a.yaml'), 'broker: { port: 70000 }\nrules:\n  - id: r1\n    match: { metric: strain }\n    levels: { red: { above: 1 } }\n    for: soon\n');
    writeFileSync(join(dir, 'b.yaml'), 'devices:\n  - { id: d1, secret: "${WATCHPOST_TEST_UNSET_VAR}", assets: [nope] }\n');
    const result = await runCli(['check', '--config', dir]);
    expect(result.code).toBe(1);
    expect(result.stderr.split('\n').filter(Boolean)).toEqual([
      'a.yaml:1: broker.port: Too big: expected number to be <=65535',
      'a.yaml:6: rules[0] (r1).for: "soon" is not a duration (use 500ms, 30s, 10m, 6h or 1d)',
      'b.yaml:2: devices[0].secret: environment variable WATCHPOST_TEST_UNSET_VAR is not set',
      'b.yaml:2: devices[0] (d1).assets[0]: unknown asset "nope"',
      `4 errors in ${dir}`,
    ]);
  });

  describe('start and simulate on the demo configuration', () => {
    let platform: ChildProcess;
    let logs = '';
    let mqttPort = 0;
    let apiUrl = '';

    beforeAll(async () => {
      const config = tempDir('demo-config');
      const data = tempDir('demo-data');
      dirs.push(config, data);
      copyDemoConfig(config, data);
      platform = spawn(process.execPath, [CLI, 'start', '--config', config], { cwd: ROOT, env: { ...process.env, WATCHPOST_LOG_LEVEL: 'info' } });
      platform.stderr!.on('data', (d: Buffer) => (logs += d.toString()));
      await new Promise<void>((resolveStart, reject) => {
        const timer = setTimeout(() => reject(new Error(`platform did not start: ${logs}`)), 30_000);
        platform.stdout!.on('data', (d: Buffer) => {
          logs += d.toString();
          const started = logs.split('\n').find((l) => l.includes('"msg":"watchpost started"'));
          if (!started) return;
          const line = JSON.parse(started) as { mqtt_port: number; http_port: number };
          mqttPort = line.mqtt_port;
          apiUrl = `http://127.0.0.1:${line.http_port}`;
          clearTimeout(timer);
          resolveStart();
        });
        platform.on('exit', (code) => reject(new Error(`platform exited with ${code}: ${logs}`)));
      });
    });

    afterAll(() => {
      if (platform && platform.exitCode === null) platform.kill('SIGKILL');
    });

    it('simulates every demo asset and an alert becomes visible through the API', async () => {
      const sim = await runCli(['simulate', '--config', 'config-demo', '--url', `mqtt://127.0.0.1:${mqttPort}`, '--duration', '9', '--seed', '7'], { timeoutMs: 60_000 });
      expect(sim.code).toBe(0);
      expect(sim.stdout).toMatch(/0 errors, 0 unacknowledged, 0 rejected by the platform/);

      const auth = { authorization: `Bearer ${VIEWER}` };
      const assets = (await (await fetch(`${apiUrl}/api/v1/assets`, { headers: auth })).json()) as { assets: Array<{ id: string; latest: unknown[] }> };
      expect(assets.assets).toHaveLength(7);
      for (const asset of assets.assets) expect(asset.latest.length, asset.id).toBeGreaterThan(0);

      const alerts = (await (await fetch(`${apiUrl}/api/v1/alerts`, { headers: auth })).json()) as { alerts: Array<{ rule_id: string; asset_id: string; level: string }> };
      expect(alerts.alerts.map((a) => [a.rule_id, a.asset_id, a.level])).toEqual([['hydrant-pressure-low', 'lg-hydrant-002', 'yellow']]);
    });

    it('shuts down cleanly on SIGTERM', async () => {
      const exited = new Promise<number | null>((r) => platform.once('exit', (code) => r(code)));
      platform.kill('SIGTERM');
      expect(await exited).toBe(0);
      expect(logs).toContain('"msg":"watchpost stopped"');
    });
  });
});
