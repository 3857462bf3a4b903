/**
 * Reloads the rules without a restart: on a change in the configuration directory, on SIGHUP
 * (cli.ts) and on `POST /api/v1/rules/reload` (api.ts). The whole directory is read and validated
 * as at start; a configuration with any error is refused with every error listed, and the rules
 * in force keep running. Only the `rules` section takes effect: rules may name only escalations,
 * assets and devices of the running configuration (those are read at start), and changes to other
 * sections are logged as needing a restart.
 *
 * The alert stage's part of a reload (resolving the alerts of removed rules) is the caller's
 * `onReloaded`; this module only decides and records.
 */
import { watch, type FSWatcher } from 'node:fs';
import type { Clock } from '../lib/clock.js';
import type { Logger } from '../lib/logger.js';
import type { RuleConfig } from '../rules/config.js';
import type { ReloadChanges, RuleRunner } from '../rules/rule-runner.js';
import type { RuleEvent } from '../rules/types.js';
import { formatErrors, loadConfig, type ConfigError, type LoadResult } from './config/load.js';
import type { WatchpostConfig } from './config/schema.js';

export type ReloadTrigger = 'api' | 'signal' | 'file';

export type ReloadOutcome =
  | { ok: true; changed: boolean; rules: number; changes: ReloadChanges }
  | { ok: false; errors: ConfigError[] };

/** `GET /api/v1/rules`: the rules in force and the error of the last reload, if it failed. */
export interface RulesView {
  rules: readonly RuleConfig[];
  loaded_at: string;
  last_reload: { at: string; trigger: ReloadTrigger; ok: boolean } | null;
  error: { at: string; trigger: ReloadTrigger; message: string; errors: ConfigError[] } | null;
}

export interface RulesReloaderDeps {
  configDir: string;
  /** The configuration the platform started with (escalations, assets, devices in force). */
  running: WatchpostConfig;
  runner: RuleRunner;
  clock: Clock;
  logger: Logger;
  /** Applies a reload's consequences (resolving alerts of removed rules). */
  onReloaded: (changes: ReloadChanges, trigger: ReloadTrigger) => void;
  load?: (dir: string) => LoadResult;
}

export interface RulesReloaderOptions {
  /** Reload when a file in the configuration directory changes. */
  watch: boolean;
  /** Changes closer together than this are one reload (editors write in several steps). */
  debounceMs: number;
}

export const DEFAULT_RELOADER_OPTIONS: RulesReloaderOptions = { watch: true, debounceMs: 500 };

const NO_CHANGES: ReloadChanges = { added: [], removed: [], disabled: [], changed: [], updated: [], unmatched: [] };

export class RulesReloader {
  private readonly log: Logger;
  private readonly options: RulesReloaderOptions;
  private watcher?: FSWatcher;
  private timer?: NodeJS.Timeout;
  private loadedAt: number;
  private lastReload: RulesView['last_reload'] = null;
  private lastError: RulesView['error'] = null;

  constructor(
    private readonly deps: RulesReloaderDeps,
    options: Partial<RulesReloaderOptions> = {},
  ) {
    this.options = { ...DEFAULT_RELOADER_OPTIONS, ...options };
    this.log = deps.logger.child({ module: 'rules-reload' });
    this.loadedAt = deps.clock.now();
  }

