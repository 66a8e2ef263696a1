// The assignment history: one row for every assignment and every move back to
// the queue. The statistics count it (a transferred contact counts for each
// operator it went to), and replicas relay it to their watchers by its ids.
import { insertReturningIds } from '../../storage/insert-returning.ts';
import { execute, inList, storedDate, type StoredTime } from '../../storage/prepared-statements.ts';
import { priorityName, type AssignmentReason, type ContactStatus } from '../entities.ts';
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
 * it again since). A replica reads them back for its watchers after every
 * batch any replica commits: one prepared statement, rows mapped by hand
 * (MikroORM's hydration of five entities per event cost more than the rest).
 */
export async function findAssignmentEvents(tx: Tx, assignmentIds: readonly number[]): Promise<AssignmentEvent[]> {
  if (assignmentIds.length === 0) return [];
  const ids = inList([...assignmentIds]);
  const { rows } = await execute<AssignmentEventRow>(
    tx,
    `select a.id as assignment_id, a.reason, a.previous_operator_id, a.operator_id, o.name as operator_name,
            c.id, c.status, c.message, c.request_id, c.created_at, c.assigned_at, c.closed_at, c.priority,
            l.id as lead_id, l.external_id, l.name as lead_name, s.id as source_id, s.name as source_name, s.code as source_code
       from assignment a
       join contact c on c.id = a.contact_id
       join lead l on l.id = c.lead_id
       join source s on s.id = c.source_id
       left join operator o on o.id = a.operator_id
      where a.id in (${ids.sql})
      order by a.id`,
    ids.params,
  );
  return rows.map((row) => assignmentEvent(row.assignment_id, {
    contact: {
      id: row.id,
      lead: { id: row.lead_id, externalId: row.external_id, name: row.lead_name },
      source: { id: row.source_id, name: row.source_name, code: row.source_code },
      operator: row.operator_id === null ? null : { id: row.operator_id, name: row.operator_name! },
      status: row.status,
      message: row.message,
      requestId: row.request_id,
      createdAt: storedDate(row.created_at),
      assignedAt: row.assigned_at === null ? null : storedDate(row.assigned_at),
      closedAt: row.closed_at === null ? null : storedDate(row.closed_at),
      priority: priorityName(row.priority),
    },
    reason: row.reason,
    previousOperatorId: row.previous_operator_id,
  }));
}

interface AssignmentEventRow {
  assignment_id: number;
  reason: AssignmentReason;
  previous_operator_id: number | null;
  operator_id: number | null;
  operator_name: string | null;
  id: number;
  status: ContactStatus;
  message: string;
  request_id: string | null;
  created_at: StoredTime;
  assigned_at: StoredTime | null;
  closed_at: StoredTime | null;
  priority: number;
  lead_id: number;
  external_id: string | null;
  lead_name: string;
  source_id: number;
  source_name: string;
  source_code: string | null;
}
