/** The newest value of every (asset, sensor, metric), for the assets API. Bounded by the catalogue. */
import type { Reading } from './reading.js';

export interface LatestValue {
  value: number;
  ts: number;
}

export class LatestReadings {
  /** asset id -> "sensor_id/metric" -> latest value */
  private readonly byAsset = new Map<string, Map<string, LatestValue>>();

  update(readings: readonly Reading[]): void {
    for (const r of readings) {
      let series = this.byAsset.get(r.assetId);
      if (!series) {
        series = new Map();
        this.byAsset.set(r.assetId, series);
      }
      const key = `${r.sensorId}/${r.metric}`;
      const prev = series.get(key);
      if (!prev || prev.ts <= r.ts) series.set(key, { value: r.value, ts: r.ts });
    }
  }

  forAsset(assetId: string): Array<{ sensor_id: string; metric: string; value: number; ts: string }> {
    const series = this.byAsset.get(assetId);
    if (!series) return [];
    return [...series.entries()].map(([key, v]) => {
      const [sensor_id, metric] = key.split('/') as [string, string];
      return { sensor_id, metric, value: v.value, ts: new Date(v.ts).toISOString() };
    });
  }
}
