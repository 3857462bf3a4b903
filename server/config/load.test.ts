import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { formatErrors, loadConfig } from './load.js';

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

const ASSETS = `
assets:
  - id: lg-bridge-001
    type: bridge
    name: 龙岗河大桥
    street: 龙城街道
    location: [114.2466, 22.7209]
    sensors:
      - { id: strain-01, metrics: [strain] }
metrics:
  strain: { unit: "µε", min: -5000, max: 5000 }
`;

describe('loadConfig', () => {
  it('merges sections across files, interpolates ${ENV} and applies defaults', () => {
    const dir = configDir({
      'a.yaml': ASSETS,
      'b.yml': `
devices:
  - id: dau-bridge-001
    secret: \${DAU_SECRET}
    assets: [lg-bridge-001]
rules:
  - id: bridge-strain
    match: { asset_type: bridge, metric: strain }
    levels: { red: { above: 300 }, yellow: { above: 200 } }
    for: 30s
    escalation: bridge-duty
channels:
  - { id: ops-hook, type: webhook, url: "http://127.0.0.1:9000/alerts", secret: "literal $\${NOT_ENV}" }
escalations:
  - id: bridge-duty
    tiers: [{ after: 0s, notify: [ops-hook] }, { after: 10m, notify: [{ channel: ops-hook }] }]
`,
    });
    const result = loadConfig(dir, { DAU_SECRET: 's3cret-value' });
    if (!result.ok) throw new Error(formatErrors(result.errors));
    const c = result.config;
    expect(c.devices[0]!.secret).toBe('s3cret-value');
    expect((c.channels[0] as { secret?: string }).secret).toBe('literal ${NOT_ENV}');
    expect(c.broker).toEqual({
      host: '0.0.0.0',
      port: 1883,
      allow_anonymous: false,
      max_payload_bytes: 1048576,
      limits: { connects_per_second: 20, connect_burst: 200, max_auth_failures: 20, auth_failure_window: 300_000, lockout: 600_000, exempt: ['127.0.0.1', '::1'] },
      retained: { max_messages: 100_000, max_bytes: 64 * 1024 ** 2 },
      persistent_sessions_per_device: 16,
    });
    expect(c.storage).toEqual({
      data_dir: './data',
      spool: { max_bytes: 2 * 1024 ** 3, segment_bytes: 64 * 1024 ** 2, fsync: 'always', fsync_interval: 1000, group_commit_delay: 0, alert_percent: 80 },
      deadman: { no_readings: 600_000, failing_writes: 300_000 },
      retention: { telemetry: 400 * 86_400_000, alerts: 400 * 86_400_000 },
    });
    expect(c.rules[0]).toMatchObject({ kind: 'threshold', for: 30_000, match: { metric: ['strain'] } });
    expect(c.escalations[0]!.tiers[1]).toEqual({ after: 600_000, notify: [{ channel: 'ops-hook', to: [] }] });
    expect(c.metrics.strain).toEqual({ unit: 'µε', min: -5000, max: 5000 });
  });

  it('lists every error with file, path and reason', () => {
    const dir = configDir({
      'assets.yaml': ASSETS,
      'devices.yaml': `
devices:
  - id: dau-1
    secret: \${MISSING_SECRET}
    assets: [no-such-asset]
  - id: dau-1
    secret: short
`,
      'rules.yaml': `
rules:
  - id: bad-order
    match: { metric: strain }
    levels: { red: { above: 100 }, yellow: { above: 200 } }
  - id: bad-duration
    match: { metric: strain }
    levels: { red: { above: 100 } }
    for: 30 seconds
    escalation: nowhere
  - id: silent
    stale: 10 minutes
    level: yellow
  - id: typo
    match: { metric: strain }
    levels: { red: { abvoe: 100 } }
broker:
  port: 99999
`,
    });
    const result = loadConfig(dir, {});
    expect(result.ok).toBe(false);
    if (result.ok) return;
    expect(formatErrors(result.errors).split('\n')).toEqual([
      'devices.yaml:4: devices[0].secret: environment variable MISSING_SECRET is not set',
      'devices.yaml:5: devices[0] (dau-1).assets[0]: unknown asset "no-such-asset"',
      'devices.yaml:6: devices[1] (dau-1).id: duplicate id "dau-1" (also devices[0])',
      'devices.yaml:7: devices[1] (dau-1).secret: must be at least 8 characters',
      'rules.yaml:5: rules[0] (bad-order).levels.red: red threshold must be stricter than yellow ({"above":100} vs {"above":200})',
      'rules.yaml:9: rules[1] (bad-duration).for: "30 seconds" is not a duration (use 500ms, 30s, 10m, 6h or 1d)',
      'rules.yaml:12: rules[2] (silent).stale: "10 minutes" is not a duration (use 500ms, 30s, 10m, 6h or 1d)',
      'rules.yaml:16: rules[3] (typo).levels.red.abvoe: unknown field "abvoe" (did you mean "above"?)',
      'rules.yaml:18: broker.port: Too big: expected number to be <=65535',
    ]);
  });

  it('refuses unknown sections, a single section twice and broken YAML', () => {
    const dir = configDir({
      'a.yaml': 'api: { port: 8080 }\nbrokr: {}\n',
      'b.yaml': 'api: { port: 8081 }\n',
      'c.yaml': 'assets: [\n',
    });
    const result = loadConfig(dir, {});
    expect(result.ok).toBe(false);
    if (result.ok) return;
    expect(formatErrors(result.errors).split('\n')).toEqual([
      'a.yaml:2: brokr: unknown section "brokr" (did you mean "broker"?)',
      'b.yaml:1: api: already defined in a.yaml; a api section may appear in one file only',
      'c.yaml:2:1: YAML: Flow sequence in block collection must be sufficiently indented and end with a ]',
    ]);
  });

  it('accepts the compose setup: the demo with deploy/config/platform.yaml for its platform.yaml', () => {
    const root = join(import.meta.dirname, '..', '..');
    const files: Record<string, string> = { 'platform.yaml': readFileSync(join(root, 'deploy', 'config', 'platform.yaml'), 'utf8') };
    for (const name of ['assets', 'metrics', 'devices', 'rules', 'escalation', 'departments']) files[`${name}.yaml`] = readFileSync(join(root, 'config-demo', `${name}.yaml`), 'utf8');
    const result = loadConfig(configDir(files), {});
    if (!result.ok) throw new Error(formatErrors(result.errors));
    expect(result.config.storage).toMatchObject({ data_dir: '/var/lib/watchpost', influx: { url: 'http://influxdb:8086', version: 1, database: 'telemetry' } });
    expect(result.config.api).toMatchObject({ host: '0.0.0.0', port: 8080 });
  });

  it('reports a missing directory', () => {
    const result = loadConfig('/nonexistent/watchpost-config', {});
    expect(result.ok).toBe(false);
    if (!result.ok) expect(result.errors[0]!.message).toMatch(/cannot read configuration directory/);
  });

  it('flags a rule escalation or a channel that does not exist', () => {
    const dir = configDir({
      'x.yaml': `${ASSETS}
escalations:
  - id: e1
    tiers: [{ after: 0s, notify: [{ channel: nope, to: [nobody] }] }]
`,
    });
    const result = loadConfig(dir, {});
    expect(result.ok).toBe(false);
    if (result.ok) return;
    expect(result.errors.map((e) => `${e.file}: ${e.path}: ${e.message}`)).toEqual([
      'x.yaml: escalations[0] (e1).tiers[0].notify[0].channel: unknown channel "nope"',
      'x.yaml: escalations[0] (e1).tiers[0].notify[0].to[0]: unknown contact "nobody"',
    ]);
  });

  describe('one cause, one error', () => {
    const DEMO_LIKE = {
      'escalation.yaml': `contacts:
  - { id: duty, name: 值班员 }
channels:
  - id: ops-hook
    type: webhook
    url: "http://127.0.0.1:9000/alerts"
    secret: "\${OPS_HOOK_SECRET}"
escalations:
  - id: duty
    tiers:
      - after: 0s
        notify: [{ channel: ops-hook, to: [duty] }]
      - after: 10m
        notify: [{ channel: ops-hook, to: [duty] }]
`,
      'rules.yaml': `rules:
  - id: strain-high
    match: { metric: strain }
    levels: { red: { above: 300 } }
    escalation: duty
  - id: strain-low
    match: { metric: strain }
    levels: { yellow: { below: -300 } }
    escalation: duty
`,
    };
    const errorLines = (dir: string, env: NodeJS.ProcessEnv = {}) => {
      const result = loadConfig(dir, env);
      if (result.ok) throw new Error('expected errors');
      return formatErrors(result.errors).split('\n');
    };

    it('reports a broken quote once, at its line and column, and nothing that follows from the unreadable file', () => {
      const broken = DEMO_LIKE['escalation.yaml'].replace('url: "http://127.0.0.1:9000/alerts"', 'url: "http://127.0.0.1:9000/alerts');
      const dir = configDir({ ...DEMO_LIKE, 'escalation.yaml': broken });
      expect(errorLines(dir, { OPS_HOOK_SECRET: 'hook-secret-value' })).toEqual(['escalation.yaml:6:39: YAML: Missing closing "quote']);
    });

    it('reports a missing variable once, without the references to the item it broke', () => {
      const dir = configDir({
        ...DEMO_LIKE,
        'more.yaml': 'channels:\n  - { id: spare-hook, type: webhook, url: "http://127.0.0.1:9001/", secret: "${OPS_HOOK_SECRET}" }\n',
      });
      expect(errorLines(dir)).toEqual(['escalation.yaml:7: channels[0].secret: environment variable OPS_HOOK_SECRET is not set (also used at more.yaml: channels[0].secret)']);
    });

    it('names a misspelt field and what was meant, not what its absence implies', () => {
      const rules = DEMO_LIKE['rules.yaml'].replace('levels: { red', 'levles: { red');
      const dir = configDir({ ...DEMO_LIKE, 'rules.yaml': rules });
      expect(errorLines(dir, { OPS_HOOK_SECRET: 'hook-secret-value' })).toEqual(['rules.yaml:4: rules[0] (strain-high).levles: unknown field "levles" (did you mean "levels"?)']);
    });

    it('names an unknown field with the fields accepted, and leaves out the required field it stands for', () => {
      const dir = configDir({
        'devices.yaml': 'devices:\n  - id: d1\n    secrte: "long-enough-secret"\n  - id: d2\n    secret: "long-enough-secret"\n    colour: red\n',
      });
      expect(errorLines(dir)).toEqual([
        'devices.yaml:3: devices[0] (d1).secrte: unknown field "secrte" (did you mean "secret"?)',
        'devices.yaml:6: devices[1] (d2).colour: unknown field "colour" (accepted: id, secret, secret_hash, assets, subscribe)',
      ]);
    });

    it('drops references into a misspelt section, but not to ids that are nowhere', () => {
      const dir = configDir({
        'escalation.yaml': DEMO_LIKE['escalation.yaml'].replace('escalations:', 'escalatons:'),
        'rules.yaml': DEMO_LIKE['rules.yaml'],
      });
      expect(errorLines(dir, { OPS_HOOK_SECRET: 'hook-secret-value' })).toEqual(['escalation.yaml:8: escalatons: unknown section "escalatons" (did you mean "escalations"?)']);
      const other = configDir({ ...DEMO_LIKE, 'devices.yaml': 'devices:\n  - { id: d1, secret: "long-enough-secret", assets: [nowhere] }\n' });
      expect(errorLines(other, { OPS_HOOK_SECRET: 'hook-secret-value' })).toEqual(['devices.yaml:2: devices[0] (d1).assets[0]: unknown asset "nowhere"']);
    });
  });
});
