// Moving an open contact to another operator: TransferContact (to a named
// operator, or through the source's strategy), and the accept deadline,
// which moves a contact its operator did not accept in time.
import { claimCapacity, loadCandidates, recordRoundRobin, releaseCapacity, saveRoundRobin } from '../assignment/candidates.ts';
import { chooseOperator, withoutOperator } from '../assignment/choice.ts';
import { recordAssignments } from '../assignment/history.ts';
import { drainQueue, lockForDrain } from '../assignment/queue.ts';
import { Contact, Operator, type AssignmentReason, type IContact, type Outcome } from '../entities.ts';
import { FailedPreconditionError, NotFoundError } from '../errors.ts';
import { ConflictError, type Tx, type UnitOfWork } from '../unit-of-work.ts';
import type { AssignmentEvent, ContactView } from '../views.ts';
import { acceptDeadline } from './accept-deadlines.ts';
import { CONTACT_RELATIONS, contactView } from './views.ts';

export interface TransferResult {
  contact: ContactView;
  outcome: Outcome;
}

export class Transfers {
  readonly #uow: UnitOfWork;
  readonly #random: () => number;

  constructor(uow: UnitOfWork, random: () => number = Math.random) {
    this.#uow = uow;
    this.#random = random;
  }

  /** `operatorId` undefined: the source's strategy chooses among the others. */
  transferContact(contactId: number, operatorId: number | undefined): Promise<TransferResult> {
    return this.#uow.run(async (tx, assigned) => {
      const contact = await tx.findOne(Contact, contactId, { populate: [...CONTACT_RELATIONS], disableIdentityMap: true });
      if (!contact) throw new NotFoundError(`contact ${contactId} not found`);
      if (operatorId !== undefined && !(await tx.findOne(Operator, operatorId, { fields: ['id'], disableIdentityMap: true }))) {
        throw new NotFoundError(`operator ${operatorId} not found`);
      }
      if (contact.status === 'CLOSED') throw new FailedPreconditionError(`contact ${contactId} is CLOSED: only an open contact can be transferred`);
      if (operatorId !== undefined && contact.operator?.id === operatorId) return { contact: contactView(contact), outcome: 'ASSIGNED' };
      return moveContact(tx, contact, { operatorId, reason: 'TRANSFER', random: this.#random }, assigned);
    });
  }
}

export interface Move {
  /** The operator to take it; undefined: the source's strategy, never the current holder. */
  operatorId: number | undefined;
  reason: Extract<AssignmentReason, 'TRANSFER' | 'ACCEPT_TIMEOUT'>;
  random: () => number;
}

/**
 * Moves an open contact, in the caller's transaction: the new operator's
 * capacity is claimed (or the contact goes back to the queue, keeping its
 * priority and age, so its place), the previous holder's is released and
 * drained to the queue, never handing this contact back to it. The contact
 * is NEW again, with a new assigned_at and accept deadline. Conditional on
 * the contact being as it was read, so a concurrent change reruns the unit.
 */
export async function moveContact(tx: Tx, contact: IContact, move: Move, assigned: AssignmentEvent[]): Promise<TransferResult> {
  const now = new Date();
  const sourceId = contact.source.id;
  const holder = contact.operator?.id ?? null;
  await lockForDrain(tx, { operatorIds: holder === null ? [] : [holder], sourceIds: [sourceId] });
  const pool = await loadCandidates(tx, [sourceId]);
  const settings = pool.bySource.get(sourceId)!;
  let to: number | null;
  let outcome: Outcome = 'ASSIGNED';
  if (move.operatorId !== undefined) {
    if (!(await claimCapacity(tx, new Map([[move.operatorId, 1]]), now))) {
      throw new FailedPreconditionError(`operator ${move.operatorId} is inactive or at its max_load`);
    }
    to = move.operatorId;
  } else {
    const choice = chooseOperator(holder === null ? settings : withoutOperator(settings, holder), move.random);
    if (choice.kind === 'assign') {
      if (!(await claimCapacity(tx, new Map([[choice.operatorId, 1]]), now))) throw new ConflictError(`operator ${choice.operatorId} lost capacity to a concurrent transaction`);
      if (choice.roundRobin) {
        recordRoundRobin(settings, choice.roundRobin);
        await saveRoundRobin(tx, [settings]);
      }
      to = choice.operatorId;
    } else {
      to = null;
      outcome = choice.reason;
    }
  }
  const moved = await tx.nativeUpdate(
    Contact,
    { id: contact.id, status: contact.status, operator: holder, ...(move.reason === 'ACCEPT_TIMEOUT' ? { acceptBy: contact.acceptBy } : {}) },
    { operator: to, status: 'NEW', assignedAt: to === null ? null : now, acceptBy: to === null ? null : acceptDeadline(settings, now) },
  );
  if (moved !== 1) throw new ConflictError(`contact ${contact.id} changed concurrently`);
  if (holder !== null) await releaseCapacity(tx, holder);
  const view: ContactView = {
    ...contactView(contact),
    operator: to === null ? null : { id: to, name: await operatorName(tx, to) },
    status: 'NEW',
    assignedAt: to === null ? null : now,
  };
  await recordAssignments(tx, [{ contact: view, reason: move.reason, previousOperatorId: holder }], now, assigned);
  if (holder !== null) await drainQueue(tx, { operatorIds: [holder] }, move.random, assigned, new Map([[contact.id, holder]]));
  return { contact: view, outcome };
}

async function operatorName(tx: Tx, operatorId: number): Promise<string> {
  const operator = await tx.findOne(Operator, operatorId, { fields: ['name'], disableIdentityMap: true });
  return operator!.name;
}
