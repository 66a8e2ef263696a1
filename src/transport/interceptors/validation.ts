// Request validation from the contract itself: the buf.validate rules in
// proto/ (lengths, ranges, required fields, formats), enforced by
// protovalidate, so clients in any language can read them and check
// requests the same way. Violations reach clients through errors.ts, in the
// contract's shape. Rules that need the database stay in the domain.
import { createRegistry } from '@bufbuild/protobuf';
import { createValidator } from '@bufbuild/protovalidate';
import type { Interceptor } from '@connectrpc/connect';
import { createValidateInterceptor } from '@connectrpc/validate';
import { file_crm_v1_rules } from '../../../gen/crm/v1/rules_pb.js';

export function validationInterceptor(): Interceptor {
  // The registry makes our own predefined rules (rules.proto) known to the validator.
  return createValidateInterceptor({ validator: createValidator({ registry: createRegistry(file_crm_v1_rules) }) });
}
