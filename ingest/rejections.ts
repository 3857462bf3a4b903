/** Why an inbound message or reading was refused; the codes appear on errors/{device_id} and in metrics. */
export const REJECTION_REASONS = [
  'too_large',
  'bad_json',
  'bad_shape',
  'too_many',
  'bad_timestamp',
  'bad_metric',
  'bad_value',
  'unknown_asset',
  'unknown_sensor',
  'unknown_metric',
  'out_of_range',
  'not_allowed',
  'bad_topic',
  'storage_full',
] as const;

export type RejectionReason = (typeof REJECTION_REASONS)[number];

export interface Rejection {
  reason: RejectionReason;
  detail: string;
  /** Position in a batch payload, when the message was an array. */
  index?: number;
}

/** Rejected readings listed by index in one errors/ line; the rest are only counted. */
export const MAX_LISTED_READINGS = 100;

/**
 * The line on errors/{device_id} for one message (contract: `{ topic, reason, detail }`, the
 * first rejection). For a batch the line also lists the rejected readings, the first
 * MAX_LISTED_READINGS of them, and counts them all.
 */
export interface RejectionLine {
  topic: string;
  reason: RejectionReason;
  detail: string;
  /** Batch only: every rejected reading of the message. */
  rejected_count?: number;
  /** Batch only: the first MAX_LISTED_READINGS rejected readings, in batch order. */
  rejected_readings?: Array<{ index: number; reason: RejectionReason; detail: string }>;
}

/** One line for all of a message's rejections (at least one). */
export function rejectionLine(topic: string, messageRejections: readonly Rejection[]): RejectionLine {
  // Decoding and range checks find a batch's bad readings in two passes: report them in batch order.
  const rejections = messageRejections.length > 1 ? [...messageRejections].sort((a, b) => (a.index ?? -1) - (b.index ?? -1)) : messageRejections;
  const first = rejections[0]!;
  const detail = first.index === undefined ? first.detail : `reading [${first.index}]: ${first.detail}`;
  const line: RejectionLine = { topic, reason: first.reason, detail };
  let listed: RejectionLine['rejected_readings'];
  for (const r of rejections) {
    if (r.index === undefined) continue;
    listed ??= [];
    if (listed.length === MAX_LISTED_READINGS) break;
    listed.push({ index: r.index, reason: r.reason, detail: r.detail });
  }
  if (listed) {
    line.rejected_count = rejections.length;
    line.rejected_readings = listed;
  }
  return line;
}

/** How many rejections of each reason, in order of first appearance. */
export function countByReason(rejections: readonly Rejection[]): Partial<Record<RejectionReason, number>> {
  const counts: Partial<Record<RejectionReason, number>> = {};
  for (const r of rejections) counts[r.reason] = (counts[r.reason] ?? 0) + 1;
  return counts;
}
