import { fromBinary } from '@bufbuild/protobuf';
import { anyUnpack } from '@bufbuild/protobuf/wkt';
import type { ServiceError } from '@grpc/grpc-js';
import { BadRequestSchema, type BadRequest_FieldViolation } from '../../gen/google/rpc/error_details_pb.js';
import { StatusSchema } from '../../gen/google/rpc/status_pb.js';

/** The google.rpc.BadRequest field violations a gRPC error carries in grpc-status-details-bin. */
export function fieldViolations(error: ServiceError): BadRequest_FieldViolation[] {
  const [bytes] = error.metadata.get('grpc-status-details-bin');
  return bytes instanceof Buffer ? statusFieldViolations(bytes) : [];
}

/** The google.rpc.BadRequest field violations in a serialized google.rpc.Status (the bytes of grpc-status-details-bin). */
export function statusFieldViolations(bytes: Uint8Array): BadRequest_FieldViolation[] {
  const status = fromBinary(StatusSchema, bytes);
  return status.details.flatMap((detail) => {
    const badRequest = anyUnpack(detail, BadRequestSchema);
    return badRequest ? badRequest.fieldViolations : [];
  });
}
