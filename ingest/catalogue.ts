/** Lookups over the configured assets, sensors and metric catalogue, built once per configuration. */
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
  private readonly assets = new Map<string, AssetEntry>();

  constructor(
    assets: readonly AssetConfig[],
    private readonly metrics: Readonly<Record<string, MetricConfig>>,
  ) {
    for (const a of assets) {
      this.assets.set(a.id, {
        id: a.id,
        type: a.type,
        name: a.name,
        street: a.street,
        location: a.location,
        sensors: a.sensors && new Map(a.sensors.map((s) => [s.id, s.metrics && new Set(s.metrics)])),
      });
    }
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
