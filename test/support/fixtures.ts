// Small builders for integration tests: operators, sources and registrations.
import type { MessageInitShape } from '@bufbuild/protobuf';
import type { CreateSourceRequestSchema } from '../../gen/crm/v1/admin_pb.js';
import type { RegisterContactRequestSchema } from '../../gen/crm/v1/distribution_pb.js';
import { ContactStatus, type Contact } from '../../gen/crm/v1/resources_pb.js';
import type { TestServer } from './test-server.ts';

let sequence = 0;
/** A name no other test in this process uses. */
export function unique(prefix: string): string {
  sequence += 1;
  return `${prefix}-${process.pid}-${sequence}`;
}

export async function createOperators(t: TestServer, count: number, maxLoad: number, active = true): Promise<bigint[]> {
  const ids: bigint[] = [];
  for (let i = 0; i < count; i++) {
    const { operator } = await t.admin.createOperator({ name: unique('op'), maxLoad, active });
    ids.push(operator!.id);
  }
  return ids;
}

export async function createSource(
  t: TestServer,
  weights: readonly (readonly [operatorId: bigint, weight: number])[],
  options: Pick<MessageInitShape<typeof CreateSourceRequestSchema>, 'strategy' | 'leadAffinity' | 'acceptWithin'> = {},
): Promise<bigint> {
  const { source } = await t.admin.createSource({ name: unique('source'), ...options });
  await t.admin.setSourceOperators({ sourceId: source!.id, operators: weights.map(([operatorId, weight]) => ({ operatorId, weight })) });
  return source!.id;
}

type RegisterExtra = Pick<MessageInitShape<typeof RegisterContactRequestSchema>, 'requestId' | 'message' | 'priority'> & {
  lead?: { externalId?: string; phone?: string; email?: string; name?: string };
};

/** Registers a contact of a new lead (or of `externalId`) from the source. */
export function register(t: TestServer, sourceId: bigint, externalId = unique('lead'), extra: RegisterExtra = {}) {
  return t.distribution.registerContact({
    source: { case: 'sourceId', value: sourceId },
    message: extra.message ?? 'hello',
    requestId: extra.requestId ?? '',
    priority: extra.priority,
    lead: extra.lead ?? { externalId },
  });
}

/** Every contact matching the filter, across pages. */
export async function allContacts(t: TestServer, filter: { operatorId?: bigint; sourceId?: bigint; leadId?: bigint; queuedOnly?: boolean } = {}): Promise<Contact[]> {
  const contacts: Contact[] = [];
  let pageToken = '';
  do {
    const page = await t.query.listContacts({ ...filter, pageSize: 500, pageToken });
    contacts.push(...page.contacts);
    pageToken = page.nextPageToken;
  } while (pageToken !== '');
  return contacts;
}

export function isOpen(contact: Contact): boolean {
  return contact.status === ContactStatus.NEW || contact.status === ContactStatus.IN_PROGRESS;
}

/** Stored load (GetOperator.open_load) and the real count of open contacts, per operator. */
export async function loads(t: TestServer, operatorIds: readonly bigint[]): Promise<{ stored: number; real: number; max: number }[]> {
  return Promise.all(operatorIds.map(async (operatorId) => {
    const { operator } = await t.query.getOperator({ operatorId });
    const real = (await allContacts(t, { operatorId })).filter(isOpen).length;
    return { stored: operator!.openLoad, real, max: operator!.maxLoad };
  }));
}
