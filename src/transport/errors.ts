// The one converter from domain errors to gRPC status codes. Unexpected errors
// become INTERNAL with a fixed message: no stack trace or SQL reaches a client.
import { create } from '@bufbuild/protobuf';
import { Code, ConnectError, type Interceptor } from '@connectrpc/connect';
import type { Logger } from 'pino';
import { BadRequestSchema } from '../../gen/google/rpc/error_details_pb.js';
import { AlreadyExistsError, FailedPreconditionError, InvalidArgumentError, NotFoundError } from '../domain/errors.ts';
import { atCallEnd } from './call-end.ts';

function toConnectError(error: unknown, log: Logger, procedure: string): ConnectError {
  if (error instanceof ConnectError) return error;
  if (error instanceof InvalidArgumentError) {
    const detail = create(BadRequestSchema, {
      fieldViolations: error.violations.map((v) => ({ field: v.field, description: v.description })),
    });
    return new ConnectError(error.message, Code.InvalidArgument, undefined, [{ desc: BadRequestSchema, value: detail }]);
  }
  if (error instanceof NotFoundError) return new ConnectError(error.message, Code.NotFound);
  if (error instanceof AlreadyExistsError) return new ConnectError(error.message, Code.AlreadyExists);
  if (error instanceof FailedPreconditionError) return new ConnectError(error.message, Code.FailedPrecondition);
  log.error({ err: error, procedure }, 'unexpected error');
  return new ConnectError('internal error', Code.Internal);
}

/** Applies toConnectError to every call, including errors a server stream raises while it runs. */
export function errorInterceptor(log: Logger): Interceptor {
  return atCallEnd((request) => {
    const procedure = `${request.service.typeName}/${request.method.name}`;
    return (error) => (error === undefined ? undefined : toConnectError(error, log, procedure));
  });
}
