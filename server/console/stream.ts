/**
 * GET /api/v1/stream: the alert service's events as server-sent events, for the console's live
 * board. Every event gets the next id (ids of one process start above those of any earlier one,
 * as they begin at the start time in microseconds); the last `capacity` are kept, so a client
 * that reconnects with Last-Event-ID is sent what it missed. When what it missed is no longer
 * kept (or the id is from before a restart), it gets a `reset` event and refetches the list.
 *
 * Events: `ready` (sent on every connection, carrying the latest id so that a reconnect without
 * any event in between still has a Last-Event-ID), `alert` (the alert event body of the contract,
 * as published on alerts/{level}/{asset_id}) and `reset`. A comment line is sent every
 * `heartbeatMs` so proxies keep the connection open and clients notice a dead one.
 */
import type { ServerResponse } from 'node:http';
import type { Clock } from '../../lib/clock.js';

export interface StreamOptions {
  /** Events kept for replay. */
  capacity: number;
  /** Open connections at most. */
  maxClients: number;
  heartbeatMs: number;
  /** A client whose socket holds more than this unsent is cut off (it reconnects and replays). */
  maxBufferedBytes: number;
}

/** The header of GET /api/v1/alerts answers: the stream's latest event id when the list was read. */
export const STREAM_ID_HEADER = 'x-stream-event-id';

export const DEFAULT_STREAM_OPTIONS: StreamOptions = { capacity: 10_000, maxClients: 200, heartbeatMs: 15_000, maxBufferedBytes: 4 * 1024 * 1024 };

interface StreamEvent {
  id: number;
  type: string;
  data: string;
}

export type Replay = { kind: 'events'; events: readonly StreamEvent[] } | { kind: 'reset' };

const frame = (e: { id: number; type: string; data: string }) => `id: ${e.id}\nevent: ${e.type}\ndata: ${e.data}\n\n`;

export class AlertStream {
  private readonly options: StreamOptions;
  /** A ring: `ring[(id - firstId) % capacity]`. */
  private readonly ring: StreamEvent[] = [];
  private readonly firstId: number;
  private lastId: number;
  private readonly clients = new Set<ServerResponse>();
  private heartbeat?: NodeJS.Timeout;

  constructor(clock: Clock, options: Partial<StreamOptions> = {}) {
    this.options = { ...DEFAULT_STREAM_OPTIONS, ...options };
    this.firstId = clock.now() * 1000;
    this.lastId = this.firstId - 1;
  }

  start(): void {
    this.heartbeat = setInterval(() => this.broadcast(': ping\n\n'), this.options.heartbeatMs);
    this.heartbeat.unref();
  }

  /** Ends every connection (before the HTTP server closes, which waits for them). */
  stop(): void {
    if (this.heartbeat) clearInterval(this.heartbeat);
    this.heartbeat = undefined;
    for (const res of this.clients) res.end();
    this.clients.clear();
  }

  /** Adds an event and sends it to every client; returns its id. */
  publish(type: string, data: string): number {
    const event = { id: ++this.lastId, type, data: data.replace(/[\r\n]+/g, ' ') };
    this.ring[(event.id - this.firstId) % this.options.capacity] = event;
    if (this.clients.size > 0) this.broadcast(frame(event));
    return event.id;
  }

  latestId(): number {
    return this.lastId;
  }

  /** What a client that saw `lastEventId` missed, oldest first, or reset when that is not kept any more. */
  since(lastEventId: number): Replay {
    const oldestKept = Math.max(this.firstId, this.lastId - this.options.capacity + 1);
    if (!Number.isSafeInteger(lastEventId) || lastEventId > this.lastId || lastEventId < oldestKept - 1) return { kind: 'reset' };
    const events: StreamEvent[] = [];
    for (let id = lastEventId + 1; id <= this.lastId; id++) events.push(this.ring[(id - this.firstId) % this.options.capacity]!);
    return { kind: 'events', events };
  }

  isFull(): boolean {
    return this.clients.size >= this.options.maxClients;
  }

  clientCount(): number {
    return this.clients.size;
  }

  /** Takes over an HTTP response: the stream's headers, the replay after `lastEventId` (if given), then live events. */
  attach(res: ServerResponse, lastEventId: string | undefined): void {
    res.writeHead(200, {
      'content-type': 'text/event-stream; charset=utf-8',
      'cache-control': 'no-cache, no-store',
      connection: 'keep-alive',
      'x-accel-buffering': 'no',
      'x-content-type-options': 'nosniff',
    });
    let out = 'retry: 2000\n\n';
    if (lastEventId !== undefined) {
      const replay = this.since(/^\d{1,16}$/.test(lastEventId) ? Number(lastEventId) : NaN);
      if (replay.kind === 'reset')
        out += frame({ id: this.lastId, type: 'reset', data: JSON.stringify({ reason: 'the events after Last-Event-ID are no longer kept; fetch the alerts again' }) });
      else for (const e of replay.events) out += frame(e);
    }
    out += frame({ id: this.lastId, type: 'ready', data: JSON.stringify({ latest_id: this.lastId }) });
    res.write(out);
    this.clients.add(res);
    res.on('close', () => this.clients.delete(res));
  }

  private broadcast(text: string): void {
    for (const res of this.clients) {
      if (res.writableLength > this.options.maxBufferedBytes) {
        this.clients.delete(res);
        res.destroy();
        continue;
      }
      res.write(text);
    }
  }
}
