import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { HOST } from './proc.js';

/**
 * Where a traced server exports its spans during a benchmark: an OTLP/HTTP endpoint that reads
 * each export and answers it as a collector would, keeping only counts, so that the cost
 * measured is the traced server's, not a collector's.
 */
export class OtlpSink {
  exports = 0;
  bytes = 0;
  readonly #server: Server = createServer((req, res) => {
    req.on('data', (chunk: Buffer) => {
      this.bytes += chunk.length;
    });
    req.on('end', () => {
      this.exports++;
      // An empty ExportTraceServiceResponse: everything accepted.
      res.writeHead(200, { 'content-type': 'application/x-protobuf' }).end();
    });
  });

  static async start(): Promise<OtlpSink> {
    const sink = new OtlpSink();
    await new Promise<void>((resolve) => sink.#server.listen(0, HOST, resolve));
    return sink;
  }

  /** What `OTEL_EXPORTER_OTLP_ENDPOINT` is set to. */
  get endpoint(): string {
    return `http://${HOST}:${(this.#server.address() as AddressInfo).port}`;
  }

  close(): Promise<void> {
    this.#server.closeAllConnections();
    return new Promise((resolve) => this.#server.close(() => resolve()));
  }
}
