import { defineEntity, p, type InferEntity } from '@mikro-orm/core';

export const CONTACT_STATUSES = ['NEW', 'IN_PROGRESS', 'CLOSED'] as const;
export type ContactStatus = (typeof CONTACT_STATUSES)[number];

export const OUTCOMES = ['ASSIGNED', 'ASSIGNED_AFFINITY', 'QUEUED_NO_CAPACITY', 'QUEUED_NO_OPERATORS'] as const;
export type Outcome = (typeof OUTCOMES)[number];

export const STRATEGIES = ['WEIGHTED_RANDOM', 'SMOOTH_WEIGHTED_ROUND_ROBIN'] as const;
export type Strategy = (typeof STRATEGIES)[number];

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
  },
  uniques: [{ properties: ['source', 'requestId'] }],
  indexes: [
    // Open contacts of an operator, and the queue (operator null, status NEW):
    // SQLite keeps index entries in rowid order, so this also yields oldest first.
    { properties: ['operator', 'status'] },
    { properties: ['source', 'operator'] },
    // Operators holding a lead's open contacts (affinity), from the index alone.
    { properties: ['lead', 'operator', 'status'] },
  ],
});
export type IContact = InferEntity<typeof Contact>;

export const entities = [Operator, Source, SourceOperator, Lead, Contact];
