// A Go client from proto/ with the README's protoc commands and no M flags:
// go_package names the package, `go build` compiles it with the standard
// errdetails package and protovalidate's buf/validate package (generated from
// proto/buf/validate into GOPATH at the import path of protovalidate's Go
// module, as the README's offline alternative has it), and it talks to the
// server. Runs where Debian's packages
// are installed (protoc, golang-go, protoc-gen-go, protoc-gen-go-grpc,
// golang-google-grpc-dev, golang-google-genproto-dev and
// golang-github-golang-protobuf-1-5-dev: built in GOPATH mode from
// /usr/share/gocode, as Debian has no module proxy), skipped elsewhere.
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { CLIENT_OUTPUT, STEP_TIMEOUT, clientFixture, lines, run, which } from './toolchain.ts';

const DEBIAN_GOPATH = '/usr/share/gocode';
const protoc = which('protoc');
const go = which('go');
const hasGoToolchain =
  protoc !== undefined &&
  go !== undefined &&
  which('protoc-gen-go') !== undefined &&
  which('protoc-gen-go-grpc') !== undefined &&
  // grpc-go's codec goes through github.com/golang/protobuf: its 1.3 (Debian's default) cannot decode protoc-gen-go's messages, 1.4+ (registry.go) can.
  ['google.golang.org/grpc', 'google.golang.org/genproto/googleapis/rpc/errdetails', 'github.com/golang/protobuf/proto/registry.go'].every((p) => existsSync(join(DEBIAN_GOPATH, 'src', p)));

// The client's own package, at example.com/crmclient in a GOPATH of its own.
const PACKAGE = 'example.com/crmclient';
// protovalidate's generated Go package, which the crm/v1 files import (their go_package).
const VALIDATE_PACKAGE = 'buf.build/gen/go/bufbuild/protovalidate/protocolbuffers/go/buf/validate';

describe.skipIf(!hasGoToolchain)('Go client (protoc-gen-go, protoc-gen-go-grpc, go build)', () => {
  const f = clientFixture('go', `gopath/src/${PACKAGE}`);
  let env: NodeJS.ProcessEnv;
  // The GOPATH of this client (the README's "$(go env GOPATH)"), first before Debian's.
  let gopath: string;
  beforeAll(() => {
    gopath = join(f.w.cwd, '../../..');
    env = { ...process.env, GO111MODULE: 'off', GOFLAGS: '', GOPATH: `${gopath}:${DEBIAN_GOPATH}` };
  });

  it('generates package crmv1 into crm/v1', async () => {
    const args = ['-I', 'proto', '--go_out=.', '--go_opt=paths=source_relative', '--go-grpc_out=.', '--go-grpc_opt=paths=source_relative', ...f.w.crmProtos];
    const generated = await run(protoc!, args, { cwd: f.w.cwd });
    expect(generated.code, generated.stderr).toBe(0);
    const files = readdirSync(join(f.w.cwd, 'crm/v1')).sort();
    // resources.proto and rules.proto have no service, so no _grpc file.
    expect(files).toEqual(['admin.pb.go', 'admin_grpc.pb.go', 'distribution.pb.go', 'distribution_grpc.pb.go', 'query.pb.go', 'query_grpc.pb.go', 'resources.pb.go', 'rules.pb.go']);
    for (const file of files) {
      const source = readFileSync(join(f.w.cwd, 'crm/v1', file), 'utf8');
      expect(source).toMatch(/^package crmv1$/m);
      if (file.endsWith('.pb.go') && !file.endsWith('_grpc.pb.go')) expect(source, file).toContain(`"${VALIDATE_PACKAGE}"`);
    }
  });

  it('generates buf/validate as package validate at its import path in GOPATH', async () => {
    // Debian packages no protovalidate: the README's offline alternative to its Go module.
    const args = ['-I', 'proto', `--go_out=${join(gopath, 'src')}`, 'proto/buf/validate/validate.proto'];
    const generated = await run(protoc!, args, { cwd: f.w.cwd });
    expect(generated.code, generated.stderr).toBe(0);
    const dir = join(gopath, 'src', VALIDATE_PACKAGE);
    expect(readdirSync(dir)).toEqual(['validate.pb.go']);
    expect(readFileSync(join(dir, 'validate.pb.go'), 'utf8')).toMatch(/^package validate$/m);
    // Nothing beside the client's own crm/v1.
    expect(readdirSync(f.w.cwd).sort()).toEqual(['crm', 'proto']);
  });

  it('builds with go build', { timeout: STEP_TIMEOUT }, async () => {
    f.w.copy('go/main.go');
    const built = await run(go!, ['build', '-o', 'crmclient', '.'], { cwd: f.w.cwd, env });
    expect(built.code, built.stderr).toBe(0);
    expect(existsSync(join(f.w.cwd, 'crmclient'))).toBe(true);
  });

  it('calls the server and reads its BadRequest as errdetails.BadRequest', async () => {
    const called = await run(join(f.w.cwd, 'crmclient'), [f.t.address], { cwd: f.w.cwd });
    expect(called.code, called.stderr).toBe(0);
    expect(lines(called.stdout)).toEqual(CLIENT_OUTPUT);
  });
});
