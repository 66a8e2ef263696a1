import { describe, it, expect } from 'vitest';
import { transitionRefusal } from '../../src/domain/contacts/status.ts';
import { CONTACT_STATUSES, type ContactStatus } from '../../src/domain/entities.ts';

// The contract: NEW -> IN_PROGRESS -> CLOSED, and NEW -> CLOSED. Setting the
// status a contact already has is a successful no-op. CLOSED is final. No way
// back to NEW. A queued contact (no operator) can be closed but not worked.
type Expectation = 'allowed' | RegExp;

const TABLE: { from: ContactStatus; to: ContactStatus; queued: boolean; expected: Expectation; why: string }[] = [
  { from: 'NEW', to: 'NEW', queued: false, expected: 'allowed', why: 'same status is a no-op' },
  { from: 'NEW', to: 'NEW', queued: true, expected: 'allowed', why: 'same status is a no-op' },
  { from: 'NEW', to: 'IN_PROGRESS', queued: false, expected: 'allowed', why: 'an assigned contact is taken into work' },
  { from: 'NEW', to: 'IN_PROGRESS', queued: true, expected: /queued/, why: 'a queued contact has no operator to work it' },
  { from: 'NEW', to: 'CLOSED', queued: false, expected: 'allowed', why: 'NEW -> CLOSED is allowed' },
  { from: 'NEW', to: 'CLOSED', queued: true, expected: 'allowed', why: 'a queued contact can be closed' },
  { from: 'IN_PROGRESS', to: 'NEW', queued: false, expected: /NEW/, why: 'no return to NEW' },
  { from: 'IN_PROGRESS', to: 'NEW', queued: true, expected: /NEW/, why: 'no return to NEW' },
  { from: 'IN_PROGRESS', to: 'IN_PROGRESS', queued: false, expected: 'allowed', why: 'same status is a no-op' },
  { from: 'IN_PROGRESS', to: 'IN_PROGRESS', queued: true, expected: 'allowed', why: 'same status is a no-op' },
  { from: 'IN_PROGRESS', to: 'CLOSED', queued: false, expected: 'allowed', why: 'IN_PROGRESS -> CLOSED' },
  { from: 'IN_PROGRESS', to: 'CLOSED', queued: true, expected: 'allowed', why: 'closing is always possible before CLOSED' },
  { from: 'CLOSED', to: 'NEW', queued: false, expected: /CLOSED.*final/, why: 'CLOSED is final' },
  { from: 'CLOSED', to: 'NEW', queued: true, expected: /CLOSED.*final/, why: 'CLOSED is final' },
  { from: 'CLOSED', to: 'IN_PROGRESS', queued: false, expected: /CLOSED.*final/, why: 'CLOSED is final' },
  { from: 'CLOSED', to: 'IN_PROGRESS', queued: true, expected: /CLOSED.*final/, why: 'CLOSED is final' },
  { from: 'CLOSED', to: 'CLOSED', queued: false, expected: 'allowed', why: 'same status is a no-op, even for CLOSED' },
  { from: 'CLOSED', to: 'CLOSED', queued: true, expected: 'allowed', why: 'same status is a no-op, even for CLOSED' },
];

describe('transitionRefusal', () => {
  it('the table covers every (from, to, queued) combination exactly once', () => {
    const keys = TABLE.map((r) => `${r.from}>${r.to}>${r.queued}`);
    expect(new Set(keys).size).toBe(keys.length);
    const all: string[] = [];
    for (const from of CONTACT_STATUSES) for (const to of CONTACT_STATUSES) for (const queued of [false, true]) all.push(`${from}>${to}>${queued}`);
    expect([...keys].sort()).toEqual(all.sort());
  });

  for (const { from, to, queued, expected, why } of TABLE) {
    const label = `${from} -> ${to}${queued ? ' (queued)' : ''}: ${expected === 'allowed' ? 'allowed' : 'refused'} — ${why}`;
    it(label, () => {
      const refusal = transitionRefusal(from, to, queued);
      if (expected === 'allowed') {
        expect(refusal).toBeNull();
      } else {
        expect(refusal).toBeTypeOf('string');
        expect(refusal).toMatch(expected);
      }
    });
  }

  it('the allowed moves form exactly NEW -> IN_PROGRESS, NEW -> CLOSED, IN_PROGRESS -> CLOSED (plus no-ops) for an assigned contact', () => {
    const moves: string[] = [];
    for (const from of CONTACT_STATUSES)
      for (const to of CONTACT_STATUSES) if (from !== to && transitionRefusal(from, to, false) === null) moves.push(`${from}->${to}`);
    expect(moves.sort()).toEqual(['IN_PROGRESS->CLOSED', 'NEW->CLOSED', 'NEW->IN_PROGRESS']);
  });

  it('a queued contact may only be closed', () => {
    const moves: string[] = [];
    for (const from of CONTACT_STATUSES)
      for (const to of CONTACT_STATUSES) if (from !== to && transitionRefusal(from, to, true) === null) moves.push(`${from}->${to}`);
    expect(moves.sort()).toEqual(['IN_PROGRESS->CLOSED', 'NEW->CLOSED']);
  });
});
