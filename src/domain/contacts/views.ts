import type { FilterQuery } from '@mikro-orm/core';
import { Contact, priorityName, type IContact } from '../entities.ts';
import type { Tx } from '../unit-of-work.ts';
import type { ContactView } from '../views.ts';

/** The references a ContactView names. */
export const CONTACT_RELATIONS = ['lead', 'source', 'operator'] as const;

export function contactView(contact: IContact): ContactView {
  return {
    id: contact.id,
    lead: { id: contact.lead.id, externalId: contact.lead.externalId ?? null, name: contact.lead.name },
    source: { id: contact.source.id, name: contact.source.name, code: contact.source.code ?? null },
    operator: contact.operator ? { id: contact.operator.id, name: contact.operator.name } : null,
    status: contact.status,
    message: contact.message,
    requestId: contact.requestId ?? null,
    createdAt: contact.createdAt,
    assignedAt: contact.assignedAt ?? null,
    closedAt: contact.closedAt ?? null,
    priority: priorityName(contact.priority),
  };
}

/** Contacts matching `where`, oldest first, with the references a ContactView names. */
export async function findContactViews(tx: Tx, where: FilterQuery<IContact>, limit?: number): Promise<ContactView[]> {
  const contacts = await tx.find(Contact, where, {
    populate: [...CONTACT_RELATIONS],
    orderBy: { id: 'asc' },
    ...(limit === undefined ? {} : { limit }),
  });
  return contacts.map(contactView);
}
