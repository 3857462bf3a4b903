/**
 * Points a storage backend refuses for their content. When a batch is refused (a parse error, a
 * field type conflict), its parts are sent again, split by what the error names or in halves,
 * until each refused part is a single point or one the backend dropped entirely; everything else
 * in the batch has then been written. The refused points go to a Quarantine (the quarantine file,
 * ingest/quarantine.ts) rather than away.
 */
import type { RejectionReason, StorageError } from './storage-errors.js';

/** Where points refused for their content are kept (never silently dropped). */
export interface Quarantine<T> {
  /** Appends the points with why they were refused; resolves once they are durable, rejects when they are not. */
  add(points: readonly T[], reason: RejectionReason, error: string): Promise<void>;
  /** Where the records go, for logs. */
  readonly location: string;
  /** Releases the file (the writer calls it at stop). */
  close?(): Promise<void>;
}

/** Points the backend refused, with its answer. */
export interface Refused<T> {
  points: T[];
  error: StorageError;
}

/** Sends one part; resolves with the backend's error, undefined when it was written. */
export type SendPart<T> = (part: readonly T[]) => Promise<StorageError | undefined>;

/** A sink's split of a refused batch by what the error names (see BatchSink.split). */
export type SplitHint<T> = (batch: readonly T[], error: StorageError) => T[][];

/**
 * Sends the parts of `batch` (refused with `error`) again, splitting each refused part, until the
 * refused parts are single points or parts the backend dropped whole (a partial write with
 * `dropped` equal to their size). Resolves with them, or with the error of a part that failed
 * for another reason: the whole batch is then retried later (parts written meanwhile are written
 * again, which InfluxDB's overwrite of the same series and timestamp makes harmless).
 */
export async function isolateRefused<T>(batch: readonly T[], error: StorageError, send: SendPart<T>, hint?: SplitHint<T>): Promise<{ refused: Refused<T>[] } | { retry: StorageError }> {
  const refused: Refused<T>[] = [];
  const work: Refused<T>[] = [{ points: [...batch], error }];
  for (let item = work.shift(); item; item = work.shift()) {
    const { points, error: partError } = item;
    if (points.length === 1 || (partError.dropped !== undefined && partError.dropped >= points.length)) {
      refused.push(item);
      continue;
    }
    for (const part of splitRefused(points, partError, hint)) {
      const answer = await send(part);
      if (answer === undefined) continue;
      if (!answer.isContentRejection()) return { retry: answer };
      work.push({ points: part, error: answer });
    }
  }
  return { refused };
}

/** The hint's split when it gives smaller non-empty parts covering the batch, else halves. */
export function splitRefused<T>(points: readonly T[], error: StorageError, hint?: SplitHint<T>): T[][] {
  const hinted = hint?.(points, error).filter((part) => part.length > 0);
  if (hinted && hinted.length > 1 && hinted.every((part) => part.length < points.length) && hinted.reduce((n, part) => n + part.length, 0) === points.length) {
    return hinted;
  }
  const half = Math.ceil(points.length / 2);
  return [points.slice(0, half), points.slice(half)];
}
