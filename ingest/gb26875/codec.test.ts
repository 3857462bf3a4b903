import { describe, expect, it } from 'vitest';
import { checksum, encodeFrame, scanFrame, timeLabelAt, timeLabelToEpoch, type Frame } from './frame.js';
import { decodeUnit, encodeUnit, type InfoObject } from './objects.js';
import { componentPoint, pointReadings, renamePoints, type PointReading } from './mapping.js';
import { decodeDescription, encodeDescription } from './standard.js';

const hex = (s: string) => Buffer.from(s.replace(/\s+/g, ''), 'hex');
const TIME = { second: 5, minute: 30, hour: 20, day: 1, month: 12, year: 26 };

// A system status frame (type 1) with the fire alarm bit, written out from the layout.
const SYSTEM_FIRE = hex(
  [
    '4040', // start
    '0100', // serial 1
    '0100', // version
    '051e14010c1a', // 20:30:05 1 Dec 2026
    '34cd12ab0000', // source 0x0000AB12CD34
    '000000000000', // destination
    '0c00', // length 12
    '02', // send data
    '0101' + '0101' + '0300' + '051e14010c1a', // type 1, 1 object: system type 1, address 1, status normal + fire alarm, time
    '91', // checksum
    '2323', // end
  ].join(''),
);

describe('GB/T 26875.3 frame', () => {
  it('checksum is the byte sum mod 256', () => {
    expect(checksum(Uint8Array.from([0xff, 0x02, 0x10]), 0, 3)).toBe(0x11);
  });

  it('decodes a frame written from the layout', () => {
    const scan = scanFrame(SYSTEM_FIRE);
    expect(scan.kind).toBe('frame');
    if (scan.kind !== 'frame') return;
    expect(scan.next).toBe(SYSTEM_FIRE.length);
    expect(scan.frame).toEqual({
      serial: 1,
      version: 1,
      time: TIME,
      source: '0x0000AB12CD34',
      destination: '0x000000000000',
      command: 2,
      appData: hex('01010101030005 1e14010c1a'.replace(/ /g, '')),
    });
    expect(decodeUnit(scan.frame.appData)).toEqual({ ok: true, unit: { type: 1, objects: [{ type: 1, systemType: 1, systemAddress: 1, status: 3, time: TIME }] } });
  });

  it('encodes the same bytes', () => {
    const unit = encodeUnit({ type: 1, objects: [{ type: 1, systemType: 1, systemAddress: 1, status: 3, time: TIME }] });
    const frame: Frame = { serial: 1, version: 1, time: TIME, source: '0x0000AB12CD34', destination: '0x000000000000', command: 2, appData: unit };
    expect(encodeFrame(frame).toString('hex')).toBe(SYSTEM_FIRE.toString('hex'));
  });

  it('reports a bad checksum with the header, to deny by serial number', () => {
    const bad = Buffer.from(SYSTEM_FIRE);
    bad[bad.length - 3] = 0x92;
    const scan = scanFrame(bad);
    expect(scan).toMatchObject({ kind: 'bad', code: 'bad_checksum', header: { serial: 1, source: '0x0000AB12CD34' }, next: bad.length });
  });

  it('reports a length beyond the limit and a missing end', () => {
    const long = Buffer.from(SYSTEM_FIRE);
    long.writeUInt16LE(2000, 24);
    expect(scanFrame(long)).toMatchObject({ kind: 'bad', code: 'bad_length', next: 2 });
    const cut = Buffer.from(SYSTEM_FIRE);
    cut.writeUInt16LE(11, 24); // one byte short: "##" is not where the length says
    expect(scanFrame(cut)).toMatchObject({ kind: 'bad', code: 'bad_end', next: 2 });
  });

  it('waits for the rest of a frame and skips bytes before "@@"', () => {
    expect(scanFrame(SYSTEM_FIRE.subarray(0, 20))).toEqual({ kind: 'more' });
    expect(scanFrame(SYSTEM_FIRE.subarray(0, SYSTEM_FIRE.length - 1))).toEqual({ kind: 'more' });
    expect(scanFrame(Buffer.concat([hex('0102'), SYSTEM_FIRE]))).toEqual({ kind: 'garbage', next: 2 });
    expect(scanFrame(hex('010240'))).toEqual({ kind: 'garbage', next: 2 }); // the trailing '@' may start a frame
    expect(scanFrame(hex('40'))).toEqual({ kind: 'more' });
  });

  it('converts time labels in the device time zone', () => {
    expect(timeLabelToEpoch(TIME, 480)).toBe(Date.parse('2026-12-01T20:30:05+08:00'));
    expect(timeLabelAt(Date.parse('2026-12-01T20:30:05+08:00'), 480)).toEqual(TIME);
    expect(timeLabelToEpoch({ ...TIME, month: 2, day: 31 }, 480)).toBeUndefined();
    expect(timeLabelToEpoch({ ...TIME, hour: 24 }, 480)).toBeUndefined();
  });
});

