/**
 * Group robots: WeCom (企业微信群机器人), DingTalk (钉钉自定义机器人, 加签) and Feishu (飞书自定义机器人,
 * 签名校验). Each answers HTTP 200 with its own error code in the body, so a robot that refused a
 * message (bad signature, missing keyword, unknown token) is a failed delivery here, not a
 * silent success; the providers' "too fast" codes are retried after a minute and pause the
 * channel until then. Request builders are exported for tests against the providers' examples.
 */
import { createHmac } from 'node:crypto';
import type { Clock } from '../../lib/clock.js';
import type { Level } from '../../lib/levels.js';
import type { DingtalkChannelConfig, FeishuChannelConfig, WecomChannelConfig } from '../config.js';
import type { Channel, DeliveryOutcome, Notification } from '../outbox.js';
import { answerField, httpRequest, isAnswer, jsonOf, outcomeOfStatus, snippet, truncateBytes, type HttpAnswer, type HttpDeps, type HttpRequest } from './http.js';
import { formatOptions, localMobile, renderFor } from './render.js';
import { ConfiguredChannel } from './configured.js';

export interface RobotDeps extends HttpDeps {
  clock: Clock;
}

/** Providers' limits per minute: wait this long after a "too fast" answer. */
const THROTTLE_PAUSE_MS = 60_000;

abstract class RobotChannel<C extends WecomChannelConfig | DingtalkChannelConfig | FeishuChannelConfig> extends ConfiguredChannel<C> implements Channel {
  abstract readonly type: string;
  readonly addressing = 'group';

  constructor(
    config: C,
    protected readonly deps: RobotDeps,
  ) {
    super(config);
  }

  abstract build(n: Notification, now: number): HttpRequest;
  /** The outcome of a 2xx answer, from the robot's error code. */
  abstract judge(json: Record<string, unknown> | undefined, answer: HttpAnswer): DeliveryOutcome;

  async send(n: Notification, signal: AbortSignal): Promise<DeliveryOutcome> {
    const now = this.deps.clock.now();
    const answer = await httpRequest(this.build(n, now), this.config.timeout, signal, this.deps);
    if (!isAnswer(answer)) return answer;
    const json = jsonOf(answer);
    // Feishu answers errors with HTTP 400 and a code in the body; judge any answer that has one.
    if ((answer.status >= 200 && answer.status < 300) || (json && (typeof json.code === 'number' || typeof json.errcode === 'number'))) {
      if (answer.status >= 500 || answer.status === 429) return outcomeOfStatus(answer, now);
      return this.judge(json, answer);
    }
    return outcomeOfStatus(answer, now);
  }
}

function codeOutcome(code: number, message: string, status: number, retryCodes: readonly number[], throttleCodes: readonly number[]): DeliveryOutcome {
  const error = `error ${code}: ${message}`;
  if (throttleCodes.includes(code)) return { outcome: 'retry', error, statusCode: status, retryAfterMs: THROTTLE_PAUSE_MS, throttled: true };
  if (retryCodes.includes(code)) return { outcome: 'retry', error, statusCode: status };
  return { outcome: 'failed', error, statusCode: status };
}

// ---- WeCom ----

/** WeCom robot limits: markdown content 4096 bytes, text 2048 bytes. */
export function wecomPayload(config: WecomChannelConfig, n: Notification): Record<string, unknown> {
  const { message } = renderFor(n, formatOptions(config));
  if (config.msgtype === 'text') {
    const phones = n.recipients
      .map((r) => r.phone)
      .filter((p): p is string => p !== undefined)
      .map(localMobile);
    return { msgtype: 'text', text: { content: truncateBytes(message.text, 2048), ...(phones.length ? { mentioned_mobile_list: phones } : {}) } };
  }
  return { msgtype: 'markdown', markdown: { content: truncateBytes(message.markdown, 4096) } };
}

export class WecomChannel extends RobotChannel<WecomChannelConfig> {
  readonly type = 'wecom';

  build(n: Notification): HttpRequest {
    return { url: this.config.url, headers: { 'content-type': 'application/json' }, body: JSON.stringify(wecomPayload(this.config, n)) };
  }

  judge(json: Record<string, unknown> | undefined, answer: HttpAnswer): DeliveryOutcome {
    if (!json || typeof json.errcode !== 'number') return { outcome: 'failed', error: `unexpected answer: ${snippet(answer.text)}`, statusCode: answer.status };
    if (json.errcode === 0) return { outcome: 'delivered', statusCode: answer.status };
    // -1 system busy; 45009 api freq out of limit (20 a minute).
    return codeOutcome(json.errcode, answerField(json.errmsg), answer.status, [-1], [45009]);
  }
}

// ---- DingTalk ----

