import { type Credentials, globalFetch, type TokenSource } from './http.js';

/** Three of the server's default heartbeat intervals. */
const DEFAULT_IDLE_TIMEOUT_MS = 45_000;

/** The server, and how to reach it. */
export interface Endpoint extends Credentials {
  readonly baseUrl: string;
  readonly fetch: typeof fetch;
  readonly idleTimeoutMs: number;
}

/** The options every streaming call takes about the server and how to reach it. */
export interface EndpointOptions {
  readonly headers?: Record<string, string>;
  readonly token?: TokenSource;
  readonly fetch?: typeof fetch;
  readonly idleTimeoutMs?: number;
}

/** The endpoint at `baseUrl`, with the defaults for what `options` leaves out. */
export function toEndpoint(baseUrl: string, options: EndpointOptions): Endpoint {
  return {
    baseUrl,
    headers: options.headers ?? {},
    token: options.token,
    fetch: options.fetch ?? globalFetch,
    idleTimeoutMs: options.idleTimeoutMs ?? DEFAULT_IDLE_TIMEOUT_MS,
  };
}
