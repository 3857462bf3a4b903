import { PassThrough } from 'node:stream';
import type { ServerResponse } from 'node:http';
import { describe, expect, it } from 'vitest';
import { AlertStream } from './stream.js';

/** A ServerResponse stand-in that keeps what is written. */
function response() {
  const out = new PassThrough();
  let text = '';
  out.on('data', (d: Buffer) => (text += d.toString()));
  const res = Object.assign(out, { writeHead: () => res, headers: {} }) as unknown as ServerResponse;
  return { res, text: () => text };
}

const clock = { now: () => 1_700_000_000_000 };

describe('alert stream', () => {
  it('numbers events from the start time in microseconds, one more each', () => {
    const stream = new AlertStream(clock, { capacity: 10 });
    expect(stream.publish('alert', '{"n":1}')).toBe(1_700_000_000_000_000);
    expect(stream.publish('alert', '{"n":2}')).toBe(1_700_000_000_000_001);
    expect(stream.latestId()).toBe(1_700_000_000_000_001);
  });

  it('replays exactly what followed an id while it is kept, and resets beyond', () => {
    const stream = new AlertStream(clock, { capacity: 3 });
    const ids = [1, 2, 3, 4, 5].map((n) => stream.publish('alert', `{"n":${n}}`));
    expect(stream.since(ids[1]!)).toEqual({ kind: 'events', events: [3, 4, 5].map((n, i) => ({ id: ids[i + 2], type: 'alert', data: `{"n":${n}}` })) });
    expect(stream.since(ids[4]!)).toEqual({ kind: 'events', events: [] });
    // ids[0] was pushed out: what followed it (ids[1]) is gone.
    expect(stream.since(ids[0]!)).toEqual({ kind: 'reset' });
    expect(stream.since(ids[4]! + 1)).toEqual({ kind: 'reset' });
    expect(stream.since(12)).toEqual({ kind: 'reset' });
  });

  it('sends the replay then ready on connect, live events after, and a heartbeat; newlines never split an event', () => {
    const stream = new AlertStream(clock, { capacity: 10, heartbeatMs: 20 });
    const first = stream.publish('alert', '{"a":1}');
    const { res, text } = response();
    stream.attach(res, String(first - 1));
    stream.publish('alert', '{"b":\n2}');
    expect(text()).toBe(
      `retry: 2000\n\nid: ${first}\nevent: alert\ndata: {"a":1}\n\nid: ${first}\nevent: ready\ndata: {"latest_id":${first}}\n\nid: ${first + 1}\nevent: alert\ndata: {"b": 2}\n\n`,
    );
    stream.stop();
    expect(stream.clientCount()).toBe(0);
  });

  it('answers a Last-Event-ID that is not a number with reset', () => {
    const stream = new AlertStream(clock, { capacity: 10 });
    stream.publish('alert', '{}');
    const { res, text } = response();
    stream.attach(res, 'abc');
    expect(text()).toContain('event: reset\n');
    stream.stop();
  });

  it('counts its clients against maxClients', () => {
    const stream = new AlertStream(clock, { maxClients: 1 });
    expect(stream.isFull()).toBe(false);
    stream.attach(response().res, undefined);
    expect(stream.isFull()).toBe(true);
    stream.stop();
    expect(stream.isFull()).toBe(false);
  });
});
