// The accept deadline: an assigned contact of a source with accept_within,
// still NEW when that time has passed since its assignment, moves on as a
// transfer without a named operator would (to another eligible operator, or
// back to the queue). Each contact carries its deadline (accept_by), indexed,
// so finding the due ones is one index read however many contacts wait.
import { lockDueContacts } from '../../storage/locks.ts';
import { Contact } from '../entities.ts';
import type { UnitOfWork } from '../unit-of-work.ts';
import { moveContact } from './transfer.ts';
import { CONTACT_RELATIONS } from './views.ts';

/** When a contact assigned at `assignedAt` must have been accepted, or null if its source sets no deadline. */
export function acceptDeadline(source: { acceptWithinMs: number }, assignedAt: Date): Date | null {
  return source.acceptWithinMs > 0 ? new Date(assignedAt.getTime() + source.acceptWithinMs) : null;
}

/** Contacts moved per transaction at most: a long backlog (after downtime) is worked off in several. */
const MOVES_PER_TRANSACTION = 50;

export class AcceptDeadlines {
  readonly #uow: UnitOfWork;
  readonly #random: () => number;

  constructor(uow: UnitOfWork, random: () => number = Math.random) {
    this.#uow = uow;
    this.#random = random;
  }

  /**
   * Moves every contact whose deadline has passed, and says how many. Each is
   * claimed under a row lock that other replicas skip (FOR UPDATE SKIP LOCKED
   * on PostgreSQL) and moved only if its deadline is still the one read, so
   * each deadline moves its contact exactly once, whichever replica runs.
   */
  async moveDue(now = new Date()): Promise<number> {
    // A read first: most ticks find nothing due and need no transaction.
    const anyDue = await this.#uow.read((tx) => tx.findOne(Contact, { acceptBy: { $lte: now } }, { fields: ['id'], disableIdentityMap: true }));
    if (!anyDue) return 0;
    let moved = 0;
    for (;;) {
      const count = await this.#uow.run(async (tx, assigned) => {
        const ids = await lockDueContacts(tx, now, MOVES_PER_TRANSACTION);
        if (ids.length === 0) return 0;
        const due = await tx.find(Contact, { id: { $in: ids } }, { populate: [...CONTACT_RELATIONS], orderBy: { acceptBy: 'asc' }, disableIdentityMap: true });
        for (const contact of due) await moveContact(tx, contact, { operatorId: undefined, reason: 'ACCEPT_TIMEOUT', random: this.#random }, assigned);
        return due.length;
      });
      moved += count;
      if (count < MOVES_PER_TRANSACTION) return moved;
    }
  }
}
