import { UniqueConstraintViolationException } from '@mikro-orm/core';
import type { SqlEntityManager } from '@mikro-orm/sql';
import type { Orm } from '../storage/orm.ts';
import type { AssignmentFeed } from './assignment-feed.ts';
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
 * retries on lost races, and assignment events published only after commit.
 */
export class UnitOfWork {
  readonly #orm: Orm;
  readonly #feed: AssignmentFeed;

  constructor(orm: Orm, feed: AssignmentFeed) {
    this.#orm = orm;
    this.#feed = feed;
  }

  /** A fork for reads that need no transaction. */
  reader(): Tx {
    return this.#orm.em.fork() as Tx;
  }

  async run<T>(work: (tx: Tx, assigned: AssignmentEvent[]) => Promise<T>, options: UnitOfWorkOptions = {}): Promise<T> {
    for (let attempt = 1; ; attempt++) {
      const assigned: AssignmentEvent[] = [];
      try {
        const result = await this.reader().transactional((tx) => work(tx, assigned));
        this.#feed.publish(assigned);
        return result;
      } catch (error) {
        const retryable = error instanceof ConflictError
          || (options.retryOnUniqueViolation === true && error instanceof UniqueConstraintViolationException);
        if (!retryable || attempt >= MAX_ATTEMPTS) throw error;
      }
    }
  }
}
