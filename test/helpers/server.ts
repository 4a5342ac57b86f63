import { loadConfig, type SettingName } from '../../src/server/config.js';
import { type RunningServer, startServer } from '../../src/server/server.js';
import { PATIENCE_MS } from './patience.js';

export type Settings = Partial<Record<SettingName, string>>;

/** A real server on a free loopback port, quiet unless STREAMHUB_TEST_LOG is set. */
export async function startTestServer(settings: Settings = {}): Promise<RunningServer> {
  return startServer(
    loadConfig(
      {},
      {
        PORT: '0',
        HOST: '127.0.0.1',
        LOG_LEVEL: process.env.STREAMHUB_TEST_LOG ?? 'silent',
        SHUTDOWN_GRACE_MS: '2000',
        ...settings,
      },
    ),
  );
}

/** Runs `body` against a server of its own with `settings`, shut down afterwards whatever
 *  happened. */
export async function withServer(
  settings: Settings,
  body: (server: RunningServer) => Promise<void>,
): Promise<void> {
  const server = await startTestServer(settings);
  try {
    await body(server);
  } finally {
    await server.shutdown();
  }
}

/**
 * Where nothing listens, whatever else runs on the machine: port 2 is privileged and never
 * handed out to a listener on port 0, unlike the port of a server that was just stopped (and
 * unlike port 1, `fetch` does not refuse to try it).
 */
export const UNREACHABLE_URL = 'http://127.0.0.1:2';

/** Tests publish with the client library's own `publish`: it is what users call. */
export { type Published, publish } from '../../src/client/publish.js';

/** Resolves when `predicate` holds, polling; rejects after `timeoutMs` with `what` in the message. */
export async function waitFor(
  predicate: () => boolean,
  what: string,
  timeoutMs = PATIENCE_MS,
): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!predicate()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 5));
  }
}

/**
 * Resolves once `progress()` reaches `target`. It gives up only when the count has not moved
 * for `stallMs`: a large transfer on a loaded machine may take minutes, a stuck one stops.
 */
export async function waitForProgress(
  progress: () => number,
  target: number,
  what: string,
  stallMs = PATIENCE_MS,
): Promise<void> {
  let reached = progress();
  let movedAt = Date.now();
  while (reached < target) {
    if (Date.now() - movedAt > stallMs) {
      throw new Error(`timed out waiting for ${what}: stuck at ${reached} of ${target}`);
    }
    await new Promise((resolve) => setTimeout(resolve, 5));
    const now = progress();
    if (now !== reached) movedAt = Date.now();
    reached = now;
  }
}
