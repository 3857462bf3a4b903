/**
 * Keeps `npm run bench -- adapters` working: it runs from the build at a tiny size and must exit 0
 * and end with its JSON line of figures. Figures are not judged (benchmarks are not tests), except
 * what holds at any size: no confirmed or acknowledged reading lost, nothing denied, every fire
 * alarm timed, a ratio to the ceiling for each adapter.
 */
import { spawn } from 'node:child_process';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { influxdAvailable } from './support/influxd.js';
import { ROOT } from '../test/support/watchpost-process.js';

const BENCH = join(ROOT, 'dist', 'bench', 'index.js');

function runAdapters(env: Record<string, string>): Promise<Record<string, unknown>> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [BENCH, 'adapters'], { env: { ...process.env, ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    let err = '';
    child.stdout.on('data', (d: Buffer) => (out += d.toString()));
    child.stderr.on('data', (d: Buffer) => (err = (err + d.toString()).slice(-4000)));
    child.once('exit', (code) => {
      if (code !== 0) return reject(new Error(`bench adapters exited with ${code}: ${err}\n${out.slice(-2000)}`));
      const last = out.trim().split('\n').pop() ?? '';
      try {
        resolve(JSON.parse(last) as Record<string, unknown>);
      } catch {
        reject(new Error(`bench adapters did not end with a JSON line: ${out.slice(-2000)}`));
      }
    });
  });
}

describe.skipIf(!influxdAvailable)('the adapters benchmark at a tiny size', () => {
  it('reports every adapter with nothing lost, the fire alarms timed and the ratio to the ceiling', async () => {
    const f = await runAdapters({ DURATION_S: '2', UITDS: '2', EDGES: '2', DEVICES: '2', WINDOW: '2', OBJECTS: '2', INFLIGHT: '2', WORKERS: '1', BATCH: '10' });
    expect(f).toMatchObject({
      scenario: 'adapters',
      gb26875_devices: 2,
      gb26875_readings_lost: 0,
      gb26875_frames_denied: 0,
      gb26875_errors: 0,
      sparkplug_readings_lost: 0,
      http_readings_lost: 0,
      http_errors: 0,
    });
    for (const adapter of ['gb26875', 'sparkplug', 'http']) {
      expect(f[`${adapter}_readings_acked`]).toBeGreaterThan(0);
      expect(f[`${adapter}_readings_stored`]).toBe(f[`${adapter}_readings_acked`]);
      expect(f[`${adapter}_ratio_to_ceiling`]).toBeGreaterThan(0);
    }
    // Frames alternate 2 analogue values and 2 component statuses (8 readings): 5 readings a frame on average, give or take the last frame.
    expect(Math.abs((f.gb26875_readings_acked as number) - 5 * (f.gb26875_frames_confirmed as number))).toBeLessThanOrEqual(3 * 2);
    expect(f.fire_alarms).toBeGreaterThan(0);
    expect(f.fire_alarm_p50_ms).toBeGreaterThan(0);
    expect(f.ceiling_readings_per_s).toBeGreaterThan(0);
  }, 240_000);
});
