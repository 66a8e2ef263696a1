import { describe, it, expect } from 'vitest';
import {
  missingIdentifiers,
  normalizeIdentifiers,
  normalizePhone,
  pickLead,
  type LeadIdentifiers,
} from '../../src/domain/contacts/lead-identity.ts';

const raw = (over: Partial<{ externalId: string; phone: string; email: string }> = {}) => ({ externalId: '', phone: '', email: '', ...over });
const ids = (over: Partial<LeadIdentifiers> = {}): LeadIdentifiers => ({ externalId: null, phone: null, email: null, ...over });

/** A stored lead as the ORM hands it over: unset identifiers may be null or undefined. */
interface StoredLead {
  id: number;
  externalId?: string | null;
  phone?: string | null;
  email?: string | null;
}

describe('normalizePhone', () => {
  it('"+7 (999) 123-45-67" and "+79991234567" are one phone', () => {
    expect(normalizePhone('+7 (999) 123-45-67')).toBe('+79991234567');
    expect(normalizePhone('+79991234567')).toBe('+79991234567');
    expect(normalizePhone('+7 (999) 123-45-67')).toBe(normalizePhone('+79991234567'));
  });

  it('keeps the digits as written: "8 999 123 45 67" -> "+89991234567" (no country-code rewriting)', () => {
    expect(normalizePhone('8 999 123 45 67')).toBe('+89991234567');
    expect(normalizePhone('8 999 123 45 67')).not.toBe(normalizePhone('+7 999 123 45 67'));
  });

  it('adds the "+" when it is missing and drops dots, dashes, slashes, spaces, tabs', () => {
    expect(normalizePhone('79991234567')).toBe('+79991234567');
    expect(normalizePhone(' 7.999/123\t45-67 ')).toBe('+79991234567');
  });

  it('letters-only, punctuation-only, a lone "+" and the empty string give null', () => {
    expect(normalizePhone('abc')).toBeNull();
    expect(normalizePhone('call me')).toBeNull();
    expect(normalizePhone('+()- ')).toBeNull();
    expect(normalizePhone('+')).toBeNull();
    expect(normalizePhone('')).toBeNull();
  });

  it('letters mixed with digits keep only the digits', () => {
    expect(normalizePhone('tel: +1 555 0100 ext')).toBe('+15550100');
  });
});

describe('normalizeIdentifiers', () => {
  it('trims external_id but keeps its case', () => {
    expect(normalizeIdentifiers(raw({ externalId: '  TG-42 \n' }))).toEqual(ids({ externalId: 'TG-42' }));
  });

  it('trims and lower-cases email', () => {
    expect(normalizeIdentifiers(raw({ email: '  John.Doe@Example.COM\t' }))).toEqual(ids({ email: 'john.doe@example.com' }));
  });

  it('normalises the phone to "+" and digits', () => {
    expect(normalizeIdentifiers(raw({ phone: ' +7 (999) 123-45-67 ' }))).toEqual(ids({ phone: '+79991234567' }));
  });

  it('empty and whitespace-only values become null', () => {
    expect(normalizeIdentifiers(raw())).toEqual(ids());
    expect(normalizeIdentifiers(raw({ externalId: '   ', phone: ' \t ', email: '\n' }))).toEqual(ids());
  });

  it('a phone without digits becomes null', () => {
    expect(normalizeIdentifiers(raw({ phone: 'none' })).phone).toBeNull();
  });

  it('normalises all three at once', () => {
    expect(normalizeIdentifiers({ externalId: ' ext-1 ', phone: '8 (800) 555-35-35', email: ' A@B.RU ' })).toEqual({
      externalId: 'ext-1',
      phone: '+88005553535',
      email: 'a@b.ru',
    });
  });
});

