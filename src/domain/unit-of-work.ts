import { DeadlockException, LockWaitTimeoutException, UniqueConstraintViolationException } from '@mikro-orm/core';
import type { SqlEntityManager } from '@mikro-orm/sql';
import type { Orm } from '../storage/orm.ts';
import type { AssignmentPublisher } from './assignment-publisher.ts';
import type { AssignmentEvent } from './views.ts';

export type Tx = SqlEntityManager;

/** Thrown inside a unit of work when a concurrent writer won a race: the whole unit is run again. */
export class ConflictError extends Error {
  override name = 'ConflictError';
}

export interface UnitOfWorkOptions {
  /**
   * A unique constraint violation means another transaction inserted the same
   * row first (a lead, a request_id): run again and find it. Off where the
   * violation is the caller's error (duplicate names are ALREADY_EXISTS).
   */
  retryOnUniqueViolation?: boolean;
}

const MAX_ATTEMPTS = 5;

/**
 * The one place where transactions are opened: a fresh EntityManager fork per
 * call (no identity map outlives it), one database transaction, bounded
 * retries on lost races and deadlocks, and assignment events published only
 * once committed.
 */
export class UnitOfWork {
  readonly #orm: Orm;
  readonly #publisher: AssignmentPublisher;

  constructor(orm: Orm, publisher: AssignmentPublisher) {
    this.#orm = orm;
    this.#publisher = publisher;
  }

  /** A fork for reads that need no transaction. */
  reader(): Tx {
    return this.#orm.em.fork() as Tx;
  }

  async run<T>(work: (tx: Tx, assigned: AssignmentEvent[]) => Promise<T>, options: UnitOfWorkOptions = {}): Promise<T> {
    for (let attempt = 1; ; attempt++) {
      const assigned: AssignmentEvent[] = [];
      try {
        const result = await this.reader().transactional(async (tx) => {
          const value = await work(tx, assigned);
          await this.#publisher.stage(tx, assigned);
          return value;
        });
        this.#publisher.committed(assigned);
        return result;
      } catch (error) {
        const retryable = error instanceof ConflictError
          || error instanceof DeadlockException
          || error instanceof LockWaitTimeoutException
          || (options.retryOnUniqueViolation === true && error instanceof UniqueConstraintViolationException);
        if (!retryable || attempt >= MAX_ATTEMPTS) throw error;
      }
    }
  }
}
