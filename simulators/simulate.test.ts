import { once } from 'node:events';
import net, { type AddressInfo } from 'node:net';
import { Aedes, type AedesPublishPacket } from 'aedes';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { LEVELS } from '../lib/levels.js';
import { silentLogger } from '../lib/logger.js';
import type { Condition, ThresholdRuleConfig } from '../rules/config.js';
import { loadConfig } from '../server/config/load.js';
import type { WatchpostConfig } from '../server/config/schema.js';
import { SCENARIOS, incidentValue, resolveScenario, ruleMatches, type SeriesTarget } from './scenarios.js';
import { createSignal, hashSeed, mulberry32 } from './signals.js';
import { defaultBrokerUrl, planSimulation, readingAt, runSimulation } from './simulate.js';

function demoConfig(): WatchpostConfig {
  const result = loadConfig('config-demo', {});
  if (!result.ok) throw new Error(`config-demo does not load: ${JSON.stringify(result.errors)}`);
  return result.config;
}

/** Every (asset, sensor, metric) of the demo configuration. */
function demoSeries(config: WatchpostConfig): SeriesTarget[] {
  return config.assets.flatMap((asset) =>
    (asset.sensors ?? []).flatMap((sensor) =>
      (sensor.metrics ?? []).map((metric) => ({
        assetId: asset.id,
        assetType: asset.type,
        street: asset.street,
        sensorId: sensor.id,
        metric,
        range: { min: config.metrics[metric]?.min, max: config.metrics[metric]?.max },
      })),
    ),
  );
}

/** Plain entry test of one level (contract: above / below / outside are strict). */
function meets(cond: Condition, value: number): boolean {
  if ('above' in cond) return value > cond.above;
  if ('below' in cond) return value < cond.below;
  return value < cond.outside[0] || value > cond.outside[1];
}

/** The highest level of `rule` that `value` meets, or undefined. */
function levelOf(rule: ThresholdRuleConfig, value: number) {
  return [...LEVELS].reverse().find((l) => rule.levels[l] !== undefined && meets(rule.levels[l]!, value));
}

const asNumber = (v: number | boolean) => (typeof v === 'boolean' ? (v ? 1 : 0) : v);

describe('demo configuration', () => {
  it('loads without errors and without any environment variable', () => {
    const result = loadConfig('config-demo', {});
    expect(result.ok ? [] : result.errors).toEqual([]);
    expect(result.files).toEqual(['assets.yaml', 'devices.yaml', 'escalation.yaml', 'metrics.yaml', 'platform.yaml', 'rules.yaml']);
  });

  it('covers each kind of asset on Longgang streets, with catalogued metrics', () => {
    const config = demoConfig();
    expect(new Set(config.assets.map((a) => a.type))).toEqual(new Set(['bridge', 'slope', 'pipeline', 'fire', 'building']));
    for (const asset of config.assets) {
      const [lon, lat] = asset.location!;
      expect(lon).toBeGreaterThan(114.05);
      expect(lon).toBeLessThan(114.35);
      expect(lat).toBeGreaterThan(22.6);
      expect(lat).toBeLessThan(22.8);
      expect(asset.street).toMatch(/街道$/);
      for (const sensor of asset.sensors!) {
        for (const metric of sensor.metrics!) expect(config.metrics[metric], `${asset.id}/${sensor.id} ${metric}`).toBeDefined();
      }
    }
  });

  it('gives every asset exactly one publishing device, and an observer for the operations centre', () => {
    const config = demoConfig();
    const owners = config.assets.map((a) => config.devices.filter((d) => d.assets.includes(a.id)).map((d) => d.id));
    expect(owners.every((o) => o.length === 1)).toBe(true);
    const ops = config.devices.find((d) => d.id === 'city-ops-centre')!;
    expect(ops).toMatchObject({ assets: [], subscribe: ['alerts/#', 'status/#'] });
    for (const d of config.devices) expect(d.secret!.length).toBeGreaterThanOrEqual(8);
  });

  it('escalates district-duty over the webhook at 0 s and 10 min', () => {
    const config = demoConfig();
    expect(config.channels).toMatchObject([{ id: 'ops-hook', type: 'webhook', url: 'http://127.0.0.1:9000/alerts' }]);
    const duty = config.escalations.find((e) => e.id === 'district-duty')!;
    expect(duty.tiers.map((t) => t.after)).toEqual([0, 600_000]);
    expect(config.rules.every((r) => r.escalation === 'district-duty')).toBe(true);
  });

  it('has a boolean fire-alarm rule that is red above 0.5', () => {
    const rule = demoConfig().rules.find((r) => r.id === 'fire-alarm')!;
    expect(rule.levels).toEqual({ red: { above: 0.5 } });
    expect(rule.match.metric).toEqual(['smoke', 'fire_alarm']);
  });

  it('points the simulator at the embedded broker on loopback', () => {
    expect(defaultBrokerUrl(demoConfig())).toBe('mqtt://127.0.0.1:1883');
  });
});

