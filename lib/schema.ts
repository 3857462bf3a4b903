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

/**
 * Edit distance between two words (optimal string alignment: insertions, deletions,
 * substitutions and swaps of neighbours each count 1), case-insensitive.
 */
export function editDistance(a: string, b: string): number {
  const s = a.toLowerCase();
  const t = b.toLowerCase();
  let prev2: number[] = [];
  let prev = Array.from({ length: t.length + 1 }, (_, j) => j);
  for (let i = 1; i <= s.length; i++) {
    const row = [i];
    for (let j = 1; j <= t.length; j++) {
      const cost = s[i - 1] === t[j - 1] ? 0 : 1;
      let d = Math.min(prev[j]! + 1, row[j - 1]! + 1, prev[j - 1]! + cost);
      if (i > 1 && j > 1 && s[i - 1] === t[j - 2] && s[i - 2] === t[j - 1]) d = Math.min(d, prev2[j - 2]! + 1);
      row.push(d);
    }
    prev2 = prev;
    prev = row;
  }
  return prev[t.length]!;
}

/** The candidate a mistyped word most likely meant: the nearest within a third of its length. */
export function didYouMean(word: string, candidates: readonly string[]): string | undefined {
  const limit = Math.min(3, Math.max(1, Math.floor(word.length / 3)));
  let best: string | undefined;
  let bestDistance = limit + 1;
  for (const candidate of candidates) {
    const d = editDistance(word, candidate);
    if (d < bestDistance) {
      best = candidate;
      bestDistance = d;
    }
  }
  return best;
}

/** `unknown field "levles" (did you mean "levels"?)`, or the accepted names when none is near. */
export function unknownFieldMessage(key: string, accepted: readonly string[], noun = 'field'): string {
  const near = didYouMean(key, accepted);
  if (near !== undefined) return `unknown ${noun} "${key}" (did you mean "${near}"?)`;
  return accepted.length > 0 ? `unknown ${noun} "${key}" (accepted: ${accepted.join(', ')})` : `unknown ${noun} "${key}"`;
}

type SchemaDef = {
  type: string;
  innerType?: z.ZodType;
  in?: z.ZodType;
  shape?: Record<string, z.ZodType>;
  element?: z.ZodType;
  valueType?: z.ZodType;
  items?: z.ZodType[];
  getter?: () => z.ZodType;
};
const defOf = (schema: z.ZodType): SchemaDef => (schema as unknown as { _zod: { def: SchemaDef } })._zod.def;

/**
 * The fields the object at `path` inside `schema` accepts (through optional, default, pipe and
 * transform wrappers, arrays and records), for "unknown field" messages; undefined where the
 * schema decides at run time (unions, custom transforms).
 */
export function fieldsAt(schema: z.ZodType, path: readonly PropertyKey[]): string[] | undefined {
  let current: z.ZodType | undefined = schema;
  let i = 0;
  for (let guard = 0; current && guard < 100; guard++) {
    const def = defOf(current);
    if (def.innerType) current = def.innerType;
    else if (def.type === 'pipe') current = def.in;
    else if (def.type === 'lazy') current = def.getter?.();
    else if (i === path.length) return def.type === 'object' && def.shape ? Object.keys(def.shape) : undefined;
    else if (def.type === 'object') current = def.shape?.[String(path[i++])];
    else if (def.type === 'array') {
      current = def.element;
      i++;
    } else if (def.type === 'record') {
      current = def.valueType;
      i++;
    } else if (def.type === 'tuple') current = def.items?.[Number(path[i++])];
    else return undefined;
  }
  return undefined;
}
