/**
 * The acknowledgement page behind every notification's `ack_url` (`/ack/<token>`): a small,
 * server-rendered page for a phone that shows the alert (readings with their unit, times with
 * their UTC offset), its response plan and the history with the notes already made, with one
 * button to acknowledge. The signed token is the only credential (alerts/ack-token.ts): it names one
 * alert, expires, and is used up by the acknowledgement; replays and expired links are refused.
 * No scripts, no external assets; CSP forbids everything but inline styles and posting back here;
 * no caching, no referrer (the token is in the URL).
 */
import type { FastifyInstance } from 'fastify';
import { ACK_PAGE_SCHEMAS } from './api-schemas.js';
import type { AckLinkResult, AckLinkState, AlertView, TimelineEntryView } from '../alerts/alert-service.js';
import type { Language } from '../alerts/config.js';
import { eventName, levelName } from '../alerts/message-format.js';
import { escapeHtml, LEVEL_COLOURS, LINK_TOKEN, linkPage, noticeCard, sendLinkPage, zonedTime } from './link-page.js';

export { ACK_PAGE_TIME_ZONE, escapeHtml, zonedTime } from './link-page.js';

export interface AckLinksPort {
  ackLink(token: string): AckLinkState;
  acknowledgeByLink(token: string, note?: string): AckLinkResult;
  /** The unit of a metric's readings (the metric catalogue's); readings are shown without one if absent. */
  unitOf?(metric: string): string;
}

const TEXT = {
  zh: {
    invalid: ['链接无效', '这个确认链接无效或已被篡改。请使用通知中的原始链接。'],
    expired: ['链接已过期', '这个确认链接已过期。请使用最新一条通知中的链接，或通过值班系统确认。'],
    used: ['链接已使用', '这个确认链接已经用过，不能再次使用。'],
    resolved: ['告警已解除', '告警已经解除，无需确认。'],
    acknowledged: ['已确认', '告警已确认，逐级上报已停止；已通知的人员会收到确认消息。'],
    already: ['已确认', '告警此前已被确认。'],
    asset: '资产',
    street: '街道',
    sensor: '测点',
    reading: '读数',
    threshold: '阈值',
    started: '开始时间',
    state: '状态',
    tier: '已通知至',
    plan: '处置预案',
    history: '记录',
    note: '备注（可选）',
    button: '确认告警',
    states: { firing: '告警中，未确认', acknowledged: '已确认', resolved: '已解除' },
    by: (who: string, at: string) => `由 ${who} 于 ${at} 确认`,
    tierN: (n: number) => `第 ${n + 1} 级`,
  },
  en: {
    invalid: ['Invalid link', 'This acknowledgement link is not valid. Use the link from the notification as it was sent.'],
    expired: ['Link expired', 'This acknowledgement link has expired. Use the link in the latest notification, or acknowledge in the duty system.'],
    used: ['Link already used', 'This acknowledgement link has been used and cannot be used again.'],
    resolved: ['Alert resolved', 'The alert is resolved; there is nothing to acknowledge.'],
    acknowledged: ['Acknowledged', 'The alert is acknowledged and escalation has stopped; everyone notified so far is told.'],
    already: ['Acknowledged', 'The alert had already been acknowledged.'],
    asset: 'Asset',
    street: 'Street',
    sensor: 'Sensor',
    reading: 'Reading',
    threshold: 'Threshold',
    started: 'Since',
    state: 'State',
    tier: 'Notified up to',
    plan: 'Response plan',
    history: 'History',
    note: 'Note (optional)',
    button: 'Acknowledge',
    states: { firing: 'firing, not acknowledged', acknowledged: 'acknowledged', resolved: 'resolved' },
    by: (who: string, at: string) => `by ${who} at ${at}`,
    tierN: (n: number) => `tier ${n + 1}`,
  },
} as const;

/** A number with its unit: `312.5 µε`; a band as `0.2~0.4 MPa`. */
function withUnit(value: number | [number, number], unit: string): string {
  const text = Array.isArray(value) ? `${value[0]}~${value[1]}` : String(value);
  return unit ? `${text} ${unit}` : text;
}