describe('signals', () => {
  it('mulberry32 is deterministic per seed', () => {
    const a = mulberry32(42);
    const b = mulberry32(42);
    const c = mulberry32(43);
    const seqA = Array.from({ length: 5 }, a);
    expect(Array.from({ length: 5 }, b)).toEqual(seqA);
    expect(Array.from({ length: 5 }, c)).not.toEqual(seqA);
    expect(seqA.every((x) => x >= 0 && x < 1)).toBe(true);
  });

  it('every generator repeats itself exactly for the same seed and timestamps', () => {
    const config = demoConfig();
    const t0 = Date.parse('2025-07-01T00:00:00+08:00');
    for (const [metric, entry] of Object.entries(config.metrics)) {
      const run = (seed: number) => {
        const next = createSignal(metric, entry, mulberry32(hashSeed(seed, metric)));
        return Array.from({ length: 600 }, (_, i) => next(t0 + i * 1000));
      };
      expect(run(7), metric).toEqual(run(7));
    }
    const strain = (seed: number) => {
      const next = createSignal('strain', config.metrics.strain!, mulberry32(seed));
      return Array.from({ length: 20 }, (_, i) => next(t0 + i * 1000));
    };
    expect(strain(1)).not.toEqual(strain(2));
  });

  it('stays inside the catalogue range and trips no demo rule over a whole day of everyday operation', () => {
    const config = demoConfig();
    const t0 = Date.parse('2025-07-01T00:00:00+08:00');
    const trips: string[] = [];
    for (const seed of [1, 2]) {
      for (const s of demoSeries(config)) {
        const next = createSignal(s.metric, s.range, mulberry32(hashSeed(seed, s.assetId, s.sensorId, s.metric)));
        const rules = config.rules.filter((r) => ruleMatches(r, s));
        const since = new Map<string, number>();
        let lo = Infinity;
        let hi = -Infinity;
        for (let t = t0; t < t0 + 86_400_000; t += 1000) {
          const v = next(t);
          lo = Math.min(lo, v);
          hi = Math.max(hi, v);
          for (const rule of rules) {
            if (levelOf(rule, v) === undefined) since.delete(rule.id);
            else {
              const start = since.get(rule.id) ?? t;
              since.set(rule.id, start);
              if (t - start >= rule.for) trips.push(`${rule.id} ${s.assetId}/${s.sensorId} ${v} at ${new Date(t).toISOString()}`);
            }
          }
        }
        expect(lo, `${s.assetId}/${s.sensorId} ${s.metric} min`).toBeGreaterThanOrEqual(s.range.min!);
        expect(hi, `${s.assetId}/${s.sensorId} ${s.metric} max`).toBeLessThanOrEqual(s.range.max!);
      }
    }
    expect(trips.slice(0, 5)).toEqual([]);
  });
});

