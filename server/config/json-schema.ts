/**
 * The JSON Schema of one configuration file (`watchpost.schema.json`), generated from the zod
 * schema `watchpost check` uses, for editors (yaml-language-server) and other tools. Every
 * section is optional, since a file may hold any of them; unknown fields are refused as in
 * `check`. What JSON Schema cannot say (ids unique across files, references between sections,
 * thresholds in order) is left to `watchpost check`.
 *
 * Rules, signals and channels are parsed by dispatching on a key (`levels`, `type`, ...) so that
 * errors name the cause; their JSON Schema is the union of the kinds they dispatch to.
 */
import { z } from 'zod';
import {
  channelSchema,
  dingtalkChannelSchema,
  emailChannelSchema,
  feishuChannelSchema,
  smsAliyunSchema,
  smsHttpSchema,
  smsTencentSchema,
  smsTwilioSchema,
  webhookChannelSchema,
  wecomChannelSchema,
} from '../../alerts/config.js';
import { compoundRuleSchema, offlineRuleSchema, ruleSchema, signalSchema, staleRuleSchema, thresholdRuleSchema } from '../../rules/config.js';
import { zDuration } from '../../lib/schema.js';
import { configSchema } from './schema.js';

type JsonSchema = Record<string, unknown>;

const DURATION: JsonSchema = { type: 'string', pattern: '^\\d+(\\.\\d+)?(ms|s|m|h|d)$', description: 'a duration: 500ms, 30s, 10m, 6h, 1d' };

/** `value` | `{ rate, window }` | `{ avg|min|max|sum }` | `{ tangent_angle, velocity }` (rules/config.ts). */
const SIGNAL: JsonSchema = {
  description: 'what the levels compare: value, { rate: 1d, window: 6h }, { avg|min|max|sum: 10m } or { tangent_angle: 6h, velocity: 0.8 }',
  anyOf: [
    { const: 'value' },
    { type: 'object', properties: { rate: DURATION, window: DURATION }, required: ['rate'], additionalProperties: false },
    ...['avg', 'min', 'max', 'sum'].map((k) => ({ type: 'object', properties: { [k]: DURATION }, required: [k], additionalProperties: false })),
    { type: 'object', properties: { tangent_angle: DURATION, velocity: { type: 'number', exclusiveMinimum: 0 } }, required: ['tangent_angle', 'velocity'], additionalProperties: false },
  ],
};

/** zDuration, or a refinement of it (a clone with the same input schema). */
function isDuration(schema: unknown): boolean {
  const def = (schema as { _zod?: { def?: { type?: string; in?: unknown } } })._zod?.def;
  return def?.type === 'pipe' && def.in === (zDuration as unknown as { _zod: { def: { in: unknown } } })._zod.def.in;
}

function toJson(schema: z.ZodType): JsonSchema {
  const json = z.toJSONSchema(schema, { io: 'input', unrepresentable: 'any', override }) as JsonSchema;
  delete json.$schema;
  return json;
}

/** Fills in the schemas zod cannot derive (the dispatchers above). */
function override(ctx: { zodSchema: unknown; jsonSchema: JsonSchema }): void {
  const replace = (schema: JsonSchema) => {
    for (const key of Object.keys(ctx.jsonSchema)) delete ctx.jsonSchema[key];
    Object.assign(ctx.jsonSchema, schema);
  };
  if (isDuration(ctx.zodSchema)) replace(DURATION);
  else if (ctx.zodSchema === signalSchema) replace(SIGNAL);
  else if (ctx.zodSchema === ruleSchema) {
    const compound = toJson(compoundRuleSchema);
    const required = (compound.required as string[] | undefined) ?? [];
    const properties = compound.properties as JsonSchema;
    replace({
      description: 'a rule: threshold (levels), stale, offline, or compound (all / any)',
      anyOf: [
        toJson(thresholdRuleSchema),
        toJson(staleRuleSchema),
        toJson(offlineRuleSchema),
        // A compound rule has all or any, not both.
        { ...compound, properties: { ...properties, any: false }, required: [...required, 'all'] },
        { ...compound, properties: { ...properties, all: false }, required: [...required, 'any'] },
      ],
    });
  } else if (ctx.zodSchema === channelSchema) {
    const channels = [
      webhookChannelSchema,
      wecomChannelSchema,
      dingtalkChannelSchema,
      feishuChannelSchema,
      emailChannelSchema,
      smsHttpSchema,
      smsAliyunSchema,
      smsTencentSchema,
      smsTwilioSchema,
    ];
    replace({ description: 'a notification channel, by type (and provider for sms)', anyOf: channels.map(toJson) });
  }
}

/** Drops defaults that are parsed values rather than inputs (durations in ms, `signal`'s), which would mislead an editor. */
function dropForeignDefaults(node: unknown): void {
  if (Array.isArray(node)) return node.forEach(dropForeignDefaults);
  if (node === null || typeof node !== 'object') return;
  const obj = node as JsonSchema;
  if ('default' in obj) {
    const value = obj.default;
    const type = obj.type;
    const kind = Array.isArray(value) ? 'array' : value === null ? 'null' : typeof value === 'number' ? (Number.isInteger(value) ? 'integer' : 'number') : typeof value;
    const types = typeof type === 'string' ? [type] : Array.isArray(type) ? (type as string[]) : undefined;
    const fits = types === undefined ? obj.anyOf === undefined && obj.const === undefined : types.includes(kind) || (kind === 'integer' && types.includes('number'));
    if (!fits) delete obj.default;
  }
  for (const value of Object.values(obj)) dropForeignDefaults(value);
}

/** The JSON Schema of one configuration file: every section optional, unknown fields refused. */
export function configJsonSchema(): JsonSchema {
  const json = toJson(configSchema);
  delete json.required;
  dropForeignDefaults(json);
  return {
    $schema: 'https://json-schema.org/draft/2020-12/schema',
    title: 'Watchpost configuration file',
    description:
      'One file of a Watchpost configuration directory. Each file may hold any of the sections; lists are concatenated and maps merged across files. `${NAME}` in a string is replaced by the environment variable NAME. `watchpost check` also checks what a schema cannot: ids unique across files and references between sections.',
    ...json,
  };
}

/** The file's text as committed: two-space indentation and a final newline. */
export function configJsonSchemaText(): string {
  return `${JSON.stringify(configJsonSchema(), null, 2)}\n`;
}
