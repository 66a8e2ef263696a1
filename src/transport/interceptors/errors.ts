// The one converter from failures to gRPC status codes. Domain errors have a
// code each; a call the client abandoned (cancelled, or past its deadline)
// ends with that reason, whatever failed after; anything else is a bug:
// INTERNAL with a fixed message, logged with its stack, never sent.
import { create } from '@bufbuild/protobuf';
import { ValidationError } from '@bufbuild/protovalidate';
import { pathToString } from '@bufbuild/protobuf/reflect';
import { Code, ConnectError, type Interceptor } from '@connectrpc/connect';
import type { Logger } from 'pino';
import { BadRequestSchema } from '../../../gen/google/rpc/error_details_pb.js';
import { AlreadyExistsError, FailedPreconditionError, InvalidArgumentError, NotFoundError, StorageFullError, UnavailableError } from '../../domain/errors.ts';
import { atCallEnd } from './call-end.ts';

function toConnectError(error: unknown, signal: AbortSignal, log: Logger, procedure: string): ConnectError {
  // A request that breaks its schema's buf.validate rules (@connectrpc/validate): the contract's shape, plus protovalidate's own detail.
  if (error instanceof ConnectError && error.cause instanceof ValidationError) {
    const violations = error.cause.violations.map((v) => ({ field: pathToString(v.field), description: v.message }));
    return invalidArgument(new InvalidArgumentError(violations), error.details);
  }
  if (error instanceof ConnectError) return error;
  if (signal.aborted) return abandoned(signal.reason);
  if (error instanceof InvalidArgumentError) return invalidArgument(error, []);
  if (error instanceof NotFoundError) return new ConnectError(error.message, Code.NotFound);
  if (error instanceof AlreadyExistsError) return new ConnectError(error.message, Code.AlreadyExists);
  if (error instanceof FailedPreconditionError) return new ConnectError(error.message, Code.FailedPrecondition);
  // Logged once per change by the database health check, not per call: an outage stays readable.
  if (error instanceof UnavailableError) return new ConnectError(error.message, Code.Unavailable);
  if (error instanceof StorageFullError) return new ConnectError(error.message, Code.ResourceExhausted);
  log.error({ err: error, procedure }, 'unexpected error');
  return new ConnectError('internal error', Code.Internal);
}

/** INVALID_ARGUMENT naming every bad field, with a google.rpc.BadRequest of one violation per field (and any details already made). */
export function invalidArgument(error: InvalidArgumentError, details: ConnectError['details']): ConnectError {
  const outgoing = details.filter((detail) => 'desc' in detail);
  const badRequest = create(BadRequestSchema, {
    fieldViolations: error.violations.map((v) => ({ field: v.field, description: v.description })),
  });
  return new ConnectError(error.message, Code.InvalidArgument, undefined, [{ desc: BadRequestSchema, value: badRequest }, ...outgoing]);
}

/** Why the call's signal fired: the client cancelled or hung up, or its deadline passed. */
function abandoned(reason: unknown): ConnectError {
  if (reason instanceof ConnectError) return reason;
  return new ConnectError('the client went away', Code.Canceled);
}

/** Applies toConnectError to every call, including errors a server stream raises while it runs. */
export function errorInterceptor(log: Logger): Interceptor {
  return atCallEnd((request) => {
    const procedure = `${request.service.typeName}/${request.method.name}`;
    return (error) => (error === undefined ? undefined : toConnectError(error, request.signal, log, procedure));
  });
}
