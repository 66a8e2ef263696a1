// Domain failures. The transport turns each kind into one gRPC status code in
// src/transport/interceptors/errors.ts; nothing else there needs to know about them.

export interface FieldViolation {
  /** Path of the bad field in the request, e.g. "lead.email" or "operators[1].weight". */
  field: string;
  description: string;
}

export class InvalidArgumentError extends Error {
  readonly violations: readonly FieldViolation[];

  constructor(violations: readonly FieldViolation[]) {
    // Plain words only: grpc-js clients do not decode a percent-encoded ':', ',' or ';' in grpc-message.
    super(violations.map((v) => `${v.field} ${v.description}`).join('. '));
    this.name = 'InvalidArgumentError';
    this.violations = violations;
  }

  static field(field: string, description: string): InvalidArgumentError {
    return new InvalidArgumentError([{ field, description }]);
  }
}

export class NotFoundError extends Error {
  override name = 'NotFoundError';
}

export class AlreadyExistsError extends Error {
  override name = 'AlreadyExistsError';
}

export class FailedPreconditionError extends Error {
  override name = 'FailedPreconditionError';
}

/**
 * The database cannot do the work now (unreachable, locked or busy beyond the
 * bounded wait, or racing writers beyond the retries). The call may be retried;
 * one that ended this way may still have been committed, which the same
 * request_id makes safe.
 */
export class UnavailableError extends Error {
  override name = 'UnavailableError';
}

/** The database has no room left (disk or memory): nothing new can be written until it has. */
export class StorageFullError extends Error {
  override name = 'StorageFullError';
}
