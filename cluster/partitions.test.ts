import { describe, expect, it } from 'vitest';
import { allPartitions, fnv1a32, partitionOf, queueName } from './partitions.js';

describe('partitions', () => {
  it('hashes with 32-bit FNV-1a over UTF-8 bytes (published test vectors)', () => {
    expect(fnv1a32('')).toBe(0x811c9dc5);
    expect(fnv1a32('a')).toBe(0xe40c292c);
    expect(fnv1a32('foobar')).toBe(0xbf9cf968);
    // U+9F99 is the three bytes e9 be 99: the hash of the bytes, not of the UTF-16 code unit.
    let h = 0x811c9dc5;
    for (const b of [0xe9, 0xbe, 0x99]) h = Math.imul(h ^ b, 0x01000193) >>> 0;
    expect(fnv1a32('龙')).toBe(h);
  });

  it('sends an asset to the same partition, fixed forever', () => {
    expect(partitionOf('foobar', 16)).toBe(0xbf9cf968 % 16);
    expect(partitionOf('lg-bridge-001', 16)).toBe(fnv1a32('lg-bridge-001') % 16);
    expect(partitionOf('lg-bridge-001', 1)).toBe(0);
    expect(partitionOf('a', 1024)).toBe(0xe40c292c % 1024);
  });

  it('spreads assets over the partitions', () => {
    const counts = new Array<number>(16).fill(0);
    for (let i = 0; i < 16_000; i++) counts[partitionOf(`asset-${i}`, 16)]! += 1;
    for (const c of counts) expect(c).toBeGreaterThan(800);
  });

  it('names the queue of a partition and refuses bad counts and partitions', () => {
    expect(queueName(0)).toBe('watchpost.readings.0');
    expect(queueName(1023)).toBe('watchpost.readings.1023');
    expect(() => queueName(1024)).toThrow(RangeError);
    expect(() => queueName(-1)).toThrow(RangeError);
    expect(() => queueName(1.5)).toThrow(RangeError);
    expect(() => partitionOf('a', 0)).toThrow(/1 to 1024/);
    expect(() => partitionOf('a', 1025)).toThrow(RangeError);
    expect(allPartitions(3)).toEqual([0, 1, 2]);
  });
});
