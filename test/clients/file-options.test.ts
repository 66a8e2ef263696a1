// The generator options that place clients without mapping flags, checked on
// the compiled descriptors, everywhere (the client tests beside this one need
// toolchains): ours for crm.v1, and upstream's for google.rpc and
// buf.validate, so a generated google/rpc or buf/validate lands on the standard
// (or protovalidate's) classes and packages, not beside them.
import { create } from '@bufbuild/protobuf';
import type { GenFile } from '@bufbuild/protobuf/codegenv2';
import { FileOptionsSchema } from '@bufbuild/protobuf/wkt';
// proto/buf/validate's descriptor: gen/ takes it from @bufbuild/protovalidate, whose embedded one it was verified equal to.
import { file_buf_validate_validate } from '@bufbuild/protovalidate/gen/buf/validate/validate_pb.js';
import { describe, expect, it } from 'vitest';
import { file_crm_v1_admin } from '../../gen/crm/v1/admin_pb.js';
import { file_crm_v1_distribution } from '../../gen/crm/v1/distribution_pb.js';
import { file_crm_v1_query } from '../../gen/crm/v1/query_pb.js';
import { file_crm_v1_resources } from '../../gen/crm/v1/resources_pb.js';
import { file_crm_v1_rules } from '../../gen/crm/v1/rules_pb.js';
import { file_google_rpc_error_details } from '../../gen/google/rpc/error_details_pb.js';
import { file_google_rpc_status } from '../../gen/google/rpc/status_pb.js';

const options = (file: GenFile) => file.proto.options ?? create(FileOptionsSchema);

describe('file options', () => {
  it.each([
    [file_crm_v1_admin.proto.name, file_crm_v1_admin, 'AdminProto'],
    [file_crm_v1_distribution.proto.name, file_crm_v1_distribution, 'DistributionProto'],
    [file_crm_v1_query.proto.name, file_crm_v1_query, 'QueryProto'],
    [file_crm_v1_resources.proto.name, file_crm_v1_resources, 'ResourcesProto'],
    [file_crm_v1_rules.proto.name, file_crm_v1_rules, 'RulesProto'],
  ])('%s: crm.v1 is com.crmdistributor.crm.v1 in Java and crmv1 in Go', (_name, file, outerClassname) => {
    expect(options(file)).toMatchObject({
      javaPackage: 'com.crmdistributor.crm.v1',
      javaMultipleFiles: true,
      javaOuterClassname: outerClassname,
      goPackage: 'github.com/crm-distributor/crm-distributor/gen/go/crm/v1;crmv1',
    });
  });

  it.each([
    [file_google_rpc_error_details.proto.name, file_google_rpc_error_details, 'ErrorDetailsProto', 'google.golang.org/genproto/googleapis/rpc/errdetails;errdetails'],
    [file_google_rpc_status.proto.name, file_google_rpc_status, 'StatusProto', 'google.golang.org/genproto/googleapis/rpc/status;status'],
  ])('%s: google.rpc is where the standard packages have it', (_name, file, outerClassname, goPackage) => {
    expect(options(file)).toMatchObject({ javaPackage: 'com.google.rpc', javaMultipleFiles: true, javaOuterClassname: outerClassname, goPackage, objcClassPrefix: 'RPC' });
  });

  it('buf/validate/validate.proto: buf.validate is where protovalidate\'s packages have it', () => {
    expect(file_buf_validate_validate.proto.name).toBe('buf/validate/validate.proto');
    expect(options(file_buf_validate_validate)).toMatchObject({
      javaPackage: 'build.buf.validate',
      javaMultipleFiles: true,
      javaOuterClassname: 'ValidateProto',
      goPackage: 'buf.build/gen/go/bufbuild/protovalidate/protocolbuffers/go/buf/validate',
    });
  });
});
