/**
 * A run of the device simulators: the configuration's devices publishing their assets' sensors over
 * real MQTT with their own credentials (./connection.ts), timestamps and values from ./clock.ts,
 * ./signals.ts and the scenario (./scenarios.ts), `rate` readings per second per sensor, until the
 * run's end or an abort; then a summary (./report.ts).
 *
 * A run with a length ends once every reading is acknowledged. Past its planned end it waits for
 * the rest only while a connection is up and PUBACKs keep coming (endGraceMs, at most overrunMs);
 * what is left then counts as errors: readings never sent or never acknowledged.
 *
 * Load mode: `devices` above the number of configured publishing devices adds replicas of them
 * (round robin) with their own seeds, timestamps offset by the replica number in milliseconds so
 * that their points do not overwrite each other; `connections` puts several simulated devices on
 * one connection (by default each has its own). The scenario plays on the first copy only.
 */
import { planTime } from './clock.js';
import type { SimulatorConfig } from './config.js';
import { SimulatedConnection, type RunContext, type Stats, type VirtualDevice } from './connection.js';
import { SimulationError } from './errors.js';
import { DEFAULT_SIMULATION_OPTIONS, type SimulationOptions } from './options.js';
import { planSimulation, replicaPlan } from './plan.js';
import type { SimulationProgress, SimulationSummary } from './report.js';
import { scenarioByName } from './scenarios.js';
import { hashSeed, mulberry32 } from './signals.js';

// The simulators' interface in one place, for the command line and the tests.
export { defaultBrokerUrl, type SimulatorConfig } from './config.js';
export { DEFAULT_SIMULATION_OPTIONS, type SimulationOptions } from './options.js';
export { planSimulation, type DevicePlan, type SensorPlan, type SeriesPlan, type SimulationPlan } from './plan.js';
export { readingAt, simulatedReadings, type ReadingPayload, type SimulatedReading } from './readings.js';
export { formatProgress, formatSummary, type RejectedMessage, type SimulationProgress, type SimulationSummary } from './report.js';

/** Spreads the simulated devices over connections: each connection carries devices of one id. */
function assignConnections(devices: VirtualDevice[], wanted: number | undefined): Array<{ deviceId: string; secret: string; devices: VirtualDevice[] }> {
  if (wanted === undefined) return devices.map((d) => ({ deviceId: d.plan.id, secret: d.plan.secret, devices: [d] }));
  const byId = new Map<string, VirtualDevice[]>();
  for (const d of devices) byId.set(d.plan.id, [...(byId.get(d.plan.id) ?? []), d]);
  const ids = [...byId.keys()];
  const total = Math.max(wanted, ids.length);
  const out: Array<{ deviceId: string; secret: string; devices: VirtualDevice[] }> = [];
  ids.forEach((id, i) => {
    const group = byId.get(id)!;
    const share = Math.max(1, Math.min(group.length, Math.floor(total / ids.length) + (i < total % ids.length ? 1 : 0)));
    for (let c = 0; c < share; c++) {
      out.push({ deviceId: id, secret: group[0]!.plan.secret, devices: group.filter((_, j) => j % share === c) });
    }
  });
  return out;
}

/**
 * Runs the device simulators until every reading of the run is published and acknowledged (a run
 * with a length), or `signal` aborts; then disconnects every device cleanly and returns what was
 * sent.
 */
