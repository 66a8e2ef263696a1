// The read side: dashboards and reports. Reads run on their own fork, outside
// any write transaction.
import { raw, type FilterQuery } from '@mikro-orm/core';
import { findOperator, operatorView } from './admin.ts';
import { findContactViews } from './contacts/views.ts';
import { Assignment, Contact, Lead, Operator, Source, SourceOperator, type ContactStatus, type IContact, type ILead } from './entities.ts';
import { NotFoundError } from './errors.ts';
import { normalizeIdentifiers, pickLead } from './contacts/lead-identity.ts';
import { findSource, sourceViews, type SourceKey } from './sources.ts';
import type { Tx, UnitOfWork } from './unit-of-work.ts';
import type { ContactView, LeadView, OperatorView, SourceView } from './views.ts';

/** Keyset pagination: ids ascending, strictly after `afterId`. */
export interface PageRequest {
  pageSize: number;
  afterId: number;
}

export interface Page<T> {
  items: T[];
  /** Id of the last item when more follow, else null. */
  lastId: number | null;
}

export interface ContactFilter {
  leadId?: number;
  sourceId?: number;
  operatorId?: number;
  status?: ContactStatus;
  queuedOnly: boolean;
}

export type LeadKey = { id: number } | { identity: { externalId: string; phone: string; email: string } };

export interface SourceLoadView {
  sourceId: number;
  sourceName: string;
  open: number;
  total: number;
}

export interface OperatorStatsView extends OperatorView {
  totalAssigned: number;
  sources: SourceLoadView[];
}

export interface OperatorShareView {
  operatorId: number;
  operatorName: string;
  weight: number;
  targetShare: number;
  assignedTotal: number;
  actualShare: number;
}

export interface DistributionStatsView {
  sourceId: number;
  operators: OperatorShareView[];
  queued: number;
}

export class Queries {
  readonly #uow: UnitOfWork;

  constructor(uow: UnitOfWork) {
    this.#uow = uow;
  }

  getOperator(operatorId: number): Promise<OperatorView> {
    return this.#uow.read(async (tx) => operatorView(await findOperator(tx, operatorId)));
  }

  listOperators(page: PageRequest): Promise<Page<OperatorView>> {
    return this.#uow.read(async (tx) => toPage((await tx.find(Operator, { id: { $gt: page.afterId } }, pageOptions(page))).map(operatorView), page));
  }

  getSource(key: SourceKey): Promise<SourceView> {
    return this.#uow.read(async (tx) => (await sourceViews(tx, [await findSource(tx, key)]))[0]!);
  }

  listSources(page: PageRequest): Promise<Page<SourceView>> {
    return this.#uow.read(async (tx) => toPage(await sourceViews(tx, await tx.find(Source, { id: { $gt: page.afterId } }, pageOptions(page))), page));
  }

