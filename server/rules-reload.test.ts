import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { stringify } from 'yaml';
import { silentLogger } from '../lib/logger.js';
import { RuleRunner } from '../rules/rule-runner.js';
import type { RuleEvent } from '../rules/types.js';
import { loadConfig } from './config/load.js';
import { ConfigReloader } from './config-reload.js';
import { resolveAfterReload, type ReloadAlertsPort } from './rules-reload.js';

const dirs: string[] = [];
afterEach(() => dirs.splice(0).forEach((d) => rmSync(d, { recursive: true, force: true })));

const BASE = {
  assets: [{ id: 'a1', type: 'bridge', name: '桥', street: '龙城街道' }],
  devices: [{ id: 'd1', secret: 'secret-0001', assets: ['a1'] }],
  channels: [{ id: 'hook', type: 'webhook', url: 'http://127.0.0.1:9/x' }],
  escalations: [{ id: 'duty', tiers: [{ after: '0s', notify: ['hook'] }] }],
  rules: [
    { id: 'strain', match: { metric: 'strain' }, levels: { red: { above: 300 } }, escalation: 'duty' },
    { id: 'silent', stale: '10m', level: 'yellow' },
  ],
};

function setup(config: object = BASE) {
  const dir = mkdtempSync(join(tmpdir(), 'watchpost-reload-'));
  dirs.push(dir);
  const write = (c: object) => writeFileSync(join(dir, 'watchpost.yaml'), stringify(c));
  write(config);
  const loaded = loadConfig(dir, {});
  if (!loaded.ok) throw new Error(JSON.stringify(loaded.errors));
  const runner = new RuleRunner(loaded.config.rules);
  const reloads: string[] = [];
  let current = loaded.config;
  const reloader = new ConfigReloader(
    {
      configDir: dir,
      runner,
      clock: { now: () => 1_000 },
      logger: silentLogger(),
      current: () => current,
      apply: (next, changes, trigger) => {
        current = next;
        reloads.push(`${trigger}: ${JSON.stringify(changes)}`);
      },
      load: (d) => loadConfig(d, {}),
    },
    { watch: false },
  );
  return { dir, write, runner, reloader, reloads, current: () => current };
}

describe('ConfigReloader', () => {
  it('applies rules that name escalations, assets and devices added in the same reload', () => {
    const { write, reloader, runner, current } = setup();
    write({
      ...BASE,
      assets: [...BASE.assets, { id: 'a2', type: 'slope', name: '坡', street: '坂田街道' }],
      escalations: [...BASE.escalations, { id: 'new-duty', tiers: [{ after: '0s', notify: ['hook'] }] }],
      rules: [
        { ...BASE.rules[0], escalation: { yellow: 'duty', red: 'new-duty' } },
        { id: 'a2-strain', match: { asset_id: 'a2', metric: 'strain' }, levels: { red: { above: 1 } } },
      ],
    });
    expect(reloader.reload('api')).toMatchObject({
      ok: true,
      changed: true,
      changes: { sections: ['assets', 'escalations', 'rules'], restartNeeded: [], assets: { added: ['a2'], removed: [], changed: [] } },
    });
    expect(runner.configs.map((r) => r.id)).toEqual(['strain', 'a2-strain']);
    expect(current().escalations.map((e) => e.id)).toEqual(['duty', 'new-duty']);
  });

  it('refuses an invalid configuration with every error and keeps the one in force', () => {
    const { write, reloader, runner, reloads } = setup();
    write({ ...BASE, devices: [{ id: 'd1', secret: 'secret-0001', assets: ['nowhere'] }], rules: [{ ...BASE.rules[0], escalation: 'nobody' }] });
    const outcome = reloader.reload('signal');
    expect(outcome.ok).toBe(false);
    if (outcome.ok) return;
    expect(outcome.errors.map((e) => `${e.path}: ${e.message}`)).toEqual(['devices[0] (d1).assets[0]: unknown asset "nowhere"', 'rules[0] (strain).escalation: unknown escalation "nobody"']);
    expect(runner.configs.map((r) => r.id)).toEqual(['strain', 'silent']);
    expect(reloads).toEqual([]);
    expect(reloader.view().error).toMatchObject({ trigger: 'signal', message: expect.stringMatching(/^2 errors in .*; the configuration in force is unchanged$/) });
  });

  it('applies a valid change once, reports it, and treats an identical file as no change', () => {
    const { write, reloader, reloads } = setup();
    write({ ...BASE, rules: [BASE.rules[0]] });
    expect(reloader.reload('signal')).toMatchObject({ ok: true, changed: true, rules: 1, changes: { rules: { removed: ['silent'] } } });
    expect(reloads).toEqual([
      'signal: {"sections":["rules"],"restartNeeded":[],"assets":{"added":[],"removed":[],"changed":[]},"devices":{"added":[],"removed":[],"changed":[]},"rules":{"added":[],"removed":["silent"],"disabled":[],"changed":[],"updated":[],"unmatched":[]}}',
    ]);
    expect(reloader.reload('file')).toMatchObject({ ok: true, changed: false });
    expect(reloads).toHaveLength(1);
    expect(reloader.view()).toMatchObject({ error: null, last_reload: { trigger: 'file', ok: true }, loaded_at: '1970-01-01T00:00:01.000Z' });
  });
});

describe('resolveAfterReload', () => {
  it('resolves alerts of removed, disabled and changed rules with the reason, and clears uncovered ones', () => {
    const calls: string[] = [];
    const handled: RuleEvent[] = [];
    const alerts: ReloadAlertsPort = {
      resolveForRemovedRule: (id, o) => {
        calls.push(`${id} ${o?.reason}: ${o?.note}`);
        return 1;
      },
      openAlerts: () => [{ rule_id: 'narrowed', asset_id: 'a1', sensor_id: 's1', metric: 'strain', value: 250, threshold: 200 }],
      handle: (events) => handled.push(...events),
    };
    const n = resolveAfterReload(
      alerts,
      { added: [], removed: ['gone'], disabled: ['off'], changed: ['kind'], updated: ['narrowed'], unmatched: [{ ruleId: 'narrowed', assetId: 'a1', sensorId: 's1', level: 'yellow' }] },
      'api',
      5_000,
    );
    expect(n).toBe(4);
    expect(calls).toEqual([
      'gone rule_removed: rule "gone" was removed from the configuration (API reload)',
      'off rule_disabled: rule "off" was disabled (API reload)',
      'kind rule_changed: rule "kind" changed its kind, signal, level or conditions and is evaluated afresh (API reload)',
    ]);
    expect(handled).toEqual([{ ruleId: 'narrowed', assetId: 'a1', sensorId: 's1', metric: 'strain', level: null, value: 250, threshold: 200, ts: 5_000, reason: 'rule_changed' }]);
  });
});
