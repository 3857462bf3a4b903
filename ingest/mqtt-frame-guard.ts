/**
 * Sits between a client socket and the MQTT parser and follows the packet framing (fixed header:
 * type byte, then the remaining length as 1-4 bytes of base-128), so a packet that announces more
 * than `maxPacketBytes` closes the connection before its body is buffered. Without it a client
 * may announce up to 256 MB per packet and the parser holds it all in memory.
 *
 * Bytes pass through unchanged; only the headers are read. It is a Duplex: reads come from the
 * socket, writes go to it, and destroying either end destroys both.
 */
import { Duplex } from 'node:stream';

export interface GuardedSocket extends Duplex {
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

export class MqttFrameGuard extends Duplex {
  readonly remoteAddress: string | undefined;
  private readonly scanner: MqttFrameScanner;

  constructor(
    private readonly socket: GuardedSocket,
    maxPacketBytes: number,
    onViolation: (violation: FrameViolation) => void,
  ) {
    super({ allowHalfOpen: false });
    this.remoteAddress = socket.remoteAddress;
    this.scanner = new MqttFrameScanner(maxPacketBytes);
    socket.on('data', (chunk: Buffer) => {
      const violation = this.scanner.scan(chunk);
      if (violation) {
        onViolation(violation);
        this.destroy();
        return;
      }
      if (!this.push(chunk)) socket.pause();
    });
    socket.on('end', () => this.push(null));
    socket.on('error', (err) => this.destroy(err));
    socket.on('close', () => this.destroy());
  }

  override _read(): void {
    this.socket.resume();
  }

  override _write(chunk: Buffer, _encoding: BufferEncoding, callback: (error?: Error | null) => void): void {
    if (this.socket.destroyed) return callback(new Error('socket closed'));
    this.socket.write(chunk, callback);
  }

  override _final(callback: (error?: Error | null) => void): void {
    this.socket.end();
    callback();
  }

  override _destroy(error: Error | null, callback: (error?: Error | null) => void): void {
    this.socket.destroy();
    callback(error);
  }
}
