/**
 * Platform alerts: the ingest watchdog's signals (spool filling, ingest silent, storage writes
 * failing) become rule events of reserved rules on the pseudo-asset `watchpost`, handled by the
 * alert stage like any other alert (stored, published on alerts/{level}/watchpost, notified)
 * and routed to the escalation named `fallback` when one is configured.
 */
import type { RuleInfo } from '../alerts/alert-service.js';
import type { RuleEvent } from '../rules/types.js';
import type { WatchdogCheck, WatchdogSignal } from '../ingest/watchdog.js';

export const PLATFORM_ASSET_ID = 'watchpost';
export const FALLBACK_ESCALATION_ID = 'fallback';

const RULE_OF: Record<WatchdogCheck, { ruleId: string; sensorId: string; metric: string }> = {
  spool: { ruleId: 'platform-spool', sensorId: 'spool', metric: 'spool_usage_percent' },
  ingest: { ruleId: 'platform-deadman', sensorId: 'ingest', metric: 'seconds_without_readings' },
  storage: { ruleId: 'platform-storage', sensorId: 'storage', metric: 'seconds_of_failing_writes' },
};

/** Rule ids reserved for platform alerts; a configured rule may not use them. */
export const PLATFORM_RULE_IDS: readonly string[] = Object.values(RULE_OF).map((r) => r.ruleId);

const RULES: Record<string, Omit<RuleInfo, 'escalation'>> = {
  'platform-spool': {
    id: 'platform-spool',
    name: 'Watchpost 存储缓冲区将满',
    message: 'Watchpost 存储缓冲区（spool）已用 {value}%（告警阈值 {threshold}%）：写入 InfluxDB 积压；缓冲区满后设备数据将不被确认，设备需自行重发',
    plan: [
      '检查 InfluxDB 是否在线、可写（/healthz 的 storage.lastError、Watchpost 日志）',
      '恢复写入后积压会自动补写；必要时扩大 storage.spool.max_bytes 或磁盘',
      '若 /healthz 的 storage.queueError 为 fdatasync 失败：本地磁盘故障，Watchpost 已停止确认数据；修复或更换磁盘后重启 Watchpost',
    ],
  },
  'platform-deadman': {
    id: 'platform-deadman',
    name: 'Watchpost 未收到任何设备数据',
    message: 'Watchpost 已 {value} 秒未收到任何设备数据（阈值 {threshold} 秒）：全区监测可能中断',
    plan: ['检查 MQTT 接入（Broker、网络、证书）与设备供电、通信', '检查 Watchpost 日志中被拒绝的连接与数据'],
  },
  'platform-storage': {
    id: 'platform-storage',
    name: 'Watchpost 存储写入失败',
    message: 'Watchpost 写入存储已失败 {value} 秒；数据暂存于本地缓冲区（spool），写入恢复后自动补写',
    plan: [
      '查看 /healthz 的 storage.reason 与 storage.lastError',
      'unauthorized / forbidden：检查 storage.influx 的用户名、密码或 token 及其写权限（InfluxDB 1.x：GRANT WRITE ON <数据库> TO <用户>）',
      'database_not_found / bucket_not_found：以 InfluxDB 管理员创建数据库（CREATE DATABASE）或 bucket',
      'unreachable / timeout / unavailable：检查 InfluxDB 服务、磁盘与网络',
    ],
  },
};

/** The rule info of a platform rule id, routed to `fallback` when it exists; undefined for other ids. */
export function platformRuleInfo(ruleId: string, hasFallback: boolean): RuleInfo | undefined {
  const rule = RULES[ruleId];
  if (!rule) return undefined;
  return hasFallback ? { ...rule, escalation: FALLBACK_ESCALATION_ID } : { ...rule };
}

/** The watchdog check of a platform rule id, if it is one. */
export function platformCheckOf(ruleId: string): WatchdogCheck | undefined {
  return (Object.keys(RULE_OF) as WatchdogCheck[]).find((check) => RULE_OF[check].ruleId === ruleId);
}

export function platformRuleEvent(signal: WatchdogSignal, now: number): RuleEvent {
  const r = RULE_OF[signal.check];
  return {
    ruleId: r.ruleId,
    assetId: PLATFORM_ASSET_ID,
    sensorId: r.sensorId,
    metric: r.metric,
    level: signal.level,
    value: signal.value,
    threshold: signal.threshold,
    ts: now,
  };
}
