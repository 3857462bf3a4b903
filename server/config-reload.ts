/**
 * Reloads the configuration without a restart: on a change in the configuration directory, on
 * SIGHUP (cli.ts) and on `POST /api/v1/config/reload` (alias `POST /api/v1/rules/reload`). The
 * whole directory is read and validated as `watchpost check` does (config/load.ts); a
 * configuration with any error is refused with every error listed, and the one in force stays.
 *
 * A valid configuration is applied at once (synchronously, so no reading or notification sees
 * half of it): every section except the listeners (`broker` host/port/tls, `api` host/port/tls),
 * `storage` and `cluster`, which are logged as needing a restart; so are the other broker and
 * api settings that are read when the listeners start (limits, body size, public URL), the
 * `console` section and the device `adapters`. What applying means for connections and alerts is the caller's `apply`
 * (the composition root owns the parts); this module decides, diffs and records.
 */
import { watch, type FSWatcher } from 'node:fs';
import type { Clock } from '../lib/clock.js';
import type { Logger } from '../lib/logger.js';
import type { ReloadChanges, RuleRunner } from '../rules/rule-runner.js';
import { formatErrors, loadConfig, type ConfigError, type LoadResult } from './config/load.js';
import type { WatchpostConfig } from './config/schema.js';
import type { ReloadTrigger, RulesView } from './rules-reload.js';

export type { ReloadTrigger } from './rules-reload.js';

/** Ids added, removed and changed in one list section. */
export interface ItemChanges {
  added: string[];
  removed: string[];
  changed: string[];
}

/** What a reload changed, for the parts to apply and the API to report. */
export interface ConfigChanges {
  /** Sections (or fields) that differ from the running configuration. */
  sections: string[];
  /** Changed settings that take effect only after a restart. */
  restartNeeded: string[];
  assets: ItemChanges;
  devices: ItemChanges;
  rules: ReloadChanges;
}

export type ConfigReloadOutcome = { ok: true; changed: boolean; rules: number; changes: ConfigChanges } | { ok: false; errors: ConfigError[] };

export interface ConfigReloaderDeps {
  configDir: string;
  runner: RuleRunner;
  clock: Clock;
  logger: Logger;
  /** The configuration in force. */
  current: () => WatchpostConfig;
  /** Swaps the parts to `next` (the rules are already replaced); must not throw for a valid configuration. */
  apply: (next: WatchpostConfig, changes: ConfigChanges, trigger: ReloadTrigger) => void;
  load?: (dir: string) => LoadResult;
}

export interface ConfigReloaderOptions {
  /** Reload when a file in the configuration directory changes. */
  watch: boolean;
  /** Changes closer together than this are one reload (editors write in several steps). */
  debounceMs: number;
}

export const DEFAULT_CONFIG_RELOADER_OPTIONS: ConfigReloaderOptions = { watch: true, debounceMs: 500 };

const NO_RULE_CHANGES: ReloadChanges = { added: [], removed: [], disabled: [], changed: [], updated: [], unmatched: [] };

/** Sections read only at start (adapters: their listeners and device mappings are built once). */
const RESTART_SECTIONS = ['storage', 'cluster', 'console', 'adapters'] as const;
/** Fields of `api` applied on reload (read per request); the others are read when the listener starts. */
const RELOADED_API_FIELDS = new Set(['tokens']);

const same = (a: unknown, b: unknown): boolean => JSON.stringify(a) === JSON.stringify(b);

/** Ids added, removed and changed between two lists of items with ids. */
export function diffItems<T extends { id: string }>(before: readonly T[], after: readonly T[]): ItemChanges {
  const old = new Map(before.map((item) => [item.id, item]));
  const changes: ItemChanges = { added: [], removed: [], changed: [] };
  const seen = new Set<string>();
  for (const item of after) {
    seen.add(item.id);
    const previous = old.get(item.id);
    if (!previous) changes.added.push(item.id);
    else if (!same(previous, item)) changes.changed.push(item.id);
  }
  for (const id of old.keys()) if (!seen.has(id)) changes.removed.push(id);
  return changes;
}

/** The sections that differ, and which of those differences need a restart. */
export function diffSections(before: WatchpostConfig, after: WatchpostConfig): { sections: string[]; restartNeeded: string[] } {
  const a = before as unknown as Record<string, unknown>;
  const b = after as unknown as Record<string, unknown>;
  const sections = [...new Set([...Object.keys(a), ...Object.keys(b)])].filter((s) => !same(a[s], b[s])).sort();
  const restartNeeded: string[] = [];
  for (const section of sections) {
    if ((RESTART_SECTIONS as readonly string[]).includes(section)) restartNeeded.push(section);
    else if (section === 'broker' || section === 'api') {
      const x = (a[section] ?? {}) as Record<string, unknown>;
      const y = (b[section] ?? {}) as Record<string, unknown>;
      for (const field of [...new Set([...Object.keys(x), ...Object.keys(y)])].sort()) {
        if (same(x[field], y[field]) || (section === 'api' && RELOADED_API_FIELDS.has(field))) continue;
        restartNeeded.push(`${section}.${field}`);
      }
    }
  }
  return { sections, restartNeeded };
}

