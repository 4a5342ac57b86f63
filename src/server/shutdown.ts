import type { Streamhub } from './app.js';

/**
 * Stops accepting connections, ends every stream so its client reconnects elsewhere, and
 * waits for in-flight requests — at most `graceMs`, after which remaining sockets are cut.
 * Resolves to whether the shutdown finished within the grace period.
 */
export async function shutdownGracefully(streamhub: Streamhub, graceMs: number): Promise<boolean> {
  const closing = streamhub.app.close();
  streamhub.connections.shutdownAll();
  let timer: NodeJS.Timeout | undefined;
  const expired = new Promise<false>((resolve) => {
    timer = setTimeout(() => resolve(false), graceMs);
  });
  const clean = await Promise.race([closing.then(() => true), expired]);
  clearTimeout(timer);
  if (!clean) {
    streamhub.app.server.closeAllConnections();
    await closing;
  }
  return clean;
}
