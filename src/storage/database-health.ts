// Whether the database answers: checked on a timer, and at once whenever a
// call finds it unreachable. The server turns the verdict into its health
// status, so load balancers stop sending calls to a replica that cannot serve
// them, and send them again when it can.

export interface DatabaseHealthOptions {
  /** Runs a trivial query; rejects when the database cannot answer. */
  probe(): Promise<void>;
  /** Called on every change of verdict, with the error that made it unreachable. */
  changed(reachable: boolean, error?: unknown): void;
  /** Between checks while the database answers. */
  healthyIntervalMs?: number;
  /** Between checks while it does not. */
  unhealthyIntervalMs?: number;
  /** A check not answered within this is a failure. */
  timeoutMs?: number;
}

export class DatabaseHealth {
  readonly #options: Required<DatabaseHealthOptions>;
  #reachable = true;
  #timer: NodeJS.Timeout | undefined;
  #checking = false;
  #stopped = false;

  constructor(options: DatabaseHealthOptions) {
    this.#options = { healthyIntervalMs: 2_000, unhealthyIntervalMs: 1_000, timeoutMs: 10_000, ...options };
  }

  get reachable(): boolean {
    return this.#reachable;
  }

  start(): void {
    this.#schedule();
  }

  stop(): void {
    this.#stopped = true;
    clearTimeout(this.#timer);
  }

  /** A call found the database unreachable: say so now, and check again soon. */
  suspect(error: unknown): void {
    if (this.#stopped) return;
    this.#set(false, error);
    this.#schedule();
  }

  #schedule(): void {
    clearTimeout(this.#timer);
    if (this.#stopped) return;
    const delay = this.#reachable ? this.#options.healthyIntervalMs : this.#options.unhealthyIntervalMs;
    this.#timer = setTimeout(() => void this.#check(), delay);
    // A pending check must not keep the process alive on its own.
    this.#timer.unref();
  }

  async #check(): Promise<void> {
    if (this.#checking) return;
    this.#checking = true;
    let timeout: NodeJS.Timeout | undefined;
    try {
      await Promise.race([
        this.#options.probe(),
        new Promise((_, reject) => {
          timeout = setTimeout(() => reject(new Error(`no answer within ${this.#options.timeoutMs} ms`)), this.#options.timeoutMs);
        }),
      ]);
      this.#set(true);
    } catch (error) {
      this.#set(false, error);
    } finally {
      clearTimeout(timeout);
      this.#checking = false;
      this.#schedule();
    }
  }

  #set(reachable: boolean, error?: unknown): void {
    if (this.#stopped || reachable === this.#reachable) return;
    this.#reachable = reachable;
    this.#options.changed(reachable, error);
  }
}