  getLead(key: LeadKey): Promise<LeadView> {
    return this.#uow.read(async (tx) => {
      const lead = 'id' in key ? await tx.findOne(Lead, key.id) : await findLeadByIdentity(tx, key.identity);
      if (!lead) throw new NotFoundError('id' in key ? `lead ${key.id} not found` : 'no lead with this identity');
      return (await leadViews(tx, [lead]))[0]!;
    });
  }

  listLeads(page: PageRequest): Promise<Page<LeadView>> {
    return this.#uow.read(async (tx) => toPage(await leadViews(tx, await tx.find(Lead, { id: { $gt: page.afterId } }, pageOptions(page))), page));
  }

  async listContacts(filter: ContactFilter, page: PageRequest): Promise<Page<ContactView>> {
    // Filters combine with AND: queued_only with an operator or another status matches nothing.
    const conditions: FilterQuery<IContact>[] = [{ id: { $gt: page.afterId } }];
    if (filter.leadId !== undefined) conditions.push({ lead: filter.leadId });
    if (filter.sourceId !== undefined) conditions.push({ source: filter.sourceId });
    if (filter.operatorId !== undefined) conditions.push({ operator: filter.operatorId });
    if (filter.status !== undefined) conditions.push({ status: filter.status });
    if (filter.queuedOnly) conditions.push({ operator: null, status: 'NEW' });
    return this.#uow.read(async (tx) => toPage(await findContactViews(tx, { $and: conditions }, page.pageSize + 1), page));
  }

  operatorStats(): Promise<OperatorStatsView[]> {
    return this.#uow.read(operatorStats);
  }

  distributionStats(sourceId: number): Promise<DistributionStatsView> {
    return this.#uow.read((tx) => distributionStats(tx, sourceId));
  }

  /** Contacts waiting in the queue, for monitoring. */
  queueLength(): Promise<number> {
    return this.#uow.read((tx) => tx.count(Contact, { operator: null, status: 'NEW' }));
  }

  /** Every operator's load, for monitoring. */
  operatorLoads(): Promise<{ operatorId: number; name: string; openLoad: number; maxLoad: number }[]> {
    return this.#uow.read(async (tx) => {
      const operators = await tx.find(Operator, {}, { orderBy: { id: 'asc' }, disableIdentityMap: true });
      return operators.map((o) => ({ operatorId: o.id, name: o.name, openLoad: o.openLoad, maxLoad: o.maxLoad }));
    });
  }
}

async function operatorStats(tx: Tx): Promise<OperatorStatsView[]> {
  const operators = await tx.find(Operator, {}, { orderBy: { id: 'asc' } });
  const sources = new Map((await tx.find(Source, {}, { fields: ['id', 'name'] })).map((s) => [s.id, s.name]));
  const configured = await tx.find(SourceOperator, {}, { fields: ['source', 'operator'], disableIdentityMap: true });
  const counts = await assignedCounts(tx, {});
  return operators.map((operator) => {
    const bySource = new Map<number, SourceLoadView>();
    const entry = (sourceId: number) => bySource.get(sourceId)
      ?? bySource.set(sourceId, { sourceId, sourceName: sources.get(sourceId) ?? '', open: 0, total: 0 }).get(sourceId)!;
    for (const link of configured) if (link.operator.id === operator.id) entry(link.source.id);
    for (const row of counts) {
      if (row.operatorId !== operator.id) continue;
      Object.assign(entry(row.sourceId), { open: row.open, total: row.total });
    }
    const loads = [...bySource.values()].sort((a, b) => a.sourceId - b.sourceId);
    const totalAssigned = loads.reduce((sum, s) => sum + s.total, 0);
    return { ...operatorView(operator), totalAssigned, sources: loads };
  });
}

async function distributionStats(tx: Tx, sourceId: number): Promise<DistributionStatsView> {
  const [source] = await sourceViews(tx, [await findSource(tx, { id: sourceId })]);
  const counts = await assignedCounts(tx, { source: sourceId });
  const assigned = (operatorId: number) => counts.find((row) => row.operatorId === operatorId)?.total ?? 0;
  const weightSum = source!.operators.reduce((sum, o) => sum + o.weight, 0);
  const assignedSum = source!.operators.reduce((sum, o) => sum + assigned(o.operatorId), 0);
  const queued = await tx.count(Contact, { source: sourceId, operator: null, status: 'NEW' });
  return {
    sourceId,
    queued,
    operators: source!.operators.map((o) => ({
      operatorId: o.operatorId,
      operatorName: o.operatorName,
      weight: o.weight,
      targetShare: weightSum === 0 ? 0 : o.weight / weightSum,
      assignedTotal: assigned(o.operatorId),
      actualShare: assignedSum === 0 ? 0 : assigned(o.operatorId) / assignedSum,
    })),
  };
}

