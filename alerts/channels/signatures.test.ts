/**
 * Provider signatures against the providers' documented examples, and the rendered messages.
 * - Aliyun RPC signature v1: the SendSms example of the SMS documentation (testId / testSecret,
 *   GET) and the DescribeRegions example of the RPC signature documentation.
 * - Tencent Cloud TC3-HMAC-SHA256: the CVM DescribeInstances example of "签名方法 v3".
 * - DingTalk 加签 and Feishu 签名校验: no fixed example values are published, so the expected
 *   values were computed with the Python snippets of their documentation.
 */
import { describe, expect, it } from 'vitest';
import { SAMPLE_BODY } from '../../test/support/alerts.js';
import { renderDigest, renderNotification } from '../message-format.js';
import { dingtalkSign, feishuSign } from './robots.js';
import { aliyunPercentEncode, aliyunSignature, aliyunTimestamp, tc3Headers } from './sms.js';

describe('provider signatures', () => {
  it('Aliyun: the SendSms example of the documentation', () => {
    const params = {
      AccessKeyId: 'testId',
      Action: 'SendSms',
      Format: 'XML',
      OutId: '123',
      PhoneNumbers: '15300000001',
      RegionId: 'cn-hangzhou',
      SignName: '阿里云短信测试专用',
      SignatureMethod: 'HMAC-SHA1',
      SignatureNonce: '45e25e9b-0a6f-4070-8c85-2956eda1b466',
      SignatureVersion: '1.0',
      TemplateCode: 'SMS_71390007',
      TemplateParam: '{"customer":"test"}',
      Timestamp: '2017-07-12T02:42:19Z',
      Version: '2017-05-25',
    };
    expect(aliyunSignature('GET', params, 'testSecret')).toBe('zJDF+Lrzhj/ThnlvIToysFRq6t4=');
    expect(aliyunSignature('GET', { ...params, Signature: 'ignored' }, 'testSecret')).toBe('zJDF+Lrzhj/ThnlvIToysFRq6t4=');
  });

  it('Aliyun: the DescribeRegions example of the RPC signature documentation, and its encoding rules', () => {
    const params = {
      AccessKeyId: 'testid',
      Action: 'DescribeRegions',
      Format: 'XML',
      SignatureMethod: 'HMAC-SHA1',
      SignatureNonce: '3ee8c1b8-83d3-44af-a94f-4e0ad82fd6cf',
      SignatureVersion: '1.0',
      Timestamp: '2016-02-23T12:46:24Z',
      Version: '2014-05-26',
    };
    expect(aliyunSignature('GET', params, 'testsecret')).toBe('OLeaidS1JvxuMvnyHOwuJ+uX5qY=');
    expect(aliyunPercentEncode("a b*~-_.!'()/=&+派")).toBe('a%20b%2A~-_.%21%27%28%29%2F%3D%26%2B%E6%B4%BE');
    expect(aliyunTimestamp(Date.UTC(2017, 6, 12, 2, 42, 19, 456))).toBe('2017-07-12T02:42:19Z');
  });

  it('Tencent Cloud TC3-HMAC-SHA256: the DescribeInstances example of the documentation', () => {
    const headers = tc3Headers({
      secretId: 'AKIDz8krbsJ5yKBZQpn74WFkmLPx3EXAMPLE',
      secretKey: 'Gu5t9xGARNpq86cd98joQYCN3EXAMPLE',
      service: 'cvm',
      host: 'cvm.tencentcloudapi.com',
      action: 'DescribeInstances',
      version: '2017-03-12',
      region: 'ap-guangzhou',
      timestamp: 1551113065,
      payload: '{"Limit": 1, "Filters": [{"Values": ["\\u672a\\u547d\\u540d"], "Name": "instance-name"}]}',
    });
    expect(headers).toEqual({
      authorization:
        'TC3-HMAC-SHA256 Credential=AKIDz8krbsJ5yKBZQpn74WFkmLPx3EXAMPLE/2019-02-25/cvm/tc3_request, SignedHeaders=content-type;host, Signature=72e494ea809ad7a8c8f7a4507b9bddcbaa8e581f516e8da2f66e2c5a96525168',
      'content-type': 'application/json; charset=utf-8',
      host: 'cvm.tencentcloudapi.com',
      'x-tc-action': 'DescribeInstances',
      'x-tc-timestamp': '1551113065',
      'x-tc-version': '2017-03-12',
      'x-tc-region': 'ap-guangzhou',
    });
  });

  it('DingTalk 加签 and Feishu 签名校验, as the documentation computes them', () => {
    expect(dingtalkSign('SEC0123456789abcdef', 1764295200000)).toBe('TNtsRLXDX6TueNfVKC1DUk5I%2BqcDJVkpPb1TkI7WtWY%3D');
    expect(feishuSign('feishu-secret-xyz', 1764295200)).toBe('gP8/60FF4PoT96F1iMoStwZYZWBlNRtoX0kKYAtSH7g=');
  });
});

