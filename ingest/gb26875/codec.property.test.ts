import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { params } from '../../test/support/property.js';
import { encodeFrame, MAX_FRAME_BYTES, scanFrame, type Frame, type ScanResult } from './frame.js';
import { decodeUnit, DESCRIPTION_BYTES, encodeUnit, type DataUnit, type InfoObject } from './objects.js';

const byte = fc.integer({ min: 0, max: 255 });
const time = fc.record({ second: byte, minute: byte, hour: byte, day: byte, month: byte, year: byte });
const address = fc.uint8Array({ minLength: 6, maxLength: 6 }).map((b) => `0x${Buffer.from(b).toString('hex').toUpperCase()}`);
const u16 = fc.integer({ min: 0, max: 0xffff });
const u32 = fc.integer({ min: 0, max: 0xffffffff });

const objectOf: Record<number, fc.Arbitrary<InfoObject>> = {
  1: fc.record({ type: fc.constant(1 as const), systemType: byte, systemAddress: byte, status: u16, time }),
  2: fc.record({
    type: fc.constant(2 as const),
    systemType: byte,
    systemAddress: byte,
    componentType: byte,
    componentAddress: u32,
    status: u16,
    description: fc.uint8Array({ minLength: DESCRIPTION_BYTES, maxLength: DESCRIPTION_BYTES }),
    time,
  }),
  3: fc.record({
    type: fc.constant(3 as const),
    systemType: byte,
    systemAddress: byte,
    componentType: byte,
    componentAddress: u32,
    analogueType: byte,
    value: fc.integer({ min: -32768, max: 32767 }),
    time,
  }),
  4: fc.record({ type: fc.constant(4 as const), systemType: byte, systemAddress: byte, operation: byte, operator: byte, time }),
  21: fc.record({ type: fc.constant(21 as const), status: byte, time }),
  24: fc.record({ type: fc.constant(24 as const), operation: byte, operator: byte, time }),
  28: fc.record({ type: fc.constant(28 as const), time }),
  90: fc.record({ type: fc.constant(90 as const), time }),
};

const unit: fc.Arbitrary<DataUnit> = fc
  .constantFrom(...Object.keys(objectOf).map(Number))
  .chain((type) => fc.array(objectOf[type]!, { minLength: 1, maxLength: 20 }).map((objects) => ({ type, objects })));

const frame = (appData: fc.Arbitrary<Uint8Array>): fc.Arbitrary<Frame> => fc.record({ serial: u16, version: u16, time, source: address, destination: address, command: byte, appData });

/** Scans a whole buffer as the transport does; every step must move forward. */
function scanAll(buf: Uint8Array): ScanResult[] {
  const out: ScanResult[] = [];
  let rest = buf;
  for (let guard = 0; guard <= buf.length + 1; guard++) {
    const r = scanFrame(rest);
    out.push(r);
    if (r.kind === 'more') return out;
    expect(r.next).toBeGreaterThan(0);
    rest = rest.subarray(r.next);
  }
  throw new Error('scanning did not end');
}

describe('GB/T 26875.3 codec properties', () => {
  it('random frames with random units round-trip', () => {
    fc.assert(
      fc.property(frame(unit.map(encodeUnit)), (f) => {
        const bytes = encodeFrame(f);
        const scan = scanFrame(bytes);
        expect(scan.kind === 'frame' && scan.next).toBe(bytes.length);
        const { appData, ...header } = (scan as { frame: Frame }).frame;
        const { appData: sent, ...sentHeader } = f;
        expect(header).toEqual(sentHeader);
        expect(Buffer.from(appData).equals(Buffer.from(sent))).toBe(true);
        const decoded = decodeUnit(appData);
        expect(decoded.ok && encodeUnit(decoded.unit).equals(Buffer.from(f.appData))).toBe(true);
      }),
      params(),
    );
  });

  it('frames back to back come out one by one, whatever the garbage between them', () => {
    fc.assert(
      fc.property(fc.array(frame(fc.uint8Array({ maxLength: 64 })), { minLength: 1, maxLength: 5 }), fc.uint8Array({ maxLength: 16 }), (frames, junk) => {
        const junkNoStart = junk.map((b) => (b === 0x40 ? 0 : b));
        const bytes = Buffer.concat(frames.flatMap((f) => [Buffer.from(junkNoStart), encodeFrame(f)]));
        const found = scanAll(bytes).filter((r) => r.kind === 'frame');
        expect(found.map((r) => (r as { frame: Frame }).frame.serial)).toEqual(frames.map((f) => f.serial));
      }),
      params(100),
    );
  });

  it('random bytes never throw: each step is a frame, garbage, a typed error or a wait', () => {
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 2 * MAX_FRAME_BYTES }), (bytes) => {
        for (const r of scanAll(bytes)) expect(['frame', 'garbage', 'bad', 'more']).toContain(r.kind);
        const decoded = decodeUnit(bytes.subarray(0, 1024));
        expect(decoded.ok || ['unknown_type', 'bad_unit'].includes(decoded.code)).toBe(true);
      }),
      params(),
    );
  });

  it('mutated frames never throw: every step is typed, and a frame that still passes decodes or is a typed unit error', () => {
    fc.assert(
      fc.property(frame(unit.map(encodeUnit)), fc.array(fc.tuple(fc.nat(), byte), { minLength: 1, maxLength: 4 }), (f, edits) => {
        const bytes = encodeFrame(f);
        const mutated = Buffer.from(bytes);
        for (const [at, value] of edits) mutated[at % mutated.length] = value;
        const results = scanAll(mutated);
        for (const r of results) {
          expect(['frame', 'garbage', 'bad', 'more']).toContain(r.kind);
          if (r.kind === 'frame') {
            const d = decodeUnit(r.frame.appData);
            expect(d.ok || ['unknown_type', 'bad_unit'].includes(d.code)).toBe(true);
          }
        }
      }),
      params(),
    );
  });
});