const STYLE = `body{font-family:system-ui,-apple-system,"PingFang SC","Microsoft YaHei",sans-serif;margin:0;background:#f4f5f7;color:#1f2328}
main{max-width:560px;margin:0 auto;padding:16px}
.card{background:#fff;border-radius:8px;padding:16px;margin-bottom:12px;box-shadow:0 1px 2px rgba(0,0,0,.08)}
.badge{display:inline-block;color:#fff;border-radius:4px;padding:2px 10px;font-weight:600}
h1{font-size:1.3em;margin:10px 0 6px}h2{font-size:1.05em;margin:0 0 8px}
dl{display:grid;grid-template-columns:auto 1fr;gap:4px 12px;margin:8px 0 0}dt{color:#59636e}dd{margin:0}
textarea{width:100%;box-sizing:border-box;min-height:4em;font:inherit;margin:6px 0 12px}
button{width:100%;padding:14px;font-size:1.1em;font-weight:600;color:#fff;border:0;border-radius:6px}
.notice{font-size:1.05em}ol,ul{margin:0;padding-left:1.4em}li{margin:2px 0}small{color:#59636e}
.note{margin:2px 0 6px;padding:4px 8px;border-left:3px solid #d0d7de;white-space:pre-wrap}`;

function page(language: Language, title: string, body: string): string {
  return linkPage(language === 'zh' ? 'zh-CN' : 'en', title, STYLE, body);
}

function alertCard(alert: AlertView, language: Language, unit: string): string {
  const t = TEXT[language];
  const colour = LEVEL_COLOURS[alert.level];
  const threshold = alert.threshold === null ? '' : withUnit(alert.threshold, unit);
  let state: string = t.states[alert.state];
  if (alert.state === 'acknowledged' && alert.acknowledged_by && alert.acknowledged_at) state += `（${t.by(alert.acknowledged_by, zonedTime(alert.acknowledged_at))}）`;
  const rows: Array<[string, string]> = [
    [t.asset, `${alert.asset_name} (${alert.asset_id})`],
    [t.street, alert.street],
    [t.sensor, `${alert.sensor_id} · ${alert.metric}`],
    [t.reading, withUnit(alert.value, unit)],
    ...(threshold ? ([[t.threshold, threshold]] as Array<[string, string]>) : []),
    [t.started, zonedTime(alert.started_at)],
    [t.state, state],
    ...(alert.tier !== null ? ([[t.tier, t.tierN(alert.tier)]] as Array<[string, string]>) : []),
  ];
  const plan = alert.plan.length ? `<div class="card"><h2>${escapeHtml(t.plan)}</h2><ol>${alert.plan.map((p) => `<li>${escapeHtml(p)}</li>`).join('')}</ol></div>` : '';
  return (
    `<div class="card"><span class="badge" style="background:${colour}">${escapeHtml(levelName(alert.level, language))}</span>` +
    `<h1>${escapeHtml(alert.rule_name)}</h1><p>${escapeHtml(alert.message)}</p>` +
    `<dl>${rows.map(([k, v]) => `<dt>${escapeHtml(k)}</dt><dd>${escapeHtml(v)}</dd>`).join('')}</dl></div>${plan}`
  );
}

/** The last events, and every note made on the alert (an older note stays when its event is cut). */
function historyCard(timeline: TimelineEntryView[], language: Language): string {
  const known = new Set(['firing', 'level_raised', 'level_dropped', 'escalated', 'repeated', 'acknowledged', 'resolved']);
  const events = timeline.filter((e) => known.has(e.type));
  const items = events.filter((e, i) => i >= events.length - 10 || typeof e.note === 'string');
  if (items.length === 0) return '';
  const item = (e: TimelineEntryView): string => {
    const level = e.level ? ` · ${escapeHtml(levelName(e.level as never, language))}` : '';
    const by = typeof e.by === 'string' ? ` · ${escapeHtml(e.by)}` : '';
    const note = typeof e.note === 'string' && e.note ? `<div class="note">${escapeHtml(e.note)}</div>` : '';
    return `<li><small>${escapeHtml(zonedTime(e.at))}</small> ${escapeHtml(eventName(e.type as never, language))}${level}${by}${note}</li>`;
  };
  return `<div class="card"><h2>${escapeHtml(TEXT[language].history)}</h2><ul>${items.map(item).join('')}</ul></div>`;
}

