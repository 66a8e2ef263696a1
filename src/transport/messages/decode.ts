// From request messages to domain values. The limits (lengths, ranges,
// required fields, formats) are the contract's buf.validate rules in proto/,
// checked before any handler runs (interceptors/validation.ts); what is left
// here is what no field rule can say: trimming, ids beyond what a row can
// have, page tokens, and checks across entries (an operator listed twice).
import type { Duration } from '@bufbuild/protobuf/wkt';
import { InvalidArgumentError, NotFoundError, type FieldViolation } from '../../domain/errors.ts';
import type { PageRequest } from '../../domain/queries.ts';

/** A page of 0 means this many. */
const DEFAULT_PAGE_SIZE = 50;

/**
 * An id the rules found positive. No row has one above 2^53 (ids are
 * sequences), and as a number it would name another row: so it is NOT_FOUND.
 */
export function id(value: bigint, what: string): number {
  if (value > BigInt(Number.MAX_SAFE_INTEGER)) throw new NotFoundError(`${what} ${value} not found`);
  return Number(value);
}

/** An id filter: 0 means none. */
export function optionalId(value: bigint, what: string): number | undefined {
  return value === 0n ? undefined : id(value, what);
}

/**
 * Whole milliseconds; a positive duration never rounds down to 0 (which means
 * "off"); unset is 0. Nanos outside 0..999,999,999 make no Duration (the rules
 * compare the normalised value, so they cannot tell).
 */
export function durationMs(value: Duration | undefined, field: string): number {
  if (value === undefined) return 0;
  if (value.nanos < 0 || value.nanos > 999_999_999) throw InvalidArgumentError.field(field, 'is not a valid duration (nanos must be from 0 to 999999999)');
  return Number(value.seconds) * 1000 + Math.ceil(value.nanos / 1e6);
}

export function page(pageSize: number, pageToken: string): PageRequest {
  const afterId = decodePageToken(pageToken);
  if (afterId === undefined) throw InvalidArgumentError.field('page_token', 'is not a token this service issued');
  return { pageSize: pageSize === 0 ? DEFAULT_PAGE_SIZE : pageSize, afterId };
}

/** Refuses an operator listed more than once, naming each repeat. */
export function refuseRepeatedOperators(operatorIds: readonly bigint[], listField: string): void {
  const seen = new Set<bigint>();
  const repeats: FieldViolation[] = [];
  operatorIds.forEach((operatorId, i) => {
    if (seen.has(operatorId)) repeats.push({ field: `${listField}[${i}].operator_id`, description: `operator ${operatorId} is listed more than once` });
    seen.add(operatorId);
  });
  if (repeats.length > 0) throw new InvalidArgumentError(repeats);
}

const TOKEN_PREFIX = 'after:';

/** Opaque to clients: the id of the last item served, base64url-encoded. */
export function encodePageToken(lastId: number | null): string {
  return lastId === null ? '' : Buffer.from(`${TOKEN_PREFIX}${lastId}`).toString('base64url');
}

function decodePageToken(token: string): number | undefined {
  if (token === '') return 0;
  const text = Buffer.from(token, 'base64url').toString();
  if (!text.startsWith(TOKEN_PREFIX)) return undefined;
  const afterId = Number(text.slice(TOKEN_PREFIX.length));
  return Number.isSafeInteger(afterId) && afterId >= 0 ? afterId : undefined;
}
