/**
 * Every channel end to end against real servers on 127.0.0.1 (port 0): a recording HTTP server
 * that answers like each provider and checks each request as the provider would (signature
 * recomputed from what arrived), and a real SMTP server (smtp-server) for e-mail. Then the whole
 * path once: the alert service, the outbox and a DingTalk robot that refuses the signature.
 */
import { createHash, createHmac } from 'node:crypto';
import { createServer, type IncomingHttpHeaders, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { simpleParser } from 'mailparser';
import { SMTPServer } from 'smtp-server';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { silentLogger } from '../lib/logger.js';
import { MetricsRegistry } from '../lib/metrics.js';
import { AlertService } from './alert-service.js';
import { createChannel } from './channels/index.js';
import { SAMPLE_BODY } from '../test/support/alerts.js';
import { channelSchema, type ChannelConfig, type ContactConfig } from './config.js';
import type { Notification } from './outbox.js';
import { openAlertStore } from '../test/support/alert-store.js';

const T0 = Date.UTC(2025, 10, 28, 2, 0, 0);
const clock = { now: () => T0 };
const DUTY: ContactConfig = { id: 'longcheng-duty', name: '龙城街道值班员', phone: '+8613800000001', email: 'duty@example.org' };

interface Received {
  method: string;
  url: string;
  headers: IncomingHttpHeaders;
  body: string;
}

type Answer = { status?: number; json?: unknown; headers?: Record<string, string> };

let server: Server;
let base = '';
const received: Received[] = [];
const answers: Answer[] = [];

beforeAll(async () => {
  server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      received.push({ method: req.method ?? '', url: req.url ?? '', headers: req.headers, body: Buffer.concat(chunks).toString('utf8') });
      const a = answers.shift() ?? {};
      res.writeHead(a.status ?? 200, { 'content-type': 'application/json', ...a.headers });
      res.end(JSON.stringify(a.json ?? {}));
    });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
});

afterAll(async () => {
  server.closeAllConnections();
  await new Promise((r) => server.close(r));
});

beforeEach(() => {
  received.length = 0;
  answers.length = 0;
});

function config(raw: Record<string, unknown>): ChannelConfig {
  const parsed = channelSchema.safeParse(raw);
  if (!parsed.success) throw new Error(JSON.stringify(parsed.error.issues));
  return parsed.data;
}

function notification(recipients: ContactConfig[] = [DUTY]): Notification {
  return { deliveryId: SAMPLE_BODY.delivery_id, alertId: SAMPLE_BODY.alert.id, channelId: 'c', event: 'firing', tier: 0, body: JSON.stringify(SAMPLE_BODY), recipients, attempt: 1 };
}

async function send(raw: Record<string, unknown>, recipients?: ContactConfig[]) {
  const channel = createChannel(config(raw), { clock });
  return channel.send(notification(recipients), new AbortController().signal);
}

const hmac = (alg: string, key: string | Buffer, msg: string) => createHmac(alg, key).update(msg, 'utf8').digest();

