// Protobuf enums <-> the domain's names. protobuf-es strips the enum prefix,
// so the generated names (NEW, WEIGHTED_RANDOM, ...) are the domain's own.
// Undefined numbers never get here: the rules say defined_only.
import { ContactPriority, ContactStatus, DistributionStrategy } from '../../../gen/crm/v1/resources_pb.js';
import type { ContactStatus as DomainStatus, Priority, Strategy } from '../../domain/entities.ts';

/** UNSPECIFIED gives undefined: "any" in filters (required where the rules say so). */
export function contactStatus(value: ContactStatus): DomainStatus | undefined {
  return value === ContactStatus.UNSPECIFIED ? undefined : (ContactStatus[value] as DomainStatus);
}

/** UNSPECIFIED means WEIGHTED_RANDOM. */
export function strategy(value: DistributionStrategy): Strategy {
  return value === DistributionStrategy.UNSPECIFIED ? 'WEIGHTED_RANDOM' : (DistributionStrategy[value] as Strategy);
}

/** UNSPECIFIED means NORMAL. */
export function priority(value: ContactPriority): Priority {
  return value === ContactPriority.UNSPECIFIED ? 'NORMAL' : (ContactPriority[value] as Priority);
}
