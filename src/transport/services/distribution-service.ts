import type { ServiceImpl } from '@connectrpc/connect';
import { DistributionService, type RegisterContactRequest } from '../../../gen/crm/v1/distribution_pb.js';
import { AssignmentOutcome, type LeadIdentity } from '../../../gen/crm/v1/resources_pb.js';
import type { AssignmentFeed } from '../../domain/assignment/feed.ts';
import type { ContactLifecycle } from '../../domain/contacts/lifecycle.ts';
import type { RegisterContactInput, Registrations } from '../../domain/contacts/registration.ts';
import type { Transfers } from '../../domain/contacts/transfer.ts';
import type { SourceKey } from '../../domain/sources.ts';
import { identityViolations } from '../../domain/contacts/lead-identity.ts';
import type { Metrics } from '../../metrics.ts';
import { resetStream } from '../adapter.ts';
import { encodeContact } from '../messages/encode.ts';
import { contactStatus, priority } from '../messages/enums.ts';
import { LIMITS, Violations } from '../messages/validate.ts';
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
      const v = new Violations();
      const contactId = v.id(request.contactId, 'contact_id');
      const status = contactStatus(v, request.status, 'status', true);
      v.check();
      return { contact: encodeContact(await lifecycle.updateContactStatus(contactId, status!)) };
    },

    async *watchAssignments(request, context) {
      const v = new Violations();
      const filter = { operatorId: v.optionalId(request.operatorId, 'operator_id'), sourceId: v.optionalId(request.sourceId, 'source_id') };
      v.check();
      yield* watchAssignments(feed, filter, { signal: AbortSignal.any([context.signal, shutdown]), reset: context.values.get(resetStream) });
      // A stream the client ended (cancelled, hung up, past its deadline) did not succeed; one the shutdown ended did.
      context.signal.throwIfAborted();
    },

    async transferContact(request) {
      const v = new Violations();
      const contactId = v.id(request.contactId, 'contact_id');
      const operatorId = request.operatorId === undefined ? undefined : v.id(request.operatorId, 'operator_id');
      v.check();
      const { contact, outcome } = await transfers.transferContact(contactId, operatorId);
      return { contact: encodeContact(contact), outcome: AssignmentOutcome[outcome] };
    },
  };
}

function registerContactInput(request: RegisterContactRequest): RegisterContactInput {
  const v = new Violations();
  let source: SourceKey = { id: 0 };
  switch (request.source.case) {
    case 'sourceId':
      source = { id: v.id(request.source.value, 'source_id') };
      break;
    case 'sourceCode':
      source = { code: v.text(request.source.value, 'source_code', LIMITS.code, true) };
      break;
    default:
      v.add('source', 'source_id or source_code is required');
  }
  const lead = leadIdentity(v, request.lead, 'lead');
  const message = v.text(request.message, 'message', LIMITS.message);
  const requestId = v.text(request.requestId, 'request_id', LIMITS.requestId);
  const contactPriority = priority(v, request.priority, 'priority');
  v.check();
  return { source, lead, message, requestId, priority: contactPriority };
}

/** Validates a LeadIdentity message found at `path`. */
export function leadIdentity(v: Violations, identity: LeadIdentity | undefined, path: string): RegisterContactInput['lead'] {
  if (identity === undefined) {
    v.add(path, 'is required with at least one of external_id or phone or email');
    return { externalId: '', phone: '', email: '', name: '' };
  }
  const lead = {
    externalId: v.text(identity.externalId, `${path}.external_id`, LIMITS.externalId),
    phone: v.text(identity.phone, `${path}.phone`, LIMITS.phone),
    email: v.text(identity.email, `${path}.email`, LIMITS.email),
    name: v.text(identity.name, `${path}.name`, LIMITS.name),
  };
  v.addAll(identityViolations(lead, path));
  return lead;
}
