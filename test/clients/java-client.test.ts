// A Java client from proto/ with the README's protoc commands and no mapping
// flags: the files' java_package and java_multiple_files place it, javac
// compiles it against the standard jars (com.google.rpc included) and
// protovalidate's build.buf.validate classes (generated from proto/buf/validate,
// the README's offline alternative to build.buf:protovalidate), and it talks to
// the server. Runs where Debian's packages are installed (protoc,
// protobuf-compiler-grpc-java-plugin, a JDK, libprotobuf-java, libgrpc-java,
// libgoogle-common-protos-java, libgeronimo-annotation-1.3-spec-java,
// libnetty-java, libgoogle-gson-java, libperfmark-java), skipped elsewhere.
import { existsSync, readdirSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { CLIENT_OUTPUT, STEP_TIMEOUT, clientFixture, lines, run, which } from './toolchain.ts';

const jar = (name: string) => `/usr/share/java/${name}.jar`;
// javax.annotation.Generated (geronimo-annotation) is on grpc-java's stubs and no longer in the JDK since Java 9.
const COMPILE_CLASSPATH = ['protobuf', 'grpc-api', 'grpc-stub', 'grpc-protobuf', 'guava', 'proto-google-common-protos', 'geronimo-annotation-1.3-spec'].map(jar);
const NETTY = ['common', 'buffer', 'transport', 'resolver', 'codec', 'codec-http', 'codec-http2', 'codec-socks', 'handler', 'handler-proxy'].map((m) => `netty-${m}`);
const RUN_CLASSPATH = [...COMPILE_CLASSPATH, ...['grpc-core', 'grpc-context', 'grpc-netty', 'grpc-protobuf-lite', 'perfmark-api', 'gson', ...NETTY].map(jar)];

const protoc = which('protoc');
const plugin = which('grpc_java_plugin');
const javac = which('javac');
const java = which('java');
const hasJavaToolchain = protoc !== undefined && plugin !== undefined && javac !== undefined && java !== undefined && RUN_CLASSPATH.every(existsSync);

const PACKAGE_DIR = 'com/crmdistributor/crm/v1';
// protovalidate's java_package, build.buf.validate.
const VALIDATE_DIR = 'build/buf/validate';

/** The .java files under a directory of the workspace, as paths from the workspace. */
const javaSources = (cwd: string, dir: string) =>
  readdirSync(join(cwd, dir), { recursive: true, encoding: 'utf8' })
    .filter((f) => f.endsWith('.java'))
    .map((f) => join(dir, f));

describe.skipIf(!hasJavaToolchain)('Java client (protoc, grpc-java, javac)', () => {
  const f = clientFixture('java');

  it('generates into com.crmdistributor.crm.v1 alone, one class a file', async () => {
    const generated = await run(protoc!, ['-I', 'proto', '--java_out=.', '--grpc-java_out=.', `--plugin=protoc-gen-grpc-java=${plugin}`, ...f.w.crmProtos], { cwd: f.w.cwd });
    expect(generated.code, generated.stderr).toBe(0);
    expect(readdirSync(f.w.cwd).sort()).toEqual(['com', 'proto']);
    expect(new Set(javaSources(f.w.cwd, 'com').map(dirname))).toEqual(new Set([PACKAGE_DIR]));
    const files = readdirSync(join(f.w.cwd, PACKAGE_DIR));
    for (const file of ['AdminServiceGrpc.java', 'DistributionServiceGrpc.java', 'QueryServiceGrpc.java', 'Operator.java', 'ListOperatorsRequest.java', 'ResourcesProto.java', 'RulesProto.java']) {
      expect(files).toContain(file);
    }
  });

  it('generates buf/validate into build.buf.validate alone', async () => {
    // Debian packages no protovalidate: the README's offline alternative to build.buf:protovalidate.
    const generated = await run(protoc!, ['-I', 'proto', '--java_out=.', 'proto/buf/validate/validate.proto'], { cwd: f.w.cwd });
    expect(generated.code, generated.stderr).toBe(0);
    expect(readdirSync(f.w.cwd).sort()).toEqual(['build', 'com', 'proto']);
    expect(new Set(javaSources(f.w.cwd, 'build').map(dirname))).toEqual(new Set([VALIDATE_DIR]));
    const files = readdirSync(join(f.w.cwd, VALIDATE_DIR));
    for (const file of ['ValidateProto.java', 'FieldRules.java', 'StringRules.java', 'PredefinedRules.java']) expect(files).toContain(file);
  });

  it('compiles with javac against the standard jars', { timeout: STEP_TIMEOUT }, async () => {
    const sources = [...javaSources(f.w.cwd, PACKAGE_DIR), ...javaSources(f.w.cwd, VALIDATE_DIR)];
    const compiled = await run(javac!, ['-d', 'classes', '-cp', COMPILE_CLASSPATH.join(':'), ...sources, f.w.copy('java/CrmClient.java')], { cwd: f.w.cwd });
    expect(compiled.code, compiled.stderr).toBe(0);
    for (const file of [
      `${PACKAGE_DIR}/QueryServiceGrpc.class`,
      `${PACKAGE_DIR}/QueryServiceGrpc$QueryServiceBlockingStub.class`,
      `${PACKAGE_DIR}/Operator.class`,
      `${PACKAGE_DIR}/RulesProto.class`,
      `${VALIDATE_DIR}/ValidateProto.class`,
      'CrmClient.class',
    ]) {
      expect(existsSync(join(f.w.cwd, 'classes', file)), file).toBe(true);
    }
  });

  it('calls the server and reads its BadRequest as com.google.rpc.BadRequest', { timeout: STEP_TIMEOUT }, async () => {
    const called = await run(java!, ['-cp', ['classes', ...RUN_CLASSPATH].join(':'), 'CrmClient', f.t.address], { cwd: f.w.cwd });
    expect(called.code, called.stderr).toBe(0);
    expect(lines(called.stdout)).toEqual(CLIENT_OUTPUT);
  });
});
