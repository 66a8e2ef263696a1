// The assignment history: one row for every assignment and every move back to
// the queue. The statistics count it (a transferred contact counts for each
// operator it went to), and replicas relay it to their watchers by its ids.
import { insertReturningIds } from '../../storage/insert-returning.ts';
import { Assignment, type AssignmentReason } from '../entities.ts';
import { findContactViews } from '../contacts/views.ts';
import type { Tx } from '../unit-of-work.ts';
import type { AssignmentEvent, ContactView } from '../views.ts';

export interface AssignmentChange {
  /** The contact as the change left it: its operator (none: back in the queue), status and times. */
  contact: ContactView;
  reason: AssignmentReason;
  previousOperatorId: number | null;
}

/**
 * Stores the changes (one INSERT for all) and adds their events to
 * `assigned`, which the unit of work publishes once the transaction commits.
 */
export async function recordAssignments(tx: Tx, changes: readonly AssignmentChange[], at: Date, assigned: AssignmentEvent[]): Promise<void> {
  const ids = await insertReturningIds(
    tx,
    'assignment',
    ['contact_id', 'source_id', 'operator_id', 'previous_operator_id', 'reason', 'assigned_at'],
    changes.map((c) => [c.contact.id, c.contact.source.id, c.contact.operator?.id ?? null, c.previousOperatorId, c.reason, at]),
  );
  changes.forEach((change, i) => assigned.push(assignmentEvent(ids[i]!, change)));
}

export function assignmentEvent(assignmentId: number, change: AssignmentChange): AssignmentEvent {
  return { assignmentId, ...change, fromQueue: cameFromQueue(change) };
}

/**
 * Whether the contact waited in the queue before it got this operator: a
 * drain, or a transfer or timeout of a queued contact. A new contact never
 * waited, and a move back to the queue is no assignment from it.
 */
function cameFromQueue({ contact, reason, previousOperatorId }: AssignmentChange): boolean {
  return contact.operator !== null && previousOperatorId === null && reason !== 'NEW_CONTACT' && reason !== 'AFFINITY';
}

/**
 * The events of stored assignments, in id order, each with the contact as it
 * now is but the operator that assignment gave it (a later one may have moved
 * it again since).
 */
export async function findAssignmentEvents(tx: Tx, assignmentIds: readonly number[]): Promise<AssignmentEvent[]> {
  if (assignmentIds.length === 0) return [];
  const rows = await tx.find(Assignment, { id: { $in: [...assignmentIds] } }, {
    fields: ['id', 'contact', 'operator', 'previousOperator', 'reason'],
    populate: ['operator'],
    orderBy: { id: 'asc' },
    disableIdentityMap: true,
  });
  const contacts = new Map((await findContactViews(tx, { id: { $in: rows.map((row) => row.contact.id) } })).map((c) => [c.id, c]));
  return rows.map((row) => assignmentEvent(row.id, {
    contact: { ...contacts.get(row.contact.id)!, operator: row.operator ? { id: row.operator.id, name: row.operator.name } : null },
    reason: row.reason,
    previousOperatorId: row.previousOperator?.id ?? null,
  }));
}