async function findLeadByIdentity(tx: Tx, identity: { externalId: string; phone: string; email: string }): Promise<ILead | undefined> {
  const ids = normalizeIdentifiers(identity);
  const or = (['externalId', 'phone', 'email'] as const).filter((key) => ids[key] !== null).map((key) => ({ [key]: ids[key] }));
  if (or.length === 0) return undefined;
  return pickLead(await tx.find(Lead, { $or: or }), ids);
}

/** A lead shows at most this many of its contacts, the newest; ListContacts pages through all. */
export const LEAD_CONTACTS_SHOWN = 100;

async function leadViews(tx: Tx, leads: readonly ILead[]): Promise<LeadView[]> {
  if (leads.length === 0) return [];
  const leadIds = leads.map((l) => l.id);
  const marks = leadIds.map(() => '?').join(', ');
  const counts = await tx.execute<{ lead_id: number; total: number }[]>(
    `select lead_id, count(*) as total from contact where lead_id in (${marks}) group by lead_id`,
    leadIds,
  );
  const newest = await tx.execute<{ id: number }[]>(
    `select id from (select id, row_number() over (partition by lead_id order by id desc) as position from contact where lead_id in (${marks})) ranked
      where position <= ?`,
    [...leadIds, LEAD_CONTACTS_SHOWN],
  );
  const contacts = newest.length === 0 ? [] : await findContactViews(tx, { id: { $in: newest.map((row) => Number(row.id)) } });
  const total = new Map(counts.map((row) => [Number(row.lead_id), Number(row.total)]));
  return leads.map((lead) => ({
    id: lead.id,
    externalId: lead.externalId ?? null,
    phone: lead.phone ?? null,
    email: lead.email ?? null,
    name: lead.name,
    createdAt: lead.createdAt,
    contacts: contacts.filter((c) => c.lead.id === lead.id),
    contactCount: total.get(lead.id) ?? 0,
  }));
}

interface AssignedCount {
  operatorId: number;
  sourceId: number;
  open: number;
  total: number;
}

/**
 * Per operator and source: assignments ever made (from the history, so a
 * transferred contact counts for each operator it went to) and the contacts
 * open now.
 */
async function assignedCounts(tx: Tx, where: { source?: number }): Promise<AssignedCount[]> {
  const totals = await tx.createQueryBuilder(Assignment, 'a')
    .select(['a.operator', 'a.source', raw('count(*) as total')])
    .where({ ...where, operator: { $ne: null } })
    .groupBy(['a.operator', 'a.source'])
    .execute<{ operator_id: number; source_id: number; total: number }[]>('all', false);
  const open = await tx.createQueryBuilder(Contact, 'c')
    .select(['c.operator', 'c.source', raw('count(*) as open')])
    .where({ ...where, operator: { $ne: null }, status: { $ne: 'CLOSED' } })
    .groupBy(['c.operator', 'c.source'])
    .execute<{ operator_id: number; source_id: number; open: number }[]>('all', false);
  const key = (operatorId: number, sourceId: number) => `${operatorId}/${sourceId}`;
  const counts = new Map(totals.map((r) => [key(r.operator_id, r.source_id), { operatorId: r.operator_id, sourceId: r.source_id, open: 0, total: Number(r.total) }]));
  for (const r of open) {
    const entry = counts.get(key(r.operator_id, r.source_id));
    if (entry) entry.open = Number(r.open);
    else counts.set(key(r.operator_id, r.source_id), { operatorId: r.operator_id, sourceId: r.source_id, open: Number(r.open), total: 0 });
  }
  return [...counts.values()];
}

function pageOptions(page: PageRequest) {
  return { orderBy: { id: 'asc' as const }, limit: page.pageSize + 1 };
}

/** Trims the one extra row fetched to learn whether another page follows. */
function toPage<T extends { id: number }>(rows: T[], page: PageRequest): Page<T> {
  if (rows.length <= page.pageSize) return { items: rows, lastId: null };
  const items = rows.slice(0, page.pageSize);
  return { items, lastId: items[items.length - 1]!.id };
}
