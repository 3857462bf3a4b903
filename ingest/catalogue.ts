/**
 * Lookups over the configured assets, sensors and metric catalogue. A configuration reload
 * swaps the contents in place (`replace`), so every holder sees the new catalogue at once.
 */
import type { AssetConfig, MetricConfig } from './config.js';

export interface AssetEntry {
  id: string;
  type: string;
  name: string;
  street: string;
  location?: [number, number];
  /** undefined: any sensor id is accepted. Otherwise sensor id -> allowed metrics (undefined = any). */
  sensors?: Map<string, ReadonlySet<string> | undefined>;
}

export class Catalogue {
  private assets = new Map<string, AssetEntry>();
  private metrics: Readonly<Record<string, MetricConfig>> = {};

  constructor(assets: readonly AssetConfig[], metrics: Readonly<Record<string, MetricConfig>>) {
    this.replace(assets, metrics);
  }

  /** The catalogue of a new configuration, swapped in whole. */
  replace(assets: readonly AssetConfig[], metrics: Readonly<Record<string, MetricConfig>>): void {
    const next = new Map<string, AssetEntry>();
    for (const a of assets) {
      next.set(a.id, {
        id: a.id,
        type: a.type,
        name: a.name,
        street: a.street,
        location: a.location,
        sensors: a.sensors && new Map(a.sensors.map((s) => [s.id, s.metrics && new Set(s.metrics)])),
      });
    }
    this.assets = next;
    this.metrics = metrics;
  }

  asset(id: string): AssetEntry | undefined {
    return this.assets.get(id);
  }

  allAssets(): IterableIterator<AssetEntry> {
    return this.assets.values();
  }

  metric(name: string): MetricConfig | undefined {
    return this.metrics[name];
  }

  unit(name: string): string {
    return this.metrics[name]?.unit ?? '';
  }
}
