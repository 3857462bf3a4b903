/**
 * A small reader for the InfluxQL the Watchpost dashboards use, enough to check every query
 * against the writer's layout: which measurements it reads, which fields it selects and which tags
 * it filters or groups by. It understands the statement shapes the generator emits (SELECT with
 * functions, math, aliases, a regex or a subquery in FROM; SHOW TAG VALUES) and refuses others.
 */

export interface QueryRefs {
  /** Measurements read (regex sources expanded to their literal alternatives). */
  measurements: string[];
  /** Identifiers in SELECT lists that name stored fields (or, on alert_events, tags). */
  fields: string[];
  /** Identifiers used as tags: WHERE comparisons, GROUP BY, SHOW TAG VALUES keys. */
  tags: string[];
}

/** Splits a target's text into statements (the dashboards put one statement per line after `;`). */
export function statements(text: string): string[] {
  return text
    .split(/;\s*\n/)
    .map((s) => s.trim().replace(/;$/, ''))
    .filter((s) => s.length > 0);
}

const quoted = (text: string) => [...text.matchAll(/"([^"]+)"/g)].map((m) => m[1]!);

/** `/^(a|b|c)$/` -> [a, b, c]; the dashboards build their regex sources exactly like that. */
function regexAlternatives(source: string): string[] {
  const m = /^\/\^\((.+)\)\$\/$/.exec(source);
  if (!m) throw new Error(`unsupported regex source ${source}`);
  return m[1]!.split('|').map((s) => s.replace(/\\(.)/g, '$1'));
}

/** The text between the parenthesis at `open` and its match. */
function balanced(text: string, open: number): string {
  let depth = 0;
  for (let i = open; i < text.length; i++) {
    if (text[i] === '(') depth++;
    else if (text[i] === ')' && --depth === 0) return text.slice(open + 1, i);
  }
  throw new Error(`unbalanced parentheses in ${text}`);
}

export function readStatement(statement: string): QueryRefs {
  const show = /^SHOW TAG VALUES(?: FROM ("[^"]+"|\/[^/]+\/))? WITH KEY = "([^"]+)"(?: WHERE (.*))?$/.exec(statement);
  if (show) {
    const from = show[1];
    const measurements = from === undefined ? [] : from.startsWith('/') ? regexAlternatives(from) : [from.slice(1, -1)];
    return { measurements, fields: [], tags: [show[2]!, ...whereTags(show[3] ?? '')] };
  }
  if (!statement.startsWith('SELECT ')) throw new Error(`not a recognised InfluxQL statement: ${statement}`);
  const fromAt = statement.indexOf(' FROM ');
  if (fromAt < 0) throw new Error(`no FROM in ${statement}`);
  const selectList = statement.slice('SELECT '.length, fromAt);
  let rest = statement.slice(fromAt + ' FROM '.length);
  let inner: QueryRefs | undefined;
  let innerOutputs: string[] = [];
  let measurements: string[];
  if (rest.startsWith('(')) {
    const sub = balanced(rest, 0);
    inner = readStatement(sub);
    // a subquery's columns are named after its functions (count, mean, …) or their aliases
    innerOutputs = [...sub.slice(0, sub.indexOf(' FROM ')).matchAll(/(\w+)\(/g)].map((m) => m[1]!);
    measurements = inner.measurements;
    rest = rest.slice(sub.length + 2).trim();
  } else {
    const source = /^("[^"]+"|\/[^/]+\/)/.exec(rest);
    if (!source) throw new Error(`unsupported FROM in ${statement}`);
    measurements = source[1]!.startsWith('/') ? regexAlternatives(source[1]!) : [source[1]!.slice(1, -1)];
    rest = rest.slice(source[1]!.length).trim();
  }
  const where = /WHERE (.+?)(?: GROUP BY (.+?))?(?: fill\(\w+\))?(?: ORDER BY time DESC)?(?: LIMIT \d+)?$/.exec(rest);
  if (!where) throw new Error(`no WHERE in ${statement}`);
  const withoutAliases = selectList.replace(/ AS "[^"]+"/g, '');
  const fields = quoted(withoutAliases).filter((f) => !innerOutputs.includes(f));
  const groupTags = quoted((where[2] ?? '').replace(/time\([^)]*\)/g, ''));
  return {
    measurements,
    fields: [...fields, ...(inner?.fields ?? [])],
    tags: [...whereTags(where[1]!), ...groupTags, ...(inner?.tags ?? [])],
  };
}

/** Quoted identifiers compared in a WHERE clause: tags (or, on alert_events, its tags). */
function whereTags(where: string): string[] {
  return [...where.matchAll(/"([^"]+)"\s*(?:=~|!~|!=|<>|=)/g)].map((m) => m[1]!);
}

export interface GrafanaVariables {
  timeFilter: string;
  interval: string;
  /** Regex body used for every multi-value variable ($street, $asset, …). */
  all: string;
  values?: Record<string, string>;
}

/** Replaces Grafana's macros and template variables the way Grafana does for InfluxQL. */
export function substitute(query: string, vars: GrafanaVariables): string {
  return query
    .replaceAll('$timeFilter', vars.timeFilter)
    .replaceAll('$__interval', vars.interval)
    .replace(/\$(\w+)/g, (whole, name: string) => (name.startsWith('tag_') ? whole : (vars.values?.[name] ?? vars.all)));
}
