/**
 * The rule language's configuration schema (contract: Rules). One schema per rule kind, chosen by
 * the key that names the kind:
 *
 * - `levels`  threshold rule: levels on a signal of one metric (value, rate, moving aggregate,
 *             tangent angle), with `for` and `hysteresis`;
 * - `stale`   no reading from a matched sensor for a duration (platform clock);
 * - `offline` a device's last will or disconnect, not back within the grace period;
 * - `all` / `any` compound: conditions over one asset's metrics, one `level`.
 *
 * `flapping`, `escalation`, `message`, `plan`, `name` and `enabled` apply to every kind. Errors
 * name the field and the reason; an unknown field is reported with the fields its kind accepts.
 */
import { z } from 'zod';
import { MAX_WINDOW_MS } from './signals.js';
import { LEVELS, type Level } from '../lib/levels.js';
import { didYouMean, fieldsAt, oneOrMany, unknownFieldMessage, zDuration, zId, zMetric } from '../lib/schema.js';

// ---- building blocks ----

const comparisonSchema = z
  .strictObject({
    above: z.number().optional(),
    below: z.number().optional(),
    outside: z
      .tuple([z.number(), z.number()])
      .refine(([lo, hi]) => lo < hi, 'needs [low, high] with low < high')
      .optional(),
  })
  .refine((c) => Object.keys(c).filter((k) => k === 'above' || k === 'below' || k === 'outside').length === 1, {
    message: 'needs exactly one of above, below or outside',
  });

export type Condition = { above: number } | { below: number } | { outside: [number, number] };
export const conditionSchema = comparisonSchema.transform((c) => c as Condition);

export const matchSchema = z.strictObject({
  asset_type: oneOrMany(z.string().min(1)).optional(),
  asset_id: oneOrMany(zId).optional(),
  sensor_id: oneOrMany(zId).optional(),
  street: oneOrMany(z.string().min(1)).optional(),
  metric: oneOrMany(zMetric).optional(),
});

/** `offline` rules watch devices: by device id, or by the assets they serve. */
export const offlineMatchSchema = z.strictObject({
  device_id: oneOrMany(zId).optional(),
  asset_type: oneOrMany(z.string().min(1)).optional(),
  asset_id: oneOrMany(zId).optional(),
  street: oneOrMany(z.string().min(1)).optional(),
});

/** Compound rules name their metrics in the conditions; the match picks assets. */
export const assetMatchSchema = z.strictObject({
  asset_type: oneOrMany(z.string().min(1)).optional(),
  asset_id: oneOrMany(zId).optional(),
  street: oneOrMany(z.string().min(1)).optional(),
});

/** A duration that must be more than zero (`0s` is not a window). */
const zPositiveDuration = zDuration.refine((ms) => ms > 0, 'must be longer than 0');
const zWindow = zPositiveDuration.refine((ms) => ms <= MAX_WINDOW_MS, `must be at most ${MAX_WINDOW_MS / 86_400_000}d`);

const levelSchema = z.enum(LEVELS, { error: `must be one of ${LEVELS.join(', ')}` });

const levelsSchema = z
  .strictObject({ blue: conditionSchema.optional(), yellow: conditionSchema.optional(), orange: conditionSchema.optional(), red: conditionSchema.optional() })
  .superRefine((levels, ctx) => {
    const present = LEVELS.filter((l) => levels[l] !== undefined);
    if (present.length === 0) {
      ctx.addIssue({ code: 'custom', message: 'needs at least one of blue, yellow, orange, red' });
      return;
    }
    const kinds = new Set(present.map((l) => Object.keys(levels[l]!)[0]));
    if (kinds.size > 1) {
      ctx.addIssue({ code: 'custom', message: `every level must use the same comparison (found ${[...kinds].join(', ')})` });
      return;
    }
    // Higher levels must be harder to reach: for `above` a higher threshold, for `below` a lower one,
    // for `outside` a band that contains the lower level's band.
    for (let i = 1; i < present.length; i++) {
      const lower = present[i - 1]!;
      const higher = present[i]!;
      const a = levels[lower]!;
      const b = levels[higher]!;
      let ok = true;
      if ('above' in a && 'above' in b) ok = b.above > a.above;
      else if ('below' in a && 'below' in b) ok = b.below < a.below;
      else if ('outside' in a && 'outside' in b) ok = b.outside[0] <= a.outside[0] && b.outside[1] >= a.outside[1] && (b.outside[0] < a.outside[0] || b.outside[1] > a.outside[1]);
      if (!ok) {
        ctx.addIssue({ code: 'custom', path: [higher], message: `${higher} threshold must be stricter than ${lower} (${JSON.stringify(b)} vs ${JSON.stringify(a)})` });
      }
    }
  });

