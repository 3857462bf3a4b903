/**
 * Follows the MQTT packet framing (fixed header: type byte, then the remaining length as 1-4
 * bytes of base-128) on a client socket's incoming bytes, so a packet that announces more than
 * `maxPacketBytes` closes the connection before its body is buffered. Without it a client may
 * announce up to 256 MB per packet and the parser holds it all in memory.
 *
 * The guard sits on the socket itself (its `push`, through which every received chunk enters the
 * readable buffer), not in a stream wrapped around it: with 10,000 device connections a wrapping
 * Duplex cost ~1 KB of heap per connection and a stream hop per chunk. Bytes pass unchanged; only
 * the headers are read.
 */
import type { Readable } from 'node:stream';

export interface GuardedSocket extends Readable {
  remoteAddress?: string | undefined;
}

const enum Phase {
  Type,
  Length,
  Body,
}

export type FrameViolation = { kind: 'too_large'; bytes: number } | { kind: 'malformed' };

/** Follows MQTT framing across chunks; reports the first packet that breaks the limits. */
export class MqttFrameScanner {
  private phase = Phase.Type;
  private remaining = 0;
  private multiplier = 1;
  private lengthBytes = 0;

  constructor(private readonly maxPacketBytes: number) {}

  scan(chunk: Uint8Array): FrameViolation | undefined {
    let i = 0;
    while (i < chunk.length) {
      switch (this.phase) {
        case Phase.Type:
          i += 1;
          this.phase = Phase.Length;
          this.remaining = 0;
          this.multiplier = 1;
          this.lengthBytes = 0;
          break;
        case Phase.Length: {
          const b = chunk[i]!;
          i += 1;
          this.remaining += (b & 0x7f) * this.multiplier;
          this.multiplier *= 128;
          this.lengthBytes += 1;
          if (b & 0x80) {
            if (this.lengthBytes === 4) return { kind: 'malformed' };
            break;
          }
          if (this.remaining > this.maxPacketBytes) return { kind: 'too_large', bytes: this.remaining };
          this.phase = this.remaining === 0 ? Phase.Type : Phase.Body;
          break;
        }
        case Phase.Body: {
          const take = Math.min(this.remaining, chunk.length - i);
          i += take;
          this.remaining -= take;
          if (this.remaining === 0) this.phase = Phase.Type;
          break;
        }
      }
    }
    return undefined;
  }
}

/**
 * Scans every chunk `socket` receives before it reaches its readers; at the first violation the
 * chunk is dropped, `onViolation` is told and the socket is destroyed. Returns the socket.
 */
export function guardMqttFraming<S extends GuardedSocket>(socket: S, maxPacketBytes: number, onViolation: (violation: FrameViolation) => void): S {
  const scanner = new MqttFrameScanner(maxPacketBytes);
  const push = socket.push.bind(socket);
  let violated = false;
  socket.push = function guardedPush(chunk: unknown, encoding?: BufferEncoding): boolean {
    if (chunk === null || chunk === undefined) return push(chunk, encoding);
    if (violated) return false;
    const violation = scanner.scan(typeof chunk === 'string' ? Buffer.from(chunk, encoding) : (chunk as Uint8Array));
    if (!violation) return push(chunk, encoding);
    violated = true;
    onViolation(violation);
    socket.destroy();
    return false;
  };
  return socket;
}
