import { setTimeout as sleep } from 'node:timers/promises';
import type { SqlEntityManager } from '@mikro-orm/sql';
import { databaseFault } from '../storage/database-faults.ts';
import type { Orm } from '../storage/orm.ts';
import type { AssignmentPublisher } from './assignment/publisher.ts';
import { StorageFullError, UnavailableError } from './errors.ts';
import type { AssignmentEvent } from './views.ts';

export type Tx = SqlEntityManager;

/** Thrown inside a unit of work when a concurrent writer won a race: the whole unit is run again. */
export class ConflictError extends Error {
  override name = 'ConflictError';
}

export interface UnitOfWorkOptions {
  /**
   * A unique constraint violation usually means another transaction inserted
   * the same row first (a lead, a request_id): the unit runs again and finds
   * it. Where the violation is the caller's error (a name already taken), this
   * returns the error to raise instead.
   */
  uniqueViolation?: (error: unknown) => Error | undefined;
}

export interface UnitOfWorkHooks {
  /** A statement failed because the database could not be reached (the health check takes it from there). */
  unreachable?(error: unknown): void;
  /** Units that may use the database at once; more wait here, in order (see OpenDatabase.connections). */
  concurrency?: number;
}

const MAX_ATTEMPTS = 5;

/**
 * The one place where the database is worked with: a fresh EntityManager fork
 * per call (no identity map outlives it), one transaction per write, bounded
 * retries on lost races, assignment events published only once committed, and
 * every database failure turned into a domain error (UnavailableError,
 * StorageFullError) that the transport maps to a status code.
 */
export class UnitOfWork {
  readonly #orm: Orm;
  readonly #publisher: AssignmentPublisher;
  readonly #hooks: UnitOfWorkHooks;
  readonly #slots: Slots;

  constructor(orm: Orm, publisher: AssignmentPublisher, hooks: UnitOfWorkHooks = {}) {
    this.#orm = orm;
    this.#publisher = publisher;
    this.#hooks = hooks;
    this.#slots = new Slots(hooks.concurrency ?? Number.POSITIVE_INFINITY);
  }

  /** Reads that need no transaction, on a fork of their own. */
  async read<T>(work: (tx: Tx) => Promise<T>): Promise<T> {
    try {
      return await this.#slots.use(() => work(this.#orm.em.fork() as Tx));
    } catch (error) {
      throw this.#translate(error);
    }
  }

  async run<T>(work: (tx: Tx, assigned: AssignmentEvent[]) => Promise<T>, options: UnitOfWorkOptions = {}): Promise<T> {
    for (let attempt = 1; ; attempt++) {
      const assigned: AssignmentEvent[] = [];
      try {
        const result = await this.#slots.use(() => (this.#orm.em.fork() as Tx).transactional(async (tx) => {
          const value = await work(tx, assigned);
          await this.#publisher.stage(tx, assigned);
          return value;
        }));
        this.#publisher.committed(assigned);
        return result;
      } catch (error) {
        const fault = error instanceof ConflictError ? 'conflict' : databaseFault(error);
        const refusal = fault === 'unique' ? options.uniqueViolation?.(error) : undefined;
        if (refusal) throw refusal;
        if (fault !== 'conflict' && fault !== 'unique') throw this.#translate(error);
        if (attempt >= MAX_ATTEMPTS) throw new UnavailableError('too many concurrent changes to the same rows; retry', { cause: error });
        // A short random pause, so that two racing replicas do not meet again at once.
        await sleep(Math.random() * 5 * attempt);
      }
    }
  }

  #translate(error: unknown): unknown {
    switch (databaseFault(error)) {
      case 'unreachable':
        this.#hooks.unreachable?.(error);
        return new UnavailableError('the database is unreachable; retry', { cause: error });
      case 'busy':
        return new UnavailableError('the database is busy; retry', { cause: error });
      case 'full':
        return new StorageFullError('the database is out of space', { cause: error });
      default:
        return error;
    }
  }
}

/** A counting semaphore: at most `size` holders at once, the rest served in arrival order. */
class Slots {
  readonly #size: number;
  readonly #waiting: (() => void)[] = [];
  #held = 0;

  constructor(size: number) {
    this.#size = size;
  }

  async use<T>(work: () => Promise<T>): Promise<T> {
    if (this.#held < this.#size) this.#held += 1;
    // A slot is handed over directly by the holder that frees it.
    else await new Promise<void>((resolve) => this.#waiting.push(resolve));
    try {
      return await work();
    } finally {
      const next = this.#waiting.shift();
      if (next) next();
      else this.#held -= 1;
    }
  }
}
