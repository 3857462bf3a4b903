/**
 * `npm run bench -- <scenario>`: benchmark scripts that print figures (never assertions).
 * Benchmarks are not tests: CI does not run them.
 */
const SCENARIOS: Record<string, { describe: string; load: () => Promise<unknown> }> = {
  'ingest-qos1': {
    describe: 'QoS 1, one reading per message, embedded broker -> InfluxDB; readings/s until queryable, lost',
    load: () => import('./ingest-bench.js').then((m) => m.main('ingest-qos1')),
  },
  'ingest-batch': { describe: 'the same with 100 readings per message', load: () => import('./ingest-bench.js').then((m) => m.main('ingest-batch')) },
  ceiling: { describe: 'the same points written straight to InfluxDB by a minimal batching writer', load: () => import('./ingest-bench.js').then((m) => m.main('ceiling')) },
  'external-broker': { describe: 'ingest through mosquitto with shared subscriptions, 1 and 2 Watchpost instances', load: () => import('./external-bench.js').then((m) => m.main()) },
  'alert-latency': { describe: 'PUBLISH of a threshold crossing to webhook arrival, p50/p99/max, under 20,000 readings/s', load: () => import('./latency-bench.js').then((m) => m.main()) },
  connections: { describe: 'RSS and CPU with 10,000 connected devices each publishing every 10 s', load: () => import('./connections-bench.js').then((m) => m.main()) },
  'spool-drain': {
    describe: 'InfluxDB down for OUTAGE_S (30) under live QoS 1 load: backlog, readings/s drained after it is back, lost',
    load: () => import('./spool-drain-bench.js').then((m) => m.main()),
  },
  spool: { describe: 'the durable spool on this disk: appends/s with group commit (fsync always and interval), drain rate', load: () => import('./spool-bench.js').then((m) => m.main()) },
  rules: { describe: 'rule evaluation cost per reading, 1,000 rules over 10,000 sensors', load: () => import('./rules-bench.js') },
  'rules-signals': { describe: 'the complete rule language: cost per reading by signal and rule kind, 1,000 rules, 10,000 sensors', load: () => import('./rules-signals.js') },
  'rules-memory': { describe: 'rule state memory per series, by signal and rule kind', load: () => import('./rules-memory.js') },
  console: {
    describe: "the duty console in Chromium: the board's first render with 1,000 open alerts, and a new alarm's PUBACK to on screen, under 10,000 readings/s",
    load: () => import('./console-bench.js').then((m) => m.main()),
  },
  cluster: {
    describe:
      'cluster mode (PostgreSQL, RabbitMQ, mosquitto $share) with 1, 2 and 3 instances: readings/s queryable and judged, alert latency, as ratios to one instance without a cluster; hand-over time after kill -9',
    load: () => import('./cluster-bench.js').then((m) => m.main()),
  },
  adapters: {
    describe:
      'GB/T 26875.3 over TCP, Sparkplug B edge nodes and HTTP push into InfluxDB: frames or messages/s and readings/s until queryable, lost, ratio to the ceiling; fire-alarm latency under GB/T 26875.3 load',
    load: () => import('./adapters-suite.js').then((m) => m.main()),
  },
};

const name = process.argv[2];
if (!name || !(name in SCENARIOS)) {
  process.stderr.write(
    `usage: npm run bench -- <scenario>\n\nscenarios:\n${Object.entries(SCENARIOS)
      .map(([n, s]) => `  ${n.padEnd(12)} ${s.describe}`)
      .join('\n')}\n`,
  );
  process.exit(name ? 2 : 0);
}
await SCENARIOS[name]!.load();
