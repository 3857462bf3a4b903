/**
 * What people read: the alert event body rendered as a title, plain text, markdown and a short
 * one-line text for SMS, in Chinese (default) or English, with times in the channel's time
 * zone. Pure; every channel renders through here so all of them say the same thing.
 */
import { LEVEL_NAMES_ZH, type Level } from '../lib/levels.js';
import type { Language } from './config.js';
import type { AlertEventBody } from './event-body.js';

export interface FormatOptions {
  language: Language;
  timeZone: string;
}

export interface RenderedMessage {
  title: string;
  /** Plain text, several lines. */
  text: string;
  /** Markdown for robots (WeCom, DingTalk): headings, bold, quotes, a link. */
  markdown: string;
  /** One line for SMS. */
  short: string;
  level: Level;
  ackUrl: string;
}

const LEVEL_NAMES_EN: Record<Level, string> = { blue: 'BLUE', yellow: 'YELLOW', orange: 'ORANGE', red: 'RED' };

const EVENT_NAMES: Record<Language, Record<AlertEventBody['event'], string>> = {
  zh: {
    firing: '告警',
    level_raised: '等级上升',
    level_dropped: '等级下降',
    escalated: '逐级上报',
    repeated: '未确认提醒',
    acknowledged: '已确认',
    resolved: '已解除',
    verified: '研判确认',
    dismissed: '误报',
    dispatched: '派单',
    on_site: '已到场',
    feedback: '现场反馈',
    closed: '办结',
    overdue: '工单超时',
  },
  en: {
    firing: 'Alert',
    level_raised: 'Level raised',
    level_dropped: 'Level dropped',
    escalated: 'Escalated',
    repeated: 'Reminder: unacknowledged',
    acknowledged: 'Acknowledged',
    resolved: 'Resolved',
    verified: 'Verified',
    dismissed: 'Dismissed',
    dispatched: 'Dispatched',
    on_site: 'On site',
    feedback: 'Feedback',
    closed: 'Closed',
    overdue: 'Work order overdue',
  },
};

const LABELS = {
  zh: {
    place: '地点',
    reading: '读数',
    threshold: '阈值',
    started: '开始',
    plan: '处置',
    ack: '确认',
    ackLink: '点此确认',
    workOrder: '处置工单',
    due: '限时',
    tier: (n: number) => `第 ${n + 1} 级`,
    digest: (n: number) => `【告警汇总】${n} 条通知（超出发送频率，已合并）`,
  },
  en: {
    place: 'Place',
    reading: 'Reading',
    threshold: 'threshold',
    started: 'Since',
    plan: 'Response',
    ack: 'Acknowledge',
    ackLink: 'Acknowledge',
    workOrder: 'Work order',
    due: 'Due',
    tier: (n: number) => `tier ${n + 1}`,
    digest: (n: number) => `[Digest] ${n} notifications (merged: channel rate limit)`,
  },
} as const;

export function levelName(level: Level, language: Language): string {
  return language === 'zh' ? `${LEVEL_NAMES_ZH[level]}预警` : LEVEL_NAMES_EN[level];
}

export function eventName(event: AlertEventBody['event'], language: Language): string {
  return EVENT_NAMES[language][event];
}

/** `2025-11-28 10:00:00` in the time zone (plus the zone's name in English). */
export function formatTime(iso: string, options: FormatOptions): string {
  const date = new Date(iso);
  if (Number.isNaN(date.getTime())) return iso;
  const parts = new Intl.DateTimeFormat('en-GB', {
    timeZone: options.timeZone,
    year: 'numeric',
    month: '2-digit',
    day: '2-digit',
    hour: '2-digit',
    minute: '2-digit',
    second: '2-digit',
    hourCycle: 'h23',
  }).formatToParts(date);
  const get = (type: string) => parts.find((p) => p.type === type)?.value ?? '';
  const text = `${get('year')}-${get('month')}-${get('day')} ${get('hour')}:${get('minute')}:${get('second')}`;
  return options.language === 'en' ? `${text} (${options.timeZone})` : text;
}

function thresholdText(threshold: AlertEventBody['alert']['threshold']): string {
  if (threshold === null) return '';
  return Array.isArray(threshold) ? `${threshold[0]}~${threshold[1]}` : String(threshold);
}

/** The title: `【红色预警·告警】龙岗河大桥 · 主梁应变超限`. */
export function renderTitle(body: AlertEventBody, language: Language): string {
  const { alert } = body;
  let event = eventName(body.event, language);
  if (body.event === 'escalated') event += language === 'zh' ? `（${LABELS.zh.tier(body.tier)}）` : ` (${LABELS.en.tier(body.tier)})`;
  const head = language === 'zh' ? `【${levelName(alert.level, 'zh')}·${event}】` : `[${levelName(alert.level, 'en')} · ${event}] `;
  return `${head}${alert.asset_name} · ${alert.rule_name}`;
}

