import { describe, expect, it } from 'vitest';
import { OrderedAcks } from './ordered-acks.js';

describe('OrderedAcks', () => {
  it('acknowledges in arrival order whatever order the messages finish in', () => {
    const sent: number[] = [];
    const acks = new OrderedAcks((id) => sent.push(id));
    const one = acks.add(1);
    const two = acks.add(2);
    const three = acks.add(3);
    three();
    expect(sent).toEqual([]);
    two();
    expect(sent).toEqual([]);
    one();
    expect(sent).toEqual([1, 2, 3]);
    expect(acks.pending).toBe(0);
  });

  it('holds back what follows a message that is not stored yet', () => {
    const sent: number[] = [];
    const acks = new OrderedAcks((id) => sent.push(id));
    const a = acks.add(10);
    const b = acks.add(11);
    const c = acks.add(12);
    a();
    c();
    expect(sent).toEqual([10]);
    expect(acks.pending).toBe(2);
    b();
    expect(sent).toEqual([10, 11, 12]);
  });

  it('acknowledges each message once even if released twice', () => {
    const sent: number[] = [];
    const acks = new OrderedAcks((id) => sent.push(id));
    const a = acks.add(5);
    a();
    a();
    expect(sent).toEqual([5]);
  });

  it('never acknowledges messages of a lost connection, and keeps going with the next', () => {
    const sent: number[] = [];
    const acks = new OrderedAcks((id) => sent.push(id));
    const old1 = acks.add(1);
    const old2 = acks.add(2);
    old2();
    acks.reset();
    expect(acks.pending).toBe(0);
    const fresh = acks.add(1);
    old1();
    expect(sent).toEqual([]);
    fresh();
    expect(sent).toEqual([1]);
  });

  it('passes over a message released without acknowledgement, and never acknowledges it later', () => {
    const sent: number[] = [];
    const acks = new OrderedAcks((id) => sent.push(id));
    const a = acks.add(1);
    const b = acks.add(2);
    const c = acks.add(3);
    c();
    a(false);
    expect(sent).toEqual([]);
    b();
    expect(sent).toEqual([2, 3]);
    a();
    expect(sent).toEqual([2, 3]);
    expect(acks.pending).toBe(0);
  });

  it('keeps order over many messages finishing in reverse', () => {
    const sent: number[] = [];
    const acks = new OrderedAcks((id) => sent.push(id));
    const releases = Array.from({ length: 3000 }, (_, i) => acks.add((i % 65535) + 1));
    for (let i = releases.length - 1; i > 0; i--) releases[i]!();
    expect(sent).toEqual([]);
    releases[0]!();
    expect(sent).toEqual(Array.from({ length: 3000 }, (_, i) => (i % 65535) + 1));
    expect(acks.pending).toBe(0);
  });
});
