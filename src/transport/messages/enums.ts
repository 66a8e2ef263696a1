// Protobuf enums <-> the domain's names. protobuf-es strips the enum prefix,
// so the generated names (NEW, WEIGHTED_RANDOM, ...) are the domain's own.
import { ContactPriority, ContactStatus, DistributionStrategy } from '../../../gen/crm/v1/resources_pb.js';
import { STRATEGIES, type ContactStatus as DomainStatus, type Priority, type Strategy } from '../../domain/entities.ts';
import type { Violations } from './validate.ts';

/** UNSPECIFIED gives undefined (refused when `required`); unknown numbers are refused. */
export function contactStatus(v: Violations, value: ContactStatus, field: string, required: boolean): DomainStatus | undefined {
  const name = value === ContactStatus.UNSPECIFIED ? undefined : (ContactStatus[value] as DomainStatus | undefined);
  if (name === undefined && (required || value !== ContactStatus.UNSPECIFIED)) v.add(field, 'must be NEW, IN_PROGRESS or CLOSED');
  return name;
}

/** UNSPECIFIED gives undefined (the caller's default); unknown numbers are refused. */
export function strategy(v: Violations, value: DistributionStrategy, field: string): Strategy | undefined {
  if (value === DistributionStrategy.UNSPECIFIED) return undefined;
  const name = DistributionStrategy[value] as Strategy | undefined;
  if (name === undefined) v.add(field, `must be one of ${STRATEGIES.join(', ')}`);
  return name;
}

/** UNSPECIFIED means NORMAL; unknown numbers are refused. */
export function priority(v: Violations, value: ContactPriority, field: string): Priority {
  if (value === ContactPriority.UNSPECIFIED) return 'NORMAL';
  const name = ContactPriority[value] as Priority | undefined;
  if (name === undefined) v.add(field, 'must be LOW, NORMAL, HIGH or URGENT');
  return name ?? 'NORMAL';
}
