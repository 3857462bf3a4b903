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
