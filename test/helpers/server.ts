import { loadConfig, type SettingName } from '../../src/server/config.js';
import { type RunningServer, startServer } from '../../src/server/server.js';

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

export interface Published {
  readonly id: string;
  readonly topic: string;
  readonly event: string;
}

export async function publish(
  baseUrl: string,
  topic: string,
  data: unknown,
  options: { event?: string; headers?: Record<string, string> } = {},
): Promise<Published> {
  const response = await fetch(`${baseUrl}/v1/topics/${encodeURIComponent(topic)}/events`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', ...options.headers },
    body: JSON.stringify(options.event === undefined ? { data } : { data, event: options.event }),
  });
  if (response.status !== 201 && response.status !== 200) {
    throw new Error(`publish failed: ${response.status} ${await response.text()}`);
  }
  return (await response.json()) as Published;
}

/** Resolves when `predicate` holds, polling; rejects after `timeoutMs` with `what` in the message. */
export async function waitFor(
  predicate: () => boolean,
  what: string,
  timeoutMs = 5000,
): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!predicate()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 5));
  }
}
