// Server reflection, v1 and v1alpha, driven over grpc-js and by the real `buf curl`:
// every listed service must be rebuildable from what reflection returns.
import { execFile } from 'node:child_process';
import { once } from 'node:events';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { create, createFileRegistry, equals, fromBinary, toBinary, type DescMessage, type DescService, type MessageInitShape, type MessageShape } from '@bufbuild/protobuf';
import { FileDescriptorProtoSchema, FileDescriptorSetSchema, type FileDescriptorProto } from '@bufbuild/protobuf/wkt';
import type { ClientDuplexStream } from '@grpc/grpc-js';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { AdminService } from '../../../gen/crm/v1/admin_pb.js';
import { DistributionService } from '../../../gen/crm/v1/distribution_pb.js';
import { QueryService } from '../../../gen/crm/v1/query_pb.js';
import { Health } from '../../../gen/grpc/health/v1/health_pb.js';
import {
  ServerReflection,
  ServerReflectionRequestSchema,
  ServerReflectionResponseSchema,
  type ServerReflectionResponse,
} from '../../../gen/grpc/reflection/v1/reflection_pb.js';
import {
  ServerReflection as ServerReflectionV1alpha,
  ServerReflectionRequestSchema as ServerReflectionRequestV1alphaSchema,
  ServerReflectionResponseSchema as ServerReflectionResponseV1alphaSchema,
} from '../../../gen/grpc/reflection/v1alpha/reflection_pb.js';
import { grpcClient } from '../../support/grpc-client.ts';
import { startTestServer, type TestServer } from '../../support/test-server.ts';

const root = fileURLToPath(new URL('../../../', import.meta.url));
const buf = join(root, 'node_modules/.bin/buf');
const run = promisify(execFile);

const EXPOSED: DescService[] = [DistributionService, AdminService, QueryService, Health, ServerReflection, ServerReflectionV1alpha];

type Request = MessageInitShape<typeof ServerReflectionRequestSchema>;

interface Reflection {
  /** Sends one request on the stream and waits for its answer. */
  ask(request: Request): Promise<ServerReflectionResponse>;
  close(): void;
}

/** v1alpha is wire-identical to v1: its messages are re-read as v1 so one set of checks serves both. */
function openReflection(version: 'v1' | 'v1alpha', address: string): Reflection {
  if (version === 'v1') {
    const client = grpcClient(ServerReflection, address);
    return reflection(client.serverReflectionInfo(), (request) => request, (response) => response, () => client.close());
  }
  const client = grpcClient(ServerReflectionV1alpha, address);
  return reflection(
    client.serverReflectionInfo(),
    (request) => rewire(ServerReflectionRequestSchema, ServerReflectionRequestV1alphaSchema, create(ServerReflectionRequestSchema, request)),
    (response) => rewire(ServerReflectionResponseV1alphaSchema, ServerReflectionResponseSchema, response),
    () => client.close(),
  );
}

function reflection<I, O>(stream: ClientDuplexStream<I, O>, toWire: (r: Request) => I, fromWire: (r: O) => ServerReflectionResponse, close: () => void): Reflection {
  return {
    async ask(request) {
      const answer = once(stream, 'data') as Promise<[O]>;
      stream.write(toWire(request));
      return fromWire((await answer)[0]);
    },
    close() {
      stream.end();
      close();
    },
  };
}

function rewire<A extends DescMessage, B extends DescMessage>(from: A, to: B, message: MessageShape<A>): MessageShape<B> {
  return fromBinary(to, toBinary(from, message));
}

const byFilename = (name: string): Request => ({ messageRequest: { case: 'fileByFilename', value: name } });
const bySymbol = (name: string): Request => ({ messageRequest: { case: 'fileContainingSymbol', value: name } });

function files(response: ServerReflectionResponse): FileDescriptorProto[] {
  expect(response.messageResponse.case).toBe('fileDescriptorResponse');
  const bytes = response.messageResponse.case === 'fileDescriptorResponse' ? response.messageResponse.value.fileDescriptorProto : [];
  return bytes.map((b) => fromBinary(FileDescriptorProtoSchema, b));
}

function errorCode(response: ServerReflectionResponse): number | undefined {
  return response.messageResponse.case === 'errorResponse' ? response.messageResponse.value.errorCode : undefined;
}

let t: TestServer;
beforeAll(async () => {
  t = await startTestServer();
});
afterAll(() => t.dispose());

