/** Errors of the device simulators. Every error carries a code; none of them is worth retrying. */
export const SIMULATION_ERRORS = {
  unknown_scenario: 'no scenario with this name',
  invalid_option: 'a simulation option is out of range',
  nothing_to_simulate: 'the configuration has no device that can publish telemetry',
} as const;

export type SimulationErrorCode = keyof typeof SIMULATION_ERRORS;

export class SimulationError extends Error {
  readonly code: SimulationErrorCode;

  constructor(code: SimulationErrorCode, message?: string) {
    super(message ?? SIMULATION_ERRORS[code]);
    this.name = 'SimulationError';
    this.code = code;
  }

  /** Bad options and configurations give the same answer every time. */
  canRetry(): boolean {
    return false;
  }
}
