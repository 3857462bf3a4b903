/**
 * Every scenario through the real platform: the demo configuration on free ports (embedded store,
 * webhook to a local receiver), the scenario compressed with --speed, and then the alerts the API
 * shows must be exactly the scenario's documented ones — same rules, assets, sensors, the levels
 * they were raised through, and open or resolved — for every documented alert whose rule the
 * configuration has. For the scenarios whose alerts come from rules judged on the platform's clock
 * (stale, offline), that clock runs at the simulation's speed while the run is on and stands still
 * after it, so those rules see the silences the scenario makes as they would at --speed 1.
 */
import { rmSync } from 'node:fs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { silentLogger } from '../lib/logger.js';
import type { Level } from '../lib/levels.js';
import { loadConfig } from '../server/config/load.js';
import type { WatchpostConfig } from '../server/config/schema.js';
import { Platform } from '../server/platform.js';
import { tempDir } from '../test/support/platform.js';
import { RATE, RUNS } from '../test/support/scenario-runs.js';
import { startReceiver, type Receiver } from '../test/support/receiver.js';
import { SCENARIOS, raisesMatch } from './scenarios.js';
import { runSimulation, type SimulationSummary } from './simulate.js';

const VIEWER = 'demo-viewer-token-longgang';

interface ApiAlert {
  id: string;
  rule_id: string;
  asset_id: string;
  sensor_id: string;
  level: Level;
  state: string;
}

describe.each(Object.keys(SCENARIOS))('scenario %s through the platform', (name) => {
  const scenario = SCENARIOS[name]!;
  let receiver: Receiver;
  let platform: Platform;
  let dataDir: string;
  let apiUrl: string;
  let config: WatchpostConfig;
  let summary: SimulationSummary;
  /** Statuses the API reported for the scenario's offline device while the run was on, in order. */
  const seenStatus: string[] = [];

  const get = async <T>(path: string): Promise<T> => {
    const res = await fetch(`${apiUrl}${path}`, { headers: { authorization: `Bearer ${VIEWER}` } });
    expect(res.status).toBe(200);
    return (await res.json()) as T;
  };

  beforeAll(async () => {
    receiver = await startReceiver();
    const loaded = loadConfig('config-demo', {});
    if (!loaded.ok) throw new Error('config-demo does not load');
    config = {
      ...loaded.config,
      broker: { ...loaded.config.broker, port: 0 },
      api: { ...loaded.config.api, port: 0 },
      // Listening adapters on free ports too, so demo runs in parallel files do not collide.
      adapters: loaded.config.adapters.map((a) => ('port' in a ? { ...a, port: 0 } : a)),
      storage: { ...loaded.config.storage, data_dir: (dataDir = tempDir(`scenario-${name}`)) },
      channels: loaded.config.channels.map((c) => ({ ...c, url: receiver.url })),
    };
    const run = RUNS[name]!;
    const speed = run.step * RATE;
    const t0 = Date.now();
    let frozen: number | undefined;
    const scaled = scenario.expected.some((e) => e.needs_real_time);
    const clock = { now: () => (scaled ? (frozen ?? t0 + (Date.now() - t0) * speed) : Date.now()) };
    platform = new Platform(config, { logger: silentLogger(), configDir: 'config-demo', clock, ruleTickMs: 20 });
    await platform.start();
    apiUrl = `http://127.0.0.1:${platform.httpPort()}`;
    const outage = scenario.effects.find((e) => e.kind === 'offline');
    const poll = outage
      ? setInterval(() => {
          get<{ devices: Array<{ id: string; status: string }> }>('/api/v1/devices').then(
            (body) => {
              const status = body.devices.find((d) => d.id === outage.device)!.status;
              if (seenStatus.at(-1) !== status) seenStatus.push(status);
            },
            () => undefined,
          );
        }, 100)
      : undefined;
    summary = await runSimulation(config, {
      url: `mqtt://127.0.0.1:${platform.mqttPort()}`,
      scenario: name,
      rate: RATE,
      speed,
      duration: run.duration,
      logger: silentLogger(),
    }).finally(() => {
      clearInterval(poll);
      frozen = clock.now();
    });
  }, 120_000);

  afterAll(async () => {
    await platform?.stop();
    await receiver?.close();
    if (dataDir) rmSync(dataDir, { recursive: true, force: true });
  });

  it('has every reading accepted and acknowledged', () => {
    expect(summary.sent).toBeGreaterThan(0);
    expect(summary.rejected).toEqual([]);
    expect(summary.errors).toBe(0);
    expect(summary.unsent).toBe(0);
    expect(summary.acknowledged).toBe(summary.sent);
  });

  it.runIf(scenario.effects.some((e) => e.kind === 'offline'))('takes the device offline (last will) and back online', () => {
    expect(seenStatus.filter((s) => s !== 'unknown').slice(0, 3)).toEqual(['online', 'offline', 'online']);
  });

  it('raises exactly the documented alerts', async () => {
    const ruleIds = new Set(config.rules.map((r) => r.id));
    const expected = scenario.expected.filter((e) => ruleIds.has(e.rule_id));
    const keyOf = (e: { rule_id: string; asset_id: string; sensor_id: string }) => `${e.rule_id} ${e.asset_id}/${e.sensor_id}`;
    const { alerts } = await get<{ alerts: ApiAlert[] }>('/api/v1/alerts?limit=1000');
    // oldest first
    const got = await Promise.all(
      alerts.reverse().map(async (a) => {
        const detail = await get<{ timeline: Array<{ kind: string; type: string; level?: Level }> }>(`/api/v1/alerts/${a.id}`);
        const raises = detail.timeline.filter((t) => t.kind === 'event' && (t.type === 'firing' || t.type === 'level_raised')).map((t) => t.level!);
        return { key: keyOf(a), raises, open: a.state !== 'resolved' };
      }),
    );
    const story = expected.filter((e) => !e.noise);
    const noisy = new Set(expected.filter((e) => e.noise).map(keyOf));
    const describe = (g: (typeof got)[number]) => `${g.key} ${g.raises.join('→')} ${g.open ? 'open' : 'resolved'}`;
    // every alert the story raises is the newest of its key ...
    for (const e of story) {
      const alert = got.filter((g) => g.key === keyOf(e)).at(-1);
      expect(alert, `${keyOf(e)} not raised; got ${got.map(describe).join('; ')}`).toBeDefined();
      expect(raisesMatch(alert!.raises, e.levels), `${describe(alert!)}, documented ${e.levels.join(' → ')}`).toBe(true);
      expect(alert!.open, `${keyOf(e)} open`).toBe(e.open);
    }
    // ... and every other alert is a documented noise alert: yellow, resolved
    const storyNewest = new Set(story.map((e) => got.filter((g) => g.key === keyOf(e)).at(-1)));
    const others = got.filter((g) => !storyNewest.has(g));
    for (const g of others) {
      expect(noisy.has(g.key) && !g.open && g.raises.every((l) => l === 'yellow'), `unexpected alert ${describe(g)}`).toBe(true);
    }
  });
});