describe.each(['v1', 'v1alpha'] as const)('server reflection %s', (version) => {
  let r: Reflection;
  beforeAll(() => {
    r = openReflection(version, t.address);
  });
  afterAll(() => r.close());

  it('lists every service on the port and echoes the request', async () => {
    const response = await r.ask({ host: 'crm.example', messageRequest: { case: 'listServices', value: '*' } });
    expect(response.validHost).toBe('crm.example');
    expect(response.originalRequest?.messageRequest).toEqual({ case: 'listServices', value: '*' });
    expect(response.messageResponse.case).toBe('listServicesResponse');
    const names = response.messageResponse.case === 'listServicesResponse' ? response.messageResponse.value.service.map((s) => s.name) : [];
    expect(names.sort()).toEqual(EXPOSED.map((s) => s.typeName).sort());
  });

  it('resolves every listed service with all its imports, each also fetchable by file name', async () => {
    for (const expected of EXPOSED) {
      const protos = files(await r.ask(bySymbol(expected.typeName)));
      const byName = new Map(protos.map((p) => [p.name, p]));
      expect(byName.size).toBe(protos.length);
      const [first] = protos;
      expect(first!.service.map((s) => `${first!.package}.${s.name}`)).toContain(expected.typeName);
      for (const proto of protos) {
        for (const dependency of proto.dependency) {
          expect(byName.has(dependency), `${proto.name} imports ${dependency}`).toBe(true);
          const [fetched] = files(await r.ask(byFilename(dependency)));
          expect(fetched!.name).toBe(dependency);
        }
      }
      const registry = createFileRegistry(create(FileDescriptorSetSchema, { file: dependenciesFirst(protos) }));
      const service = registry.getService(expected.typeName);
      const shape = (s: DescService | undefined) => s?.methods.map((m) => [m.name, m.methodKind, m.input.typeName, m.output.typeName]);
      expect(shape(service)).toEqual(shape(expected));
    }
  });

  it('names each file by its import path', async () => {
    const protos = files(await r.ask(bySymbol('crm.v1.DistributionService')));
    expect(protos.map((p) => p.name).sort()).toEqual([
      'buf/validate/validate.proto',
      'crm/v1/distribution.proto',
      'crm/v1/resources.proto',
      'crm/v1/rules.proto',
      'google/protobuf/descriptor.proto',
      'google/protobuf/duration.proto',
      'google/protobuf/field_mask.proto',
      'google/protobuf/timestamp.proto',
    ]);
    expect(protos[0]!.name).toBe('crm/v1/distribution.proto');
    expect(protos[0]!.dependency).toEqual(['buf/validate/validate.proto', 'crm/v1/resources.proto', 'crm/v1/rules.proto']);
    const [resources] = files(await r.ask(byFilename('crm/v1/resources.proto')));
    expect(resources!.dependency).toEqual(['buf/validate/validate.proto', 'crm/v1/rules.proto', 'google/protobuf/duration.proto', 'google/protobuf/timestamp.proto']);
  });

  it.each([
    ['crm.v1.AdminService.CreateOperator', 'crm/v1/admin.proto'],
    ['crm.v1.CreateOperatorRequest', 'crm/v1/admin.proto'],
    ['crm.v1.CreateOperatorRequest.max_load', 'crm/v1/admin.proto'],
    ['crm.v1.RegisterContactRequest.source', 'crm/v1/distribution.proto'],
    ['crm.v1.ContactStatus', 'crm/v1/resources.proto'],
    ['crm.v1.CONTACT_STATUS_NEW', 'crm/v1/resources.proto'],
    ['google.protobuf.Timestamp', 'google/protobuf/timestamp.proto'],
    ['grpc.health.v1.HealthCheckResponse.ServingStatus', 'grpc/health/v1/health.proto'],
    ['grpc.health.v1.HealthCheckResponse.SERVICE_UNKNOWN', 'grpc/health/v1/health.proto'],
    ['grpc.reflection.v1alpha.ServerReflection.ServerReflectionInfo', 'grpc/reflection/v1alpha/reflection.proto'],
    ['google.rpc.BadRequest.FieldViolation', 'google/rpc/error_details.proto'],
  ])('finds the file declaring %s', async (symbol, file) => {
    expect(files(await r.ask(bySymbol(symbol)))[0]!.name).toBe(file);
  });

  it('answers unknown names with NOT_FOUND and keeps the stream open', async () => {
    expect(errorCode(await r.ask(byFilename('crm/v1/nope.proto')))).toBe(5);
    expect(errorCode(await r.ask(byFilename('crm/v1/resources')))).toBe(5);
    expect(errorCode(await r.ask(bySymbol('crm.v1.Nope')))).toBe(5);
    expect(errorCode(await r.ask(bySymbol('crm.v1.AdminService.Nope')))).toBe(5);
    const extension = { containingType: 'crm.v1.Operator', extensionNumber: 100 };
    expect(errorCode(await r.ask({ messageRequest: { case: 'fileContainingExtension', value: extension } }))).toBe(5);
    expect(errorCode(await r.ask({ messageRequest: { case: 'allExtensionNumbersOfType', value: 'crm.v1.Nope' } }))).toBe(5);
    expect(files(await r.ask(byFilename('crm/v1/admin.proto')))[0]!.name).toBe('crm/v1/admin.proto');
  });

  it('reports no extension numbers for a known message', async () => {
    const response = await r.ask({ messageRequest: { case: 'allExtensionNumbersOfType', value: 'crm.v1.Operator' } });
    expect(response.messageResponse).toMatchObject({ case: 'allExtensionNumbersResponse', value: { baseTypeName: 'crm.v1.Operator', extensionNumber: [] } });
  });
});

