// A grpc-js server stream read as it comes: its messages, its errors and how it ended.
import type { ClientReadableStream, StatusObject } from '@grpc/grpc-js';

export class StreamReader<T, M = T> {
  /** Every message so far, as `map` made it. */
  readonly messages: M[] = [];
  /** The errors the stream emitted (a non-OK end emits one). */
  readonly errors: Error[] = [];
  /** Resolves with the final status. */
  readonly ended: Promise<StatusObject>;
  readonly stream: ClientReadableStream<T>;
  #waiters: (() => void)[] = [];
  #taken = 0;
  #isEnded = false;

  constructor(stream: ClientReadableStream<T>, map: (message: T) => M = (message) => message as unknown as M) {
    this.stream = stream;
    stream.on('data', (message: T) => {
      this.messages.push(map(message));
      this.#waiters.splice(0).forEach((wake) => wake());
    });
    stream.on('error', (error: Error) => this.errors.push(error));
    this.ended = new Promise((resolve) => stream.on('status', resolve));
    void this.ended.then(() => (this.#isEnded = true));
  }

  /** How many messages `next()` has returned. */
  get taken(): number {
    return this.#taken;
  }

  /** The next message not yet taken, or undefined if none arrives within `ms`. */
  async next(ms = 2_000): Promise<M | undefined> {
    if (this.#taken >= this.messages.length) {
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, ms);
        this.#waiters.push(() => {
          clearTimeout(timer);
          resolve();
        });
      });
    }
    return this.#taken < this.messages.length ? this.messages[this.#taken++] : undefined;
  }

  /** Waits until some message satisfies `test` (fails if the stream ends first). */
  async until(test: (message: M) => boolean): Promise<M> {
    for (;;) {
      const found = this.messages.find(test);
      if (found !== undefined) return found;
      if (this.#isEnded) throw new Error('stream ended before the expected message');
      await Promise.race([new Promise<void>((resolve) => this.#waiters.push(resolve)), this.ended]);
    }
  }
}