describe('scenarios', () => {
  it('binds the normal scenario to the chronic low-pressure hydrant in 水径村', () => {
    const config = demoConfig();
    const { incidents, warnings } = resolveScenario(SCENARIOS.normal!, config.rules, demoSeries(config));
    expect(warnings).toEqual([]);
    expect(incidents.map(({ assetId, sensorId, metric, ruleId, level, band, threshold }) => ({ assetId, sensorId, metric, ruleId, level, band, threshold }))).toEqual([
      { assetId: 'lg-hydrant-002', sensorId: 'hp-02', metric: 'hydrant_pressure', ruleId: 'hydrant-pressure-low', level: 'yellow', band: [0.2, 0.25], threshold: 0.25 },
    ]);
  });

  it('drives every incident of every scenario into exactly its promised level of the demo rules', () => {
    const config = demoConfig();
    for (const scenario of Object.values(SCENARIOS)) {
      const { incidents, warnings } = resolveScenario(scenario, config.rules, demoSeries(config));
      expect(warnings, scenario.name).toEqual([]);
      expect(incidents).toHaveLength(scenario.incidents.length);
      for (const incident of incidents) {
        expect(incident.assetId).toBe(incident.spec.prefer!.asset_id);
        expect(incident.sensorId).toBe(incident.spec.prefer!.sensor_id);
        const rule = config.rules.find((r) => r.id === incident.ruleId)!;
        const rng = mulberry32(1);
        const atMs = incident.spec.at * 1000;
        const ramp = (incident.spec.ramp ?? 0) * 1000;
        // before the incident: the everyday value passes through untouched
        expect(incidentValue(incident, atMs - 1, 12.5, rng)).toBe(12.5);
        // held: always inside the level's band, so exactly the promised level is met
        for (let i = 0; i < 200; i++) {
          const v = incidentValue(incident, atMs + ramp + i * 100, 0, rng);
          expect(levelOf(rule, v), `${incident.ruleId} ${v}`).toBe(incident.level);
        }
      }
    }
  });

  it('returns to the everyday value after a held incident', () => {
    const config = demoConfig();
    const { incidents } = resolveScenario(SCENARIOS.incident!, config.rules, demoSeries(config));
    const strain = incidents.find((i) => i.metric === 'strain')!;
    expect(strain.band).toEqual([250, 300]);
    const end = (strain.spec.at + strain.spec.ramp! + strain.spec.hold!) * 1000;
    expect(incidentValue(strain, end + 5_000, 42, mulberry32(1))).toBe(42);
  });

  it('plans the default run with the demo devices and their published secrets', () => {
    const plan = planSimulation(demoConfig());
    expect(plan.scenario.name).toBe('normal');
    expect(plan.devices.map((d) => d.id)).toEqual(['dau-bridge-001', 'dau-slope-001', 'dau-slope-002', 'rtu-gas-001', 'dau-hydrant-001', 'dau-hydrant-002', 'fire-gw-001']);
    const hydrant = plan.devices.find((d) => d.id === 'dau-hydrant-002')!.sensors.find((s) => s.sensorId === 'hp-02')!;
    const reading = readingAt(hydrant, Date.parse('2025-07-01T08:00:00+08:00'), 0);
    expect(reading.values.hydrant_pressure).toBeGreaterThan(0.2);
    expect(reading.values.hydrant_pressure).toBeLessThan(0.25);
    expect(() => planSimulation(demoConfig(), { scenario: 'meteor' })).toThrow(/unknown scenario "meteor"/);
  });
});

interface Seen {
  clientId: string;
  topic: string;
  payload: string;
  qos: number;
  retain: boolean;
}

