/**
 * Bounds the embedded broker's retained store in messages and bytes. It mirrors what the store
 * holds (topic -> size) and decides, for each retained message, whether it may be stored.
 * Pure bookkeeping: the broker asks before aedes stores a retained message.
 */
export interface RetainedLimits {
  maxMessages: number;
  maxBytes: number;
}

export class RetainedBudget {
  private readonly sizes = new Map<string, number>();
  private bytes = 0;

  constructor(private readonly limits: RetainedLimits) {}

  /**
   * A retained message of `payloadBytes` for `topic`: true when it may be stored (an empty
   * payload deletes and is always allowed). False when it does not fit; the topic's previous
   * message is then forgotten too, so the caller deletes it rather than keep a stale value.
   */
  admit(topic: string, payloadBytes: number): boolean {
    const previous = this.sizes.get(topic);
    if (previous !== undefined) {
      this.sizes.delete(topic);
      this.bytes -= previous;
    }
    if (payloadBytes === 0) return true;
    const size = Buffer.byteLength(topic) + payloadBytes;
    if (this.sizes.size + 1 > this.limits.maxMessages || this.bytes + size > this.limits.maxBytes) return false;
    this.sizes.set(topic, size);
    this.bytes += size;
    return true;
  }

  messages(): number {
    return this.sizes.size;
  }

  totalBytes(): number {
    return this.bytes;
  }
}
