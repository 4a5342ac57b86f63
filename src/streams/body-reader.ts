import { finished, type Readable } from 'node:stream';

/** What a read answers: a chunk, `null` once the body has ended, or a stop it was given. */
export type BodyRead<S> = Uint8Array | null | S;

/**
 * Reads a request body one `read()` at a time: all that arrived since the last read comes as
 * one chunk, so a producer that got ahead is handled in one go. Cheaper per chunk than the
 * body's async iterator (an async generator awaiting a new promise for every chunk, wrapped in
 * another to race it with a stop), and `stop` answers the read in progress at once.
 */
export class BodyReader<S> {
  /** `undefined` while the body is open, `null` once it ended whole, else why it broke. */
  #end: Error | null | undefined;
  #stopped: S | undefined;
  #waiting: { resolve(read: BodyRead<S>): void; reject(error: Error): void } | undefined;

  constructor(readonly body: Readable) {
    body.on('readable', () => this.#answer());
    // Covers the body's end, its error and a connection closed before the end (an error).
    finished(body, { writable: false }, (error) => {
      this.#end = error ?? null;
      this.#answer();
    });
  }

  /** The next chunk; rejects when the body broke. Only one read may be in progress. */
  read(): Promise<BodyRead<S>> {
    return new Promise((resolve, reject) => {
      this.#waiting = { resolve, reject };
      this.#answer();
    });
  }

  /** Later reads, and the one in progress, answer `stop`. */
  stop(stop: S): void {
    this.#stopped ??= stop;
    this.#answer();
  }

  /** Answers the read in progress if there is an answer yet. */
  #answer(): void {
    const waiting = this.#waiting;
    if (waiting === undefined) return;
    const chunk: Uint8Array | null =
      this.#stopped !== undefined || this.body.destroyed ? null : this.body.read();
    if (this.#stopped !== undefined) waiting.resolve(this.#stopped);
    else if (chunk !== null || this.#end === null) waiting.resolve(chunk);
    else if (this.#end !== undefined) waiting.reject(this.#end);
    else return;
    this.#waiting = undefined;
  }
}
