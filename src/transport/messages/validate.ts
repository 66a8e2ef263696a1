// Request validation: shape and limits, reported as google.rpc.BadRequest field
// violations (field paths use the proto field names).
import { InvalidArgumentError, type FieldViolation } from '../../domain/errors.ts';
import type { Duration } from '@bufbuild/protobuf/wkt';
import type { PageRequest } from '../../domain/queries.ts';

/** Documented input limits (README, "Limits"). */
export const LIMITS = {
  name: 200,
  code: 64,
  description: 2_000,
  message: 10_000,
  externalId: 200,
  phone: 32,
  email: 320,
  requestId: 200,
  maxLoad: 1_000_000,
  weight: 1_000_000,
  pageSize: 500,
  defaultPageSize: 50,
  /** accept_within: 7 days. */
  acceptWithinMs: 7 * 24 * 3600 * 1000,
} as const;

export class Violations {
  readonly #list: FieldViolation[] = [];

  add(field: string, description: string): void {
    this.#list.push({ field, description });
  }

  addAll(violations: readonly FieldViolation[]): void {
    this.#list.push(...violations);
  }

  /** Trimmed text within `max` characters; `required` also refuses an empty one. */
  text(value: string, field: string, max: number, required = false): string {
    const trimmed = value.trim();
    if (required && trimmed === '') this.add(field, 'must not be empty');
    if ([...trimmed].length > max) this.add(field, `must be at most ${max} characters`);
    // NUL and other control characters (tab and line breaks aside) are never
    // meaningful here, and neither SQLite statements nor PostgreSQL text accept NUL.
    if (CONTROL_CHARACTERS.test(trimmed)) this.add(field, 'must not contain control characters');
    return trimmed;
  }

  /** A required id: 1 or more. */
  id(value: bigint, field: string): number {
    if (value <= 0n || value > BigInt(Number.MAX_SAFE_INTEGER)) {
      this.add(field, 'must be a positive id');
      return 0;
    }
    return Number(value);
  }

  /** An optional id filter: 0 means none. */
  optionalId(value: bigint, field: string): number | undefined {
    return value === 0n ? undefined : this.id(value, field);
  }

  /** A whole number from 0 to max. */
  count(value: number, field: string, max: number): number {
    if (value < 0) this.add(field, 'must not be negative');
    else if (value > max) this.add(field, `must be at most ${max}`);
    return value;
  }

  /** A duration from 0 to `maxMs`, in whole milliseconds (a positive one is never rounded down to 0); unset is 0. */
  duration(value: Duration | undefined, field: string, maxMs: number): number {
    if (value === undefined) return 0;
    const { seconds, nanos } = value;
    if (seconds < 0n || nanos < 0) {
      this.add(field, 'must not be negative');
      return 0;
    }
    if (nanos > 999_999_999 || seconds * 1000n + BigInt(Math.ceil(nanos / 1e6)) > BigInt(maxMs)) {
      this.add(field, `must be at most ${maxMs / 1000} seconds`);
      return 0;
    }
    return Number(seconds) * 1000 + Math.ceil(nanos / 1e6);
  }

  page(pageSize: number, pageToken: string): PageRequest {
    if (pageSize < 0 || pageSize > LIMITS.pageSize) this.add('page_size', `must be between 0 and ${LIMITS.pageSize}`);
    const afterId = decodePageToken(pageToken);
    if (afterId === undefined) this.add('page_token', 'is not a token this service issued');
    return { pageSize: pageSize === 0 ? LIMITS.defaultPageSize : pageSize, afterId: afterId ?? 0 };
  }

  /** Throws INVALID_ARGUMENT naming every bad field, if there is any. */
  check(): void {
    if (this.#list.length > 0) throw new InvalidArgumentError(this.#list);
  }
}

// C0 control characters except \t \n \r, and DEL.
const CONTROL_CHARACTERS = /[\u0000-\u0008\u000b\u000c\u000e-\u001f\u007f]/;

const TOKEN_PREFIX = 'after:';

/** Opaque to clients: the id of the last item served, base64url-encoded. */
export function encodePageToken(lastId: number | null): string {
  return lastId === null ? '' : Buffer.from(`${TOKEN_PREFIX}${lastId}`).toString('base64url');
}

function decodePageToken(token: string): number | undefined {
  if (token === '') return 0;
  const text = Buffer.from(token, 'base64url').toString();
  if (!text.startsWith(TOKEN_PREFIX)) return undefined;
  const id = Number(text.slice(TOKEN_PREFIX.length));
  return Number.isSafeInteger(id) && id >= 0 ? id : undefined;
}
