/** The steady publisher lives with the bench's servers, so the bench and the tests share one. */
export * from '../../bench/support/steady-publisher.js';
