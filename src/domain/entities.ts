import { defineEntity, p, type InferEntity } from '@mikro-orm/core';

/** Ids are `integer` columns: 32-bit in PostgreSQL (serial), and SQLite's come from the same kind of sequence. */
export const MAX_ROW_ID = 2 ** 31 - 1;

export const CONTACT_STATUSES = ['NEW', 'IN_PROGRESS', 'CLOSED'] as const;
export type ContactStatus = (typeof CONTACT_STATUSES)[number];

export const OUTCOMES = ['ASSIGNED', 'ASSIGNED_AFFINITY', 'QUEUED_NO_CAPACITY', 'QUEUED_NO_OPERATORS'] as const;
export type Outcome = (typeof OUTCOMES)[number];

export const STRATEGIES = ['WEIGHTED_RANDOM', 'SMOOTH_WEIGHTED_ROUND_ROBIN', 'CAPACITY_WEIGHTED_RANDOM', 'LEAST_LOADED'] as const;
export type Strategy = (typeof STRATEGIES)[number];

/** Stored as these numbers, so the queue can be ordered by them. */
export const PRIORITIES = { LOW: 1, NORMAL: 2, HIGH: 3, URGENT: 4 } as const;
export type Priority = keyof typeof PRIORITIES;

const PRIORITY_NAMES = new Map(Object.entries(PRIORITIES).map(([name, rank]) => [rank as number, name as Priority]));

export function priorityName(rank: number): Priority {
  return PRIORITY_NAMES.get(rank) ?? 'NORMAL';
}

export const ASSIGNMENT_REASONS = ['NEW_CONTACT', 'AFFINITY', 'QUEUE', 'TRANSFER', 'ACCEPT_TIMEOUT'] as const;
export type AssignmentReason = (typeof ASSIGNMENT_REASONS)[number];

export const Operator = defineEntity({
  name: 'Operator',
  properties: {
    id: p.integer().primary(),
    name: p.string().length(200).unique(),
    active: p.boolean().default(true),
    maxLoad: p.integer(),
    // Kept equal to the operator's NEW + IN_PROGRESS contacts by every write that
    // changes them, so eligibility never counts the contacts table.
    openLoad: p.integer().default(0),
    // When it last got a contact, from any source: LEAST_LOADED's tie-break.
    lastAssignedAt: p.datetime().nullable(),
    createdAt: p.datetime().onCreate(() => new Date()),
  },
});
export type IOperator = InferEntity<typeof Operator>;

export const Source = defineEntity({
  name: 'Source',
  properties: {
    id: p.integer().primary(),
    name: p.string().length(200).unique(),
    code: p.string().length(64).nullable().unique(),
    description: p.text().default(''),
    strategy: p.enum(STRATEGIES).default('WEIGHTED_RANDOM'),
    leadAffinity: p.boolean().default(true),
    // Operators of the current smooth round-robin cycle ('' = start a new one);
    // their current weights are on SourceOperator.
    swrrCycle: p.string().length(2000).default(''),
    // A contact still NEW this long after its assignment moves on; 0 = no deadline.
    acceptWithinMs: p.integer().default(0),
    createdAt: p.datetime().onCreate(() => new Date()),
  },
});
export type ISource = InferEntity<typeof Source>;

export const SourceOperator = defineEntity({
  name: 'SourceOperator',
  properties: {
    source: () => p.manyToOne(Source).primary().deleteRule('cascade'),
    operator: () => p.manyToOne(Operator).primary().deleteRule('cascade'),
    weight: p.integer(),
    // Smooth weighted round-robin "current weight"; persisted so the sequence
    // survives restarts and is shared by every process on one database.
    swrrCurrent: p.integer().default(0),
  },
});

export const Lead = defineEntity({
  name: 'Lead',
  properties: {
    id: p.integer().primary(),
    externalId: p.string().length(200).nullable().unique(),
    phone: p.string().length(32).nullable().unique(),
    email: p.string().length(320).nullable().unique(),
    name: p.string().length(200).default(''),
    createdAt: p.datetime().onCreate(() => new Date()),
  },
});
export type ILead = InferEntity<typeof Lead>;

export const Contact = defineEntity({
  name: 'Contact',
  properties: {
    id: p.integer().primary(),
    lead: () => p.manyToOne(Lead),
    source: () => p.manyToOne(Source),
    operator: () => p.manyToOne(Operator).nullable(),
    status: p.enum(CONTACT_STATUSES).default('NEW'),
    message: p.text().default(''),
    requestId: p.string().length(200).nullable(),
    // What RegisterContact answered, so a replayed request answers the same.
    outcome: p.enum(OUTCOMES),
    createdAt: p.datetime().onCreate(() => new Date()),
    assignedAt: p.datetime().nullable(),
    closedAt: p.datetime().nullable(),
    // PRIORITIES: the queue hands out the highest first, then the oldest.
    priority: p.smallint().default(PRIORITIES.NORMAL),
    // When an assigned contact still NEW moves on (its source's accept_within
    // after assigned_at); null when there is no deadline to watch.
    acceptBy: p.datetime().nullable(),
  },
  uniques: [{ properties: ['source', 'requestId'] }],
  indexes: [
    // Open contacts of an operator.
    { properties: ['operator', 'status'] },
    { properties: ['source', 'operator'] },
    // Operators holding a lead's open contacts (affinity), from the index alone.
    { properties: ['lead', 'operator', 'status'] },
    // The queue, per source, in the order it is drained (partial; see the migration).
    { name: 'contact_queue_index', expression: 'create index contact_queue_index on contact (source_id, priority desc, id) where operator_id is null and status = \'NEW\'' },
    // Deadlines to watch, soonest first (partial; see the migration).
    { name: 'contact_accept_by_index', expression: 'create index contact_accept_by_index on contact (accept_by) where accept_by is not null' },
  ],
});
export type IContact = InferEntity<typeof Contact>;

/**
 * Every assignment ever made, and every move back to the queue (operator
 * null): what the statistics count (a transferred contact counts for each
 * operator it went to) and what WatchAssignments streams across replicas.
 */
export const Assignment = defineEntity({
  name: 'Assignment',
  properties: {
    id: p.integer().primary(),
    contact: () => p.manyToOne(Contact),
    source: () => p.manyToOne(Source),
    operator: () => p.manyToOne(Operator).nullable(),
    previousOperator: () => p.manyToOne(Operator).nullable(),
    reason: p.enum(ASSIGNMENT_REASONS),
    assignedAt: p.datetime(),
  },
  indexes: [{ properties: ['source', 'operator'] }],
});

export const entities = [Operator, Source, SourceOperator, Lead, Contact, Assignment];
