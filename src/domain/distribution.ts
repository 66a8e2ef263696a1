// RegisterContact and UpdateContactStatus: the two writes bots and operators
// make, each one unit of work (see unit-of-work.ts).
import { chooseAffinity, chooseOperator } from './assignment/choice.ts';
import { claimCapacity, loadCandidates, recordFull, releaseCapacity, saveRoundRobinState, type SourceCandidates } from './candidates.ts';
import { contactView } from './contact-views.ts';
import { transitionRefusal } from './contact-status.ts';
import { Contact, Lead, Source, type ContactStatus, type ILead, type ISource, type Outcome } from './entities.ts';
import { FailedPreconditionError, NotFoundError } from './errors.ts';
import { missingIdentifiers, normalizeIdentifiers, pickLead, type LeadIdentifiers } from './lead-identity.ts';
import { drainQueue } from './queue.ts';
import { ConflictError, type Tx, type UnitOfWork } from './unit-of-work.ts';
import type { ContactView, RegisterContactResult } from './views.ts';

export type SourceKey = { id: number } | { code: string };

export interface RegisterContactInput {
  source: SourceKey;
  lead: { externalId: string; phone: string; email: string; name: string };
  message: string;
  /** Idempotency key, unique per source; empty for none. */
  requestId: string;
}

const OPEN_STATUSES: ContactStatus[] = ['NEW', 'IN_PROGRESS'];
const CONTACT_RELATIONS = ['lead', 'source', 'operator'] as const;

export class Distribution {
  readonly #uow: UnitOfWork;
  readonly #random: () => number;

  constructor(uow: UnitOfWork, random: () => number = Math.random) {
    this.#uow = uow;
    this.#random = random;
  }

  registerContact(input: RegisterContactInput): Promise<RegisterContactResult> {
    // A unique violation means a concurrent call created the same lead or used
    // the same request_id first: the retry finds that row instead.
    return this.#uow.run(async (tx, assigned) => {
      const source = await findSource(tx, input.source);
      const requestId = input.requestId === '' ? null : input.requestId;
      if (requestId !== null) {
        const original = await tx.findOne(Contact, { source: source.id, requestId }, { populate: [...CONTACT_RELATIONS] });
        if (original) return { contact: contactView(original), leadCreated: false, outcome: original.outcome, replayed: true };
      }
      const { lead, created } = await resolveLead(tx, normalizeIdentifiers(input.lead), input.lead.name.trim());
      const pool = await loadCandidates(tx, [source.id]);
      const settings = pool.bySource.get(source.id)!;
      const holders = source.leadAffinity && !created ? await openContactHolders(tx, lead.id) : [];
      const { operatorId, outcome } = await this.#assign(tx, settings, holders);
      const now = new Date();
      const id = await tx.insert(Contact, {
        lead: lead.id,
        source: source.id,
        operator: operatorId,
        status: 'NEW',
        message: input.message,
        requestId,
        outcome,
        createdAt: now,
        assignedAt: operatorId === null ? null : now,
      });
      const contact: ContactView = {
        id,
        lead: { id: lead.id, externalId: lead.externalId ?? null, name: lead.name },
        source: { id: source.id, name: source.name, code: source.code ?? null },
        operator: operatorId === null ? null : { id: operatorId, name: pool.operatorNames.get(operatorId)! },
        status: 'NEW',
        message: input.message,
        requestId,
        createdAt: now,
        assignedAt: operatorId === null ? null : now,
        closedAt: null,
      };
      if (operatorId !== null) assigned.push({ contact, fromQueue: false });
      return { contact, leadCreated: created, outcome, replayed: false };
    }, { retryOnUniqueViolation: true });
  }

  /** Affinity first, then the source's strategy; each pick is confirmed by an atomic claim. */
  async #assign(tx: Tx, settings: SourceCandidates, holders: readonly number[]): Promise<{ operatorId: number | null; outcome: Outcome }> {
    const keeper = chooseAffinity(holders, settings.candidates);
    if (keeper !== undefined && (await claimCapacity(tx, keeper))) return { operatorId: keeper, outcome: 'ASSIGNED_AFFINITY' };
    for (;;) {
      const choice = chooseOperator(settings.strategy, settings.candidates, this.#random);
      if (choice.kind === 'queue') return { operatorId: null, outcome: choice.reason };
      if (await claimCapacity(tx, choice.operatorId)) {
        await saveRoundRobinState(tx, settings.sourceId, choice.swrr, settings);
        return { operatorId: choice.operatorId, outcome: 'ASSIGNED' };
      }
      // Filled by a concurrent process since it was read: choose among the rest.
      for (const c of settings.candidates) if (c.operatorId === choice.operatorId) c.openLoad = c.maxLoad;
    }
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
      // Conditional on the status we read, so two concurrent closes free the load once.
      const changed = await tx.nativeUpdate(Contact, { id: contactId, status: from }, { status, closedAt });
      if (changed !== 1) throw new ConflictError(`contact ${contactId} changed concurrently`);
      const view = { ...contactView(contact), status, closedAt };
      if (status === 'CLOSED' && contact.operator) {
        await releaseCapacity(tx, contact.operator.id);
        await drainQueue(tx, { operatorIds: [contact.operator.id] }, this.#random, assigned);
      }
      return view;
    });
  }
}

export async function findSource(tx: Tx, key: SourceKey): Promise<ISource> {
  const source = 'id' in key
    ? await tx.findOne(Source, key.id, { disableIdentityMap: true })
    : await tx.findOne(Source, { code: key.code }, { disableIdentityMap: true });
  if (!source) throw new NotFoundError('id' in key ? `source ${key.id} not found` : `source with code ${JSON.stringify(key.code)} not found`);
  return source;
}

async function resolveLead(tx: Tx, ids: LeadIdentifiers, name: string): Promise<{ lead: ILead; created: boolean }> {
  const or = (['externalId', 'phone', 'email'] as const).filter((key) => ids[key] !== null).map((key) => ({ [key]: ids[key] }));
  const matches = await tx.find(Lead, { $or: or }, { disableIdentityMap: true });
  const found = pickLead(matches, ids);
  if (!found) {
    const createdAt = new Date();
    const id = await tx.insert(Lead, { ...ids, name, createdAt });
    return { lead: { id, ...ids, name, createdAt } as ILead, created: true };
  }
  const fill = { ...missingIdentifiers(found, matches, ids), ...(found.name === '' && name !== '' ? { name } : {}) };
  if (Object.keys(fill).length > 0) {
    await tx.nativeUpdate(Lead, { id: found.id }, fill);
    Object.assign(found, fill);
  }
  return { lead: found, created: false };
}

/** Operators holding an open contact of the lead, oldest contact first. */
async function openContactHolders(tx: Tx, leadId: number): Promise<number[]> {
  const open = await tx.find(
    Contact,
    { lead: leadId, operator: { $ne: null }, status: { $in: OPEN_STATUSES } },
    { fields: ['operator'], orderBy: { id: 'asc' }, disableIdentityMap: true },
  );
  return open.map((c) => c.operator!.id);
}