export class ConfigReloader {
  private readonly log: Logger;
  private readonly options: ConfigReloaderOptions;
  private watcher?: FSWatcher;
  private timer?: NodeJS.Timeout;
  private loadedAt: number;
  private lastReload: RulesView['last_reload'] = null;
  private lastError: RulesView['error'] = null;

  constructor(
    private readonly deps: ConfigReloaderDeps,
    options: Partial<ConfigReloaderOptions> = {},
  ) {
    this.options = { ...DEFAULT_CONFIG_RELOADER_OPTIONS, ...options };
    this.log = deps.logger.child({ module: 'config-reload' });
    this.loadedAt = deps.clock.now();
  }

  start(): void {
    if (!this.options.watch || this.watcher) return;
    try {
      this.watcher = watch(this.deps.configDir, { persistent: false }, (_event, name) => {
        // Only configuration files: the registry's temporary file is renamed into place as registry.yaml.
        if (name === null || /\.ya?ml$/.test(name)) this.schedule();
      });
      this.watcher.on('error', (err) => {
        this.log.warn({ err, dir: this.deps.configDir }, 'watching the configuration directory failed; reload with SIGHUP or the API');
        this.watcher?.close();
        this.watcher = undefined;
      });
    } catch (err) {
      this.log.warn({ err, dir: this.deps.configDir }, 'cannot watch the configuration directory; reload with SIGHUP or the API');
    }
  }

  stop(): void {
    this.watcher?.close();
    this.watcher = undefined;
    if (this.timer) clearTimeout(this.timer);
    this.timer = undefined;
  }

  private schedule(): void {
    if (this.timer) clearTimeout(this.timer);
    this.timer = setTimeout(() => {
      this.timer = undefined;
      try {
        this.reload('file');
      } catch (err) {
        this.log.error({ err }, 'configuration reload failed; the configuration in force is unchanged');
      }
    }, this.options.debounceMs);
    this.timer.unref();
  }

  /** Reads and validates the configuration directory and applies it if it is valid. */
  reload(trigger: ReloadTrigger): ConfigReloadOutcome {
    const result = (this.deps.load ?? loadConfig)(this.deps.configDir);
    if (!result.ok) return this.refuse(trigger, result.errors);
    return this.applyConfig(result.config, trigger);
  }

  /** Records a refused reload (also one the registry API refused before writing). */
  refuse(trigger: ReloadTrigger, errors: ConfigError[]): ConfigReloadOutcome {
    const at = new Date(this.deps.clock.now()).toISOString();
    const message = `${errors.length} error${errors.length === 1 ? '' : 's'} in ${this.deps.configDir}; the configuration in force is unchanged`;
    this.lastError = { at, trigger, message, errors };
    this.lastReload = { at, trigger, ok: false };
    this.log.error({ trigger, errors: errors.length, detail: formatErrors(errors) }, `configuration reload refused: ${message}`);
    return { ok: false, errors };
  }

  /** Applies a configuration already validated as a whole. */
  applyConfig(next: WatchpostConfig, trigger: ReloadTrigger): ConfigReloadOutcome {
    const now = this.deps.clock.now();
    const current = this.deps.current();
    const runner = this.deps.runner;
    this.lastError = null;
    this.lastReload = { at: new Date(now).toISOString(), trigger, ok: true };
    const { sections, restartNeeded } = diffSections(current, next);
    if (sections.length === 0) {
      this.log.debug({ trigger }, 'configuration unchanged');
      return { ok: true, changed: false, rules: runner.rules.size, changes: { sections, restartNeeded, assets: diffItems([], []), devices: diffItems([], []), rules: NO_RULE_CHANGES } };
    }
    const rules = same(next.rules, runner.configs) ? NO_RULE_CHANGES : runner.replace(next.rules, now);
    const changes: ConfigChanges = { sections, restartNeeded, assets: diffItems(current.assets, next.assets), devices: diffItems(current.devices, next.devices), rules };
    this.deps.apply(next, changes, trigger);
    this.loadedAt = now;
    this.log.info(
      {
        trigger,
        sections,
        rules: runner.rules.size,
        rules_added: rules.added,
        rules_removed: rules.removed,
        rules_changed: rules.changed,
        assets_added: changes.assets.added.length,
        assets_removed: changes.assets.removed,
        assets_changed: changes.assets.changed.length,
        devices_added: changes.devices.added.length,
        devices_removed: changes.devices.removed,
        devices_changed: changes.devices.changed.length,
      },
      'configuration reloaded',
    );
    if (restartNeeded.length > 0) {
      this.log.warn({ settings: restartNeeded }, `configuration settings ${restartNeeded.join(', ')} changed on disk; they take effect after a restart`);
    }
    return { ok: true, changed: true, rules: runner.rules.size, changes };
  }

  view(): RulesView {
    return { rules: this.deps.runner.configs, loaded_at: new Date(this.loadedAt).toISOString(), last_reload: this.lastReload, error: this.lastError };
  }
}