/** 加签: base64(HMAC-SHA256(key = secret, timestamp + "\n" + secret)), URL-encoded; timestamp in ms. */
export function dingtalkSign(secret: string, timestampMs: number): string {
  return encodeURIComponent(createHmac('sha256', secret).update(`${timestampMs}\n${secret}`, 'utf8').digest('base64'));
}

export function dingtalkUrl(config: DingtalkChannelConfig, now: number): string {
  if (!config.secret) return config.url;
  return `${config.url}${config.url.includes('?') ? '&' : '?'}timestamp=${now}&sign=${dingtalkSign(config.secret, now)}`;
}

export function dingtalkPayload(config: DingtalkChannelConfig, n: Notification): Record<string, unknown> {
  const { message } = renderFor(n, formatOptions(config));
  const phones = n.recipients
    .map((r) => r.phone)
    .filter((p): p is string => p !== undefined)
    .map(localMobile);
  // A mention shows only when the number also appears in the text.
  const mentions = phones.length ? `\n\n${phones.map((p) => `@${p}`).join(' ')}` : '';
  const at = { atMobiles: phones, isAtAll: false };
  if (config.msgtype === 'text') return { msgtype: 'text', text: { content: truncateBytes(message.text, 18_000) + mentions }, at };
  return { msgtype: 'markdown', markdown: { title: message.title, text: truncateBytes(message.markdown, 18_000) + mentions }, at };
}

export class DingtalkChannel extends RobotChannel<DingtalkChannelConfig> {
  readonly type = 'dingtalk';

  build(n: Notification, now: number): HttpRequest {
    return { url: dingtalkUrl(this.config, now), headers: { 'content-type': 'application/json' }, body: JSON.stringify(dingtalkPayload(this.config, n)) };
  }

  judge(json: Record<string, unknown> | undefined, answer: HttpAnswer): DeliveryOutcome {
    if (!json || typeof json.errcode !== 'number') return { outcome: 'failed', error: `unexpected answer: ${snippet(answer.text)}`, statusCode: answer.status };
    if (json.errcode === 0) return { outcome: 'delivered', statusCode: answer.status };
    // -1 system busy; 130101 send too fast (20 a minute); 310000 sign/keyword/IP refused; 300001 bad token.
    return codeOutcome(json.errcode, answerField(json.errmsg), answer.status, [-1], [130101]);
  }
}

// ---- Feishu ----

/** 签名校验: base64(HMAC-SHA256(key = timestamp + "\n" + secret, message = "")); timestamp in seconds. */
export function feishuSign(secret: string, timestampS: number): string {
  return createHmac('sha256', `${timestampS}\n${secret}`).update('', 'utf8').digest('base64');
}

const FEISHU_TEMPLATE: Record<Level, string> = { blue: 'blue', yellow: 'yellow', orange: 'orange', red: 'red' };

export function feishuPayload(config: FeishuChannelConfig, n: Notification, now: number): Record<string, unknown> {
  const { message } = renderFor(n, formatOptions(config));
  const timestamp = Math.floor(now / 1000);
  const signed = config.secret ? { timestamp: String(timestamp), sign: feishuSign(config.secret, timestamp) } : {};
  if (config.msgtype === 'text') return { ...signed, msg_type: 'text', content: { text: truncateBytes(message.text, 20_000) } };
  const body = message.text.split('\n').slice(1).join('\n');
  const ack = config.language === 'zh' ? '确认告警' : 'Acknowledge';
  return {
    ...signed,
    msg_type: 'interactive',
    card: {
      config: { wide_screen_mode: true },
      header: { template: FEISHU_TEMPLATE[message.level], title: { tag: 'plain_text', content: message.title } },
      elements: [
        { tag: 'div', text: { tag: 'lark_md', content: truncateBytes(body, 20_000) } },
        ...(n.digest ? [] : [{ tag: 'action', actions: [{ tag: 'button', type: 'danger', text: { tag: 'plain_text', content: ack }, url: message.ackUrl }] }]),
      ],
    },
  };
}

export class FeishuChannel extends RobotChannel<FeishuChannelConfig> {
  readonly type = 'feishu';

  build(n: Notification, now: number): HttpRequest {
    return { url: this.config.url, headers: { 'content-type': 'application/json' }, body: JSON.stringify(feishuPayload(this.config, n, now)) };
  }

  judge(json: Record<string, unknown> | undefined, answer: HttpAnswer): DeliveryOutcome {
    const code = typeof json?.code === 'number' ? json.code : typeof json?.StatusCode === 'number' ? json.StatusCode : undefined;
    if (code === undefined) return { outcome: 'failed', error: `unexpected answer: ${snippet(answer.text)}`, statusCode: answer.status };
    if (code === 0) return { outcome: 'delivered', statusCode: answer.status };
    // 11232 frequency limited (5 a second, 100 a minute); 19021 bad sign; 19024 missing keyword.
    return codeOutcome(code, answerField(json?.msg ?? json?.StatusMessage), answer.status, [], [11232]);
  }
}
