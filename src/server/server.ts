import type { AddressInfo } from 'node:net';
import { buildStreamhub, type Streamhub } from './app.js';
import type { Config } from './config.js';
import { shutdownGracefully } from './shutdown.js';
import type { Tracing } from './tracing/index.js';

export interface RunningServer extends Streamhub {
  readonly url: string;
  shutdown(): Promise<boolean>;
}

/** Builds the server and listens; the caller decides when to shut down. With `tracing`, it
 *  traces its requests (see `startTracing`). */
export async function startServer(config: Config, tracing?: Tracing): Promise<RunningServer> {
  const streamhub = await buildStreamhub(config, tracing);
  await streamhub.app.listen({ port: config.PORT, host: config.HOST });
  const { address, port } = streamhub.app.server.address() as AddressInfo;
  const host = address.includes(':') ? `[${address}]` : address;
  let shuttingDown: Promise<boolean> | undefined;
  return {
    ...streamhub,
    url: `${streamhub.listener.scheme}://${host}:${port}`,
    shutdown() {
      shuttingDown ??= shutdownGracefully(streamhub, config.SHUTDOWN_GRACE_MS);
      return shuttingDown;
    },
  };
}
