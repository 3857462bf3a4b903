/**
 * The rules' part of a configuration reload (config-reload.ts does the reload): the outcome
 * types, the view of GET /api/v1/rules, and the alert stage's part of applying it (resolving the
 * alerts of removed, disabled and changed rules).
 */
import type { RuleConfig } from '../rules/config.js';
import type { ReloadChanges } from '../rules/rule-runner.js';
import type { RuleEvent } from '../rules/types.js';
import type { ConfigError } from './config/load.js';

/** What started a reload; `registry`: another instance changed the cluster's registry (PostgreSQL). */
export type ReloadTrigger = 'api' | 'signal' | 'file' | 'registry';

/** The reload's cause as alert timelines name it. */
export function reloadCause(trigger: ReloadTrigger): string {
  return { api: 'API reload', signal: 'SIGHUP reload', file: 'file change reload', registry: 'registry change on another instance' }[trigger];
}

/** `GET /api/v1/rules`: the rules in force and the error of the last reload, if it failed. */
export interface RulesView {
  rules: readonly RuleConfig[];
  loaded_at: string;
  last_reload: { at: string; trigger: ReloadTrigger; ok: boolean } | null;
  error: { at: string; trigger: ReloadTrigger; message: string; errors: ConfigError[] } | null;
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
  const how = reloadCause(trigger);
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
      events.push({
        ruleId: ref.ruleId,
        assetId: ref.assetId,
        sensorId: ref.sensorId,
        metric: alert.metric,
        level: null,
        value: alert.value,
        threshold: alert.threshold,
        ts: now,
        reason: 'rule_changed',
      });
    }
    alerts.handle(events);
    resolved += events.length;
  }
  return resolved;
}