describe('group robots', () => {
  it('WeCom: markdown to the robot URL; errcode 0 delivered, 45009 throttled, 93000 failed', async () => {
    answers.push({ json: { errcode: 0, errmsg: 'ok' } }, { json: { errcode: 45009, errmsg: 'api freq out of limit' } }, { json: { errcode: 93000, errmsg: 'invalid webhook url' } });
    const raw = { id: 'duty-group', type: 'wecom', url: `${base}/cgi-bin/webhook/send?key=abc-123` };
    expect(await send(raw)).toEqual({ outcome: 'delivered', statusCode: 200 });
    expect(received[0]!.url).toBe('/cgi-bin/webhook/send?key=abc-123');
    expect(received[0]!.headers['content-type']).toBe('application/json');
    const body = JSON.parse(received[0]!.body) as { msgtype: string; markdown: { content: string } };
    expect(body.msgtype).toBe('markdown');
    expect(body.markdown.content.split('\n').slice(0, 3)).toEqual([
      '### 【红色预警·告警】龙岗河大桥 · 主梁应变超限',
      '**龙岗河大桥 strain-01 应变 312.5µε，超过红色阈值 300**',
      '> 地点：龙城街道 · lg-bridge-001 / strain-01',
    ]);
    expect(await send(raw)).toEqual({ outcome: 'retry', error: 'error 45009: api freq out of limit', statusCode: 200, retryAfterMs: 60_000, throttled: true });
    expect(await send(raw)).toEqual({ outcome: 'failed', error: 'error 93000: invalid webhook url', statusCode: 200 });
    // text can @-mention by phone.
    answers.push({ json: { errcode: 0 } });
    await send({ ...raw, msgtype: 'text' });
    expect((JSON.parse(received[3]!.body) as { text: { mentioned_mobile_list: string[] } }).text.mentioned_mobile_list).toEqual(['13800000001']);
  });

  it('DingTalk: 加签 timestamp and sign on the URL, as the robot checks them; 310000 fails, 130101 is throttled', async () => {
    const secret = 'SECdemo0123456789';
    answers.push(
      { json: { errcode: 0, errmsg: 'ok' } },
      { json: { errcode: 310000, errmsg: 'sign not match' } },
      { json: { errcode: 130101, errmsg: 'send too fast, exceed 20 times per minute' } },
    );
    const raw = { id: 'duty-ding', type: 'dingtalk', url: `${base}/robot/send?access_token=tok123`, secret };
    expect(await send(raw)).toEqual({ outcome: 'delivered', statusCode: 200 });
    const url = new URL(received[0]!.url, base);
    expect([...url.searchParams.keys()]).toEqual(['access_token', 'timestamp', 'sign']);
    expect(url.searchParams.get('timestamp')).toBe(String(T0));
    // The robot's check: base64(HmacSHA256(secret, timestamp + "\n" + secret)).
    expect(url.searchParams.get('sign')).toBe(hmac('sha256', secret, `${T0}\n${secret}`).toString('base64'));
    const body = JSON.parse(received[0]!.body) as { msgtype: string; markdown: { title: string; text: string }; at: unknown };
    expect(body.msgtype).toBe('markdown');
    expect(body.markdown.title).toBe('【红色预警·告警】龙岗河大桥 · 主梁应变超限');
    expect(body.markdown.text.endsWith('\n\n@13800000001')).toBe(true);
    expect(body.at).toEqual({ atMobiles: ['13800000001'], isAtAll: false });
    expect(await send(raw)).toEqual({ outcome: 'failed', error: 'error 310000: sign not match', statusCode: 200 });
    expect(await send(raw)).toMatchObject({ outcome: 'retry', throttled: true, retryAfterMs: 60_000 });
  });

  it('Feishu: signed interactive card coloured by level; a bad sign fails, 11232 and 429 are throttled', async () => {
    const secret = 'feishu-secret-xyz';
    answers.push(
      { json: { code: 0, msg: 'success', data: {} } },
      { json: { code: 19021, msg: 'sign match fail or timestamp is not within one hour from current time' } },
      { status: 400, json: { code: 11232, msg: 'frequency limited' } },
      { status: 429, headers: { 'retry-after': '7' } },
    );
    const raw = { id: 'duty-feishu', type: 'feishu', url: `${base}/open-apis/bot/v2/hook/abc`, secret };
    expect(await send(raw)).toEqual({ outcome: 'delivered', statusCode: 200 });
    const body = JSON.parse(received[0]!.body) as {
      timestamp: string;
      sign: string;
      msg_type: string;
      card: { header: unknown; elements: Array<{ tag: string; actions?: Array<{ url: string }> }> };
    };
    expect(body.timestamp).toBe(String(T0 / 1000));
    // The bot's check: base64(HmacSHA256(key = timestamp + "\n" + secret, message = "")).
    expect(body.sign).toBe(hmac('sha256', `${T0 / 1000}\n${secret}`, '').toString('base64'));
    expect(body.msg_type).toBe('interactive');
    expect(body.card.header).toEqual({ template: 'red', title: { tag: 'plain_text', content: '【红色预警·告警】龙岗河大桥 · 主梁应变超限' } });
    expect(body.card.elements[1]!.actions![0]!.url).toBe('https://watchpost.example.org/ack/TOKEN');
    expect(await send(raw)).toEqual({ outcome: 'failed', error: 'error 19021: sign match fail or timestamp is not within one hour from current time', statusCode: 200 });
    expect(await send(raw)).toEqual({ outcome: 'retry', error: 'error 11232: frequency limited', statusCode: 400, retryAfterMs: 60_000, throttled: true });
    expect(await send(raw)).toMatchObject({ outcome: 'retry', statusCode: 429, retryAfterMs: 7000, throttled: true });
  });
});