describe('rendered messages', () => {
  it('in Chinese (default), with times in Asia/Shanghai', () => {
    const m = renderNotification(SAMPLE_BODY, { language: 'zh', timeZone: 'Asia/Shanghai' });
    expect(m.title).toBe('【红色预警·告警】龙岗河大桥 · 主梁应变超限');
    expect(m.text).toBe(
      [
        '【红色预警·告警】龙岗河大桥 · 主梁应变超限',
        '龙岗河大桥 strain-01 应变 312.5µε，超过红色阈值 300',
        '地点：龙城街道 · lg-bridge-001 / strain-01',
        '读数：312.5（阈值 300）',
        '开始：2025-11-28 10:00:00',
        '处置：',
        '1. 通知桥梁养护单位现场核查',
        '2. 必要时封闭交通',
        '确认：https://watchpost.example.org/ack/TOKEN',
      ].join('\n'),
    );
    expect(m.short).toBe('【红色预警】龙岗河大桥 strain-01 应变 312.5µε，超过红色阈值 300。确认：https://watchpost.example.org/ack/TOKEN');
    expect(m.markdown.split('\n')[0]).toBe('### 【红色预警·告警】龙岗河大桥 · 主梁应变超限');
    expect(m.markdown.split('\n').at(-1)).toBe('[点此确认](https://watchpost.example.org/ack/TOKEN)');
    const escalated = renderNotification({ ...SAMPLE_BODY, event: 'escalated', tier: 1 }, { language: 'zh', timeZone: 'Asia/Shanghai' });
    expect(escalated.title).toBe('【红色预警·逐级上报（第 2 级）】龙岗河大桥 · 主梁应变超限');
    expect(escalated.short.startsWith('【红色预警·逐级上报】')).toBe(true);
  });

  it('in English', () => {
    const m = renderNotification({ ...SAMPLE_BODY, event: 'resolved' }, { language: 'en', timeZone: 'Asia/Shanghai' });
    expect(m.title).toBe('[RED · Resolved] 龙岗河大桥 · 主梁应变超限');
    expect(m.text.split('\n').slice(2, 5)).toEqual(['Place: 龙城街道 · lg-bridge-001 / strain-01', 'Reading: 312.5 (threshold 300)', 'Since: 2025-11-28 10:00:00 (Asia/Shanghai)']);
    expect(m.short).toBe('[RED · Resolved] 龙岗河大桥 strain-01 应变 312.5µε，超过红色阈值 300. Acknowledge: https://watchpost.example.org/ack/TOKEN');
  });

  it('a digest lists every notification', () => {
    const other = { ...SAMPLE_BODY, event: 'escalated' as const, tier: 1, alert: { ...SAMPLE_BODY.alert, level: 'yellow' as const, ack_url: 'https://watchpost.example.org/ack/T2' } };
    const d = renderDigest([SAMPLE_BODY, other], { language: 'zh', timeZone: 'Asia/Shanghai' });
    expect(d.title).toBe('【告警汇总】2 条通知（超出发送频率，已合并）');
    expect(d.level).toBe('red');
    expect(d.text).toBe(
      [
        '【告警汇总】2 条通知（超出发送频率，已合并）',
        '1. 【红色预警·告警】龙岗河大桥 · 主梁应变超限',
        '   龙岗河大桥 strain-01 应变 312.5µε，超过红色阈值 300',
        '   确认：https://watchpost.example.org/ack/TOKEN',
        '2. 【黄色预警·逐级上报（第 2 级）】龙岗河大桥 · 主梁应变超限',
        '   龙岗河大桥 strain-01 应变 312.5µε，超过红色阈值 300',
        '   确认：https://watchpost.example.org/ack/T2',
      ].join('\n'),
    );
  });
});
