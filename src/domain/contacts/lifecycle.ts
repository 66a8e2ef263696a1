// UpdateContactStatus: operators working their contacts through the
// lifecycle; closing one frees capacity that the queue takes at once.
import { releaseCapacity } from '../assignment/candidates.ts';
import { CONTACT_RELATIONS, contactView } from './views.ts';
import { transitionRefusal } from './status.ts';
import { Contact, type ContactStatus } from '../entities.ts';
import { FailedPreconditionError, NotFoundError } from '../errors.ts';
import { drainQueue, lockForDrain } from '../assignment/queue.ts';
import { ConflictError, type UnitOfWork } from '../unit-of-work.ts';
import { execute } from '../../storage/prepared-statements.ts';
import type { ContactView } from '../views.ts';

export class ContactLifecycle {
  readonly #uow: UnitOfWork;
  readonly #random: () => number;

  constructor(uow: UnitOfWork, random: () => number = Math.random) {
    this.#uow = uow;
    this.#random = random;
  }

  updateContactStatus(contactId: number, status: ContactStatus): Promise<ContactView> {
    return this.#uow.run(async (tx, assigned) => {
      const contact = await tx.findOne(Contact, contactId, { populate: [...CONTACT_RELATIONS] });
      if (!contact) throw new NotFoundError(`contact ${contactId} not found`);
      const from = contact.status;
      if (from === status) return contactView(contact);
      const refusal = transitionRefusal(from, status, !contact.operator);
      if (refusal !== null) throw new FailedPreconditionError(refusal);
      const closedAt = status === 'CLOSED' ? new Date() : null;
      // Conditional on the status and operator we read: two concurrent closes free the load once, and a
      // queued contact that a concurrent drain assigned meanwhile is read again, so its load is freed too.
      // Accepted (IN_PROGRESS) or closed: no accept deadline is left to watch.
      const { affected: changed } = await execute(
        tx,
        `update contact set status = ?, closed_at = ?, accept_by = null where id = ? and status = ? and operator_id ${contact.operator ? '= ?' : 'is null'}`,
        [status, closedAt, contactId, from, ...(contact.operator ? [contact.operator.id] : [])],
      );
      if (changed !== 1) throw new ConflictError(`contact ${contactId} changed concurrently`);
      const view = { ...contactView(contact), status, closedAt };
      if (status === 'CLOSED' && contact.operator) {
        await lockForDrain(tx, { operatorIds: [contact.operator.id] });
        await releaseCapacity(tx, contact.operator.id);
        await drainQueue(tx, { operatorIds: [contact.operator.id] }, this.#random, assigned);
      }
      return view;
    });
  }
}
