// Domain views -> protobuf messages.
import { create } from '@bufbuild/protobuf';
import { durationFromMs, timestampFromDate, type Timestamp } from '@bufbuild/protobuf/wkt';
import {
  ContactPriority,
  ContactSchema,
  ContactStatus,
  DistributionStrategy,
  LeadSchema,
  OperatorSchema,
  SourceSchema,
  type Contact,
  type Lead,
  type Operator,
  type Source,
} from '../../../gen/crm/v1/resources_pb.js';
import type { ContactView, LeadView, OperatorView, SourceView } from '../../domain/views.ts';

function time(date: Date | null): Timestamp | undefined {
  return date === null ? undefined : timestampFromDate(date);
}

export function encodeOperator(view: OperatorView): Operator {
  return create(OperatorSchema, {
    id: BigInt(view.id),
    name: view.name,
    active: view.active,
    maxLoad: view.maxLoad,
    openLoad: view.openLoad,
    createdAt: time(view.createdAt),
  });
}

export function encodeSource(view: SourceView): Source {
  return create(SourceSchema, {
    id: BigInt(view.id),
    name: view.name,
    code: view.code ?? '',
    description: view.description,
    strategy: DistributionStrategy[view.strategy],
    leadAffinity: view.leadAffinity,
    acceptWithin: view.acceptWithinMs > 0 ? durationFromMs(view.acceptWithinMs) : undefined,
    operators: view.operators.map((o) => ({ operatorId: BigInt(o.operatorId), operatorName: o.operatorName, weight: o.weight })),
    createdAt: time(view.createdAt),
  });
}

export function encodeContact(view: ContactView): Contact {
  return create(ContactSchema, {
    id: BigInt(view.id),
    lead: { id: BigInt(view.lead.id), externalId: view.lead.externalId ?? '', name: view.lead.name },
    source: { id: BigInt(view.source.id), name: view.source.name, code: view.source.code ?? '' },
    operator: view.operator === null ? undefined : { id: BigInt(view.operator.id), name: view.operator.name },
    status: ContactStatus[view.status],
    message: view.message,
    createdAt: time(view.createdAt),
    assignedAt: time(view.assignedAt),
    closedAt: time(view.closedAt),
    requestId: view.requestId ?? '',
    priority: ContactPriority[view.priority],
  });
}

export function encodeLead(view: LeadView): Lead {
  return create(LeadSchema, {
    id: BigInt(view.id),
    externalId: view.externalId ?? '',
    phone: view.phone ?? '',
    email: view.email ?? '',
    name: view.name,
    createdAt: time(view.createdAt),
    contacts: view.contacts.map(encodeContact),
    contactCount: BigInt(view.contactCount),
  });
}
