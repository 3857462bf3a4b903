/**
 * SMS: one message per contact (each its own delivery_id), through one of four providers.
 * - http: a gateway described by a template (URL, method, headers, body fields, query).
 * - aliyun: Dysmsapi SendSms 2017-05-25, RPC signature v1 (HMAC-SHA1 over the percent-encoded,
 *   sorted parameters), POST form; OutId carries the delivery_id.
 * - tencent: sms SendSms 2021-01-11, TC3-HMAC-SHA256; SessionContext carries the delivery_id.
 * - twilio: Messages API (form body, HTTP basic auth with the Account SID and auth token).
 * Provider answers are judged by their codes: throttling and provider faults are retried, the
 * rest (bad signature, unknown template, invalid number) fail for good and raise delivery_failed.
 */
import { createHash, createHmac, randomUUID } from 'node:crypto';
import type { Clock } from '../../lib/clock.js';
import type { ContactConfig, SmsAliyunChannelConfig, SmsChannelConfig, SmsHttpChannelConfig, SmsTencentChannelConfig, SmsTwilioChannelConfig } from '../config.js';
import { fillTemplate } from '../message-format.js';
import type { Channel, DeliveryOutcome, Notification } from '../outbox.js';
import { answerField, httpRequest, isAnswer, jsonOf, outcomeOfStatus, snippet, type HttpAnswer, type HttpDeps, type HttpRequest } from './http.js';
import { e164, formatOptions, renderFor, varsFor } from './render.js';
import { ConfiguredChannel } from './configured.js';

export interface SmsDeps extends HttpDeps {
  clock: Clock;
  /** SignatureNonce for Aliyun (tests pass a fixed one). */
  nonce?: () => string;
}

const THROTTLE_PAUSE_MS = 60_000;

/** The one recipient of an SMS notification (sms is addressed per person). */
function recipientOf(n: Notification): ContactConfig | undefined {
  return n.recipients.find((r) => r.phone !== undefined);
}

// ---- http gateway ----

export function smsHttpRequest(config: SmsHttpChannelConfig, n: Notification, recipient: ContactConfig): HttpRequest {
  const options = formatOptions(config);
  const vars = varsFor(n, renderFor(n, options), options, recipient);
  const fields: Record<string, string | number | boolean> = {};
  for (const [key, value] of Object.entries(config.body)) fields[key] = typeof value === 'string' ? fillTemplate(value, vars) : value;
  const url = new URL(config.url);
  for (const [key, value] of Object.entries(config.query)) url.searchParams.set(key, fillTemplate(value, vars));
  const headers: Record<string, string> = {};
  for (const [name, value] of Object.entries(config.headers)) headers[name.toLowerCase()] = fillTemplate(value, vars);
  headers['x-watchpost-delivery'] = n.deliveryId;
  if (config.method === 'GET') {
    for (const [key, value] of Object.entries(fields)) url.searchParams.set(key, String(value));
    return { url: url.toString(), method: 'GET', headers };
  }
  if (config.content_type === 'form') {
    headers['content-type'] = 'application/x-www-form-urlencoded';
    return { url: url.toString(), headers, body: new URLSearchParams(Object.entries(fields).map(([k, v]) => [k, String(v)])).toString() };
  }
  headers['content-type'] = 'application/json';
  return { url: url.toString(), headers, body: JSON.stringify(fields) };
}

function fieldAt(json: unknown, path: string): unknown {
  let cur = json;
  for (const key of path.split('.')) {
    if (cur === null || typeof cur !== 'object') return undefined;
    cur = (cur as Record<string, unknown>)[key];
  }
  return cur;
}

function judgeHttpGateway(config: SmsHttpChannelConfig, answer: HttpAnswer, now: number): DeliveryOutcome {
  const byStatus = outcomeOfStatus(answer, now);
  if (byStatus.outcome !== 'delivered' || !config.success) return byStatus;
  const value = fieldAt(jsonOf(answer), config.success.field);
  if (value !== undefined && answerField(value) === answerField(config.success.equals)) return byStatus;
  return { outcome: 'failed', error: `gateway refused: ${config.success.field} = ${JSON.stringify(value)}: ${snippet(answer.text)}`, statusCode: answer.status };
}

