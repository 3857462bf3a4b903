/**
 * The phone page of a work order (`/wo/<token>`), for the department's staff on site: the alarm,
 * the work order (department, due time, status), the notes made so far, and one form to report
 * arrival, give feedback or close the order, each with a note. The signed token is the only
 * credential (alerts/work-order-token.ts): it names one work order and its department and
 * expires; arrive and feedback may be given again while the order is open, close once. A
 * tampered, expired or closed link gets a clear page and changes nothing. Only the form's POST
 * changes anything; no scripts, no external assets, no caching, no referrer (the token is in
 * the URL). Chinese, for a small screen.
 */
import type { FastifyInstance } from 'fastify';
import { z } from 'zod';
import type { WorkOrderAction, WorkOrderLinkResult, WorkOrderLinkState, WorkOrderView } from '../alerts/cases.js';
import { levelName } from '../alerts/message-format.js';
import type { AlertRecord } from '../alerts/store.js';
import { escapeHtml, LEVEL_COLOURS, LINK_TOKEN, linkPage, noticeCard, sendLinkPage, zonedTime } from './link-page.js';
import { routeSchema } from './api-schemas.js';

export interface WorkOrderLinksPort {
  workOrderLink(token: string): WorkOrderLinkState;
  actOnWorkOrder(token: string, action: WorkOrderAction, note?: string): WorkOrderLinkResult;
}

const MAX_NOTE = 500;

const html = (description: string) => ({ description, mediaType: 'text/html' });
const tokenParams = z.strictObject({ token: z.string().describe('the signed token of a work-order link') });
const answers = { 404: html('the link is not valid'), 409: html('the work order is closed'), 410: html('the link has expired') };

export const WORK_ORDER_PAGE_SCHEMAS = {
  get: routeSchema({
    summary: 'the phone page of a work order',
    tags: ['work-order page'],
    params: tokenParams,
    responses: { 200: html('the alarm, the work order and the form'), ...answers },
  }),
  post: routeSchema({
    summary: "arrive, feedback or close through a work-order link (the page's form)",
    tags: ['work-order page'],
    params: tokenParams,
    body: z.looseObject({ action: z.string().optional().describe('arrive, feedback or close'), note: z.string().optional().describe('kept to 500 characters') }),
    consumes: ['application/x-www-form-urlencoded'],
    responses: { 200: html('recorded'), 422: html('no valid action chosen'), ...answers },
  }),
};

const T = {
  invalid: ['链接无效', '这个工单链接无效或已被篡改。请使用派单通知中的原始链接。'],
  expired: ['链接已过期', '这个工单链接已过期。请联系指挥中心。'],
  closed: ['工单已办结', '这个工单已经办结（或已由指挥中心关闭），链接不能再使用。'],
  badAction: ['请选择操作', '请选择“已到场”“现场反馈”或“办结”。'],
  done: {
    arrive: ['已记录到场', '到场时间已记录，指挥中心会收到通知。'],
    feedback: ['已记录反馈', '反馈已记录，指挥中心会收到通知。'],
    close: ['工单已办结', '工单已办结，指挥中心会收到通知。'],
  },
  status: { dispatched: '已派单，待到场', on_site: '已到场处置中', closed: '已办结' },
  department: '承办单位',
  due: '处置时限',
  overdue: '（已超时）',
  status_: '工单状态',
  asset: '资产',
  street: '街道',
  sensor: '测点',
  started: '报警时间',
  dispatchNote: '派单说明',
  history: '记录',
  note: '说明（到场、反馈或办结情况）',
  arrive: '已到场',
  feedback: '现场反馈',
  close: '办结',
} as const;

const STYLE = `body{font-family:system-ui,-apple-system,"PingFang SC","Microsoft YaHei",sans-serif;margin:0;background:#f4f5f7;color:#1f2328}
main{max-width:560px;margin:0 auto;padding:16px}
.card{background:#fff;border-radius:8px;padding:16px;margin-bottom:12px;box-shadow:0 1px 2px rgba(0,0,0,.08)}
.badge{display:inline-block;color:#fff;border-radius:4px;padding:2px 10px;font-weight:600}
h1{font-size:1.3em;margin:10px 0 6px}h2{font-size:1.05em;margin:0 0 8px}
dl{display:grid;grid-template-columns:auto 1fr;gap:4px 12px;margin:8px 0 0}dt{color:#59636e}dd{margin:0}
textarea{width:100%;box-sizing:border-box;min-height:5em;font:inherit;margin:6px 0 12px}
button{width:100%;padding:14px;margin:0 0 8px;font-size:1.1em;font-weight:600;color:#fff;border:0;border-radius:6px}
.notice{font-size:1.05em}ul{margin:0;padding-left:1.4em}li{margin:2px 0}small{color:#59636e}
.note{margin:2px 0 6px;padding:4px 8px;border-left:3px solid #d0d7de;white-space:pre-wrap}`;

function page(title: string, body: string): string {
  return linkPage('zh-CN', title, STYLE, body);
}

function rows(items: Array<[string, string]>): string {
  return `<dl>${items.map(([k, v]) => `<dt>${escapeHtml(k)}</dt><dd>${escapeHtml(v)}</dd>`).join('')}</dl>`;
}