describe('pickLead', () => {
  const byExternal: StoredLead = { id: 1, externalId: 'ext-1', phone: null, email: null };
  const byPhone: StoredLead = { id: 2, externalId: null, phone: '+79991234567', email: null };
  const byEmail: StoredLead = { id: 3, email: 'a@b.ru' }; // other identifiers left undefined, as the ORM may
  const all = [byEmail, byPhone, byExternal]; // order of matches must not matter

  it('external_id wins over phone and email', () => {
    expect(pickLead(all, ids({ externalId: 'ext-1', phone: '+79991234567', email: 'a@b.ru' }))).toBe(byExternal);
  });

  it('phone wins over email', () => {
    expect(pickLead(all, ids({ phone: '+79991234567', email: 'a@b.ru' }))).toBe(byPhone);
  });

  it('email when only the email matches', () => {
    expect(pickLead(all, ids({ email: 'a@b.ru' }))).toBe(byEmail);
  });

  it('an external_id that matches nobody falls through to phone, then email', () => {
    expect(pickLead(all, ids({ externalId: 'unknown', phone: '+79991234567', email: 'a@b.ru' }))).toBe(byPhone);
    expect(pickLead(all, ids({ externalId: 'unknown', phone: '+70000000000', email: 'a@b.ru' }))).toBe(byEmail);
  });

  it('one lead matching several identifiers is found', () => {
    const full: StoredLead = { id: 9, externalId: 'e', phone: '+1', email: 'x@y' };
    expect(pickLead([full], ids({ externalId: 'e', phone: '+1', email: 'x@y' }))).toBe(full);
  });

  it('no match gives undefined', () => {
    expect(pickLead(all, ids({ externalId: 'nope', phone: '+1', email: 'z@z' }))).toBeUndefined();
    expect(pickLead([], ids({ externalId: 'ext-1' }))).toBeUndefined();
  });

  it('absent identifiers never match a lead whose identifier is null or undefined', () => {
    expect(pickLead(all, ids())).toBeUndefined();
    expect(pickLead([byEmail], ids({ externalId: null, phone: null, email: 'other@b.ru' }))).toBeUndefined();
  });

  it('matching is exact on the stored (normalised) form', () => {
    expect(pickLead(all, ids({ email: 'A@B.RU' }))).toBeUndefined();
    expect(pickLead(all, ids({ externalId: 'EXT-1' }))).toBeUndefined();
  });
});

describe('missingIdentifiers', () => {
  it('fills every identifier the lead lacks', () => {
    const lead: StoredLead = { id: 1, externalId: 'ext-1', phone: null, email: null };
    expect(missingIdentifiers(lead, [lead], ids({ externalId: 'ext-1', phone: '+7999', email: 'a@b' }))).toStrictEqual({ phone: '+7999', email: 'a@b' });
  });

  it('treats undefined (unset by the ORM) like null', () => {
    const lead: StoredLead = { id: 1, phone: '+7999' };
    expect(missingIdentifiers(lead, [lead], ids({ externalId: 'ext-1', phone: '+7999', email: 'a@b' }))).toStrictEqual({ externalId: 'ext-1', email: 'a@b' });
  });

  it('never overwrites an identifier the lead already has, even with a different value', () => {
    const lead: StoredLead = { id: 1, externalId: 'ext-1', phone: '+7111', email: 'old@b' };
    expect(missingIdentifiers(lead, [lead], ids({ externalId: 'ext-2', phone: '+7222', email: 'new@b' }))).toStrictEqual({});
  });

  it('does not fill what the request does not bring', () => {
    const lead: StoredLead = { id: 1, externalId: 'ext-1', phone: null, email: null };
    expect(missingIdentifiers(lead, [lead], ids({ externalId: 'ext-1' }))).toStrictEqual({});
  });

  it('skips a value that belongs to another matched lead (identifiers are unique)', () => {
    const lead: StoredLead = { id: 1, externalId: 'ext-1', phone: null, email: null };
    const other: StoredLead = { id: 2, externalId: null, phone: '+7999', email: null };
    expect(missingIdentifiers(lead, [lead, other], ids({ externalId: 'ext-1', phone: '+7999', email: 'a@b' }))).toStrictEqual({ email: 'a@b' });
  });

  it('skips values owned by other leads for each field independently', () => {
    const lead: StoredLead = { id: 1, externalId: 'ext-1' };
    const phoneOwner: StoredLead = { id: 2, phone: '+7999' };
    const emailOwner: StoredLead = { id: 3, email: 'a@b' };
    expect(missingIdentifiers(lead, [emailOwner, lead, phoneOwner], ids({ externalId: 'ext-1', phone: '+7999', email: 'a@b' }))).toStrictEqual({});
  });

  it('another lead holding a different value of the field does not block the fill', () => {
    const lead: StoredLead = { id: 1, externalId: 'ext-1', phone: null };
    const other: StoredLead = { id: 2, externalId: 'ext-2', phone: '+7000', email: 'a@b' };
    expect(missingIdentifiers(lead, [lead, other], ids({ externalId: 'ext-1', phone: '+7999' }))).toStrictEqual({ phone: '+7999' });
  });

  it('works together with pickLead: the lead found by phone gains the external_id and email', () => {
    const byPhone: StoredLead = { id: 2, externalId: null, phone: '+79991234567', email: null };
    const request = normalizeIdentifiers({ externalId: ' tg-7 ', phone: '+7 (999) 123-45-67', email: ' A@B.RU ' });
    const found = pickLead([byPhone], request);
    expect(found).toBe(byPhone);
    expect(missingIdentifiers(found!, [byPhone], request)).toStrictEqual({ externalId: 'tg-7', email: 'a@b.ru' });
  });
});
