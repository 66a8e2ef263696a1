import type { ServiceImpl } from '@connectrpc/connect';
import { DistributionService, type RegisterContactRequest } from '../../../gen/crm/v1/distribution_pb.js';
import { AssignmentOutcome, type LeadIdentity } from '../../../gen/crm/v1/resources_pb.js';
import type { AssignmentFeed } from '../../domain/assignment/feed.ts';
import type { ContactLifecycle } from '../../domain/contacts/lifecycle.ts';
import type { RegisterContactInput, Registrations } from '../../domain/contacts/registration.ts';
import type { Transfers } from '../../domain/contacts/transfer.ts';
import type { SourceKey } from '../../domain/sources.ts';
import type { Metrics } from '../../metrics.ts';
import { resetStream } from '../adapter.ts';
import { encodeContact } from '../messages/encode.ts';
import { contactStatus, priority } from '../messages/enums.ts';
import { id, optionalId } from '../messages/decode.ts';
import { watchAssignments } from './watch-stream.ts';

export function distributionService(
  registrations: Registrations,
  lifecycle: ContactLifecycle,
  transfers: Transfers,
  feed: AssignmentFeed,
  metrics: Metrics,
  shutdown: AbortSignal,
): ServiceImpl<typeof DistributionService> {
  return {
    async registerContact(request, context) {
      const result = await registrations.register(registerContactInput(request), context.signal);
      if (!result.replayed) metrics.registered.inc({ source_id: String(result.contact.source.id), outcome: result.outcome });
      return {
        contact: encodeContact(result.contact),
        leadCreated: result.leadCreated,
        outcome: AssignmentOutcome[result.outcome],
        replayed: result.replayed,
      };
    },

    async updateContactStatus(request) {
      // The rules require a status: UNSPECIFIED never gets here.
      const contact = await lifecycle.updateContactStatus(id(request.contactId, 'contact'), contactStatus(request.status)!);
      return { contact: encodeContact(contact) };
    },

    async *watchAssignments(request, context) {
      const filter = { operatorId: optionalId(request.operatorId, 'operator'), sourceId: optionalId(request.sourceId, 'source') };
      yield* watchAssignments(feed, filter, { signal: AbortSignal.any([context.signal, shutdown]), reset: context.values.get(resetStream) });
      // A stream the client ended (cancelled, hung up, past its deadline) did not succeed; one the shutdown ended did.
      context.signal.throwIfAborted();
    },

    async transferContact(request) {
      const operatorId = request.operatorId === undefined ? undefined : id(request.operatorId, 'operator');
      const { contact, outcome } = await transfers.transferContact(id(request.contactId, 'contact'), operatorId);
      return { contact: encodeContact(contact), outcome: AssignmentOutcome[outcome] };
    },
  };
}

function registerContactInput(request: RegisterContactRequest): RegisterContactInput {
  // The rules require one of the two, and a lead.
  const source: SourceKey = request.source.case === 'sourceId' ? { id: id(request.source.value, 'source') } : { code: request.source.value!.trim() };
  return {
    source,
    lead: leadIdentity(request.lead!),
    message: request.message.trim(),
    requestId: request.requestId.trim(),
    priority: priority(request.priority),
  };
}

/** A LeadIdentity the rules have checked, trimmed. */
export function leadIdentity(identity: LeadIdentity): RegisterContactInput['lead'] {
  return { externalId: identity.externalId.trim(), phone: identity.phone.trim(), email: identity.email.trim(), name: identity.name.trim() };
}
