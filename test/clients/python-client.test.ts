// A Python client from proto/ with the README's protoc commands, talking to the
// server: crm/v1, and buf/validate from proto/buf/validate (the README's
// offline alternative to PyPI's protovalidate), which crm/v1 imports. Runs where protoc, grpc_python_plugin (protobuf-compiler-grpc) and a
// python3 with grpcio and protobuf (python3-grpcio, python3-protobuf) are
// installed, skipped elsewhere.
import { readdirSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { CLIENT_OUTPUT, clientFixture, lines, run, succeeds, which } from './toolchain.ts';

const protoc = which('protoc');
const plugin = which('grpc_python_plugin');
// The first python3 on PATH may be a virtualenv's or pyenv's without grpcio; Debian's has it.
const python = ['python3', '/usr/bin/python3'].find((p) => succeeds(p, ['-c', 'import grpc, google.protobuf']));
const hasPythonToolchain = protoc !== undefined && plugin !== undefined && python !== undefined;

describe.skipIf(!hasPythonToolchain)('Python client (protoc, grpc_python_plugin)', () => {
  const f = clientFixture('python');

  it('generates the crm.v1 modules', async () => {
    const generated = await run(protoc!, ['-I', 'proto', '--python_out=.', '--grpc_python_out=.', `--plugin=protoc-gen-grpc_python=${plugin}`, ...f.w.crmProtos], { cwd: f.w.cwd });
    expect(generated.code, generated.stderr).toBe(0);
    expect(readdirSync(join(f.w.cwd, 'crm/v1'))).toEqual(expect.arrayContaining(['query_pb2.py', 'query_pb2_grpc.py', 'resources_pb2.py', 'rules_pb2.py']));
    expect(readdirSync(f.w.cwd).sort()).toEqual(['crm', 'proto']);
  });

  it('generates the buf.validate module where crm.v1 imports it', async () => {
    // Debian packages no protovalidate: the README's offline alternative to PyPI's.
    const generated = await run(protoc!, ['-I', 'proto', '--python_out=.', 'proto/buf/validate/validate.proto'], { cwd: f.w.cwd });
    expect(generated.code, generated.stderr).toBe(0);
    expect(readdirSync(join(f.w.cwd, 'buf/validate'))).toEqual(['validate_pb2.py']);
    const imported = await run(python!, ['-c', 'import crm.v1.rules_pb2, crm.v1.query_pb2'], { cwd: f.w.cwd });
    expect(imported.code, imported.stderr).toBe(0);
  });

  it('calls the server and reads its BadRequest as google.rpc.BadRequest', async () => {
    // Debian packages no googleapis-common-protos for Python; proto/google/rpc is
    // upstream's file verbatim, so generating it makes the same google.rpc modules.
    const common = await run(protoc!, ['-I', 'proto', '--python_out=.', 'proto/google/rpc/status.proto', 'proto/google/rpc/error_details.proto'], { cwd: f.w.cwd });
    expect(common.code, common.stderr).toBe(0);
    const called = await run(python!, [f.w.copy('python/client.py'), f.t.address], { cwd: f.w.cwd });
    expect(called.code, called.stderr).toBe(0);
    expect(lines(called.stdout)).toEqual(CLIENT_OUTPUT);
  });
});
