// Assertions on the gRPC status a call fails with.
import { status, type ServiceError } from '@grpc/grpc-js';
import { expect } from 'vitest';
import { fieldViolations } from './status-details.ts';

/** The error a call fails with; fails the test when the call succeeds. */
export async function failure(call: Promise<unknown>): Promise<ServiceError> {
  try {
    await call;
  } catch (error) {
    return error as ServiceError;
  }
  throw new Error('expected the call to fail, but it succeeded');
}

/** Asserts INVALID_ARGUMENT naming exactly `fields` in BadRequest and each of them in the message. */
export async function expectInvalid(call: Promise<unknown>, fields: string[]): Promise<void> {
  const error = await failure(call);
  expect({ code: error.code, details: error.details }).toMatchObject({ code: status.INVALID_ARGUMENT });
  expect(fieldViolations(error).map((v) => v.field)).toEqual(fields);
  for (const field of fields) expect(error.details).toContain(field);
}

/** Asserts that the call fails with `code`, and returns its error. */
export async function expectCode(call: Promise<unknown>, code: status): Promise<ServiceError> {
  const error = await failure(call);
  expect({ code: error.code, details: error.details }).toMatchObject({ code });
  return error;
}
