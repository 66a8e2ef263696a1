// A Ruby client from proto/ with the README's commands, loaded together with
// the standard google/rpc files (googleapis-common-protos-types, which grpc
// loads too) and talking to the server. The README generates proto/crm/v1 and,
// as no Ruby package has protovalidate's generated code, proto/buf/validate;
// never google/rpc, so no google/rpc/*.proto is defined twice: Ruby's
// descriptor pool refuses a second file of the same name ("duplicate file
// name"), even an identical one.
// Runs where ruby-grpc, ruby-grpc-tools and ruby-googleapis-common-protos-types
// are installed, skipped elsewhere.
import { readdirSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { CLIENT_OUTPUT, clientFixture, lines, run, succeeds, which } from './toolchain.ts';

const protoc = which('grpc_tools_ruby_protoc');
const ruby = which('ruby');
const hasRubyToolchain = protoc !== undefined && ruby !== undefined && succeeds(ruby, ['-e', "require 'grpc'; require 'google/rpc/error_details_pb'"]);

describe.skipIf(!hasRubyToolchain)('Ruby client (grpc_tools_ruby_protoc)', () => {
  const f = clientFixture('ruby');

  it('generates crm/v1 and nothing else', async () => {
    const generated = await run(protoc!, ['-I', 'proto', '--ruby_out=.', '--grpc_out=.', ...f.w.crmProtos], { cwd: f.w.cwd });
    expect(generated.code, generated.stderr).toBe(0);
    expect(readdirSync(f.w.cwd).sort()).toEqual(['crm', 'proto']);
    expect(readdirSync(f.w.cwd, { recursive: true, encoding: 'utf8' }).filter((f) => f.endsWith('.rb')).sort()).toEqual([
      'crm/v1/admin_pb.rb',
      'crm/v1/admin_services_pb.rb',
      'crm/v1/distribution_pb.rb',
      'crm/v1/distribution_services_pb.rb',
      'crm/v1/query_pb.rb',
      'crm/v1/query_services_pb.rb',
      'crm/v1/resources_pb.rb',
      'crm/v1/rules_pb.rb',
    ]);
  });

  it('generates buf/validate where crm/v1 requires it', async () => {
    const generated = await run(protoc!, ['-I', 'proto', '--ruby_out=.', 'proto/buf/validate/validate.proto'], { cwd: f.w.cwd });
    expect(generated.code, generated.stderr).toBe(0);
    expect(readdirSync(f.w.cwd).sort()).toEqual(['buf', 'crm', 'proto']);
    expect(readdirSync(f.w.cwd, { recursive: true, encoding: 'utf8' }).filter((f) => f.startsWith('buf') && f.endsWith('.rb'))).toEqual(['buf/validate/validate_pb.rb']);
  });

  it('loads next to the standard google/rpc files, calls the server and reads its BadRequest', async () => {
    const called = await run(ruby!, [f.w.copy('ruby/client.rb'), f.t.address], { cwd: f.w.cwd });
    expect(called.code, called.stderr).toBe(0);
    expect(lines(called.stdout)).toEqual(CLIENT_OUTPUT);
  });
});
