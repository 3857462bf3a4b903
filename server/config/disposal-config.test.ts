import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { loadConfig } from './load.js';

const dirs: string[] = [];
function configDir(files: Record<string, string>): string {
  const dir = mkdtempSync(join(tmpdir(), 'watchpost-config-'));
  dirs.push(dir);
  for (const [name, text] of Object.entries(files)) writeFileSync(join(dir, name), text);
  return dir;
}
afterEach(() => {
  for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true });
});

const BASE = `
contacts:
  - { id: zhang-san, name: 张三, phone: "+8613800000001" }
  - { id: li-si, name: 李四, phone: "+8613800000002" }
  - { id: no-phone, name: 王五 }
channels:
  - { id: sms, type: sms, provider: http, url: "http://127.0.0.1:9/sms" }
  - { id: ops-hook, type: webhook, url: "http://127.0.0.1:9/hook" }
`;

const VALID = `${BASE}
departments:
  - id: lg-water
    name: 龙岗水务集团
    kind: owner
    notify: [{ channel: sms, to: [{ schedule: water-oncall }] }, ops-hook]
  - id: lg-fire
    name: 龙岗消防
    kind: authority
    notify: [{ channel: ops-hook, to: [li-si] }]
schedules:
  - id: water-oncall
    rotation: { members: [zhang-san, li-si], shift: 1d, handoff: "08:30", start: "2026-12-01" }
assets:
  - { id: lg-hydrant-001, type: hydrant, name: 消火栓1, street: 龙城街道, owner: lg-water, authorities: [lg-fire] }
rules:
  - id: hydrant-low
    match: { asset_type: hydrant, metric: pressure }
    levels: { red: { below: 0.1 } }
    escalation: water-duty
    dispatch: { department: owner, due: { red: 30m, yellow: 1d } }
escalations:
  - id: water-duty
    ack_timeout: 15m
    tiers:
      - { after: 0s, notify: [{ channel: sms, to: [zhang-san, { schedule: water-oncall }, { department: lg-fire }] }] }
`;

describe('departments, schedules and dispatch in the configuration', () => {
  it('parses them with defaults', () => {
    const result = loadConfig(configDir({ 'a.yaml': VALID }), {});
    if (!result.ok) throw new Error(JSON.stringify(result.errors));
    const c = result.config;
    expect(c.departments).toEqual([
      {
        id: 'lg-water',
        name: '龙岗水务集团',
        kind: 'owner',
        notify: [
          { channel: 'sms', to: ['schedule:water-oncall'] },
          { channel: 'ops-hook', to: [] },
        ],
      },
      { id: 'lg-fire', name: '龙岗消防', kind: 'authority', notify: [{ channel: 'ops-hook', to: ['li-si'] }] },
    ]);
    expect(c.schedules).toEqual([
      { id: 'water-oncall', time_zone: 'Asia/Shanghai', rotation: { members: ['zhang-san', 'li-si'], shift: 86_400_000, handoff: '08:30', start: '2026-12-01' } },
    ]);
    expect(c.assets[0]).toMatchObject({ owner: 'lg-water', authorities: ['lg-fire'] });
    expect(c.rules[0]).toMatchObject({ dispatch: { department: 'owner', due: { red: 1_800_000, yellow: 86_400_000 } } });
    expect(c.escalations[0]).toMatchObject({ ack_timeout: 900_000, tiers: [{ after: 0, notify: [{ channel: 'sms', to: ['zhang-san', 'schedule:water-oncall', 'department:lg-fire'] }] }] });
  });

  it('names file and path of unknown departments, schedules and contacts', () => {
    const bad = `${BASE}
departments:
  - { id: lg-water, name: 水务, kind: owner, notify: [{ channel: sms, to: [{ schedule: nope-oncall }, ghost] }] }
schedules:
  - id: water-oncall
    rotation: { members: [zhang-san, nobody], shift: 1d, start: "2026-12-01" }
assets:
  - { id: a1, type: hydrant, name: A, street: S, owner: lg-gas, authorities: [lg-water, lg-fire] }
rules:
  - id: r1
    match: { asset_type: hydrant, metric: pressure }
    levels: { red: { below: 0.1 } }
    dispatch: { department: lg-roads }
escalations:
  - id: e1
    tiers: [{ after: 0s, notify: [{ channel: sms, to: [{ department: lg-nope }, { schedule: water-oncall }] }] }]
`;
    const result = loadConfig(configDir({ 'd.yaml': bad }), {});
    expect(result.ok).toBe(false);
    if (result.ok) return;
    expect(result.errors.map((e) => `${e.file}: ${e.path}: ${e.message}`).sort()).toEqual(
      [
        'd.yaml: departments[0] (lg-water).notify[0].to[0].schedule: unknown schedule "nope-oncall"',
        'd.yaml: departments[0] (lg-water).notify[0].to[1]: unknown contact "ghost"',
        'd.yaml: schedules[0] (water-oncall).rotation.members[1]: unknown contact "nobody"',
        'd.yaml: assets[0] (a1).owner: unknown department "lg-gas"',
        'd.yaml: assets[0] (a1).authorities[1]: unknown department "lg-fire"',
        'd.yaml: rules[0] (r1).dispatch.department: unknown department "lg-roads"',
        'd.yaml: escalations[0] (e1).tiers[0].notify[0].to[0].department: unknown department "lg-nope"',
      ].sort(),
    );
  });

  it('refuses bad shapes with the reason', () => {
    const bad = `${BASE}
departments:
  - { id: "bad id", name: X, kind: police, notify: [] }
schedules:
  - id: s1
    time_zone: Mars/Olympus
    rotation: { members: [zhang-san], shift: 10s, handoff: "25:00", start: "2026-02-30" }
`;
    const result = loadConfig(configDir({ 'e.yaml': bad }), {});
    expect(result.ok).toBe(false);
    if (result.ok) return;
    const lines = result.errors.map((e) => `${e.path}: ${e.message}`);
    expect(lines).toEqual(
      expect.arrayContaining([
        expect.stringMatching(/^departments\[0\].*\.id: must be 1-64 characters/),
        expect.stringMatching(/^departments\[0\].*\.kind: .*owner.*authority.*street.*command/),
        expect.stringMatching(/^departments\[0\].*\.notify: /),
        'schedules[0] (s1).time_zone: must be an IANA time zone such as Asia/Shanghai',
        'schedules[0] (s1).rotation.shift: must be at least 1m',
        'schedules[0] (s1).rotation.handoff: must be a time of day HH:MM such as 08:30',
        'schedules[0] (s1).rotation.start: is not a calendar date',
      ]),
    );
  });

  it('an sms target naming a schedule needs every member to have a phone number', () => {
    const text = `${BASE}
schedules:
  - id: s1
    rotation: { members: [zhang-san, no-phone], shift: 1d, start: "2026-12-01" }
departments:
  - { id: d1, name: D, kind: street, notify: [{ channel: sms, to: [{ schedule: s1 }] }] }
`;
    const result = loadConfig(configDir({ 'f.yaml': text }), {});
    expect(result.ok).toBe(false);
    if (result.ok) return;
    expect(result.errors.map((e) => `${e.path}: ${e.message}`)).toEqual([
      'departments[0] (d1).notify[0].to[0]: contact "no-phone" of schedule "s1" has no phone number, which channel "sms" (sms) needs',
    ]);
  });
});
