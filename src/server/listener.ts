import { Server as HttpServer } from 'node:http';
import type { Http2SecureServer, ServerHttp2Session } from 'node:http2';
import type { FastifyHttpOptions } from 'fastify';
import { boundHttp2Bodies } from './limits/http2-body-timeout.js';
import type { TlsMaterial } from './tls.js';

/** How the server takes connections, as Fastify's options and Node's server settings. */
export interface ListenerSettings {
  /** HTTPS with HTTP/2 and HTTP/1.1 when given, else plain HTTP/1.1. */
  readonly tls: TlsMaterial | undefined;
  readonly maxHeaderBytes: number;
  /** A request (head and body) must arrive within this, over HTTP/1.1 and HTTP/2; streams
   *  are unaffected. */
  readonly requestTimeoutMs: number;
  /** An idle HTTP/1.1 connection is closed after this. */
  readonly keepAliveTimeoutMs: number;
}

/** What shutdown does to the open connections, whichever protocol they speak. */
export interface Listener {
  readonly scheme: 'http' | 'https';
  /**
   * Tells HTTP/2 clients to go (GOAWAY): their running requests may finish, new ones go
   * elsewhere. Idle HTTP/1.1 connections are closed by the server's own close.
   */
  goAway(): void;
  /** Cuts every connection at once, for when the grace period is over. */
  cutAll(): void;
}

/**
 * Fastify's options for the server it creates. With TLS, ALPN picks HTTP/2 or HTTP/1.1 per
 * connection on the same port: browsers multiplex every stream of an origin over one HTTP/2
 * connection, and WebSockets upgrade over HTTP/1.1.
 */
export function serverOptions(settings: ListenerSettings): FastifyHttpOptions<HttpServer> {
  if (settings.tls === undefined) {
    return {
      // Larger request heads are refused by Node's parser and answered 431 by the client error
      // handler; a request without Host is refused by installHttpRefusals, both in the API's
      // error shape.
      http: {
        maxHeaderSize: settings.maxHeaderBytes,
        requireHostHeader: false,
        connectionsCheckingInterval: checkingInterval(settings),
      },
      // Fastify's default, 0, let a client hold a connection for ever by trickling a body.
      requestTimeout: settings.requestTimeoutMs,
      keepAliveTimeout: settings.keepAliveTimeoutMs,
    };
  }
  // The app stays typed for HTTP/1 requests and replies: over HTTP/2 they are Node's
  // compatibility objects, which offer what the routes use of them; SseStream, which writes
  // responses itself, handles both kinds.
  return {
    http2: true,
    https: {
      allowHTTP1: true,
      cert: settings.tls.cert,
      key: settings.tls.key,
      settings: { maxHeaderListSize: settings.maxHeaderBytes },
    },
  } as unknown as FastifyHttpOptions<HttpServer>;
}

/**
 * How often Node's HTTP/1 code looks for requests past their timeout: its default, 30 s, unless
 * the timeout is shorter, which would otherwise hold for up to 30 s more.
 */
function checkingInterval(settings: ListenerSettings): number {
  return Math.min(30_000, settings.requestTimeoutMs);
}

/**
 * Finishes setting up the server Fastify created from `serverOptions`. Over TLS, HTTP/1.1
 * connections are served by Node's HTTP/1 code, which reads its limits from the server
 * object, where Fastify sets them only for an HTTP/1 server; HTTP/2 streams get the request
 * timeout from `boundHttp2Bodies`, Node having none for them.
 */
export function prepareListener(server: HttpServer, settings: ListenerSettings): Listener {
  if (settings.tls === undefined) {
    return { scheme: 'http', goAway() {}, cutAll: () => server.closeAllConnections() };
  }
  Object.assign(server, {
    maxHeaderSize: settings.maxHeaderBytes,
    requestTimeout: settings.requestTimeoutMs,
    headersTimeout: settings.requestTimeoutMs,
    keepAliveTimeout: settings.keepAliveTimeoutMs,
    connectionsCheckingInterval: checkingInterval(settings),
  });
  const secure = server as unknown as Http2SecureServer;
  boundHttp2Bodies(secure, settings.requestTimeoutMs);
  const sessions = new Set<ServerHttp2Session>();
  secure.on('session', (session) => {
    sessions.add(session);
    session.once('close', () => sessions.delete(session));
  });
  return {
    scheme: 'https',
    goAway() {
      for (const session of sessions) session.close();
    },
    cutAll() {
      for (const session of sessions) session.destroy();
      // Node's HTTP/2 server tracks its HTTP/1.1 connections as an HTTP/1 server does, and
      // borrows that server's closeIdleConnections in the same way.
      HttpServer.prototype.closeAllConnections.call(server);
    },
  };
}
