/**
 * Every rule kind and signal end to end: readings published over MQTT (aedes, real device
 * credentials) -> ingest -> rules -> alerts, seen through the HTTP API and the webhook receiver;
 * stale and offline on the real platform clock; rule reload through the API and on file change.
 */
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import mqtt from 'mqtt';
import { parse, stringify } from 'yaml';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { waitFor } from '../test/support/binaries.js';
import { ADMIN_TOKEN, baseConfig, DEVICE_SECRET, OTHER_SECRET, startPlatform, tempDir, VIEWER_TOKEN, type RunningPlatform } from '../test/support/platform.js';
import { startReceiver, type Receiver } from '../test/support/receiver.js';

/** 1-based line of `key:` in the rule with this id, in YAML text (where check reports the error). */
function lineOf(text: string, ruleId: string, key: string): number {
  const lines = text.split('\n');
  const start = lines.findIndex((l) => l.trim() === `- id: ${ruleId}`);
  const at = lines.findIndex((l, i) => i > start && l.trim().startsWith(`${key}:`));
  if (start < 0 || at < 0) throw new Error(`no ${key} in rule ${ruleId}`);
  return at + 1;
}

const HOUR = 3_600_000;

interface AlertRow {
  id: string;
  rule_id: string;
  asset_id: string;
  sensor_id: string;
  metric: string;
  level: string;
  state: string;
  value: number;
  threshold: unknown;
  message: string;
  resolve_reason: string | null;
}

const SIGNAL_RULES = [
  { id: 'disp-rate', match: { asset_id: 'bt-slope-002', metric: 'displacement' }, signal: { rate: '1d', window: '6h' }, levels: { red: { above: 20 }, yellow: { above: 5 } } },
  {
    id: 'disp-angle',
    match: { asset_id: 'bt-slope-002', metric: 'displacement' },
    signal: { tangent_angle: '6h', velocity: 1 },
    levels: { red: { above: 85 }, orange: { above: 80 }, yellow: { above: 45 } },
    message: '{sensor_id} 切线角 {value}{unit}',
  },
  { id: 'rain-1h', match: { metric: 'rainfall' }, signal: { sum: '1h' }, levels: { orange: { above: 30 } }, message: '1 小时降雨 {value}{unit}' },
  { id: 'pore-avg', match: { metric: 'pore_pressure' }, signal: { avg: '1h' }, levels: { yellow: { above: 80 } } },
  { id: 'tilt-max', match: { metric: 'tilt' }, signal: { max: '10m' }, levels: { orange: { above: 2 } } },
  { id: 'level-min', match: { metric: 'water_level' }, signal: { min: '1h' }, levels: { yellow: { below: 2 } } },
  {
    id: 'landslide-risk',
    match: { asset_type: 'slope' },
    all: [
      { metric: 'rainfall', signal: { sum: '24h' }, above: 100 },
      { metric: 'displacement', signal: { rate: '1d', window: '6h' }, above: 5 },
    ],
    level: 'red',
  },
  { id: 'piezo-silent', match: { asset_id: 'bt-slope-002', sensor_id: 'piezo-09' }, stale: '1500ms', level: 'yellow' },
  { id: 'dau-offline', match: { device_id: 'dau-slope-002' }, offline: '1s', level: 'orange' },
  { id: 'temp-flap', match: { metric: 'temperature' }, levels: { yellow: { above: 30 } }, escalation: 'bridge-duty', flapping: { window: '1h', max_changes: 2 } },
];