  start(): void {
    if (!this.options.watch || this.watcher) return;
    try {
      this.watcher = watch(this.deps.configDir, { persistent: false }, () => this.schedule());
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
        this.log.error({ err }, 'rule reload failed; the rules in force are unchanged');
      }
    }, this.options.debounceMs);
    this.timer.unref();
  }

  /** Reads and validates the configuration directory and swaps in its rules if they are valid. */
  reload(trigger: ReloadTrigger): ReloadOutcome {
    const now = this.deps.clock.now();
    const at = new Date(now).toISOString();
    const result = (this.deps.load ?? loadConfig)(this.deps.configDir);
    const errors = result.ok ? this.compatibility(result.config) : result.errors;
    if (!result.ok || errors.length > 0) {
      const message = `${errors.length} error${errors.length === 1 ? '' : 's'} in ${this.deps.configDir}; the rules in force are unchanged`;
      this.lastError = { at, trigger, message, errors };
      this.lastReload = { at, trigger, ok: false };
      this.log.error({ trigger, errors: errors.length, detail: formatErrors(errors) }, `rule reload refused: ${message}`);
      return { ok: false, errors };
    }
    const config = result.config;
    this.warnAboutOtherSections(config);
    this.lastError = null;
    this.lastReload = { at, trigger, ok: true };
    const runner = this.deps.runner;
    if (JSON.stringify(config.rules) === JSON.stringify(runner.configs)) {
      this.log.debug({ trigger }, 'rules unchanged');
      return { ok: true, changed: false, rules: runner.rules.size, changes: NO_CHANGES };
    }
    const changes = runner.replace(config.rules, now);
    this.loadedAt = now;
    this.log.info(
      {
        trigger,
        rules: runner.rules.size,
        added: changes.added,
        removed: changes.removed,
        disabled: changes.disabled,
        changed: changes.changed,
        updated: changes.updated,
        no_longer_covered: changes.unmatched.length,
      },
      'rules reloaded',
    );
    this.deps.onReloaded(changes, trigger);
    return { ok: true, changed: true, rules: runner.rules.size, changes };
  }

  view(): RulesView {
    return { rules: this.deps.runner.configs, loaded_at: new Date(this.loadedAt).toISOString(), last_reload: this.lastReload, error: this.lastError };
  }

  /** Rules may only refer to what the running platform has: those sections are read at start. */
  private compatibility(config: WatchpostConfig): ConfigError[] {
    const running = this.deps.running;
    const escalations = new Set(running.escalations.map((e) => e.id));
    const assets = new Set(running.assets.map((a) => a.id));
    const devices = new Set(running.devices.map((d) => d.id));
    const errors: ConfigError[] = [];
    const file = this.deps.configDir;
    config.rules.forEach((rule, i) => {
      const at = `rules[${i}] (${rule.id})`;
      const refs = rule.escalation === undefined ? [] : typeof rule.escalation === 'string' ? [[undefined, rule.escalation] as const] : Object.entries(rule.escalation);
      for (const [level, id] of refs) {
        if (id !== undefined && !escalations.has(id)) {
          errors.push({ file, path: `${at}.escalation${level ? `.${level}` : ''}`, message: `escalation "${id}" is not in the running configuration (escalations are read at start: restart to add one)` });
        }
      }
      for (const id of rule.match.asset_id ?? []) {
        if (!assets.has(id)) errors.push({ file, path: `${at}.match.asset_id`, message: `asset "${id}" is not in the running configuration (assets are read at start: restart to add one)` });
      }
      if (rule.kind === 'offline') {
        for (const id of rule.match.device_id ?? []) {
          if (!devices.has(id)) errors.push({ file, path: `${at}.match.device_id`, message: `device "${id}" is not in the running configuration (devices are read at start: restart to add one)` });
        }
      }
    });
    return errors;
  }

  private warnAboutOtherSections(config: WatchpostConfig): void {
    const running = this.deps.running as unknown as Record<string, unknown>;
    const next = config as unknown as Record<string, unknown>;
    const changed = Object.keys(next).filter((section) => section !== 'rules' && JSON.stringify(next[section]) !== JSON.stringify(running[section]));
    if (changed.length > 0) {
      this.log.warn({ sections: changed }, `configuration sections ${changed.join(', ')} changed on disk; only rules are reloaded, the others take effect after a restart`);
    }
  }
}

/** What applying a reload needs from the alert stage; the AlertService satisfies it. */
export interface ReloadAlertsPort {
  resolveForRemovedRule(ruleId: string, options?: { reason?: string; note?: string }): number;
  openAlerts(): Array<{ rule_id: string; asset_id: string; sensor_id: string; metric: string; value: number; threshold: number | [number, number] | null }>;
  handle(events: readonly RuleEvent[]): void;
}

/**
 * The alert stage's part of a reload: alerts of removed, disabled or changed rules are resolved
 * with that reason (`rule_removed`, `rule_disabled`, `rule_changed`), and alerts a kept rule no
 * longer covers get a clearing rule event with reason `rule_changed`. Returns how many alerts
 * were resolved by rule id.
 */
export function resolveAfterReload(alerts: ReloadAlertsPort, changes: ReloadChanges, trigger: ReloadTrigger, now: number): number {
  let resolved = 0;
  const how = `${trigger === 'api' ? 'API' : trigger === 'signal' ? 'SIGHUP' : 'file change'} reload`;
  for (const id of changes.removed) resolved += alerts.resolveForRemovedRule(id, { reason: 'rule_removed', note: `rule "${id}" was removed from the configuration (${how})` });
  for (const id of changes.disabled) resolved += alerts.resolveForRemovedRule(id, { reason: 'rule_disabled', note: `rule "${id}" was disabled (${how})` });
  for (const id of changes.changed) {
    resolved += alerts.resolveForRemovedRule(id, { reason: 'rule_changed', note: `rule "${id}" changed its kind, signal, level or conditions and is evaluated afresh (${how})` });
  }
  if (changes.unmatched.length > 0) {
    const open = alerts.openAlerts();
    const events: RuleEvent[] = [];
    for (const ref of changes.unmatched) {
      const alert = open.find((a) => a.rule_id === ref.ruleId && a.asset_id === ref.assetId && a.sensor_id === ref.sensorId);
      if (!alert) continue;
      events.push({ ruleId: ref.ruleId, assetId: ref.assetId, sensorId: ref.sensorId, metric: alert.metric, level: null, value: alert.value, threshold: alert.threshold, ts: now, reason: 'rule_changed' });
    }
    alerts.handle(events);
    resolved += events.length;
  }
  return resolved;
}