const escalationRefSchema = z.union([zId, z.strictObject({ blue: zId.optional(), yellow: zId.optional(), orange: zId.optional(), red: zId.optional() })]);

/**
 * Defaults for dispatching the rule's alerts: the department (`owner`: the asset's owner) and the
 * due time by level. A dispatch request may give its own.
 */
export const dispatchSchema = z.strictObject({
  department: zId.default('owner'),
  due: z.strictObject({ blue: zPositiveDuration.optional(), yellow: zPositiveDuration.optional(), orange: zPositiveDuration.optional(), red: zPositiveDuration.optional() }).default({}),
});
export const DISPATCH_TO_OWNER = 'owner';

// ---- signals ----

/** What a threshold or condition compares, after parsing (durations in ms). */
export type SignalConfig =
  | { kind: 'value' }
  | { kind: 'rate'; perMs: number; windowMs: number }
  | { kind: 'avg' | 'min' | 'max' | 'sum'; windowMs: number }
  | { kind: 'tangent_angle'; windowMs: number; velocity: number };

const SIGNAL_HELP = 'use value, { rate: 1d, window: 6h }, { avg|min|max|sum: 10m } or { tangent_angle: 6h, velocity: 0.8 }';
const AGGREGATES = ['avg', 'min', 'max', 'sum'] as const;

/**
 * `value` | `{ rate: PER, window: W }` (window defaults to PER) | `{ avg|min|max|sum: W }` |
 * `{ tangent_angle: W, velocity: V }` (V: the slope's constant-deformation rate, in the metric's unit per day).
 */
export const signalSchema = z.unknown().transform((raw, ctx): SignalConfig => {
  if (raw === 'value') return { kind: 'value' };
  if (raw === null || typeof raw !== 'object' || Array.isArray(raw)) {
    ctx.addIssue({ code: 'custom', message: `unknown signal ${JSON.stringify(raw)}; ${SIGNAL_HELP}` });
    return z.NEVER;
  }
  const obj = raw as Record<string, unknown>;
  const keys = Object.keys(obj);
  const duration = (key: string, schema: typeof zWindow): number | undefined => {
    const parsed = schema.safeParse(obj[key]);
    if (parsed.success) return parsed.data;
    ctx.addIssue({ code: 'custom', path: [key], message: parsed.error.issues[0]!.message });
    return undefined;
  };
  const only = (allowed: string[]): boolean => {
    const extra = keys.filter((k) => !allowed.includes(k));
    for (const k of extra) ctx.addIssue({ code: 'custom', path: [k], message: `unknown field (this signal has ${allowed.join(', ')})` });
    return extra.length === 0;
  };
  if ('rate' in obj) {
    const okKeys = only(['rate', 'window']);
    const perMs = duration('rate', zWindow);
    const windowMs = 'window' in obj ? duration('window', zWindow) : perMs;
    if (!okKeys || perMs === undefined || windowMs === undefined) return z.NEVER;
    return { kind: 'rate', perMs, windowMs };
  }
  if ('tangent_angle' in obj) {
    const okKeys = only(['tangent_angle', 'velocity']);
    const windowMs = duration('tangent_angle', zWindow);
    const velocity = obj.velocity;
    let okVelocity = true;
    if (typeof velocity !== 'number' || !Number.isFinite(velocity) || velocity <= 0) {
      ctx.addIssue({
        code: 'custom',
        path: ['velocity'],
        message: 'needs the slope’s constant-deformation rate per day from its calibration, a number > 0 (e.g. velocity: 0.8)',
      });
      okVelocity = false;
    }
    if (!okKeys || windowMs === undefined || !okVelocity) return z.NEVER;
    return { kind: 'tangent_angle', windowMs, velocity: velocity as number };
  }
  const aggregate = AGGREGATES.find((a) => a in obj);
  if (aggregate) {
    const okKeys = only([aggregate]);
    const windowMs = duration(aggregate, zWindow);
    if (!okKeys || windowMs === undefined) return z.NEVER;
    return { kind: aggregate, windowMs };
  }
  ctx.addIssue({ code: 'custom', message: `unknown signal ${JSON.stringify(raw)}; ${SIGNAL_HELP}` });
  return z.NEVER;
});

