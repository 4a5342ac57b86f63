import { Agent, request } from 'node:http';
import { HOST } from './proc.js';

export interface Published {
  status: number;
  id: string | undefined;
}

/**
 * Publishes over keep-alive HTTP/1.1 connections; at most `connections` requests in flight per
 * server. Given several servers' ports, it takes them in turn, publish by publish.
 */
export class HttpPublisher {
  private readonly agent: Agent;
  private readonly ports: readonly number[];
  private turn = 0;
  errors = 0;

  constructor(port: number | readonly number[], connections: number) {
    this.ports = typeof port === 'number' ? [port] : port;
    this.agent = new Agent({ keepAlive: true, maxSockets: connections });
  }

  publish(topic: string, data: unknown): Promise<Published> {
    const body = JSON.stringify({ data });
    const port = this.ports[this.turn++ % this.ports.length];
    return new Promise((resolve) => {
      const req = request(
        {
          host: HOST,
          port,
          method: 'POST',
          path: `/v1/topics/${encodeURIComponent(topic)}/events`,
          agent: this.agent,
          headers: {
            'content-type': 'application/json',
            'content-length': Buffer.byteLength(body),
          },
        },
        (res) => {
          let text = '';
          res.setEncoding('utf8');
          res.on('data', (c: string) => {
            text += c;
          });
          res.on('end', () => {
            const status = res.statusCode ?? 0;
            if (status !== 201) {
              this.errors++;
              resolve({ status, id: undefined });
              return;
            }
            resolve({ status, id: (JSON.parse(text) as { id?: string }).id });
          });
        },
      );
      req.on('error', () => {
        this.errors++;
        resolve({ status: 0, id: undefined });
      });
      req.end(body);
    });
  }

  close(): void {
    this.agent.destroy();
  }
}

/** Wall-clock milliseconds with sub-millisecond precision, comparable across processes. */
export const nowMs = () => performance.timeOrigin + performance.now();
