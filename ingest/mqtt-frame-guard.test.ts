import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { MqttFrameScanner } from './mqtt-frame-guard.js';
import { params } from '../test/support/property.js';

/** One MQTT packet: a type byte, the remaining length in base 128, then that many bytes. */
function frame(type: number, body: Uint8Array): Buffer {
  const length: number[] = [];
  let x = body.length;
  do {
    let b = x % 128;
    x = Math.floor(x / 128);
    if (x > 0) b |= 0x80;
    length.push(b);
  } while (x > 0);
  return Buffer.concat([Buffer.from([type, ...length]), body]);
}

/** Splits `buf` into chunks at the given cut points. */
function chunks(buf: Buffer, cuts: number[]): Buffer[] {
  const points = [...new Set(cuts.map((c) => c % (buf.length + 1)))].sort((a, b) => a - b);
  const out: Buffer[] = [];
  let prev = 0;
  for (const p of [...points, buf.length]) {
    if (p > prev) out.push(buf.subarray(prev, p));
    prev = Math.max(prev, p);
  }
  return out;
}

describe('MqttFrameScanner', () => {
  it('lets any stream of packets within the limit through, however it is split', () => {
    fc.assert(
      fc.property(
        fc.array(fc.tuple(fc.integer({ min: 0, max: 255 }), fc.uint8Array({ maxLength: 300 })), { minLength: 1, maxLength: 10 }),
        fc.array(fc.nat(), { maxLength: 12 }),
        (packets, cuts) => {
          const scanner = new MqttFrameScanner(300);
          const stream = Buffer.concat(packets.map(([type, body]) => frame(type, body)));
          for (const chunk of chunks(stream, cuts)) expect(scanner.scan(chunk)).toBeUndefined();
        },
      ),
      params(),
    );
  });

  it('stops at the first packet that announces more than the limit, wherever the header is split', () => {
    fc.assert(
      fc.property(fc.integer({ min: 301, max: 268_435_455 }), fc.array(fc.nat(), { maxLength: 4 }), (announced, cuts) => {
        const scanner = new MqttFrameScanner(300);
        const ok = frame(0x30, new Uint8Array(10));
        const header = frame(0x30, new Uint8Array(0)).subarray(0, 1);
        const length: number[] = [];
        let x = announced;
        do {
          let b = x % 128;
          x = Math.floor(x / 128);
          if (x > 0) b |= 0x80;
          length.push(b);
        } while (x > 0);
        const stream = Buffer.concat([ok, header, Buffer.from(length), Buffer.alloc(5)]);
        const results = chunks(stream, cuts).map((c) => scanner.scan(c)).filter((r) => r !== undefined);
        expect(results[0]).toEqual({ kind: 'too_large', bytes: announced });
      }),
      params(),
    );
  });

  it('refuses a remaining length longer than four bytes', () => {
    expect(new MqttFrameScanner(1e9).scan(Buffer.from([0x30, 0x80, 0x80, 0x80, 0x80, 0x01]))).toEqual({ kind: 'malformed' });
  });
});
