/**
 * How long a test waits for something before it fails: generous, for a loaded 2-core machine
 * (the suite beside other processes), since it is only reached when something is really wrong.
 */
export const PATIENCE_MS = 30_000;
