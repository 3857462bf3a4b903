/**
 * Readings are partitioned by asset: every reading of an asset goes to the same partition, so one
 * instance at a time judges the asset's whole series. The hash is fixed forever (32-bit FNV-1a of
 * the UTF-8 bytes): every instance, of every version, must send an asset to the same queue.
 */

/** The most partitions a cluster may have (the config allows 1..1024). */
export const MAX_PARTITIONS = 1024;

const FNV_OFFSET_BASIS = 0x811c9dc5;
const FNV_PRIME = 0x01000193;
const encoder = new TextEncoder();

/** 32-bit FNV-1a of the UTF-8 bytes of `text`, as an unsigned integer. */
export function fnv1a32(text: string): number {
  let hash = FNV_OFFSET_BASIS;
  for (const byte of encoder.encode(text)) {
    hash ^= byte;
    hash = Math.imul(hash, FNV_PRIME);
  }
  return hash >>> 0;
}

function checkCount(n: number): void {
  if (!Number.isInteger(n) || n < 1 || n > MAX_PARTITIONS) throw new RangeError(`the partition count must be an integer from 1 to ${MAX_PARTITIONS}, not ${n}`);
}

/** The partition (0..n-1) of an asset. */
export function partitionOf(assetId: string, n: number): number {
  checkCount(n);
  return fnv1a32(assetId) % n;
}

/** The quorum queue that carries partition `p`. */
export function queueName(p: number): string {
  if (!Number.isInteger(p) || p < 0 || p >= MAX_PARTITIONS) throw new RangeError(`a partition is an integer from 0 to ${MAX_PARTITIONS - 1}, not ${p}`);
  return `watchpost.readings.${p}`;
}

/** Every partition of a cluster of `n`: 0..n-1. */
export function allPartitions(n: number): number[] {
  checkCount(n);
  return Array.from({ length: n }, (_, p) => p);
}
