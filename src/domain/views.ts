// What the domain hands to the transport: plain read models, independent of
// both the ORM entities and the protobuf messages.
import type { ContactStatus, Outcome, Strategy } from './entities.ts';

export interface OperatorView {
  id: number;
  name: string;
  active: boolean;
  maxLoad: number;
  openLoad: number;
  createdAt: Date;
}

export interface SourceView {
  id: number;
  name: string;
  code: string | null;
  description: string;
  strategy: Strategy;
  leadAffinity: boolean;
  createdAt: Date;
  operators: { operatorId: number; operatorName: string; weight: number }[];
}

export interface ContactView {
  id: number;
  lead: { id: number; externalId: string | null; name: string };
  source: { id: number; name: string; code: string | null };
  operator: { id: number; name: string } | null;
  status: ContactStatus;
  message: string;
  requestId: string | null;
  createdAt: Date;
  assignedAt: Date | null;
  closedAt: Date | null;
}

export interface LeadView {
  id: number;
  externalId: string | null;
  phone: string | null;
  email: string | null;
  name: string;
  createdAt: Date;
  /** The newest LEAD_CONTACTS_SHOWN contacts, oldest first among them. */
  contacts: ContactView[];
  /** All of the lead's contacts, shown or not. */
  contactCount: number;
}

export interface RegisterContactResult {
  contact: ContactView;
  leadCreated: boolean;
  outcome: Outcome;
  replayed: boolean;
}

/** A committed assignment, as WatchAssignments streams it. */
export interface AssignmentEvent {
  contact: ContactView;
  fromQueue: boolean;
}
