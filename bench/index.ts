/**
 * `npm run bench -- <scenario>`: benchmark scripts that print figures (never assertions).
 * Benchmarks are not tests: CI does not run them.
 */
const SCENARIOS: Record<string, { describe: string; load: () => Promise<unknown> }> = {
  rules: { describe: 'rule evaluation cost per reading, 1,000 rules over 10,000 sensors', load: () => import('./rules-bench.js') },
};

const name = process.argv[2];
if (!name || !(name in SCENARIOS)) {
  process.stderr.write(`usage: npm run bench -- <scenario>\n\nscenarios:\n${Object.entries(SCENARIOS).map(([n, s]) => `  ${n.padEnd(12)} ${s.describe}`).join('\n')}\n`);
  process.exit(name ? 2 : 0);
}
await SCENARIOS[name]!.load();