// ---- flapping ----

export const flappingSchema = z
  .strictObject({
    window: zWindow,
    max_changes: z.number().int().min(1).max(1000),
  })
  .transform((f) => ({ windowMs: f.window, maxChanges: f.max_changes }));

export type FlappingConfig = z.output<typeof flappingSchema>;

// ---- rule kinds ----

const commonFields = {
  id: zId,
  name: z.string().min(1).max(200).optional(),
  escalation: escalationRefSchema.optional(),
  dispatch: dispatchSchema.optional(),
  message: z.string().max(1000).optional(),
  plan: z.array(z.string().min(1).max(500)).max(50).default([]),
  enabled: z.boolean().default(true),
  flapping: flappingSchema.optional(),
};

const thresholdShape = z.strictObject({
  ...commonFields,
  match: matchSchema.refine((m) => m.metric !== undefined, { message: 'a threshold rule needs match.metric', path: ['metric'] }),
  levels: levelsSchema,
  for: zDuration.default(0),
  hysteresis: z.number().min(0).default(0),
  signal: signalSchema.default({ kind: 'value' }),
});

export const thresholdRuleSchema = thresholdShape.transform((r) => ({ kind: 'threshold' as const, ...r }));

const staleShape = z.strictObject({
  ...commonFields,
  match: matchSchema.default({}),
  stale: zPositiveDuration,
  level: levelSchema,
});
export const staleRuleSchema = staleShape.transform((r) => ({ kind: 'stale' as const, ...r }));

const offlineShape = z.strictObject({
  ...commonFields,
  match: offlineMatchSchema.default({}),
  offline: zDuration,
  level: levelSchema,
});
export const offlineRuleSchema = offlineShape.transform((r) => ({ kind: 'offline' as const, ...r }));

export const compoundConditionSchema = z
  .strictObject({
    metric: zMetric,
    sensor_id: oneOrMany(zId).optional(),
    signal: signalSchema.default({ kind: 'value' }),
    /** Overrides the rule's hysteresis for this condition (conditions have their own units). */
    hysteresis: z.number().min(0).optional(),
    above: z.number().optional(),
    below: z.number().optional(),
    outside: z
      .tuple([z.number(), z.number()])
      .refine(([lo, hi]) => lo < hi, 'needs [low, high] with low < high')
      .optional(),
  })
  .superRefine((c, ctx) => {
    const n = ['above', 'below', 'outside'].filter((k) => (c as Record<string, unknown>)[k] !== undefined).length;
    if (n !== 1) ctx.addIssue({ code: 'custom', message: 'needs exactly one of above, below or outside' });
  })
  .transform((c) => {
    const condition: Condition = c.above !== undefined ? { above: c.above } : c.below !== undefined ? { below: c.below } : { outside: c.outside! };
    return { metric: c.metric, sensor_id: c.sensor_id, signal: c.signal, hysteresis: c.hysteresis, condition };
  });

export type CompoundConditionConfig = z.output<typeof compoundConditionSchema>;

const conditionsSchema = z.array(compoundConditionSchema).min(1, 'needs at least one condition').max(16, 'at most 16 conditions');

const compoundShape = z.strictObject({
  ...commonFields,
  match: assetMatchSchema.default({}),
  all: conditionsSchema.optional(),
  any: conditionsSchema.optional(),
  level: levelSchema,
  for: zDuration.default(0),
  hysteresis: z.number().min(0).default(0),
});
export const compoundRuleSchema = compoundShape.transform((r) => {
  const { all, any, ...rest } = r;
  const mode: 'all' | 'any' = all !== undefined ? 'all' : 'any';
  return { kind: 'compound' as const, ...rest, mode, conditions: (all ?? any)! };
});