describe('SMS providers', () => {
  it('http gateway: the configured template, encoded as JSON; `success` catches a 200 that is an error', async () => {
    answers.push({ json: { code: 0 } }, { json: { code: 17, msg: 'no balance' } });
    const raw = {
      id: 'sms',
      type: 'sms',
      provider: 'http',
      url: `${base}/sms/send?account=longgang`,
      headers: { Authorization: 'Bearer gw-token' },
      body: { mobile: '{phone}', content: '{short_text}', priority: 1 },
      success: { field: 'code', equals: 0 },
    };
    expect(await send(raw)).toEqual({ outcome: 'delivered', statusCode: 200 });
    expect(received[0]!.url).toBe('/sms/send?account=longgang');
    expect(received[0]!.headers.authorization).toBe('Bearer gw-token');
    expect(received[0]!.headers['x-watchpost-delivery']).toBe(SAMPLE_BODY.delivery_id);
    expect(JSON.parse(received[0]!.body)).toEqual({
      mobile: '+8613800000001',
      content: '【红色预警】龙岗河大桥 strain-01 应变 312.5µε，超过红色阈值 300。确认：https://watchpost.example.org/ack/TOKEN',
      priority: 1,
    });
    expect(await send(raw)).toEqual({ outcome: 'failed', error: 'gateway refused: code = 17: {"code":17,"msg":"no balance"}', statusCode: 200 });
    expect(channelSchema.safeParse({ ...raw, body: { text: '{nope}' } }).error?.issues[0]?.message).toMatch(/^unknown placeholder \{nope\}/);
  });

  it('Aliyun SendSms: form POST whose signature the API recomputes; OK, throttled and invalid numbers', async () => {
    answers.push(
      { json: { Code: 'OK', Message: 'OK', BizId: '9006197469364984400', RequestId: 'F655A8D5' } },
      { json: { Code: 'isv.BUSINESS_LIMIT_CONTROL', Message: '触发分钟级流控Permits:1' } },
      { json: { Code: 'isv.MOBILE_NUMBER_ILLEGAL', Message: '非法手机号' } },
    );
    const raw = {
      id: 'sms',
      type: 'sms',
      provider: 'aliyun',
      endpoint: `${base}/`,
      access_key_id: 'LTAI-test',
      access_key_secret: 'aliyun-secret',
      sign_name: '龙岗应急',
      template_code: 'SMS_123456',
      template_params: { level: '{level_name}', asset: '{asset_name}', time: '{started_at}' },
    };
    expect(await send(raw)).toEqual({ outcome: 'delivered', statusCode: 200 });
    const r = received[0]!;
    expect(r.method).toBe('POST');
    expect(r.headers['content-type']).toBe('application/x-www-form-urlencoded');
    const params = Object.fromEntries(new URLSearchParams(r.body));
    const { Signature, SignatureNonce, ...rest } = params;
    expect(rest).toEqual({
      AccessKeyId: 'LTAI-test',
      Action: 'SendSms',
      Format: 'JSON',
      OutId: SAMPLE_BODY.delivery_id,
      PhoneNumbers: '8613800000001',
      RegionId: 'cn-hangzhou',
      SignName: '龙岗应急',
      SignatureMethod: 'HMAC-SHA1',
      SignatureVersion: '1.0',
      TemplateCode: 'SMS_123456',
      TemplateParam: '{"level":"红色","asset":"龙岗河大桥","time":"2025-11-28 10:00:00"}',
      Timestamp: '2025-11-28T02:00:00Z',
      Version: '2017-05-25',
    });
    expect(SignatureNonce).toMatch(/^[0-9a-f-]{36}$/);
    // The API's check, written independently: sorted, percent-encoded, HMAC-SHA1 with secret + "&".
    const enc = (s: string) => encodeURIComponent(s).replace(/[!'()*]/g, (c) => `%${c.charCodeAt(0).toString(16).toUpperCase()}`);
    const canonical = Object.keys(params)
      .filter((k) => k !== 'Signature')
      .sort()
      .map((k) => `${enc(k)}=${enc(params[k]!)}`)
      .join('&');
    expect(Signature).toBe(hmac('sha1', 'aliyun-secret&', `POST&%2F&${enc(canonical)}`).toString('base64'));
    expect(await send(raw)).toEqual({ outcome: 'retry', error: 'isv.BUSINESS_LIMIT_CONTROL: 触发分钟级流控Permits:1', statusCode: 200, retryAfterMs: 60_000, throttled: true });
    expect(await send(raw)).toEqual({ outcome: 'failed', error: 'isv.MOBILE_NUMBER_ILLEGAL: 非法手机号', statusCode: 200 });
  });

  it('Tencent SendSms 2021-01-11: TC3-HMAC-SHA256 the API recomputes from what arrived; per-number status', async () => {
    answers.push(
      {
        json: {
          Response: {
            SendStatusSet: [
              {
                SerialNo: '5000:1045710669157053657849499619',
                PhoneNumber: '+8613800000001',
                Fee: 1,
                SessionContext: SAMPLE_BODY.delivery_id,
                Code: 'Ok',
                Message: 'send success',
                IsoCode: 'CN',
              },
            ],
            RequestId: 'a0aabda6',
          },
        },
      },
      { json: { Response: { Error: { Code: 'AuthFailure.SignatureFailure', Message: 'The provided credentials could not be validated.' }, RequestId: 'b1' } } },
      {
        json: {
          Response: {
            SendStatusSet: [
              { Code: 'LimitExceeded.PhoneNumberThirtySecondLimit', Message: 'the number of SMS messages sent from a single mobile number within 30 seconds exceeds the upper limit' },
            ],
            RequestId: 'c2',
          },
        },
      },
    );
    const raw = {
      id: 'sms',
      type: 'sms',
      provider: 'tencent',
      endpoint: base,
      secret_id: 'AKIDtest',
      secret_key: 'tencent-secret',
      sdk_app_id: '1400006666',
      sign_name: '龙岗应急',
      template_id: '1234567',
      template_params: ['{asset_name}', '{level_name}', '{message}'],
    };
    expect(await send(raw)).toEqual({ outcome: 'delivered', statusCode: 200 });
    const r = received[0]!;
    expect(JSON.parse(r.body)).toEqual({
      PhoneNumberSet: ['+8613800000001'],
      SmsSdkAppId: '1400006666',
      SignName: '龙岗应急',
      TemplateId: '1234567',
      TemplateParamSet: ['龙岗河大桥', '红色', '龙岗河大桥 strain-01 应变 312.5µε，超过红色阈值 300'],
      SessionContext: SAMPLE_BODY.delivery_id,
    });
    expect(r.headers).toMatchObject({
      'x-tc-action': 'SendSms',
      'x-tc-version': '2021-01-11',
      'x-tc-region': 'ap-guangzhou',
      'x-tc-timestamp': String(T0 / 1000),
      'content-type': 'application/json; charset=utf-8',
    });
    // The API's check from the received request.
    const sha = (s: string) => createHash('sha256').update(s, 'utf8').digest('hex');
    const canonical = `POST\n/\n\ncontent-type:${r.headers['content-type']}\nhost:${r.headers.host}\n\ncontent-type;host\n${sha(r.body)}`;
    const scope = `2025-11-28/sms/tc3_request`;
    const key = hmac('sha256', hmac('sha256', hmac('sha256', 'TC3tencent-secret', '2025-11-28'), 'sms'), 'tc3_request');
    const signature = createHmac('sha256', key)
      .update(`TC3-HMAC-SHA256\n${T0 / 1000}\n${scope}\n${sha(canonical)}`)
      .digest('hex');
    expect(r.headers.authorization).toBe(`TC3-HMAC-SHA256 Credential=AKIDtest/${scope}, SignedHeaders=content-type;host, Signature=${signature}`);
    expect(await send(raw)).toEqual({ outcome: 'failed', error: 'AuthFailure.SignatureFailure: The provided credentials could not be validated.', statusCode: 200 });
    expect(await send(raw)).toMatchObject({ outcome: 'retry', throttled: true, retryAfterMs: 60_000 });
  });

  it('Twilio Messages: form body with basic auth; 201 delivered, 21211 failed, 429 throttled', async () => {
    const sid = 'AC0123456789abcdef0123456789abcdef';
    answers.push(
      { status: 201, json: { sid: 'SM1', status: 'queued' } },
      { status: 400, json: { code: 21211, message: "The 'To' number is not a valid phone number.", status: 400 } },
      { status: 429, json: { code: 20429, message: 'Too Many Requests' } },
    );
    const raw = { id: 'sms', type: 'sms', provider: 'twilio', endpoint: base, account_sid: sid, auth_token: 'twilio-token', from: '+15005550006', language: 'en' };
    expect(await send(raw)).toEqual({ outcome: 'delivered', statusCode: 201 });
    const r = received[0]!;
    expect(r.url).toBe(`/2010-04-01/Accounts/${sid}/Messages.json`);
    expect(r.headers.authorization).toBe(`Basic ${Buffer.from(`${sid}:twilio-token`).toString('base64')}`);
    expect(Object.fromEntries(new URLSearchParams(r.body))).toEqual({
      To: '+8613800000001',
      From: '+15005550006',
      Body: '[RED] 龙岗河大桥 strain-01 应变 312.5µε，超过红色阈值 300. Acknowledge: https://watchpost.example.org/ack/TOKEN',
    });
    expect(await send(raw)).toEqual({ outcome: 'failed', error: "error 21211: The 'To' number is not a valid phone number.", statusCode: 400 });
    expect(await send(raw)).toMatchObject({ outcome: 'retry', throttled: true, statusCode: 429 });
  });
});

describe('e-mail through a real SMTP server', () => {
  let smtp: SMTPServer;
  let port = 0;
  const mails: Array<{ from: string; to: string[]; raw: string }> = [];
  let refuse: { code: number; message: string } | undefined;

  beforeAll(async () => {
    smtp = new SMTPServer({
      authOptional: true,
      disabledCommands: ['STARTTLS'],
      logger: false,
      onRcptTo(address, _session, callback) {
        if (refuse) return callback(Object.assign(new Error(refuse.message), { responseCode: refuse.code }));
        callback();
      },
      onData(stream, session, callback) {
        const chunks: Buffer[] = [];
        stream.on('data', (c: Buffer) => chunks.push(c));
        stream.on('end', () => {
          mails.push({
            from: session.envelope.mailFrom ? session.envelope.mailFrom.address : '',
            to: session.envelope.rcptTo.map((r) => r.address),
            raw: Buffer.concat(chunks).toString('utf8'),
          });
          callback();
        });
      },
    });
    await new Promise<void>((r) => smtp.listen(0, '127.0.0.1', r));
    port = (smtp.server.address() as AddressInfo).port;
  });

  afterAll(async () => {
    await new Promise<void>((r) => smtp.close(() => r()));
  });

  it('sends text and HTML with the delivery_id as Message-ID; 4xx is retried, 5xx fails', async () => {
    const raw = { id: 'mail', type: 'email', smtp: { host: '127.0.0.1', port }, from: 'Watchpost <watchpost@longgang.example.org>', timeout: '5s' };
    expect(await send(raw)).toEqual({ outcome: 'delivered' });
    expect(mails).toHaveLength(1);
    expect(mails[0]!.from).toBe('watchpost@longgang.example.org');
    expect(mails[0]!.to).toEqual(['duty@example.org']);
    const mail = await simpleParser(mails[0]!.raw);
    expect(mail.subject).toBe('【红色预警·告警】龙岗河大桥 · 主梁应变超限');
    expect(mail.messageId).toBe(`<${SAMPLE_BODY.delivery_id}@watchpost>`);
    expect(mail.headers.get('x-watchpost-delivery')).toBe(SAMPLE_BODY.delivery_id);
    expect(mail.text?.trim().split('\n')[1]).toBe('龙岗河大桥 strain-01 应变 312.5µε，超过红色阈值 300');
    expect(mail.html).toContain('<a href="https://watchpost.example.org/ack/TOKEN"');
    refuse = { code: 451, message: 'mailbox busy, try later' };
    expect(await send(raw)).toMatchObject({ outcome: 'retry', statusCode: 451 });
    refuse = { code: 550, message: 'no such user' };
    expect(await send(raw)).toMatchObject({ outcome: 'failed', statusCode: 550 });
    refuse = undefined;
    const closed = { ...raw, smtp: { host: '127.0.0.1', port: 1 } };
    expect(await send(closed)).toMatchObject({ outcome: 'retry' });
  });
});

describe('the whole path', () => {
  it('a DingTalk robot that refuses the signature raises delivery_failed, which the fallback sends to WeCom', async () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'watchpost-channels-'));
    const store = openAlertStore(dir);
    answers.push({ json: { errcode: 310000, errmsg: 'sign not match' } }, { json: { errcode: 0, errmsg: 'ok' } });
    const service = new AlertService({
      store,
      clock: { now: () => Date.now() },
      logger: silentLogger(),
      metrics: new MetricsRegistry(),
      rules: () => ({ id: 'bridge-strain', name: '主梁应变超限', message: '应变 {value}', plan: [], escalation: 'bridge-duty' }),
      assets: (id) => ({ id, name: '龙岗河大桥', type: 'bridge', street: '龙城街道' }),
      units: () => 'µε',
      renderMessage: (template, vars) => (template ?? '').replace(/\{(\w+)\}/g, (m, k: string) => String(vars[k] ?? m)),
      escalations: [
        { id: 'bridge-duty', tiers: [{ after: 0, notify: [{ channel: 'duty-ding', to: [] }] }] },
        { id: 'fallback', tiers: [{ after: 0, notify: [{ channel: 'duty-wecom', to: [] }] }] },
      ],
      channels: [
        config({ id: 'duty-ding', type: 'dingtalk', url: `${base}/robot/send?access_token=t`, secret: 'SECwrong' }),
        config({ id: 'duty-wecom', type: 'wecom', url: `${base}/cgi-bin/webhook/send?key=k` }),
      ],
      contacts: [],
      publicUrl: 'https://watchpost.example.org',
      publish: () => {},
      writeAlertEvent: () => {},
    });
    service.start();
    try {
      void service.handle([{ ruleId: 'bridge-strain', assetId: 'lg-bridge-001', sensorId: 'strain-01', metric: 'strain', level: 'red', value: 312.5, threshold: 300, ts: Date.now() }]);
      const deadline = Date.now() + 10_000;
      while (received.length < 2 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20));
      expect(received.map((r) => r.url.split('?')[0])).toEqual(['/robot/send', '/cgi-bin/webhook/send']);
      const wecom = JSON.parse(received[1]!.body) as { markdown: { content: string } };
      expect(wecom.markdown.content.split('\n').slice(0, 2)).toEqual([
        '### 【红色预警·告警】龙岗河大桥 · 通知投递失败',
        '**通知渠道 duty-ding 投递失败：龙岗河大桥「主梁应变超限」红色预警的告警通知未送达（error 310000: sign not match）**',
      ]);
      const original = service.list().find((a) => a.rule_id === 'bridge-strain')!;
      expect(
        service
          .get(original.id)
          .timeline.filter((e) => e.kind === 'delivery')
          .map((e) => [e.type, e.error ?? null]),
      ).toEqual([
        ['queued', null],
        ['delivery_failed', 'error 310000: sign not match'],
      ]);
    } finally {
      await service.stop();
      store.close();
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });
});