/**
 * The files ordered so that each comes after everything it imports, as a
 * FileDescriptorSet must be (createFileRegistry's own resolution of imports
 * can order a diamond wrongly).
 */
function dependenciesFirst(protos: readonly FileDescriptorProto[]): FileDescriptorProto[] {
  const byName = new Map(protos.map((p) => [p.name, p]));
  const ordered: FileDescriptorProto[] = [];
  const visit = (proto: FileDescriptorProto) => {
    if (ordered.includes(proto)) return;
    for (const dependency of proto.dependency) visit(byName.get(dependency)!);
    ordered.push(proto);
  };
  protos.forEach(visit);
  return ordered;
}

describe('reflected descriptors', () => {
  it('are the compiler\'s own (buf build), field for field', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'crm-fds-'));
    try {
      const out = join(dir, 'image.binpb');
      await run(buf, ['build', '--as-file-descriptor-set', '--exclude-source-info', '-o', out], { cwd: root });
      const built = new Map(fromBinary(FileDescriptorSetSchema, readFileSync(out)).file.map((f) => [f.name, f]));
      const r = openReflection('v1', t.address);
      const reflected = new Map<string, FileDescriptorProto>();
      for (const symbol of [...EXPOSED.map((s) => s.typeName), 'google.rpc.BadRequest']) {
        for (const proto of files(await r.ask(bySymbol(symbol)))) reflected.set(proto.name, proto);
      }
      r.close();
      expect(reflected.size).toBeGreaterThanOrEqual(8);
      for (const [name, proto] of reflected) {
        expect(built.has(name), name).toBe(true);
        // The well-known types come from each runtime's own copy (protobuf-es's here, buf's there), not from proto/.
        if (name.startsWith('google/protobuf/')) continue;
        expect(equals(FileDescriptorProtoSchema, proto, built.get(name)!), name).toBe(true);
      }
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

// buf curl runs as a child process: the server shares this test's event loop, so never block it.
describe('buf curl through reflection', () => {
  const curl = (...args: string[]) => run(buf, ['curl', '--protocol', 'grpc', '--http2-prior-knowledge', ...args], { cwd: root });

  it.each(['grpc-v1', 'grpc-v1alpha'])('lists every method (%s)', async (protocol) => {
    const { stdout } = await curl('--reflect-protocol', protocol, '--list-methods', `http://${t.address}`);
    const methods = stdout.trim().split('\n');
    for (const service of EXPOSED) {
      for (const method of service.methods) expect(methods).toContain(`${service.typeName}/${method.name}`);
    }
  });

  it('calls CreateOperator from JSON with no .proto files at hand', async () => {
    const { stdout } = await curl('-d', '{"name":"x","max_load":3}', `http://${t.address}/crm.v1.AdminService/CreateOperator`);
    const { operator } = JSON.parse(stdout) as { operator: { id: string; name: string; maxLoad: number; active: boolean } };
    expect(operator).toMatchObject({ name: 'x', maxLoad: 3, active: true });
    const { operator: stored } = await t.query.getOperator({ operatorId: BigInt(operator.id) });
    expect(stored?.name).toBe('x');
  });
});
