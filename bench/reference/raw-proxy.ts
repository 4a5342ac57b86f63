import {
  Agent,
  createServer,
  type IncomingHttpHeaders,
  type IncomingMessage,
  request,
  type ServerResponse,
} from 'node:http';
import { pipeline } from 'node:stream';
import { listen } from './common.js';

/**
 * The floor of one Node hop for the gateway benchmark: a bare `node:http` pass-through proxy.
 * `POST /v1/chat/completions` goes to the upstream at `UPSTREAM_URL` over a keep-alive agent,
 * and the upstream's status, headers and body bytes come back as they are: nothing is parsed,
 * stored, retried or limited. A gateway cannot do less work per token than this.
 */

const upstreamUrl = process.env.UPSTREAM_URL;
if (!upstreamUrl) throw new Error('raw-proxy needs UPSTREAM_URL');
const upstream = new URL(upstreamUrl);
const agent = new Agent({ keepAlive: true, maxSockets: Number.POSITIVE_INFINITY });

/** Headers about one connection, not the message (RFC 9110 §7.6.1): each hop sets its own. */
const HOP_BY_HOP = new Set(['connection', 'keep-alive', 'transfer-encoding', 'host']);

const endToEnd = (headers: IncomingHttpHeaders): IncomingHttpHeaders =>
  Object.fromEntries(Object.entries(headers).filter(([name]) => !HOP_BY_HOP.has(name)));

function forward(req: IncomingMessage, res: ServerResponse): void {
  const toUpstream = request(
    {
      host: upstream.hostname,
      port: upstream.port,
      method: req.method,
      path: req.url,
      agent,
      headers: endToEnd(req.headers),
    },
    (reply) => {
      res.writeHead(reply.statusCode ?? 502, endToEnd(reply.headers));
      // A client that leaves closes the upstream request too, as a gateway would.
      pipeline(reply, res, () => {});
    },
  );
  toUpstream.on('error', () => res.destroy());
  pipeline(req, toUpstream, () => {});
}

const server = createServer((req, res) => {
  if (req.method === 'POST' && req.url === '/v1/chat/completions') return forward(req, res);
  req.resume();
  res.writeHead(404).end();
});
// The bench's keep-alive clients must outlive the pauses between phases, as at the upstream.
server.keepAliveTimeout = 60_000;
listen(server, 8082);
