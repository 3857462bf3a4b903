/**
 * The ceiling: the same points the ingest benchmarks produce, written straight to InfluxDB 1.x by
 * a minimal batching writer (5000-line batches, `concurrency` requests in flight). Reports to the
 * parent process how many points were written and how long it took.
 */
export interface CeilingJob {
  url: string;
  database: string;
  series: number;
  pointsPerSeries: number;
  batchSize: number;
  concurrency: number;
  t0: number;
}

async function main(): Promise<void> {
  const job = JSON.parse(process.argv[2]!) as CeilingJob;
  const endpoint = `${job.url}/write?db=${encodeURIComponent(job.database)}&precision=ms`;
  const total = job.series * job.pointsPerSeries;
  let produced = 0;
  const nextBatch = (): string | undefined => {
    if (produced >= total) return undefined;
    const lines: string[] = [];
    const end = Math.min(total, produced + job.batchSize);
    for (let i = produced; i < end; i++) {
      const s = i % job.series;
      const n = Math.floor(i / job.series);
      lines.push(`load,asset_id=bench-${s},asset_type=bench,sensor_id=s1,street=bench-street value=${(n % 1000) / 10} ${job.t0 + n}`);
    }
    produced = end;
    return lines.join('\n');
  };
  const started = performance.now();
  let written = 0;
  const worker = async () => {
    for (let body = nextBatch(); body !== undefined; body = nextBatch()) {
      const res = await fetch(endpoint, { method: 'POST', body });
      if (res.status !== 204) throw new Error(`write failed: HTTP ${res.status} ${await res.text()}`);
      written += body.split('\n').length;
    }
  };
  await Promise.all(Array.from({ length: job.concurrency }, worker));
  process.send?.({ written, ms: performance.now() - started });
  process.disconnect?.();
}

await main();
