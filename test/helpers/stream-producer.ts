import http from 'node:http';
import { afterEach } from 'node:test';
import { eventually } from './http.js';
import { RawSseClient } from './sse-client.js';

/** How a producer's request ended: its response, or the error that broke it. */
export type ProducerOutcome =
  | { readonly status: number; readonly json: unknown }
  | { readonly error: Error };

/**
 * A producer of `POST /v1/streams/{id}` over node:http, writing its body piece by piece, as an
 * application piping a model's output does.
 */
export class StreamProducer {
  readonly outcome: Promise<ProducerOutcome>;
  readonly #request: http.ClientRequest;

  constructor(
    baseUrl: string,
    id: string,
    contentType: string,
    headers: Record<string, string> = {},
  ) {
    this.#request = http.request(`${baseUrl}/v1/streams/${id}`, {
      method: 'POST',
      headers: { 'content-type': contentType, ...headers },
    });
    this.#request.flushHeaders();
    this.outcome = new Promise((resolve) => {
      this.#request.on('response', (response) => {
        let text = '';
        response.setEncoding('utf8');
        response.on('data', (chunk: string) => {
          text += chunk;
        });
        response.on('end', () => resolve({ status: response.statusCode ?? 0, json: parse(text) }));
        response.on('error', (error) => resolve({ error }));
      });
      this.#request.on('error', (error) => resolve({ error }));
    });
  }

  /** Sends one piece of the body, as a chunk of its own. */
  write(piece: string | Uint8Array): Promise<void> {
    return new Promise((resolve, reject) => {
      this.#request.write(piece, (error) => (error ? reject(error) : resolve()));
    });
  }

  /** Ends the body and resolves to the response. */
  async end(piece?: string): Promise<ProducerOutcome> {
    this.#request.end(piece);
    return this.outcome;
  }

  /** Breaks the connection before the body ended. */
  destroy(): void {
    this.#request.destroy();
  }
}

function parse(text: string): unknown {
  try {
    return JSON.parse(text);
  } catch {
    return undefined;
  }
}

/** Resolves once stream `id` is open with `count` events: a consumer connecting then finds it. */
export async function streamHolds(baseUrl: string, id: string, count: number): Promise<void> {
  await eventually(async () => {
    const response = await fetch(`${baseUrl}/v1/streams/${id}`);
    const body = (await response.json()) as { status?: string; events?: number };
    return body.status === 'open' && (body.events ?? 0) >= count;
  }, `${count} events in stream ${id}`);
}

/**
 * Consumers and producers that are closed after each test of the calling file, so a failed test
 * leaves no connection behind for the next.
 */
export function closedAfterEach() {
  const closers: (() => void)[] = [];
  afterEach(() => {
    for (const close of closers.splice(0)) close();
  });
  return {
    /** Anything else to close after the test. */
    track(close: () => void): void {
      closers.push(close);
    },
    consumer(url: string, headers: Record<string, string> = {}): RawSseClient {
      const client = new RawSseClient(url, headers);
      closers.push(() => client.close());
      return client;
    },
    producer(baseUrl: string, id: string, type: string): StreamProducer {
      const made = new StreamProducer(baseUrl, id, type);
      closers.push(() => made.destroy());
      return made;
    },
  };
}
