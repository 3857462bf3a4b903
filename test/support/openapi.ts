/**
 * Checks HTTP answers against the API's own OpenAPI document (GET /openapi.json): the schema of
 * the route and status an answer came from, validated with ajv (fastify's validator).
 */
import { Ajv2020, type ValidateFunction } from 'ajv/dist/2020.js';

export interface OpenApiDocument {
  openapi: string;
  paths: Record<string, Record<string, { responses: Record<string, { content?: Record<string, { schema: object }> }>; security?: unknown[] }>>;
  components?: { schemas?: Record<string, object> };
}

/** GET /openapi.json of a running API (base URL, e.g. http://127.0.0.1:8080). */
export async function fetchOpenApi(apiUrl: string): Promise<OpenApiDocument> {
  const res = await fetch(`${apiUrl}/openapi.json`);
  if (res.status !== 200) throw new Error(`GET /openapi.json answered ${res.status}`);
  return (await res.json()) as OpenApiDocument;
}

/** The document's path template that a request path (query string allowed) falls under. */
export function pathTemplate(doc: OpenApiDocument, path: string): string | undefined {
  const segments = path.split('?')[0]!.split('/');
  return Object.keys(doc.paths).find((template) => {
    const parts = template.split('/');
    return parts.length === segments.length && parts.every((p, i) => (/^\{.+\}$/.test(p) ? segments[i] !== '' : p === segments[i]));
  });
}

const validators = new WeakMap<OpenApiDocument, Map<string, ValidateFunction>>();

/**
 * The reasons `body` is not what the document says `method path` answers with `status`
 * (application/json), or [] when it is. Throws when the document has no such answer.
 */
export function openApiMismatches(doc: OpenApiDocument, method: string, path: string, status: number, body: unknown): string[] {
  const template = pathTemplate(doc, path);
  if (!template) throw new Error(`no path of the OpenAPI document matches ${path}`);
  const operation = doc.paths[template]![method.toLowerCase()];
  if (!operation) throw new Error(`the OpenAPI document has no ${method} ${template}`);
  const response = operation.responses[String(status)];
  if (!response) throw new Error(`the OpenAPI document has no ${status} answer for ${method} ${template} (has ${Object.keys(operation.responses).join(', ')})`);
  const schema = response.content?.['application/json']?.schema;
  if (!schema) throw new Error(`the ${status} answer of ${method} ${template} has no JSON body`);
  let cache = validators.get(doc);
  if (!cache) validators.set(doc, (cache = new Map<string, ValidateFunction>()));
  const key = `${method} ${template} ${status}`;
  let validate = cache.get(key);
  if (!validate) {
    // OpenAPI 3.1 schema objects are JSON Schema 2020-12 (with a few annotation keywords ajv does not know).
    const ajv = new Ajv2020({ allErrors: true, strict: false });
    if (doc.components?.schemas) for (const [name, s] of Object.entries(doc.components.schemas)) ajv.addSchema(s, `#/components/schemas/${name}`);
    validate = ajv.compile(schema);
    cache.set(key, validate);
  }
  if (validate(body)) return [];
  return validate.errors!.map((e) => `${key}: ${e.instancePath || '(body)'} ${e.message}`);
}
