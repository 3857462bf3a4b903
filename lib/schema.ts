/** Zod building blocks shared by every part's configuration schema. */
import { z } from 'zod';
import { parseDuration } from './duration.js';
import { ID_PATTERN, METRIC_PATTERN } from './ids.js';

export const zId = z.string().regex(ID_PATTERN, 'must be 1-64 characters of A-Z a-z 0-9 _ . -');
export const zMetric = z.string().regex(METRIC_PATTERN, 'must match [a-z][a-z0-9_]{0,63}');

/** A duration string such as `30s`, parsed to milliseconds. */
export const zDuration = z.string().transform((text, ctx) => {
  const ms = parseDuration(text);
  if (ms === undefined) {
    ctx.addIssue({ code: 'custom', message: `"${text}" is not a duration (use 500ms, 30s, 10m, 6h or 1d)` });
    return z.NEVER;
  }
  return ms;
});

/** A value or a list of values, normalised to a list. */
export function oneOrMany<T extends z.ZodType>(item: T) {
  return z.union([item, z.array(item).min(1)]).transform((v) => (Array.isArray(v) ? v : [v]) as z.output<T>[]);
}
