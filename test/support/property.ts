/**
 * Settings of the property-based tests (fast-check): a fixed seed and a bounded number of runs,
 * so CI is reproducible and quick. WATCHPOST_PROPERTY_SEED / WATCHPOST_PROPERTY_RUNS explore
 * further on a developer's machine; a failure prints the seed and path to replay it.
 */
export const PROPERTY_SEED = Number(process.env.WATCHPOST_PROPERTY_SEED ?? 20251128);
export const PROPERTY_RUNS = Number(process.env.WATCHPOST_PROPERTY_RUNS ?? 300);

/** fast-check parameters: `fc.assert(property, params())`, or with fewer runs for slow properties. */
export function params(numRuns = PROPERTY_RUNS) {
  return { seed: PROPERTY_SEED, numRuns, endOnFailure: true } as const;
}