describe('every rule kind through MQTT into alerts', () => {
  let receiver: Receiver;
  let p: RunningPlatform;
  const alerts = async (query = '') => (await p.api('GET', `/api/v1/alerts${query}`, undefined, VIEWER_TOKEN)).body.alerts as AlertRow[];
  const find = async (ruleId: string, state?: string) => (await alerts()).filter((a) => a.rule_id === ruleId && (state === undefined || a.state === state));

  beforeAll(async () => {
    receiver = await startReceiver();
    const config = baseConfig({ webhookUrl: receiver.url, dataDir: tempDir('rules-data') });
    config.rules.push(...(SIGNAL_RULES as never[]));
    p = await startPlatform(config, { ruleTickMs: 100 });
  });
  afterAll(async () => {
    await p?.stop();
    await receiver?.close();
  });

  it('rate, tangent angle, moving sum, avg, max, min and a compound rule, on event time', async () => {
    const slope = await p.connect('dau-slope-002', OTHER_SECRET);
    const now = Date.now();
    const t0 = now - 7 * HOUR;
    // Rain first: 6 mm every 10 min for 3 h (108 mm in 24 h, 36 mm in the last hour).
    const rain = Array.from({ length: 18 }, (_, i) => ({ ts: t0 + 3 * HOUR + (i + 1) * 600_000, values: { rainfall: 6 } }));
    await slope.publishAsync('telemetry/bt-slope-002/rain-01', JSON.stringify(rain), { qos: 1 });
    // Then displacement: 0.3 mm/h for 6 h = 7.2 mm/d, α = atan(7.2 / 1) = 82.09°.
    const disp = Array.from({ length: 7 }, (_, h) => ({ ts: t0 + h * HOUR, values: { displacement: 10 + 0.3 * h } }));
    await slope.publishAsync('telemetry/bt-slope-002/gnss-01', JSON.stringify(disp), { qos: 1 });
    const at = (m: number) => t0 + 6 * HOUR + m * 60_000;
    await slope.publishAsync('telemetry/bt-slope-002/piezo-01', JSON.stringify([70, 90, 95].map((v, i) => ({ ts: at(i), values: { pore_pressure: v } }))), { qos: 1 });
    await slope.publishAsync('telemetry/bt-slope-002/tilt-01', JSON.stringify([0.5, 2.5].map((v, i) => ({ ts: at(i), values: { tilt: v } }))), { qos: 1 });
    await slope.publishAsync('telemetry/bt-slope-002/level-01', JSON.stringify([3, 1.5].map((v, i) => ({ ts: at(i), values: { water_level: v } }))), { qos: 1 });

    const fired = await waitFor('seven alerts', async () => {
      const rows = (await alerts('?state=firing')).filter((a) => a.asset_id === 'bt-slope-002');
      return rows.length >= 7 ? rows : undefined;
    });
    const summary = fired.map((a) => [a.rule_id, a.sensor_id, a.metric, a.level, a.value, a.threshold]).sort((x, y) => String(x[0]).localeCompare(String(y[0])));
    expect(summary).toEqual([
      ['disp-angle', 'gnss-01', 'displacement', 'orange', 82.0928, 80],
      ['disp-rate', 'gnss-01', 'displacement', 'yellow', 7.2, 5],
      ['landslide-risk', '*', 'displacement', 'red', 7.2, 5],
      ['level-min', 'level-01', 'water_level', 'yellow', 1.5, 2],
      ['pore-avg', 'piezo-01', 'pore_pressure', 'yellow', 85, 80],
      ['rain-1h', 'rain-01', 'rainfall', 'orange', 36, 30],
      ['tilt-max', 'tilt-01', 'tilt', 'orange', 2.5, 2],
    ]);
    // The unit of the signal: degrees for a tangent angle; the metric's for a sum (none catalogued).
    expect(fired.find((a) => a.rule_id === 'disp-angle')!.message).toBe('gnss-01 切线角 82.0928°');
    expect(fired.find((a) => a.rule_id === 'rain-1h')!.message).toBe('1 小时降雨 36');
  });

  it('stale: a silent sensor alerts on the platform clock and resolves when data returns', async () => {
    const slope = await p.connect('dau-slope-002', OTHER_SECRET);
    await slope.publishAsync('telemetry/bt-slope-002/piezo-09', JSON.stringify({ values: { pore_pressure: 30 } }), { qos: 1 });
    const [alert] = await waitFor('stale alert', async () => {
      const rows = await find('piezo-silent', 'firing');
      return rows.length === 1 ? rows : undefined;
    });
    expect(alert).toMatchObject({ asset_id: 'bt-slope-002', sensor_id: 'piezo-09', metric: 'pore_pressure', level: 'yellow', threshold: 1.5 });
    expect(alert!.value).toBeGreaterThanOrEqual(1.5);
    await slope.publishAsync('telemetry/bt-slope-002/piezo-09', JSON.stringify({ values: { pore_pressure: 31 } }), { qos: 1 });
    await waitFor('stale resolved', async () => ((await find('piezo-silent', 'resolved')).length === 1 ? true : undefined));
  });

  it('offline: a last will not followed by online within the grace period alerts; online resolves', async () => {
    const connect = () =>
      mqtt.connectAsync(p.mqttUrl, {
        username: 'dau-slope-002',
        password: OTHER_SECRET,
        protocolVersion: 4,
        reconnectPeriod: 0,
        will: { topic: 'status/dau-slope-002', payload: Buffer.from('offline'), qos: 1, retain: true },
      });
    const first = await connect();
    await first.publishAsync('status/dau-slope-002', 'online', { qos: 1, retain: true });
    first.stream.destroy(); // battery gone: the broker publishes the last will
    const [alert] = await waitFor('offline alert', async () => {
      const rows = await find('dau-offline', 'firing');
      return rows.length === 1 ? rows : undefined;
    });
    expect(alert).toMatchObject({ asset_id: 'bt-slope-002', sensor_id: 'dau-slope-002', metric: 'status', level: 'orange', threshold: 1 });
    const second = await connect();
    await second.publishAsync('status/dau-slope-002', 'online', { qos: 1, retain: true });
    await waitFor('offline resolved', async () => ((await find('dau-offline', 'resolved')).length === 1 ? true : undefined));
    await second.endAsync();
  });

  it('flapping: after max_changes the alert stage holds the notifications', async () => {
    const bridge = await p.connect('dau-bridge-001', DEVICE_SECRET);
    const before = receiver.requests.length;
    const ts = Date.now();
    // 31, 29, 31, 29: the third change (alert #2 firing) exceeds max_changes 2 in the hour.
    const temps = [31, 29, 31, 29].map((v, i) => ({ ts: ts + i * 1000, values: { temperature: v } }));
    await bridge.publishAsync('telemetry/lg-bridge-001/strain-01', JSON.stringify(temps), { qos: 1 });
    await waitFor('two temp-flap alerts, resolved', async () => ((await find('temp-flap', 'resolved')).length === 2 ? true : undefined));
    // A marker notification after them. Deliveries of different alerts run side by side, so wait
    // for the marker and for the first alert's resolved: a notification of the second alert, had
    // it not been held, was due before the marker and would have arrived by then too.
    await bridge.publishAsync('telemetry/lg-bridge-001/strain-01', JSON.stringify({ ts: ts + 10_000, values: { strain: 310 } }), { qos: 1 });
    const bodies = () => receiver.requests.slice(before).map((r) => JSON.parse(r.body) as { event: string; alert: { rule_id: string } });
    const flapEvents = () =>
      bodies()
        .filter((b) => b.alert.rule_id === 'temp-flap')
        .map((b) => b.event);
    await waitFor('marker webhook and the first alert resolved', async () =>
      bodies().some((b) => b.alert.rule_id === 'bridge-strain') && flapEvents().includes('resolved') ? true : undefined,
    );
    expect(flapEvents()).toEqual(['firing', 'resolved']); // the first alert; the second opened and resolved while flapping
  });

  it('reload: refused with every error while the last good rules keep running; applied on file change', async () => {
    const file = join(p.configDir, 'watchpost.yaml');
    const good = readFileSync(file, 'utf8');
    const config = parse(good) as { rules: Array<Record<string, unknown>> };
    const before = await p.api('GET', '/api/v1/rules', undefined, VIEWER_TOKEN);
    expect(before.status).toBe(200);
    expect(before.body.error).toBeNull();
    expect(before.body.rules.map((r: { id: string }) => r.id)).toEqual(['bridge-strain', ...SIGNAL_RULES.map((r) => r.id)]);

    const broken = {
      ...config,
      rules: [
        ...config.rules,
        { id: 'bad-order', match: { metric: 'strain' }, levels: { red: { above: 100 }, yellow: { above: 200 } } },
        { id: 'bad-duration', match: { metric: 'strain' }, levels: { red: { above: 1 } }, for: 'soon' },
        { id: 'bad-escalation', match: { metric: 'strain' }, levels: { red: { above: 1 } }, escalation: 'nowhere' },
      ],
    };
    // Not through the watcher: the file is written and the reload requested at once.
    const brokenText = stringify(broken);
    writeFileSync(file, brokenText);
    expect((await p.api('POST', '/api/v1/rules/reload', undefined, VIEWER_TOKEN)).status).toBe(403);
    const refused = await p.api('POST', '/api/v1/rules/reload', undefined, ADMIN_TOKEN);
    expect(refused.status).toBe(400);
    expect(refused.body).toEqual({
      error: 'invalid_rules',
      message: 'the configuration has 3 errors; the rules in force are unchanged',
      errors: [
        {
          file: 'watchpost.yaml',
          line: lineOf(brokenText, 'bad-order', 'red'),
          path: 'rules[11] (bad-order).levels.red',
          message: 'red threshold must be stricter than yellow ({"above":100} vs {"above":200})',
        },
        {
          file: 'watchpost.yaml',
          line: lineOf(brokenText, 'bad-duration', 'for'),
          path: 'rules[12] (bad-duration).for',
          message: '"soon" is not a duration (use 500ms, 30s, 10m, 6h or 1d)',
        },
        { file: 'watchpost.yaml', line: lineOf(brokenText, 'bad-escalation', 'escalation'), path: 'rules[13] (bad-escalation).escalation', message: 'unknown escalation "nowhere"' },
      ],
    });
    const inForce = await p.api('GET', '/api/v1/rules', undefined, VIEWER_TOKEN);
    expect(inForce.body.rules).toHaveLength(SIGNAL_RULES.length + 1);
    expect(inForce.body.error).toMatchObject({ trigger: 'api', message: expect.stringContaining('3 errors'), errors: refused.body.errors });

    // The last good rules still run: the strain alert of the flapping test is open (red); a drop is seen.
    const bridge = await p.connect('dau-bridge-001', DEVICE_SECRET);
    // (ts after the flapping test's marker reading, which was 10 s ahead: older readings are ignored)
    await bridge.publishAsync('telemetry/lg-bridge-001/strain-01', JSON.stringify({ ts: Date.now() + 60_000, values: { strain: 260 } }), { qos: 1 });
    await waitFor('strain dropped to orange', async () => ((await find('bridge-strain', 'firing')).some((a) => a.level === 'orange') ? true : undefined));

    // Fixed on disk without bridge-strain and with a narrower rain rule: the watcher reloads.
    const fixed = {
      ...config,
      rules: config.rules.filter((r) => r.id !== 'bridge-strain').map((r) => (r.id === 'rain-1h' ? { ...r, match: { metric: 'rainfall', asset_type: 'tunnel' } } : r)),
    };
    writeFileSync(file, stringify(fixed));
    const removed = await waitFor('bridge-strain resolved by the reload', async () => {
      const rows = await find('bridge-strain', 'resolved');
      const row = rows.find((a) => a.resolve_reason === 'rule_removed');
      return row;
    });
    expect(removed.level).toBe('orange');
    const after = await p.api('GET', '/api/v1/rules', undefined, VIEWER_TOKEN);
    expect(after.body.error).toBeNull();
    expect(after.body.last_reload).toMatchObject({ trigger: 'file', ok: true });
    expect(after.body.rules.map((r: { id: string }) => r.id)).toEqual(SIGNAL_RULES.map((r) => r.id));
    // The rain alert is no longer covered by its rule: resolved too.
    await waitFor('rain-1h resolved', async () => ((await find('rain-1h', 'resolved')).length === 1 ? true : undefined));
    const ok = await p.api('POST', '/api/v1/rules/reload', undefined, ADMIN_TOKEN);
    const none = { added: [], removed: [], changed: [] };
    expect(ok).toEqual({
      status: 200,
      body: {
        reloaded: false,
        rules: SIGNAL_RULES.length,
        added: [],
        removed: [],
        disabled: [],
        changed: [],
        updated: [],
        no_longer_covered: [],
        sections: [],
        restart_needed: [],
        assets: none,
        devices: none,
      },
    });
  });
});