export function renderNotification(body: AlertEventBody, options: FormatOptions): RenderedMessage {
  const { alert } = body;
  const L = LABELS[options.language];
  const colon = options.language === 'zh' ? '：' : ': ';
  const title = renderTitle(body, options.language);
  const place = `${alert.street ? `${alert.street} · ` : ''}${alert.asset_id} / ${alert.sensor_id}`;
  const threshold = thresholdText(alert.threshold);
  const reading = `${alert.value}${threshold ? (options.language === 'zh' ? `（${L.threshold} ${threshold}）` : ` (${L.threshold} ${threshold})`) : ''}`;
  const started = formatTime(alert.started_at, options);
  const plan = alert.plan.map((step, i) => `${i + 1}. ${step}`);

  const lines = [title, alert.message, `${L.place}${colon}${place}`, `${L.reading}${colon}${reading}`, `${L.started}${colon}${started}`];
  if (plan.length) lines.push(`${L.plan}${colon}`, ...plan);
  // A work-order notification links the department's phone page instead of the ack page.
  const order = body.work_order;
  const linkLabel = order ? L.workOrder : L.ack;
  const link = order ? order.url : alert.ack_url;
  if (order) lines.push(`${L.due}${colon}${formatTime(order.due_at, options)}`);
  lines.push(`${linkLabel}${colon}${link}`);

  const md = [`### ${title}`, `**${alert.message}**`, `> ${L.place}${colon}${place}`, `> ${L.reading}${colon}${reading}`, `> ${L.started}${colon}${started}`];
  if (order) md.push(`> ${L.due}${colon}${formatTime(order.due_at, options)}`);
  if (plan.length) md.push('', `${L.plan}${colon}`, ...plan);
  md.push('', `[${order ? L.workOrder : L.ackLink}](${link})`);

  const head =
    options.language === 'zh'
      ? `【${levelName(alert.level, 'zh')}${body.event === 'firing' ? '' : `·${eventName(body.event, 'zh')}`}】`
      : `[${levelName(alert.level, 'en')}${body.event === 'firing' ? '' : ` · ${eventName(body.event, 'en')}`}] `;
  const short = `${head}${alert.message}${options.language === 'zh' ? '。' : '. '}${linkLabel}${colon}${link}`;

  return { title, text: lines.join('\n'), markdown: md.join('\n'), short, level: alert.level, ackUrl: link };
}

/** Several notifications merged into one message (rate limit), oldest first. */
export function renderDigest(bodies: readonly AlertEventBody[], options: FormatOptions): RenderedMessage {
  const L = LABELS[options.language];
  const colon = options.language === 'zh' ? '：' : ': ';
  const title = L.digest(bodies.length);
  const items = bodies.map((b, i) => ({ n: i + 1, title: renderTitle(b, options.language), message: b.alert.message, url: b.alert.ack_url }));
  const text = [title, ...items.map((it) => `${it.n}. ${it.title}\n   ${it.message}\n   ${L.ack}${colon}${it.url}`)].join('\n');
  const markdown = [`### ${title}`, ...items.map((it) => `${it.n}. **${it.title}**  \n   ${it.message} [${L.ackLink}](${it.url})`)].join('\n');
  const short = [title, ...items.map((it) => `${it.n}. ${it.title} ${it.url}`)].join('\n');
  const worst = bodies.reduce<Level>((w, b) => (rank(b.alert.level) > rank(w) ? b.alert.level : w), bodies[0]?.alert.level ?? 'blue');
  return { title, text, markdown, short, level: worst, ackUrl: bodies[0]?.alert.ack_url ?? '' };
}

function rank(level: Level): number {
  return ['blue', 'yellow', 'orange', 'red'].indexOf(level);
}

/** Placeholders SMS templates may use. */
export const TEMPLATE_VARIABLES = [
  'title',
  'text',
  'short_text',
  'event',
  'event_name',
  'tier',
  'level',
  'level_name',
  'alert_id',
  'rule_id',
  'rule_name',
  'asset_id',
  'asset_name',
  'asset_type',
  'street',
  'sensor_id',
  'metric',
  'value',
  'threshold',
  'message',
  'started_at',
  'ack_url',
  'delivery_id',
  'name',
  'phone',
  'email',
] as const;

const PLACEHOLDER = /\{([a-z_]+)\}/g;

/** Placeholders in `template` that are not template variables. */
export function unknownPlaceholders(template: string): string[] {
  const known = new Set<string>(TEMPLATE_VARIABLES);
  return [...template.matchAll(PLACEHOLDER)].map((m) => m[1]!).filter((name) => !known.has(name));
}

/** The values of the template variables for one notification and recipient. */
export function templateVars(
  body: AlertEventBody,
  rendered: RenderedMessage,
  options: FormatOptions,
  recipient?: { name?: string; phone?: string; email?: string },
  deliveryId = body.delivery_id,
): Record<string, string> {
  const { alert } = body;
  return {
    title: rendered.title,
    text: rendered.text,
    short_text: rendered.short,
    event: body.event,
    event_name: eventName(body.event, options.language),
    tier: String(body.tier),
    level: alert.level,
    level_name: options.language === 'zh' ? LEVEL_NAMES_ZH[alert.level] : LEVEL_NAMES_EN[alert.level],
    alert_id: alert.id,
    rule_id: alert.rule_id,
    rule_name: alert.rule_name,
    asset_id: alert.asset_id,
    asset_name: alert.asset_name,
    asset_type: alert.asset_type,
    street: alert.street,
    sensor_id: alert.sensor_id,
    metric: alert.metric,
    value: String(alert.value),
    threshold: thresholdText(alert.threshold),
    message: alert.message,
    started_at: formatTime(alert.started_at, options),
    ack_url: alert.ack_url,
    delivery_id: deliveryId,
    name: recipient?.name ?? '',
    phone: recipient?.phone ?? '',
    email: recipient?.email ?? '',
  };
}

/** Fills `{name}` placeholders; unknown ones stay as they are (the schema refuses them). */
export function fillTemplate(template: string, vars: Record<string, string>): string {
  return template.replace(PLACEHOLDER, (whole, name: string) => vars[name] ?? whole);
}
