import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { connect, createServer, type AddressInfo, type Socket } from 'node:net';
import { guardMqttFraming, MqttFrameScanner, type FrameViolation } from './mqtt-frame-guard.js';
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
        const results = chunks(stream, cuts)
          .map((c) => scanner.scan(c))
          .filter((r) => r !== undefined);
        expect(results[0]).toEqual({ kind: 'too_large', bytes: announced });
      }),
      params(),
    );
  });

  it('refuses a remaining length longer than four bytes', () => {
    expect(new MqttFrameScanner(1e9).scan(Buffer.from([0x30, 0x80, 0x80, 0x80, 0x80, 0x01]))).toEqual({ kind: 'malformed' });
  });
});

/** A connected TCP pair on loopback: the server side guarded (read the way aedes reads), the client side to write with. */
async function guardedPair(maxPacketBytes: number) {
  const violations: FrameViolation[] = [];
  const received: Buffer[] = [];
  let serverSide: Socket | undefined;
  const server = createServer((socket) => {
    serverSide = guardMqttFraming(socket, maxPacketBytes, (v) => violations.push(v));
    socket.on('readable', () => {
      for (let buf = socket.read() as Buffer | null; buf !== null; buf = socket.read() as Buffer | null) received.push(buf);
    });
    socket.on('error', () => undefined);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const client = connect((server.address() as AddressInfo).port, '127.0.0.1');
  client.on('error', () => undefined);
  await new Promise<void>((resolve) => client.once('connect', resolve));
  const closed = new Promise<void>((resolve) => client.once('close', () => resolve()));
  await waitUntil(() => serverSide !== undefined);
  return {
    client,
    violations,
    received: () => Buffer.concat(received),
    serverSide: () => serverSide!,
    closed,
    close: () => {
      client.destroy();
      serverSide?.destroy();
      server.close();
    },
  };
}

async function waitUntil(condition: () => boolean): Promise<void> {
  for (let i = 0; i < 500 && !condition(); i++) await new Promise((r) => setTimeout(r, 10));
  if (!condition()) throw new Error('timed out');
}

describe('guardMqttFraming', () => {
  it('passes packets within the limit to the reader unchanged, however the writes split them', async () => {
    const pair = await guardedPair(300);
    const stream = Buffer.concat([frame(0x10, new Uint8Array(40).fill(7)), frame(0x30, new Uint8Array(300).fill(9)), frame(0xc0, new Uint8Array(0))]);
    for (const part of chunks(stream, [1, 2, 3, 200, 341])) {
      pair.client.write(part);
      await new Promise((r) => setTimeout(r, 5));
    }
    await waitUntil(() => pair.received().length === stream.length);
    expect(pair.received()).toEqual(stream);
    expect(pair.violations).toEqual([]);
    expect(pair.serverSide().destroyed).toBe(false);
    pair.close();
  });

  it('closes the connection at a packet that announces more than the limit, before its bytes reach the reader', async () => {
    const pair = await guardedPair(300);
    const ok = frame(0x30, new Uint8Array(10).fill(1));
    pair.client.write(ok);
    await waitUntil(() => pair.received().length === ok.length);
    pair.client.write(frame(0x30, new Uint8Array(301)));
    await pair.closed;
    expect(pair.violations).toEqual([{ kind: 'too_large', bytes: 301 }]);
    expect(pair.serverSide().destroyed).toBe(true);
    expect(pair.received()).toEqual(ok);
    pair.close();
  });

  it('closes the connection at a malformed remaining length', async () => {
    const pair = await guardedPair(1e9);
    pair.client.write(Buffer.from([0x30, 0x80, 0x80, 0x80, 0x80, 0x01]));
    await pair.closed;
    expect(pair.violations).toEqual([{ kind: 'malformed' }]);
    expect(pair.received()).toEqual(Buffer.alloc(0));
    pair.close();
  });
});