// ---- Aliyun ----

/** Aliyun's percent-encoding: RFC 3986 unreserved characters kept, everything else %XX (space %20, * %2A, ~ kept). */
export function aliyunPercentEncode(value: string): string {
  return encodeURIComponent(value).replace(/[!'()*]/g, (c) => `%${c.charCodeAt(0).toString(16).toUpperCase()}`);
}

/** Signature of RPC-style APIs, version 1.0: base64(HMAC-SHA1(secret + "&", method&%2F&encode(canonical query))). */
export function aliyunSignature(method: 'GET' | 'POST', params: Record<string, string>, accessKeySecret: string): string {
  const canonical = Object.keys(params)
    .filter((k) => k !== 'Signature')
    .sort()
    .map((k) => `${aliyunPercentEncode(k)}=${aliyunPercentEncode(params[k]!)}`)
    .join('&');
  const stringToSign = `${method}&${aliyunPercentEncode('/')}&${aliyunPercentEncode(canonical)}`;
  return createHmac('sha1', `${accessKeySecret}&`).update(stringToSign, 'utf8').digest('base64');
}

/** Aliyun wants ISO 8601 UTC without milliseconds. */
export function aliyunTimestamp(now: number): string {
  return new Date(Math.floor(now / 1000) * 1000).toISOString().replace('.000Z', 'Z');
}

export function aliyunRequest(config: SmsAliyunChannelConfig, n: Notification, recipient: ContactConfig, now: number, nonce: string): HttpRequest {
  const options = formatOptions(config);
  const vars = varsFor(n, renderFor(n, options), options, recipient);
  const templateParam: Record<string, string> = {};
  for (const [name, template] of Object.entries(config.template_params)) templateParam[name] = fillTemplate(template, vars);
  const params: Record<string, string> = {
    AccessKeyId: config.access_key_id,
    Action: 'SendSms',
    Format: 'JSON',
    OutId: n.deliveryId,
    PhoneNumbers: recipient.phone!.replace(/^\+/, ''),
    RegionId: config.region,
    SignName: config.sign_name,
    SignatureMethod: 'HMAC-SHA1',
    SignatureNonce: nonce,
    SignatureVersion: '1.0',
    TemplateCode: config.template_code,
    TemplateParam: JSON.stringify(templateParam),
    Timestamp: aliyunTimestamp(now),
    Version: '2017-05-25',
  };
  params.Signature = aliyunSignature('POST', params, config.access_key_secret);
  const body = Object.keys(params)
    .map((k) => `${aliyunPercentEncode(k)}=${aliyunPercentEncode(params[k]!)}`)
    .join('&');
  return { url: config.endpoint, headers: { 'content-type': 'application/x-www-form-urlencoded' }, body };
}

const ALIYUN_RETRY = /^(Throttling.*|ServiceUnavailable|InternalError|isp\.SYSTEM_ERROR|SignatureNonceUsed)$/;

function judgeAliyun(answer: HttpAnswer, now: number): DeliveryOutcome {
  const json = jsonOf(answer);
  const code = typeof json?.Code === 'string' ? json.Code : undefined;
  if (code === undefined)
    return answer.status >= 200 && answer.status < 300 ? { outcome: 'failed', error: `unexpected answer: ${snippet(answer.text)}`, statusCode: answer.status } : outcomeOfStatus(answer, now);
  if (code === 'OK') return { outcome: 'delivered', statusCode: answer.status };
  const error = `${code}: ${answerField(json?.Message)}`;
  if (code === 'isv.BUSINESS_LIMIT_CONTROL') return { outcome: 'retry', error, statusCode: answer.status, retryAfterMs: THROTTLE_PAUSE_MS, throttled: true };
  if (ALIYUN_RETRY.test(code) || answer.status >= 500)
    return { outcome: 'retry', error, statusCode: answer.status, ...(code.startsWith('Throttling') ? { throttled: true, retryAfterMs: THROTTLE_PAUSE_MS } : {}) };
  return { outcome: 'failed', error, statusCode: answer.status };
}

// ---- Tencent ----

const sha256Hex = (text: string) => createHash('sha256').update(text, 'utf8').digest('hex');
const hmac256 = (key: string | Buffer, text: string) => createHmac('sha256', key).update(text, 'utf8').digest();

export interface Tc3Input {
  secretId: string;
  secretKey: string;
  service: string;
  host: string;
  action: string;
  version: string;
  region?: string;
  /** Unix seconds. */
  timestamp: number;
  payload: string;
}

/** TC3-HMAC-SHA256 over POST / with content-type and host signed; returns the request headers. */
export function tc3Headers(input: Tc3Input): Record<string, string> {
  const contentType = 'application/json; charset=utf-8';
  const canonicalRequest = ['POST', '/', '', `content-type:${contentType}\nhost:${input.host}\n`, 'content-type;host', sha256Hex(input.payload)].join('\n');
  const date = new Date(input.timestamp * 1000).toISOString().slice(0, 10);
  const scope = `${date}/${input.service}/tc3_request`;
  const stringToSign = ['TC3-HMAC-SHA256', String(input.timestamp), scope, sha256Hex(canonicalRequest)].join('\n');
  const signing = hmac256(hmac256(hmac256(`TC3${input.secretKey}`, date), input.service), 'tc3_request');
  const signature = createHmac('sha256', signing).update(stringToSign, 'utf8').digest('hex');
  return {
    authorization: `TC3-HMAC-SHA256 Credential=${input.secretId}/${scope}, SignedHeaders=content-type;host, Signature=${signature}`,
    'content-type': contentType,
    host: input.host,
    'x-tc-action': input.action,
    'x-tc-timestamp': String(input.timestamp),
    'x-tc-version': input.version,
    ...(input.region ? { 'x-tc-region': input.region } : {}),
  };
}

export function tencentRequest(config: SmsTencentChannelConfig, n: Notification, recipient: ContactConfig, now: number): HttpRequest {
  const options = formatOptions(config);
  const vars = varsFor(n, renderFor(n, options), options, recipient);
  const payload = JSON.stringify({
    PhoneNumberSet: [e164(recipient.phone!)],
    SmsSdkAppId: config.sdk_app_id,
    SignName: config.sign_name,
    TemplateId: config.template_id,
    TemplateParamSet: config.template_params.map((t) => fillTemplate(t, vars)),
    SessionContext: n.deliveryId,
  });
  const url = new URL(config.endpoint);
  const headers = tc3Headers({
    secretId: config.secret_id,
    secretKey: config.secret_key,
    service: 'sms',
    // The signed host is the official one unless the endpoint is another host (a private gateway or a test).
    host: url.host,
    action: 'SendSms',
    version: '2021-01-11',
    region: config.region,
    timestamp: Math.floor(now / 1000),
    payload,
  });
  // fetch sets Host from the URL (the same value that was signed).
  const { host: _host, ...sent } = headers;
  return { url: url.toString(), headers: sent, body: payload };
}

function tencentCodeOutcome(code: string, message: string, status: number): DeliveryOutcome {
  const error = `${code}: ${message}`;
  if (code.startsWith('LimitExceeded') || code === 'RequestLimitExceeded') return { outcome: 'retry', error, statusCode: status, retryAfterMs: THROTTLE_PAUSE_MS, throttled: true };
  if (code.startsWith('InternalError') || code === 'ResourceUnavailable' || code === 'FailedOperation.FailResolvePacket') return { outcome: 'retry', error, statusCode: status };
  return { outcome: 'failed', error, statusCode: status };
}

function judgeTencent(answer: HttpAnswer, now: number): DeliveryOutcome {
  const response = jsonOf(answer)?.Response as { Error?: { Code?: string; Message?: string }; SendStatusSet?: Array<{ Code?: string; Message?: string }> } | undefined;
  if (!response)
    return answer.status >= 200 && answer.status < 300 ? { outcome: 'failed', error: `unexpected answer: ${snippet(answer.text)}`, statusCode: answer.status } : outcomeOfStatus(answer, now);
  if (response.Error?.Code) return tencentCodeOutcome(response.Error.Code, response.Error.Message ?? '', answer.status);
  const sent = response.SendStatusSet?.[0];
  if (!sent?.Code) return { outcome: 'failed', error: `unexpected answer: ${snippet(answer.text)}`, statusCode: answer.status };
  if (sent.Code === 'Ok') return { outcome: 'delivered', statusCode: answer.status };
  return tencentCodeOutcome(sent.Code, sent.Message ?? '', answer.status);
}

// ---- Twilio ----

export function twilioRequest(config: SmsTwilioChannelConfig, n: Notification, recipient: ContactConfig): HttpRequest {
  const { message } = renderFor(n, formatOptions(config));
  const form = new URLSearchParams({ To: e164(recipient.phone!), Body: message.short });
  if (config.messaging_service_sid) form.set('MessagingServiceSid', config.messaging_service_sid);
  else form.set('From', config.from!);
  return {
    url: `${config.endpoint.replace(/\/+$/, '')}/2010-04-01/Accounts/${config.account_sid}/Messages.json`,
    headers: {
      authorization: `Basic ${Buffer.from(`${config.account_sid}:${config.auth_token}`).toString('base64')}`,
      'content-type': 'application/x-www-form-urlencoded',
    },
    body: form.toString(),
  };
}

function judgeTwilio(answer: HttpAnswer, now: number): DeliveryOutcome {
  const json = jsonOf(answer);
  if (answer.status >= 200 && answer.status < 300) return { outcome: 'delivered', statusCode: answer.status };
  if (json && typeof json.code === 'number') {
    const error = `error ${json.code}: ${answerField(json.message)}`;
    if (answer.status === 429 || json.code === 20429) return { outcome: 'retry', error, statusCode: answer.status, retryAfterMs: THROTTLE_PAUSE_MS, throttled: true };
    if (answer.status >= 500) return { outcome: 'retry', error, statusCode: answer.status };
    return { outcome: 'failed', error, statusCode: answer.status };
  }
  return outcomeOfStatus(answer, now);
}

// ---- the channel ----

export class SmsChannel extends ConfiguredChannel<SmsChannelConfig> implements Channel {
  readonly type = 'sms';
  readonly addressing = 'person';

  constructor(
    config: SmsChannelConfig,
    private readonly deps: SmsDeps,
  ) {
    super(config);
  }

  async send(n: Notification, signal: AbortSignal): Promise<DeliveryOutcome> {
    const recipient = recipientOf(n);
    if (!recipient) return { outcome: 'failed', error: 'no recipient with a phone number' };
    const now = this.deps.clock.now();
    const config = this.config;
    let request: HttpRequest;
    switch (config.provider) {
      case 'http':
        request = smsHttpRequest(config, n, recipient);
        break;
      case 'aliyun':
        request = aliyunRequest(config, n, recipient, now, (this.deps.nonce ?? randomUUID)());
        break;
      case 'tencent':
        request = tencentRequest(config, n, recipient, now);
        break;
      case 'twilio':
        request = twilioRequest(config, n, recipient);
        break;
    }
    const answer = await httpRequest(request, config.timeout, signal, this.deps);
    if (!isAnswer(answer)) return answer;
    switch (config.provider) {
      case 'http':
        return judgeHttpGateway(config, answer, now);
      case 'aliyun':
        return judgeAliyun(answer, now);
      case 'tencent':
        return judgeTencent(answer, now);
      case 'twilio':
        return judgeTwilio(answer, now);
    }
  }
}
