import { describe, expect, it } from 'vitest';
import { DEFAULT_MESSAGE, DEFAULT_RESOLVED_MESSAGE, formatNumber, formatThreshold, renderMessage } from './template.js';

describe('renderMessage', () => {
  const vars = {
    asset_name: '龙岗河大桥',
    asset_id: 'lg-bridge-001',
    asset_type: 'bridge',
    street: '龙城街道',
    sensor_id: 'strain-01',
    metric: 'strain',
    value: 0.1 + 0.2,
    unit: 'µε',
    level: 'red',
    threshold: 300,
    rule_id: 'bridge-strain',
    rule_name: '主梁应变超限',
  } as const;

  it('renders the default message in Chinese', () => {
    expect(renderMessage(DEFAULT_MESSAGE, vars)).toBe('龙岗河大桥 strain-01 strain = 0.3µε，达到红色预警阈值 300');
    expect(renderMessage(DEFAULT_RESOLVED_MESSAGE, { ...vars, value: 120 })).toBe('龙岗河大桥 strain-01 strain = 120µε，已回落至红色预警阈值 300 以内，预警解除');
  });

  it('fills every placeholder, leaves unknown ones and renders missing known ones as nothing', () => {
    const template = '{rule_name}({rule_id}) {asset_id}/{asset_type}/{street} {level}/{level_zh} {value}{unit} {foo} {Value} {threshold';
    expect(renderMessage(template, { ...vars, unit: undefined, level_zh: '一级' })).toBe('主梁应变超限(bridge-strain) lg-bridge-001/bridge/龙城街道 red/一级 0.3 {foo} {Value} {threshold');
  });

  it('formats outside bands', () => {
    expect(renderMessage('{threshold}', { threshold: [-0.1 - 0.2, 5] })).toBe('[-0.3, 5]');
  });
});

describe('formatNumber', () => {
  it.each([
    [0.30000000000000004, '0.3'],
    [312.5, '312.5'],
    [-0, '0'],
    [1e-7, '1e-7'],
    [123456.789, '123456.789'],
    [2 / 3, '0.666666666667'],
    [42, '42'],
  ])('%s -> %s', (n, text) => {
    expect(formatNumber(n)).toBe(text);
  });

  it('formats thresholds', () => {
    expect([formatThreshold(300), formatThreshold([1, 2.5]), formatThreshold(null)]).toEqual(['300', '[1, 2.5]', '']);
  });
});
