/** Shared with the benchmarks, which the build compiles: kept in bench/support so that the package carries no test code. */
export * from '../../bench/support/cluster.js';
