/**
 * How long a test waits for something before it fails: generous, for a loaded 2-core machine
 * (the suite beside other processes), since it is only reached when something is really wrong.
 */
export const PATIENCE_MS = 30_000;

/** Resolves once the async `probe` returns true, polling; rejects after `timeoutMs`. */
export async function eventually(
  probe: () => Promise<boolean>,
  what: string,
  timeoutMs = PATIENCE_MS,
  intervalMs = 20,
): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await probe())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, intervalMs));
  }
}