function orderCard(order: WorkOrderView, alert: AlertRecord): string {
  const colour = LEVEL_COLOURS[alert.level];
  return (
    `<div class="card"><span class="badge" style="background:${colour}">${escapeHtml(levelName(alert.level, 'zh'))}</span>` +
    `<h1>${escapeHtml(alert.ruleName)}</h1><p>${escapeHtml(alert.message)}</p>` +
    rows([
      [T.asset, `${alert.assetName} (${alert.assetId})`],
      [T.street, alert.street],
      [T.sensor, `${alert.sensorId} · ${alert.metric}`],
      [T.started, zonedTime(new Date(alert.startedAt).toISOString())],
    ]) +
    `</div><div class="card">` +
    rows([
      [T.department, order.department_name],
      [T.due, `${zonedTime(order.due_at)}${order.overdue && order.status !== 'closed' ? T.overdue : ''}`],
      [T.status_, T.status[order.status]],
      ...(order.note ? ([[T.dispatchNote, order.note]] as Array<[string, string]>) : []),
    ]) +
    `</div>`
  );
}

function historyCard(notes: Array<{ at: string; actor: string; note: string }>): string {
  if (notes.length === 0) return '';
  const items = notes.slice(-20).map((n) => `<li><small>${escapeHtml(zonedTime(n.at))} · ${escapeHtml(n.actor)}</small><div class="note">${escapeHtml(n.note)}</div></li>`);
  return `<div class="card"><h2>${escapeHtml(T.history)}</h2><ul>${items.join('')}</ul></div>`;
}

function form(alert: AlertRecord, onSite: boolean): string {
  const colour = LEVEL_COLOURS[alert.level];
  const button = (action: WorkOrderAction, label: string, background: string) =>
    `<button type="submit" name="action" value="${action}" style="background:${background}">${escapeHtml(label)}</button>`;
  return (
    `<form class="card" method="post"><label>${escapeHtml(T.note)}<textarea name="note" maxlength="${MAX_NOTE}"></textarea></label>` +
    (onSite ? '' : button('arrive', T.arrive, colour)) +
    button('feedback', T.feedback, '#59636e') +
    button('close', T.close, '#1a7f37') +
    `</form>`
  );
}

export function renderWorkOrderState(state: WorkOrderLinkState | { kind: 'bad_action' }): { status: number; html: string } {
  switch (state.kind) {
    case 'invalid':
      return { status: 404, html: page(T.invalid[0], noticeCard(T.invalid[0], T.invalid[1])) };
    case 'expired':
      return { status: 410, html: page(T.expired[0], noticeCard(T.expired[0], T.expired[1])) };
    case 'bad_action':
      return { status: 422, html: page(T.badAction[0], noticeCard(T.badAction[0], T.badAction[1])) };
    case 'closed':
      return { status: 409, html: page(T.closed[0], noticeCard(T.closed[0], T.closed[1]) + orderCard(state.order, state.alert)) };
    case 'valid':
      return { status: 200, html: page(state.alert.ruleName, orderCard(state.order, state.alert) + form(state.alert, state.order.status === 'on_site') + historyCard(state.notes)) };
  }
}

export function renderWorkOrderResult(result: WorkOrderLinkResult): { status: number; html: string } {
  if (result.kind !== 'done') return renderWorkOrderState(result);
  const [heading, text] = T.done[result.action];
  return { status: 200, html: page(heading, noticeCard(heading, text) + orderCard(result.order, result.alert)) };
}

const ACTIONS = new Set<string>(['arrive', 'feedback', 'close']);

// eslint-disable-next-line @typescript-eslint/no-explicit-any -- the API's instance carries its pino logger type
export function registerWorkOrderPage(app: FastifyInstance<any, any, any, any>, port: WorkOrderLinksPort): void {
  void app.register(async (scope) => {
    scope.addContentTypeParser('application/x-www-form-urlencoded', { parseAs: 'string', bodyLimit: 8 * 1024 }, (_req, body, done) => {
      done(null, Object.fromEntries(new URLSearchParams(body as string)));
    });

    scope.get<{ Params: { token: string } }>('/wo/:token', { schema: WORK_ORDER_PAGE_SCHEMAS.get }, async (req, reply) => {
      const token = req.params.token;
      const { status, html: body } = renderWorkOrderState(LINK_TOKEN.test(token) ? port.workOrderLink(token) : { kind: 'invalid' });
      return sendLinkPage(reply, status, body);
    });

    scope.post<{ Params: { token: string }; Body: unknown }>('/wo/:token', { schema: WORK_ORDER_PAGE_SCHEMAS.post }, async (req, reply) => {
      const token = req.params.token;
      if (!LINK_TOKEN.test(token)) return sendLinkPage(reply, 404, renderWorkOrderState({ kind: 'invalid' }).html);
      const body = req.body as { action?: unknown; note?: unknown } | null | undefined;
      const action = typeof body?.action === 'string' && ACTIONS.has(body.action) ? (body.action as WorkOrderAction) : undefined;
      if (!action) {
        // The link is judged first: a bad link says so whatever the form holds.
        const state = port.workOrderLink(token);
        const { status, html: page } = renderWorkOrderState(state.kind === 'valid' ? { kind: 'bad_action' } : state);
        return sendLinkPage(reply, status, page);
      }
      const note = typeof body?.note === 'string' && body.note.trim() !== '' ? body.note.slice(0, MAX_NOTE) : undefined;
      const { status, html: page } = renderWorkOrderResult(port.actOnWorkOrder(token, action, note));
      return sendLinkPage(reply, status, page);
    });
  });
}