describe('GB/T 26875.3 objects', () => {
  it('decodes a component status with its GB 18030 description', () => {
    const data = hex(
      '0201' + // type 2, 1 object
        '01' +
        '02' +
        '2a' +
        '04030201' + // system type 1, system address 2, component type 42 (photoelectric smoke), address 0x01020304
        '0200' + // fire alarm
        'd2bbb2e3d7dfb5c0' +
        '00'.repeat(23) + // 一层走道
        '051e14010c1a',
    );
    const result = decodeUnit(data);
    expect(result.ok).toBe(true);
    if (!result.ok) return;
    const o = result.unit.objects[0]!;
    expect(o).toMatchObject({ type: 2, systemType: 1, systemAddress: 2, componentType: 42, componentAddress: 0x01020304, status: 2, time: TIME });
    expect(o.type === 2 && decodeDescription(o.description)).toBe('一层走道');
    expect(Buffer.from(encodeDescription('一层走道')).toString('hex')).toBe('d2bbb2e3d7dfb5c0');
    expect(pointReadings([o], { utcOffsetMinutes: 480, receivedAt: 0 })).toEqual([
      { sensorId: 'c-1-2-01020304', ts: Date.parse('2026-12-01T20:30:05+08:00'), values: { fire_alarm: 1, fault: 0, supervisory: 0, disabled: 0 } },
    ]);
  });

  it('decodes analogue values with their scale and sign', () => {
    const data = hex('0302' + '01' + '01' + '5f' + '01000000' + '04' + '0e00' + '051e14010c1a' + '01' + '01' + '1e' + '02000000' + '03' + 'ecff' + '051e14010c1a');
    const result = decodeUnit(data);
    expect(result.ok).toBe(true);
    if (!result.ok) return;
    expect(result.unit.objects.map((o) => o.type === 3 && [o.analogueType, o.value])).toEqual([
      [4, 14],
      [3, -20],
    ]);
    expect(pointReadings(result.unit.objects, { utcOffsetMinutes: 480, receivedAt: 0 }).map((r) => [r.sensorId, r.values])).toEqual([
      ['c-1-1-00000001', { pressure: 1.4 }],
      ['c-1-1-00000002', { temperature: -2 }],
    ]);
  });

  it('stores pressures in MPa whether sent in MPa (type 4) or kPa (type 5)', () => {
    const o = (analogueType: number, value: number): InfoObject => ({ type: 3, systemType: 1, systemAddress: 1, componentType: 0, componentAddress: 3, analogueType, value, time: TIME });
    expect(pointReadings([o(5, 1400), o(4, 3), o(200, 1)], { utcOffsetMinutes: 480, receivedAt: 0 }).map((r) => r.values)).toEqual([{ pressure: 0.14 }, { pressure: 0.3 }]);
  });

  it('decodes status bits: shielded is bit 3, supervisory bit 4', () => {
    const o: InfoObject = { type: 1, systemType: 1, systemAddress: 1, status: (1 << 3) | (1 << 4) | (1 << 2), time: TIME };
    expect(pointReadings([o], { utcOffsetMinutes: 480, receivedAt: 0 })[0]!.values).toEqual({ fire_alarm: 0, fault: 1, supervisory: 1, disabled: 1 });
  });

  it('decodes transmission device status, operation records and time', () => {
    expect(decodeUnit(hex('1501' + '03' + '051e14010c1a'))).toEqual({ ok: true, unit: { type: 21, objects: [{ type: 21, status: 3, time: TIME }] } });
    expect(decodeUnit(hex('1801' + '04' + '07' + '051e14010c1a'))).toEqual({ ok: true, unit: { type: 24, objects: [{ type: 24, operation: 4, operator: 7, time: TIME }] } });
    expect(decodeUnit(hex('0401' + '0101' + '01' + '02' + '051e14010c1a'))).toEqual({
      ok: true,
      unit: { type: 4, objects: [{ type: 4, systemType: 1, systemAddress: 1, operation: 1, operator: 2, time: TIME }] },
    });
    expect(decodeUnit(hex('1c01' + '051e14010c1a'))).toEqual({ ok: true, unit: { type: 28, objects: [{ type: 28, time: TIME }] } });
    expect(encodeUnit({ type: 90, objects: [{ type: 90, time: TIME }] }).toString('hex')).toBe('5a01051e14010c1a');
  });

  it('refuses an unknown type flag and a count that does not fit', () => {
    expect(decodeUnit(hex('0901' + '00'))).toEqual({ ok: false, code: 'unknown_type', detail: 'unknown type flag 9' });
    expect(decodeUnit(hex('0102' + '0101030005 1e14010c1a'.replace(/ /g, '')))).toMatchObject({ ok: false, code: 'bad_unit' });
    expect(decodeUnit(hex('0101' + '0101030005 1e14010c1a00'.replace(/ /g, '')))).toMatchObject({ ok: false, code: 'bad_unit' });
    expect(decodeUnit(hex('01'))).toMatchObject({ ok: false, code: 'bad_unit' });
  });

  it('renames points onto catalogue sensors and selects their metrics', () => {
    const readings: PointReading[] = [
      { sensorId: 's-1-1', ts: 1, values: { fire_alarm: 1, fault: 0, supervisory: 0, disabled: 0 } },
      { sensorId: componentPoint(1, 1, 0x120001), ts: 1, values: { fire_alarm: 1, fault: 0, supervisory: 0, disabled: 0 } },
      { sensorId: 'c-1-1-00000009', ts: 1, values: { fault: 1 } },
    ];
    const sensors = [
      { id: 's-1-1', sensor: 'panel' },
      { id: 'c-1-1-00120001', sensor: 'smoke-18f-01', metrics: { fire_alarm: 'smoke' } },
      { id: 'c-1-1-00000009', sensor: 'x', metrics: { fire_alarm: 'smoke' } },
    ];
    expect(renamePoints(readings, { sensors })).toEqual([
      { sensorId: 'panel', ts: 1, values: { fire_alarm: 1, fault: 0, supervisory: 0, disabled: 0 } },
      { sensorId: 'smoke-18f-01', ts: 1, values: { smoke: 1 } },
    ]);
  });
});
