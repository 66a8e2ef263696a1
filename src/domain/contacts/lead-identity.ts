/** A lead's identifiers in their stored form; null where not given. */
export interface LeadIdentifiers {
  externalId: string | null;
  phone: string | null;
  email: string | null;
}

function orNull(value: string): string | null {
  return value === '' ? null : value;
}

/** "+7 (999) 123-45-67" and "+79991234567" are one phone: "+" and the digits. */
export function normalizePhone(phone: string): string | null {
  const digits = phone.replace(/\D/g, '');
  return digits === '' ? null : `+${digits}`;
}

export function normalizeIdentifiers(raw: { externalId: string; phone: string; email: string }): LeadIdentifiers {
  return {
    externalId: orNull(raw.externalId.trim()),
    phone: normalizePhone(raw.phone.trim()),
    email: orNull(raw.email.trim().toLowerCase()),
  };
}

const IDENTIFIER_KEYS = ['externalId', 'phone', 'email'] as const;

/** A stored lead as far as its identifiers go (the ORM leaves unset ones undefined). */
type StoredIdentifiers = { [K in keyof LeadIdentifiers]?: string | null };

/** The stored lead the identifiers point to: by external_id, then phone, then email. */
export function pickLead<L extends StoredIdentifiers>(matches: readonly L[], ids: LeadIdentifiers): L | undefined {
  for (const key of IDENTIFIER_KEYS) {
    const value = ids[key];
    const found = value === null ? undefined : matches.find((lead) => lead[key] === value);
    if (found) return found;
  }
  return undefined;
}

/**
 * Identifiers the found lead lacks and the request brings, except those that
 * already belong to another lead (they stay with it: identifiers are unique).
 */
export function missingIdentifiers<L extends StoredIdentifiers>(lead: L, matches: readonly L[], ids: LeadIdentifiers): Partial<LeadIdentifiers> {
  const fill: Partial<LeadIdentifiers> = {};
  for (const key of IDENTIFIER_KEYS) {
    const value = ids[key];
    if (lead[key] != null || value === null) continue;
    if (matches.some((other) => other !== lead && other[key] === value)) continue;
    fill[key] = value;
  }
  return fill;
}
