/**
 * `npm run bench -- adapters`: each device adapter into InfluxDB in turn, each with its own influxd
 * and Watchpost (bench/adapters-gb26875.ts: GB/T 26875.3 over TCP, with the fire-alarm latency
 * under its load; bench/adapters-bench.ts: Sparkplug B edge nodes and HTTP push), then the ceiling
 * of the same run: as many points as the largest adapter run written straight to a fresh influxd
 * by a minimal batching writer (bench/ingest-bench.ts). ADAPTERS=gb26875,sparkplug,http chooses
 * (default all three). Ends with one JSON line of every figure.
 */
import { main as sparkplugAndHttp } from './adapters-bench.js';
import { main as gb26875 } from './adapters-gb26875.js';
import { printTable } from './harness.js';
import { runCeiling } from './ingest-bench.js';

const ALL = ['gb26875', 'sparkplug', 'http'] as const;
type Adapter = (typeof ALL)[number];

export async function main(): Promise<void> {
  const chosen = (process.env.ADAPTERS ?? ALL.join(',')).split(',').filter(Boolean);
  for (const a of chosen) if (!(ALL as readonly string[]).includes(a)) throw new Error(`ADAPTERS: ${a} is not one of ${ALL.join(', ')}`);
  const figures: Record<string, unknown> = { scenario: 'adapters' };
  const rates: Array<[Adapter, number, number]> = []; // adapter, readings/s, readings acknowledged
  if (chosen.includes('gb26875')) {
    const f = await gb26875();
    for (const [k, v] of Object.entries(f)) if (k !== 'adapter') figures[k.startsWith('fire_alarm') ? k : `gb26875_${k}`] = v;
    rates.push(['gb26875', f.readings_per_s, f.readings_acked]);
  }
  const others = (['sparkplug', 'http'] as const).filter((a) => chosen.includes(a));
  if (others.length > 0) {
    for (const f of await sparkplugAndHttp([...others])) {
      for (const [k, v] of Object.entries(f)) if (k !== 'adapter') figures[`${f.adapter}_${k}`] = v;
      rates.push([f.adapter, f.readings_per_s, f.readings_acked]);
    }
  }
  const ceiling = await runCeiling(Math.max(100_000, ...rates.map(([, , acked]) => acked)));
  figures.ceiling_readings_per_s = ceiling.readings_per_s;
  for (const [adapter, perS] of rates) figures[`${adapter}_ratio_to_ceiling`] = Number((perS / ceiling.readings_per_s).toFixed(3));
  process.stdout.write('\nceiling (direct batched writes to InfluxDB, same run)\n');
  printTable([
    ['points', ceiling.points],
    ['readings/s', ceiling.readings_per_s],
    ...rates.map(([adapter, perS]): [string, unknown] => [`${adapter} ratio to ceiling`, Number((perS / ceiling.readings_per_s).toFixed(3))]),
  ]);
  process.stdout.write(`${JSON.stringify(figures)}\n`);
}
