import type { ContactStatus } from '../entities.ts';

/**
 * Why a contact may not move from `from` to `to`, or null when it may.
 * NEW -> IN_PROGRESS -> CLOSED and NEW -> CLOSED; CLOSED is final; a queued
 * contact (no operator) can be closed but not worked.
 */
export function transitionRefusal(from: ContactStatus, to: ContactStatus, queued: boolean): string | null {
  if (from === to) return null;
  if (from === 'CLOSED') return 'the contact is CLOSED, which is final';
  if (to === 'NEW') return 'a contact IN_PROGRESS cannot return to NEW';
  if (to === 'IN_PROGRESS' && queued) return 'the contact is queued and has no operator to work it yet';
  return null;
}
