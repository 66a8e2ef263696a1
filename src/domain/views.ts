// What the domain hands to the transport: plain read models, independent of
// both the ORM entities and the protobuf messages.
import type { AssignmentReason, ContactStatus, Outcome, Priority, Strategy } from './entities.ts';

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
  /** 0: no accept deadline. */
  acceptWithinMs: number;
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
  priority: Priority;
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

/** A committed assignment (or move back to the queue), as WatchAssignments streams it. */
export interface AssignmentEvent {
  /** Its row in the assignment history. */
  assignmentId: number;
  /** The contact as the assignment left it (no operator: back in the queue). */
  contact: ContactView;
  /** The contact waited in the queue before this assignment. */
  fromQueue: boolean;
  reason: AssignmentReason;
  /** The operator it was taken from; null when it had none. */
  previousOperatorId: number | null;
}