describe('MQTT round trip against an aedes broker', () => {
  let broker: Aedes;
  let server: net.Server;
  let url: string;
  let published: Seen[];
  let logins: Map<string, { username: string | undefined; password: string | undefined; will: { topic: string; payload: string; retain: boolean } | undefined }>;
  let deniedPublishes: string[];
  const config = demoConfig();
  const secrets = new Map(config.devices.map((d) => [d.id, d.secret!]));

  beforeEach(async () => {
    published = [];
    logins = new Map();
    deniedPublishes = [];
    broker = await Aedes.createBroker({
      preConnect: (_client, packet, done) => {
        logins.set(packet.clientId, {
          username: packet.username,
          password: packet.password?.toString(),
          will: packet.will ? { topic: packet.will.topic, payload: packet.will.payload.toString(), retain: packet.will.retain === true } : undefined,
        });
        done(null, true);
      },
      authenticate: (_client, username, password, done) => {
        const ok = username !== undefined && secrets.get(username) === password?.toString();
        done(ok ? null : Object.assign(new Error('bad credentials'), { returnCode: 4 }), ok);
      },
      authorizePublish: (client, packet, done) => {
        const device = config.devices.find((d) => d.id === logins.get(client?.id ?? '')?.username);
        const [kind, id] = packet.topic.split('/');
        const ok = device !== undefined && (kind === 'telemetry' ? device.assets.includes(id!) : packet.topic === `status/${device.id}`);
        if (!ok) deniedPublishes.push(packet.topic);
        done(ok ? null : new Error('not allowed'));
      },
    });
    broker.on('publish', (packet: AedesPublishPacket, client) => {
      if (client) published.push({ clientId: client.id, topic: packet.topic, payload: packet.payload.toString(), qos: packet.qos, retain: packet.retain });
    });
    server = net.createServer(broker.handle);
    server.listen(0, '127.0.0.1');
    await once(server, 'listening');
    url = `mqtt://127.0.0.1:${(server.address() as AddressInfo).port}`;
  });

  afterEach(async () => {
    await new Promise<void>((resolve) => broker.close(() => resolve()));
    await new Promise<void>((resolve) => server.close(() => resolve()));
  });

  it('publishes every demo asset with the devices’ credentials, and the normal scenario’s low hydrant pressure', async () => {
    // The platform reports a rejection to one device while the run is on.
    const rejection = { topic: 'telemetry/lg-gas-001/vw-01', reason: 'out_of_range', detail: 'gas_lel 140 is above the catalogue maximum 100' };
    broker.on('subscribe', (subs) => {
      if (subs.some((s) => s.topic === 'errors/rtu-gas-001')) {
        setTimeout(() => broker.publish({ cmd: 'publish', topic: 'errors/rtu-gas-001', payload: Buffer.from(JSON.stringify(rejection)), qos: 1, retain: false, dup: false }, () => {}), 50);
      }
    });

    const summary = await runSimulation(config, { url, duration: 2, rate: 4, logger: silentLogger() });

    const telemetry = published.filter((p) => p.topic.startsWith('telemetry/'));
    // every demo asset got readings, each a valid reading object
    for (const asset of config.assets) {
      const mine = telemetry.filter((p) => p.topic.startsWith(`telemetry/${asset.id}/`));
      expect(mine.length, asset.id).toBeGreaterThan(0);
      for (const p of mine) {
        const sensorId = p.topic.split('/')[2];
        const sensor = asset.sensors!.find((s) => s.id === sensorId)!;
        expect(sensor, p.topic).toBeDefined();
        const body = JSON.parse(p.payload) as { ts: unknown; values: Record<string, number | boolean> };
        expect(Object.keys(body).sort()).toEqual(['ts', 'values']);
        expect(Number.isInteger(body.ts)).toBe(true);
        expect(Math.abs((body.ts as number) - Date.now())).toBeLessThan(60_000);
        expect(Object.keys(body.values).sort()).toEqual([...sensor.metrics!].sort());
        for (const [metric, value] of Object.entries(body.values)) {
          const { min, max } = config.metrics[metric]!;
          expect(asNumber(value)).toBeGreaterThanOrEqual(min!);
          expect(asNumber(value)).toBeLessThanOrEqual(max!);
          if (['smoke', 'fire_alarm', 'fault'].includes(metric)) expect(typeof value).toBe('boolean');
        }
        expect(p.qos).toBe(1);
      }
    }

    // credentials: username = device id, password = its secret; last will = offline, retained
    const publishers = config.devices.filter((d) => d.assets.length > 0).map((d) => d.id);
    expect([...logins.values()].map((l) => l.username).sort()).toEqual([...publishers].sort());
    for (const login of logins.values()) {
      expect(login.password).toBe(secrets.get(login.username!));
      expect(login.will).toEqual({ topic: `status/${login.username}`, payload: 'offline', retain: true });
    }
    expect(deniedPublishes).toEqual([]);
    for (const p of telemetry) expect(config.devices.find((d) => d.id === logins.get(p.clientId)!.username)!.assets).toContain(p.topic.split('/')[1]);

    // status: online when connected, offline (retained) on the clean stop
    for (const id of publishers) {
      const status = published.filter((p) => p.topic === `status/${id}`).map((p) => [p.payload, p.retain, p.qos]);
      expect(status, id).toEqual([
        ['online', true, 1],
        ['offline', true, 1],
      ]);
    }

    // the scenario's incident: 水径村 hp-02 below the 0.25 MPa yellow level, above orange
    const lowHydrant = telemetry
      .filter((p) => p.topic === 'telemetry/lg-hydrant-002/hp-02')
      .map((p) => (JSON.parse(p.payload) as { values: { hydrant_pressure: number } }).values.hydrant_pressure);
    expect(lowHydrant.length).toBeGreaterThan(0);
    for (const v of lowHydrant) {
      expect(v).toBeLessThan(0.25);
      expect(v).toBeGreaterThan(0.2);
    }
    // ... and nothing else crosses a demo rule threshold
    const crossings = telemetry.flatMap((p) => {
      const [, assetId, sensorId] = p.topic.split('/') as [string, string, string];
      const asset = config.assets.find((a) => a.id === assetId)!;
      const body = JSON.parse(p.payload) as { values: Record<string, number | boolean> };
      return Object.entries(body.values).flatMap(([metric, value]) =>
        config.rules
          .filter((r) => ruleMatches(r, { assetId, assetType: asset.type, street: asset.street, sensorId, metric, range: {} }))
          .filter((r) => levelOf(r, asNumber(value)) !== undefined)
          .map((r) => `${r.id} ${assetId}/${sensorId}`),
      );
    });
    expect(new Set(crossings)).toEqual(new Set(['hydrant-pressure-low lg-hydrant-002/hp-02']));

    // the summary matches what the broker saw
    expect(summary.sent).toBe(telemetry.length);
    expect(summary.acknowledged).toBe(summary.sent);
    expect(summary.errors).toBe(0);
    expect(summary.unacknowledged).toBe(0);
    expect(Object.keys(summary.perAsset).sort()).toEqual(config.assets.map((a) => a.id).sort());
    expect(summary.rejected).toEqual([{ device: 'rtu-gas-001', ...rejection }]);
    expect(summary.rejectedTotal).toBe(1);
  });

  it('sends the incident scenario’s smoke alarm on the 18F detector two seconds in', async () => {
    const summary = await runSimulation(config, { url, scenario: 'incident', duration: 2.6, rate: 5, logger: silentLogger() });
    const smoke = (sensor: string) =>
      published
        .filter((p) => p.topic === `telemetry/lg-building-001/${sensor}`)
        .map((p) => JSON.parse(p.payload) as { ts: number; values: { smoke: boolean } });
    const alarmed = smoke('smoke-18f-01').filter((r) => r.values.smoke);
    expect(alarmed.length).toBeGreaterThan(0);
    expect(smoke('smoke-18f-01')[0]!.values.smoke).toBe(false);
    expect(smoke('smoke-18f-02').every((r) => !r.values.smoke)).toBe(true);
    expect(summary.scenario).toBe('incident');
    expect(summary.errors).toBe(0);
  });

  it('reports a device the broker refuses and still ends on time', async () => {
    const started = Date.now();
    const summary = await runSimulation(config, { url, duration: 1, devices: 2, secrets: { 'dau-slope-001': 'wrong-secret-value' }, logger: silentLogger() });
    expect(Date.now() - started).toBeLessThan(5_000);
    expect(summary.refused).toEqual(['dau-slope-001']);
    expect(Object.keys(summary.perAsset)).toContain('lg-bridge-001');
    expect(published.some((p) => p.topic.startsWith('telemetry/lg-slope-001/'))).toBe(false);
  });

  it('ends when aborted, and keeps going through a broker that is not there yet', async () => {
    const controller = new AbortController();
    const port = (server.address() as AddressInfo).port;
    await new Promise<void>((resolve) => server.close(() => resolve()));
    const run = runSimulation(config, { url: `mqtt://127.0.0.1:${port}`, devices: 1, rate: 10, logger: silentLogger(), signal: controller.signal });
    // the broker comes up late: readings made meanwhile are queued and delivered
    await new Promise((r) => setTimeout(r, 300));
    server = net.createServer(broker.handle);
    server.listen(port, '127.0.0.1');
    await once(server, 'listening');
    await new Promise((r) => setTimeout(r, 2_500));
    controller.abort();
    const summary = await run;
    expect(summary.acknowledged).toBeGreaterThan(0);
    expect(published.filter((p) => p.topic.startsWith('telemetry/lg-bridge-001/')).length).toBe(summary.acknowledged);
  });
});
