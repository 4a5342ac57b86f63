/**
 * Runs one measurement of a scenario: run.ts's `attempt`, which reports progress, marks a row
 * pending when streamhub is not built and records a failed measurement instead of aborting.
 */
export type Step = (
  label: string,
  needsStreamhub: boolean,
  progress: string,
  fn: () => Promise<void>,
) => Promise<void>;