export async function runSimulation(config: SimulatorConfig, options: SimulationOptions): Promise<SimulationSummary> {
  const log = options.logger.child({ module: 'simulator' });
  const seed = options.seed ?? DEFAULT_SIMULATION_OPTIONS.seed;
  if (options.devices !== undefined && !(Number.isInteger(options.devices) && options.devices >= 1)) {
    throw new SimulationError('invalid_option', `devices must be a whole number ≥ 1 (got ${options.devices})`);
  }
  if (options.connections !== undefined && !(Number.isInteger(options.connections) && options.connections >= 1)) {
    throw new SimulationError('invalid_option', `connections must be a whole number ≥ 1 (got ${options.connections})`);
  }
  const scenario = scenarioByName(options.scenario ?? DEFAULT_SIMULATION_OPTIONS.scenario);
  const wallStart = Date.now();
  const time = planTime({
    now: wallStart,
    speed: options.speed ?? DEFAULT_SIMULATION_OPTIONS.speed,
    rate: options.rate ?? DEFAULT_SIMULATION_OPTIONS.rate,
    duration: options.duration,
    length: scenario.length,
    start: options.start,
    history: scenario.history,
  });

  const configured = config.devices.filter((d) => d.assets.length > 0).length;
  const plan = planSimulation(config, { ...options, seed, devices: options.devices !== undefined && options.devices <= configured ? options.devices : undefined });
  for (const warning of plan.warnings) log.warn(warning);

  // Simulated devices: the configured ones first, then replicas of them round robin (load mode).
  const jitter = mulberry32(hashSeed(seed, 'phase'));
  const phase = () => Math.floor(jitter() * Math.min(time.intervalMs, 1000));
  const virtual: VirtualDevice[] = plan.devices.map((d) => ({ plan: d, tsOffset: 0, phaseMs: phase(), next: 0, historySent: false }));
  const wanted = options.devices ?? plan.devices.length;
  const assetsOf = new Map(config.devices.map((d) => [d.id, d.assets]));
  for (let i = plan.devices.length; i < wanted; i++) {
    const base = plan.devices[i % plan.devices.length]!;
    const replica = Math.floor(i / plan.devices.length);
    virtual.push({ plan: replicaPlan(config, base, assetsOf.get(base.id) ?? [], seed, replica), tsOffset: replica, phaseMs: phase(), next: 0, historySent: false });
  }
  if (wanted > plan.devices.length) {
    log.info({ configured: plan.devices.length, simulated: wanted }, 'load mode: replicas of the configured devices, timestamps offset by the replica number in ms');
  }

  const stats: Stats = {
    sent: 0,
    acknowledged: 0,
    failed: 0,
    connectFailures: 0,
    rejected: [],
    rejectedTotal: 0,
    perAsset: {},
    refused: [],
    frozen: false,
    firstTs: undefined,
    lastTs: undefined,
    unsent: 0,
  };
  const ctx: RunContext = { url: options.url, time, wallStart, seed, log, stats };
  const outagesOf = new Map(plan.devices.map((d) => [d.id, d.outages]));
  const connections = assignConnections(virtual, options.connections).map(
    (c) => new SimulatedConnection(c.deviceId, c.secret, c.devices, c.devices.some((d) => d.tsOffset === 0) ? (outagesOf.get(c.deviceId) ?? []) : [], ctx),
  );

  log.info(
    {
      scenario: plan.scenario.name,
      url: options.url,
      devices: virtual.length,
      connections: connections.length,
      sensors: virtual.reduce((n, d) => n + d.plan.sensors.length, 0),
      rate: time.rate,
      speed: time.speed,
      step_s: time.stepMs / 1000,
      from: new Date(time.start).toISOString(),
      duration_s: time.durationS ?? null,
      seed,
      expected: plan.scenario.expected.map((e) => `${e.rule_id} ${e.levels.join('→')} on ${e.asset_id}/${e.sensor_id}`),
    },
    `simulation starting: ${plan.scenario.description}`,
  );

  const effectTimers = plan.effects.map((e) =>
    setTimeout(() => log.info({ asset_id: e.assetId, sensor_id: e.sensorId, metric: e.metric, target: e.target }, `scenario: ${e.effect.note}`), (e.effect.at * 1000) / time.speed),
  );
  const progress = (): SimulationProgress => ({
    elapsedMs: Date.now() - wallStart,
    sent: stats.sent,
    acknowledged: stats.acknowledged,
    errors: stats.failed + stats.connectFailures + stats.refused.length,
    inflight: connections.reduce((n, c) => n + c.pending, 0),
    connected: connections.filter((c) => c.connected).length,
    connections: connections.length,
    simulatedTs: stats.lastTs,
  });
  const progressTimer = options.onProgress ? setInterval(() => options.onProgress!(progress()), DEFAULT_SIMULATION_OPTIONS.progressIntervalMs) : undefined;

  try {
    for (const c of connections) c.start();
    await new Promise<void>((resolve) => {
      // The last reading falls due at the planned end plus its device's phase (under a second).
      const lastPhaseMs = virtual.reduce((max, d) => Math.max(max, d.phaseMs), 0);
      const plannedEnd = time.durationS === undefined ? undefined : wallStart + time.durationS * 1000 + lastPhaseMs;
      let acknowledged = stats.acknowledged;
      let lastAckAt = Date.now();
      const check = setInterval(() => {
        if (plannedEnd === undefined) return; // open-ended: until aborted
        const now = Date.now();
        if (stats.acknowledged !== acknowledged) [acknowledged, lastAckAt] = [stats.acknowledged, now];
        if (connections.every((c) => c.finished() && c.pending === 0)) return finish();
        if (now < plannedEnd) return;
        // Past the planned end, readings still to go can only get through a live connection: wait
        // for them while acknowledgements keep coming, within bounds; what is left counts as errors.
        const { endGraceMs, overrunMs } = DEFAULT_SIMULATION_OPTIONS;
        const live = connections.some((c) => c.connected);
        if (!live || now - Math.max(lastAckAt, plannedEnd) > endGraceMs || now > plannedEnd + overrunMs) finish();
      }, 50);
      function finish() {
        clearInterval(check);
        options.signal?.removeEventListener('abort', finish);
        resolve();
      }
      if (options.signal?.aborted) finish();
      else options.signal?.addEventListener('abort', finish, { once: true });
    });
  } finally {
    for (const timer of effectTimers) clearTimeout(timer);
    clearInterval(progressTimer);
    stats.unsent = connections.reduce((n, c) => n + c.unsent(), 0);
    await Promise.all(connections.map((c) => c.stop()));
    stats.frozen = true;
  }
  options.onProgress?.(progress());

  const unacknowledged = Math.max(0, stats.sent - stats.acknowledged - stats.failed);
  const summary: SimulationSummary = {
    scenario: plan.scenario.name,
    url: options.url,
    sent: stats.sent,
    acknowledged: stats.acknowledged,
    errors: stats.failed + unacknowledged + stats.unsent + stats.connectFailures + stats.refused.length,
    failed: stats.failed,
    unacknowledged,
    unsent: stats.unsent,
    connectFailures: stats.connectFailures,
    neverConnected: connections.filter((c) => !c.hasConnected).length,
    rejected: stats.rejected,
    rejectedTotal: stats.rejectedTotal,
    perAsset: stats.perAsset,
    refused: stats.refused,
    skipped: plan.skipped,
    devices: virtual.length,
    connections: connections.length,
    speed: time.speed,
    stepSeconds: time.stepMs / 1000,
    simulatedFrom: stats.firstTs === undefined ? null : new Date(stats.firstTs).toISOString(),
    simulatedTo: stats.lastTs === undefined ? null : new Date(stats.lastTs).toISOString(),
    durationMs: Date.now() - wallStart,
  };
  const { rejected: _rejected, perAsset: _perAsset, ...loggable } = summary;
  log.info(loggable, 'simulation finished');
  return summary;
}