const KIND_SCHEMAS = {
  levels: { kind: 'threshold', shape: thresholdShape, schema: thresholdRuleSchema },
  stale: { kind: 'stale', shape: staleShape, schema: staleRuleSchema },
  offline: { kind: 'offline', shape: offlineShape, schema: offlineRuleSchema },
  all: { kind: 'compound (all)', shape: compoundShape, schema: compoundRuleSchema },
  any: { kind: 'compound (any)', shape: compoundShape, schema: compoundRuleSchema },
} as const;
const KIND_KEYS = Object.keys(KIND_SCHEMAS) as Array<keyof typeof KIND_SCHEMAS>;

/** Fields each kind accepts, for "unknown field" messages. */
function fieldsOf(key: keyof typeof KIND_SCHEMAS): string[] {
  const fields = Object.keys(KIND_SCHEMAS[key].shape.shape);
  return key === 'all' ? fields.filter((f) => f !== 'any') : key === 'any' ? fields.filter((f) => f !== 'all') : fields;
}

/** Any rule: the kind is chosen by its key (levels, stale, offline, all, any). */
export const ruleSchema = z.unknown().transform((raw, ctx) => {
  if (raw === null || typeof raw !== 'object' || Array.isArray(raw)) {
    ctx.addIssue({ code: 'custom', message: 'a rule must be a mapping with an id and one of levels, stale, offline, all or any' });
    return z.NEVER;
  }
  const kinds = KIND_KEYS.filter((k) => k in raw);
  if (kinds.length === 0) {
    // A misspelt kind key (`levles`) is the cause; "needs one of levels, ..." would only follow from it.
    const known = new Set<string>(KIND_KEYS.flatMap(fieldsOf));
    const unknown = Object.keys(raw).filter((k) => !known.has(k));
    for (const k of unknown) ctx.addIssue({ code: 'custom', path: [k], message: unknownFieldMessage(k, [...known]) });
    if (unknown.some((k) => didYouMean(k, KIND_KEYS) !== undefined)) return z.NEVER;
  }
  if (kinds.length !== 1) {
    ctx.addIssue({
      code: 'custom',
      path: kinds.length > 1 ? [kinds[1]!] : [],
      message: kinds.length === 0 ? 'a rule needs one of levels (threshold), stale, offline, all or any (compound)' : `a rule is of one kind: it has both ${kinds.join(' and ')}`,
    });
    return z.NEVER;
  }
  const key = kinds[0]!;
  const parsed = KIND_SCHEMAS[key].schema.safeParse(raw);
  if (!parsed.success) {
    // A misspelt field (`abvoe`) makes its object's own check fail too ("needs exactly one of
    // above, below or outside"); that follows from it and is left out.
    const misspeltIn = new Set<string>();
    for (const issue of parsed.error.issues) {
      if (issue.code === 'unrecognized_keys') {
        const at = issue.path;
        const fields = at.length === 0 ? fieldsOf(key) : (fieldsAt(KIND_SCHEMAS[key].shape, at) ?? []);
        for (const k of issue.keys) {
          const near = didYouMean(k, fields);
          if (near !== undefined) misspeltIn.add(JSON.stringify(at));
          ctx.addIssue({
            code: 'custom',
            path: [...at, k],
            message: at.length === 0 && near === undefined ? `unknown field (a ${KIND_SCHEMAS[key].kind} rule has ${fields.join(', ')})` : unknownFieldMessage(k, fields),
          });
        }
      }
    }
    for (const issue of parsed.error.issues) {
      if (issue.code === 'unrecognized_keys' || (issue.code === 'custom' && misspeltIn.has(JSON.stringify(issue.path)))) continue;
      ctx.addIssue({ code: 'custom', message: issue.message, path: issue.path });
    }
    return z.NEVER;
  }
  return parsed.data;
});

export type RuleMatch = z.output<typeof matchSchema>;
export type OfflineMatch = z.output<typeof offlineMatchSchema>;
export type AssetMatch = z.output<typeof assetMatchSchema>;
export type ThresholdRuleConfig = z.output<typeof thresholdRuleSchema>;
export type StaleRuleConfig = z.output<typeof staleRuleSchema>;
export type OfflineRuleConfig = z.output<typeof offlineRuleSchema>;
export type CompoundRuleConfig = z.output<typeof compoundRuleSchema>;
export type RuleConfig = ThresholdRuleConfig | StaleRuleConfig | OfflineRuleConfig | CompoundRuleConfig;
export type EscalationRef = z.output<typeof escalationRefSchema>;
export type DispatchConfig = z.output<typeof dispatchSchema>;
export type { Level };
