/**
 * The PUBACKs of one broker connection, sent in the order their PUBLISHes arrived (MQTT 3.1.1
 * §4.6) however the messages finish: a message may be acknowledged only once it is stored, and
 * stored messages wait for every earlier one. Several messages are thus stored at once (the
 * spool commits them in one group) while acknowledgements stay in order, and a message the
 * spool refuses holds back the acknowledgements behind it, so the broker's in-flight window
 * fills and it stops sending: backpressure without dropping anything.
 *
 * A message that cannot be handled is released without an acknowledgement: it no longer holds
 * back the ones behind it, and the broker, which still has it, delivers it again on the next
 * connection (external-broker.ts reconnects for that).
 *
 * `reset()` forgets every pending message when the connection is lost: the broker delivers them
 * again on the next connection, so an acknowledgement for the old connection is never sent.
 */
interface Pending {
  messageId: number;
  ready: boolean;
  /** Released without an acknowledgement. */
  skip: boolean;
  dropped: boolean;
}

export class OrderedAcks {
  private queue: Pending[] = [];
  private head = 0;

  constructor(private readonly send: (messageId: number) => void) {}

  /** Messages received and not yet acknowledged. */
  get pending(): number {
    return this.queue.length - this.head;
  }

  /**
   * A message was received; call the returned function once it may be acknowledged, or with
   * `false` to release it unacknowledged (what follows it is then acknowledged as it is ready).
   */
  add(messageId: number): (acknowledge?: boolean) => void {
    const entry: Pending = { messageId, ready: false, skip: false, dropped: false };
    this.queue.push(entry);
    return (acknowledge = true) => {
      if (entry.dropped || entry.ready) return;
      entry.ready = true;
      entry.skip = !acknowledge;
      this.flush();
    };
  }

  /** The connection is gone: nothing pending will be acknowledged (the broker sends it again). */
  reset(): void {
    for (let i = this.head; i < this.queue.length; i++) this.queue[i]!.dropped = true;
    this.queue = [];
    this.head = 0;
  }

  private flush(): void {
    while (this.head < this.queue.length && this.queue[this.head]!.ready) {
      const entry = this.queue[this.head]!;
      this.head++;
      if (!entry.skip) this.send(entry.messageId);
    }
    if (this.head === this.queue.length) {
      this.queue = [];
      this.head = 0;
    } else if (this.head > 1024 && this.head * 2 > this.queue.length) {
      this.queue = this.queue.slice(this.head);
      this.head = 0;
    }
  }
}