type UnitOf = (metric: string) => string;
const NO_UNIT: UnitOf = () => '';

export function renderAckLinkState(state: AckLinkState, unitOf: UnitOf = NO_UNIT): { status: number; html: string } {
  switch (state.kind) {
    case 'invalid':
      return { status: 404, html: page('zh', TEXT.zh.invalid[0], noticeCard(TEXT.zh.invalid[0], TEXT.zh.invalid[1]) + noticeCard(TEXT.en.invalid[0], TEXT.en.invalid[1])) };
    case 'expired': {
      const t = TEXT[state.language];
      return { status: 410, html: page(state.language, t.expired[0], noticeCard(t.expired[0], t.expired[1])) };
    }
    case 'used': {
      const t = TEXT[state.language];
      return { status: 409, html: page(state.language, t.used[0], noticeCard(t.used[0], t.used[1]) + alertCard(state.alert, state.language, unitOf(state.alert.metric))) };
    }
    case 'valid': {
      const t = TEXT[state.language];
      const colour = LEVEL_COLOURS[state.alert.level];
      const form =
        state.alert.state === 'firing'
          ? `<form class="card" method="post"><label>${escapeHtml(t.note)}<textarea name="note" maxlength="500"></textarea></label><button type="submit" style="background:${colour}">${escapeHtml(t.button)}</button></form>`
          : '';
      return {
        status: 200,
        html: page(state.language, state.alert.rule_name, alertCard(state.alert, state.language, unitOf(state.alert.metric)) + form + historyCard(state.timeline, state.language)),
      };
    }
  }
}

export function renderAckLinkResult(result: AckLinkResult, unitOf: UnitOf = NO_UNIT): { status: number; html: string } {
  switch (result.kind) {
    case 'invalid':
    case 'expired':
      return renderAckLinkState(result);
    case 'used':
      return renderAckLinkState(result, unitOf);
    case 'resolved': {
      const t = TEXT[result.language];
      return { status: 409, html: page(result.language, t.resolved[0], noticeCard(t.resolved[0], t.resolved[1]) + alertCard(result.alert, result.language, unitOf(result.alert.metric))) };
    }
    case 'acknowledged': {
      const t = TEXT[result.language];
      const [heading, text] = result.already ? t.already : t.acknowledged;
      return { status: 200, html: page(result.language, heading, noticeCard(heading, text) + alertCard(result.alert, result.language, unitOf(result.alert.metric))) };
    }
  }
}

// eslint-disable-next-line @typescript-eslint/no-explicit-any -- the API's instance carries its pino logger type
export function registerAckPage(app: FastifyInstance<any, any, any, any>, port: AckLinksPort): void {
  const unitOf: UnitOf = (metric) => port.unitOf?.(metric) ?? '';
  void app.register(async (scope) => {
    // The page's form posts application/x-www-form-urlencoded; parsed here only.
    scope.addContentTypeParser('application/x-www-form-urlencoded', { parseAs: 'string', bodyLimit: 8 * 1024 }, (_req, body, done) => {
      done(null, Object.fromEntries(new URLSearchParams(body as string)));
    });

    scope.get<{ Params: { token: string } }>('/ack/:token', { schema: ACK_PAGE_SCHEMAS.get }, async (req, reply) => {
      const token = req.params.token;
      const { status, html } = LINK_TOKEN.test(token) ? renderAckLinkState(port.ackLink(token), unitOf) : renderAckLinkState({ kind: 'invalid' });
      return sendLinkPage(reply, status, html);
    });

    scope.post<{ Params: { token: string }; Body: unknown }>('/ack/:token', { schema: ACK_PAGE_SCHEMAS.post }, async (req, reply) => {
      const token = req.params.token;
      const body = req.body as { note?: unknown } | null | undefined;
      const note = typeof body?.note === 'string' ? body.note.slice(0, 500) : undefined;
      const { status, html } = LINK_TOKEN.test(token) ? renderAckLinkResult(port.acknowledgeByLink(token, note), unitOf) : renderAckLinkState({ kind: 'invalid' });
      return sendLinkPage(reply, status, html);
    });
  });
}
