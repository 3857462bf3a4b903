import { describe, expect, it } from 'vitest';
import { channelSchema } from './config.js';

function issues(raw: unknown): string[] {
  const r = channelSchema.safeParse(raw);
  return r.success ? [] : r.error.issues.map((i) => `${i.path.join('.')}: ${i.message}`);
}

describe('channel configuration', () => {
  it('accepts every type with its defaults', () => {
    expect(channelSchema.parse({ id: 'w', type: 'wecom', url: 'https://qyapi.weixin.qq.com/cgi-bin/webhook/send?key=k' })).toEqual({
      id: 'w',
      type: 'wecom',
      url: 'https://qyapi.weixin.qq.com/cgi-bin/webhook/send?key=k',
      msgtype: 'markdown',
      language: 'zh',
      time_zone: 'Asia/Shanghai',
      timeout: 10_000,
      max_age: 3_600_000,
      rate_limit: [{ max: 20, per: 60_000 }],
    });
    expect(channelSchema.parse({ id: 'f', type: 'feishu', url: 'https://x/hook', secret: 's', language: 'en', rate_limit: { max: 10, per: '1m' } })).toMatchObject({
      rate_limit: [{ max: 10, per: 60_000 }],
      language: 'en',
      msgtype: 'card',
    });
    expect(channelSchema.parse({ id: 's', type: 'sms', provider: 'tencent', secret_id: 'a', secret_key: 'b', sdk_app_id: '1400000000', sign_name: 'n', template_id: '1' })).toMatchObject({
      endpoint: 'https://sms.tencentcloudapi.com',
      region: 'ap-guangzhou',
      template_params: ['{short_text}'],
    });
    expect(channelSchema.parse({ id: 'e', type: 'email', from: 'a@b.c', smtp: { host: 'smtp.example.org' } })).toMatchObject({
      smtp: { host: 'smtp.example.org', secure: false, require_tls: false },
    });
  });

  it('refuses what would fail later, naming the field', () => {
    expect(issues({ id: 'x', type: 'pager' })).toEqual(['type: unknown channel type "pager"; use one of webhook, wecom, dingtalk, feishu, email, sms']);
    expect(issues({ id: 'x', type: 'sms', provider: 'carrier-pigeon' })).toEqual(['provider: unknown sms provider "carrier-pigeon"; use one of http, aliyun, tencent, twilio']);
    expect(issues({ id: 'x', type: 'dingtalk', url: 'ftp://x' })).toEqual(['url: must be an http:// or https:// URL']);
    expect(issues({ id: 'x', type: 'sms', provider: 'twilio', account_sid: 'AC0123456789abcdef0123456789abcdef', auth_token: 't' })).toEqual([
      ': give exactly one of from and messaging_service_sid',
    ]);
    expect(issues({ id: 'x', type: 'wecom', url: 'https://x', time_zone: 'Mars/Olympus' })).toEqual(['time_zone: must be an IANA time zone such as Asia/Shanghai']);
    expect(issues({ id: 'x', type: 'email', from: 'a@b.c', smtp: { host: 'h', user: 'u' } })).toEqual(['smtp: give both user and pass, or neither']);
    expect(issues({ id: 'x', type: 'webhook', url: 'https://x', rate_limit: { max: 1, per: '1s' } })).toEqual([': Unrecognized key: "rate_limit"']);
  });
});
