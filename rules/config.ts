/** The rule language's configuration schema (contract: Rules). */
import { z } from 'zod';
import { LEVELS, type Level } from '../lib/levels.js';
import { oneOrMany, zDuration, zId, zMetric } from '../lib/schema.js';

const comparisonSchema = z
  .strictObject({
    above: z.number().optional(),
    below: z.number().optional(),
    outside: z.tuple([z.number(), z.number()]).refine(([lo, hi]) => lo < hi, 'needs [low, high] with low < high').optional(),
  })
  .refine((c) => Object.keys(c).length === 1, { message: 'needs exactly one of above, below or outside' });

export type Condition = { above: number } | { below: number } | { outside: [number, number] };
export const conditionSchema = comparisonSchema.transform((c) => c as Condition);

export const matchSchema = z.strictObject({
  asset_type: oneOrMany(z.string().min(1)).optional(),
  asset_id: oneOrMany(zId).optional(),
  sensor_id: oneOrMany(zId).optional(),
  street: oneOrMany(z.string().min(1)).optional(),
  metric: oneOrMany(zMetric).optional(),
});

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

const escalationRefSchema = z.union([
  zId,
  z.strictObject({ blue: zId.optional(), yellow: zId.optional(), orange: zId.optional(), red: zId.optional() }),
]);

export const thresholdRuleSchema = z.strictObject({
  id: zId,
  name: z.string().min(1).max(200).optional(),
  match: matchSchema.refine((m) => m.metric !== undefined, { message: 'a threshold rule needs match.metric', path: ['metric'] }),
  levels: levelsSchema,
  for: zDuration.default(0),
  hysteresis: z.number().min(0).default(0),
  signal: z.literal('value', { error: 'only `value` is supported by this version (rate, aggregates and tangent_angle come with the complete rule language)' }).default('value'),
  escalation: escalationRefSchema.optional(),
  message: z.string().max(1000).optional(),
  plan: z.array(z.string().min(1).max(500)).max(50).default([]),
  enabled: z.boolean().default(true),
});

/**
 * Rule kinds of the contract that this version does not evaluate yet. They are refused with a
 * clear message instead of being accepted and silently never firing.
 */
const UNSUPPORTED_KINDS = ['stale', 'offline', 'all', 'any', 'flapping'] as const;

export const ruleSchema = z.unknown().transform((raw, ctx) => {
  if (raw !== null && typeof raw === 'object' && !Array.isArray(raw)) {
    const kind = UNSUPPORTED_KINDS.find((k) => k in raw);
    if (kind) {
      ctx.addIssue({ code: 'custom', path: [kind], message: `rule kind "${kind}" is not supported by this version yet; only threshold rules (levels) are evaluated` });
      return z.NEVER;
    }
  }
  const parsed = thresholdRuleSchema.safeParse(raw);
  if (!parsed.success) {
    for (const issue of parsed.error.issues) ctx.addIssue({ ...issue, code: 'custom', message: issue.message, path: issue.path } as never);
    return z.NEVER;
  }
  return parsed.data;
});

export type RuleMatch = z.output<typeof matchSchema>;
export type ThresholdRuleConfig = z.output<typeof thresholdRuleSchema>;
export type RuleConfig = ThresholdRuleConfig;
export type EscalationRef = z.output<typeof escalationRefSchema>;
export type { Level };
