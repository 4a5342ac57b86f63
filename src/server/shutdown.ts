import { setTimeout as sleep } from 'node:timers/promises';
import type { Streamhub } from './app.js';

/**
 * Stops accepting connections, ends every stream so its client reconnects (elsewhere), lets
 * running replies finish into their logs, and waits for in-flight requests — all within
 * `graceMs`, after which replies are stopped and remaining sockets cut. Resolves to whether
 * everything finished within the grace period.
 */
export async function shutdownGracefully(streamhub: Streamhub, graceMs: number): Promise<boolean> {
  const started = Date.now();
  // Started first, so that the app's onClose hook joins this drain instead of cutting it short.
  const draining = streamhub.services.generations.drain(graceMs);
  const closing = streamhub.app.close();
  streamhub.connections.shutdownAll();
  streamhub.listener.goAway();
  await draining;
  const remaining = Math.max(0, graceMs - (Date.now() - started));
  const clean = await Promise.race([closing.then(() => true), sleep(remaining, false)]);
  if (!clean) {
    streamhub.listener.cutAll();
    await closing;
  }
  return clean;
}
