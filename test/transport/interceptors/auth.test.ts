// Authentication and authorisation: every RPC of the three crm.v1 services,
// called with no token, bad tokens and malformed headers, and with each role's
// token; the open standard services (health, reflection); and the parsing of
// CRM_TOKENS / CRM_TOKENS_FILE by configFromEnv.
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { create, fromBinary, toBinary, type DescMethod, type DescService } from '@bufbuild/protobuf';
import * as grpc from '@grpc/grpc-js';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { AdminService } from '../../../gen/crm/v1/admin_pb.js';
import { DistributionService, WatchAssignmentsRequestSchema } from '../../../gen/crm/v1/distribution_pb.js';
import { QueryService } from '../../../gen/crm/v1/query_pb.js';
import {
  HealthCheckRequestSchema,
  HealthCheckResponseSchema,
  HealthCheckResponse_ServingStatus as ServingStatus,
  type HealthCheckResponse,
} from '../../../gen/grpc/health/v1/health_pb.js';
import { ServerReflection, type ServerReflectionResponse } from '../../../gen/grpc/reflection/v1/reflection_pb.js';
import { ServerReflection as ServerReflectionV1alpha } from '../../../gen/grpc/reflection/v1alpha/reflection_pb.js';
import { configFromEnv } from '../../../src/config.ts';
import { parseRoleTokens, type RoleToken } from '../../../src/transport/interceptors/auth.ts';
import { unique } from '../../support/fixtures.ts';
import { grpcClient } from '../../support/grpc-client.ts';
import { startTestServer, type TestServer } from '../../support/test-server.ts';

const TOKENS: RoleToken[] = [
  { role: 'bot', token: 'bot-9f2c1e7a' },
  { role: 'operator', token: 'operator-4b8d0c3f' },
  { role: 'admin', token: 'admin-7e1a5d92' },
];
const tokenOf = (role: RoleToken['role']) => TOKENS.find((t) => t.role === role)!.token;

const SERVICES: DescService[] = [DistributionService, AdminService, QueryService];

/** Every RPC of the three services, from the generated descriptors. */
const METHODS: { service: DescService; method: DescMethod; path: string }[] = SERVICES.flatMap((service) =>
  service.methods.map((method) => ({ service, method, path: `/${service.typeName}/${method.name}` })),
);

/** The contract's grants ("Running", Auth): admin may call everything. */
function allowed(role: RoleToken['role'], path: string): boolean {
  if (role === 'admin') return true;
  if (role === 'bot') return path === '/crm.v1.DistributionService/RegisterContact';
  return (
    path === '/crm.v1.DistributionService/UpdateContactStatus' ||
    path === '/crm.v1.DistributionService/WatchAssignments' ||
    path === '/crm.v1.DistributionService/TransferContact' ||
    path.startsWith('/crm.v1.QueryService/')
  );
}

/**
 * The request each RPC is probed with: empty for unary calls. A server stream
 * with a valid (empty) filter would stay open and send no header until an
 * assignment happens, so streams get a filter the handler refuses: past the
 * auth check the call ends at once with INVALID_ARGUMENT.
 */
const STREAM_PROBES: Record<string, Uint8Array> = {
  '/crm.v1.DistributionService/WatchAssignments': toBinary(WatchAssignmentsRequestSchema, create(WatchAssignmentsRequestSchema, { operatorId: -1n })),
};

function probeBody(method: DescMethod, path: string): Buffer {
  if (method.methodKind === 'unary') return Buffer.from(toBinary(method.input, create(method.input)));
  const probe = STREAM_PROBES[path];
  if (!probe) throw new Error(`no terminating probe for stream ${path}`);
  return Buffer.from(probe);
}

function metadataWith(...authorization: string[]): grpc.Metadata {
  const metadata = new grpc.Metadata();
  for (const value of authorization) metadata.add('authorization', value);
  return metadata;
}

const identity = (bytes: Buffer) => bytes;

/** Calls `path` with raw bytes and resolves with the status code the client saw. */
function call(client: grpc.Client, method: DescMethod, path: string, body: Buffer, metadata: grpc.Metadata): Promise<number> {
  if (method.methodKind === 'unary') {
    return new Promise((resolve) => {
      client.makeUnaryRequest(path, identity, identity, body, metadata, (error) => resolve(error ? error.code : grpc.status.OK));
    });
  }
  return new Promise((resolve) => {
    const stream = client.makeServerStreamRequest(path, identity, identity, body, metadata);
    stream.on('data', () => undefined);
    stream.on('error', () => undefined);
    // The first status ends the probe; cancelling after it is a no-op, but leaves nothing open.
    stream.on('status', (status: grpc.StatusObject) => {
      resolve(status.code);
      stream.cancel();
    });
  });
}

/** Credentials that carry no valid token: each must be UNAUTHENTICATED on every RPC. */
const BAD_CREDENTIALS: Record<string, () => grpc.Metadata> = {
  'no authorization header': () => new grpc.Metadata(),
  'unknown bearer token': () => metadataWith('Bearer not-a-configured-token'),
  'Basic scheme': () => metadataWith('Basic x'),
  'Basic scheme with the admin token': () => metadataWith(`Basic ${tokenOf('admin')}`),
  '"Bearer" with nothing': () => metadataWith('Bearer'),
  '"Bearer " with a blank token': () => metadataWith('Bearer  '),
  'the admin token without the scheme': () => metadataWith(tokenOf('admin')),
  'a prefix of the admin token': () => metadataWith(`Bearer ${tokenOf('admin').slice(0, -1)}`),
  'the admin token with a suffix': () => metadataWith(`Bearer ${tokenOf('admin')}x`),
  'the admin token in upper case': () => metadataWith(`Bearer ${tokenOf('admin').toUpperCase()}`),
  'the admin token followed by another word': () => metadataWith(`Bearer ${tokenOf('admin')} extra`),
  'the role name as the token': () => metadataWith('Bearer admin'),
};

type Outcome = 'UNAUTHENTICATED' | 'PERMISSION_DENIED' | 'passed auth';
const outcome = (code: number): Outcome =>
  code === grpc.status.UNAUTHENTICATED ? 'UNAUTHENTICATED' : code === grpc.status.PERMISSION_DENIED ? 'PERMISSION_DENIED' : 'passed auth';

/** A server with TOKENS configured, and a raw grpc-js client to it with no credentials of its own. */
async function startWithTokens(): Promise<{ t: TestServer; client: grpc.Client }> {
  const t = await startTestServer({ config: { tokens: TOKENS } });
  return { t, client: new grpc.Client(t.address, grpc.credentials.createInsecure()) };
}

/** For the enclosing describe: startWithTokens before its tests (the result handed to `use`), both closed after them. */
function withTokenServer(use: (started: { t: TestServer; client: grpc.Client }) => void): void {
  let started: { t: TestServer; client: grpc.Client } | undefined;
  beforeAll(async () => {
    started = await startWithTokens();
    use(started);
  });
  afterAll(async () => {
    started?.client.close();
    await started?.t.dispose();
  });
}

describe('role x method matrix (tokens configured)', () => {
  let t: TestServer;
  let client: grpc.Client;
  withTokenServer((started) => ({ t, client } = started));

  it('iterates every RPC the contract names, and only unary and server-streaming ones', () => {
    const names = METHODS.map(({ path }) => path);
    expect(names).toEqual(
      expect.arrayContaining([
        '/crm.v1.DistributionService/RegisterContact',
        '/crm.v1.DistributionService/UpdateContactStatus',
        '/crm.v1.DistributionService/WatchAssignments',
        '/crm.v1.DistributionService/TransferContact',
        ...['CreateOperator', 'UpdateOperator', 'CreateSource', 'UpdateSource', 'SetSourceOperators', 'SetOperatorWeight', 'RemoveSourceOperator'].map(
          (m) => `/crm.v1.AdminService/${m}`,
        ),
        ...['GetOperator', 'ListOperators', 'GetSource', 'ListSources', 'GetLead', 'ListLeads', 'ListContacts', 'GetOperatorStats', 'GetDistributionStats'].map(
          (m) => `/crm.v1.QueryService/${m}`,
        ),
      ]),
    );
    for (const { method, path } of METHODS) {
      expect(['unary', 'server_streaming'], path).toContain(method.methodKind);
      if (method.methodKind === 'server_streaming') expect(STREAM_PROBES[path], path).toBeDefined();
    }
  });

  for (const { method, path } of METHODS) {
    it(`${path}: bad credentials -> UNAUTHENTICATED`, async () => {
      const body = probeBody(method, path);
      const actual: Record<string, number> = {};
      for (const [label, metadata] of Object.entries(BAD_CREDENTIALS)) actual[label] = await call(client, method, path, body, metadata());
      const expected = Object.fromEntries(Object.keys(BAD_CREDENTIALS).map((label) => [label, grpc.status.UNAUTHENTICATED]));
      expect(actual).toEqual(expected);
    });

    it(`${path}: bot, operator and admin tokens`, async () => {
      const body = probeBody(method, path);
      const codes: Record<string, number> = {};
      for (const { role, token } of TOKENS) codes[role] = await call(client, method, path, body, metadataWith(`Bearer ${token}`));
      const actual = Object.fromEntries(Object.entries(codes).map(([role, code]) => [role, outcome(code)]));
      const expected = Object.fromEntries(TOKENS.map(({ role }) => [role, allowed(role, path) ? 'passed auth' : 'PERMISSION_DENIED']));
      expect(actual).toEqual(expected);
    });

    it(`${path}: past auth, the probe fails (if at all) for a reason of its own, never a server fault`, async () => {
      const body = probeBody(method, path);
      const admin = grpc.status[await call(client, method, path, body, metadataWith(`Bearer ${tokenOf('admin')}`))];
      expect(['INTERNAL', 'UNKNOWN', 'UNAVAILABLE']).not.toContain(admin);
    });
  }

  it('accepts the scheme name in any case (RFC 7235), still checking the token', async () => {
    const { method, path } = METHODS.find((m) => m.path === '/crm.v1.QueryService/ListOperators')!;
    const body = probeBody(method, path);
    expect(await call(client, method, path, body, metadataWith(`bearer ${tokenOf('operator')}`))).toBe(grpc.status.OK);
    expect(await call(client, method, path, body, metadataWith(`BEARER ${tokenOf('operator')}`))).toBe(grpc.status.OK);
    expect(await call(client, method, path, body, metadataWith('bearer nope'))).toBe(grpc.status.UNAUTHENTICATED);
  });

  it('refuses a seeded batch of random printable authorization values', async () => {
    const { method, path } = METHODS.find((m) => m.path === '/crm.v1.QueryService/GetOperatorStats')!;
    const body = probeBody(method, path);
    let seed = 0x5eed_a17;
    const next = () => {
      seed = (Math.imul(seed, 1_103_515_245) + 12_345) >>> 0;
      return seed;
    };
    const values = Array.from({ length: 200 }, () => {
      const length = next() % 80;
      const text = Array.from({ length }, () => String.fromCharCode(32 + (next() % 95))).join('');
      return next() % 2 === 0 ? `Bearer ${text.replace(/\s/g, '')}` : text;
    });
    const codes = await Promise.all(values.map((value) => call(client, method, path, body, metadataWith(value))));
    expect(new Set(codes)).toEqual(new Set([grpc.status.UNAUTHENTICATED]));
  });

  it('a refused call writes nothing, even with a valid request', async () => {
    const withToken = (role: RoleToken['role']) => metadataWith(`Bearer ${tokenOf(role)}`);
    const admin = withToken('admin');
    const { operator } = await t.admin.createOperator({ name: unique('auth-op'), maxLoad: 5 }, admin);
    const { source } = await t.admin.createSource({ name: unique('auth-src'), code: unique('auth') }, admin);
    await t.admin.setSourceOperators({ sourceId: source!.id, operators: [{ operatorId: operator!.id, weight: 1 }] }, admin);
    const counts = async () => ({
      operators: (await t.query.listOperators({ pageSize: 500 }, admin)).operators.length,
      sources: (await t.query.listSources({ pageSize: 500 }, admin)).sources.length,
      leads: (await t.query.listLeads({ pageSize: 500 }, admin)).leads.length,
      contacts: (await t.query.listContacts({ pageSize: 500 }, admin)).contacts.length,
      weights: (await t.query.getSource({ source: { case: 'sourceId', value: source!.id } }, admin)).source!.operators.map((o) => o.weight),
      operator: (await t.query.getOperator({ operatorId: operator!.id }, admin)).operator!,
    });
    const before = await counts();
    const register = { source: { case: 'sourceId' as const, value: source!.id }, lead: { externalId: unique('lead') }, message: 'hi' };
    const attempts: [string, () => Promise<unknown>, number][] = [
      ['bot CreateOperator', () => t.admin.createOperator({ name: unique('evil'), maxLoad: 5 }, withToken('bot')), grpc.status.PERMISSION_DENIED],
      ['operator CreateSource', () => t.admin.createSource({ name: unique('evil') }, withToken('operator')), grpc.status.PERMISSION_DENIED],
      ['operator UpdateOperator', () => t.admin.updateOperator({ operatorId: operator!.id, active: false, maxLoad: 0 }, withToken('operator')), grpc.status.PERMISSION_DENIED],
      ['bot SetOperatorWeight', () => t.admin.setOperatorWeight({ sourceId: source!.id, operatorId: operator!.id, weight: 9 }, withToken('bot')), grpc.status.PERMISSION_DENIED],
      ['operator RegisterContact', () => t.distribution.registerContact(register, withToken('operator')), grpc.status.PERMISSION_DENIED],
      ['no token RegisterContact', () => t.distribution.registerContact(register), grpc.status.UNAUTHENTICATED],
      ['unknown token CreateOperator', () => t.admin.createOperator({ name: unique('evil'), maxLoad: 5 }, metadataWith('Bearer nope')), grpc.status.UNAUTHENTICATED],
      ['Basic RemoveSourceOperator', () => t.admin.removeSourceOperator({ sourceId: source!.id, operatorId: operator!.id }, metadataWith(`Basic ${tokenOf('admin')}`)), grpc.status.UNAUTHENTICATED],
    ];
    const actual: Record<string, number> = {};
    for (const [label, attempt] of attempts) actual[label] = await attempt().then(() => grpc.status.OK, (error: grpc.ServiceError) => error.code);
    expect(actual).toEqual(Object.fromEntries(attempts.map(([label, , code]) => [label, code])));
    expect(await counts()).toEqual(before);
  });
});

describe('WatchAssignments streams accepted past auth', () => {
  it('streams of an operator and an admin are accepted and end OK at shutdown; a bot stream is refused', async () => {
    const { t, client } = await startWithTokens();
    const streams: grpc.ClientReadableStream<Buffer>[] = [];
    try {
      const path = '/crm.v1.DistributionService/WatchAssignments';
      const body = Buffer.from(toBinary(WatchAssignmentsRequestSchema, create(WatchAssignmentsRequestSchema)));
      const open = (metadata: grpc.Metadata) => {
        const stream = client.makeServerStreamRequest(path, identity, identity, body, metadata);
        streams.push(stream);
        stream.on('data', () => undefined);
        stream.on('error', () => undefined);
        return new Promise<number>((resolve) => stream.on('status', (status: grpc.StatusObject) => resolve(status.code)));
      };
      const ended = {
        operator: open(metadataWith(`Bearer ${tokenOf('operator')}`)),
        admin: open(metadataWith(`Bearer ${tokenOf('admin')}`)),
        bot: open(metadataWith(`Bearer ${tokenOf('bot')}`)),
        none: open(new grpc.Metadata()),
      };
      // A later call on the same connection: once it is answered, the server has every stream above.
      const barrier = await new Promise<number>((resolve) => {
        client.makeUnaryRequest('/crm.v1.QueryService/GetOperatorStats', identity, identity, Buffer.alloc(0), metadataWith(`Bearer ${tokenOf('operator')}`), (error) =>
          resolve(error ? error.code : grpc.status.OK),
        );
      });
      expect(barrier).toBe(grpc.status.OK);
      // Shutdown ends accepted watch streams cleanly (OK); refused ones ended long before.
      await t.stop();
      const codes = { operator: await ended.operator, admin: await ended.admin, bot: await ended.bot, none: await ended.none };
      expect(codes).toEqual({ operator: grpc.status.OK, admin: grpc.status.OK, bot: grpc.status.PERMISSION_DENIED, none: grpc.status.UNAUTHENTICATED });
    } finally {
      for (const stream of streams) stream.cancel();
      client.close();
      await t.dispose();
    }
  });
});

describe('open standard services with tokens configured', () => {
  let t: TestServer;
  let client: grpc.Client;
  withTokenServer((started) => ({ t, client } = started));

  const check = (service: string, metadata: grpc.Metadata) =>
    new Promise<HealthCheckResponse>((resolve, reject) => {
      client.makeUnaryRequest(
        '/grpc.health.v1.Health/Check',
        (request: { service: string }) => Buffer.from(toBinary(HealthCheckRequestSchema, create(HealthCheckRequestSchema, request))),
        (bytes: Buffer) => fromBinary(HealthCheckResponseSchema, bytes),
        { service },
        metadata,
        (error, response) => (error ? reject(error) : resolve(response!)),
      );
    });

  it('Health/Check answers with no token, an unknown token and a malformed header', async () => {
    for (const metadata of [new grpc.Metadata(), metadataWith('Bearer nope'), metadataWith('Basic x'), metadataWith('Bearer')]) {
      expect((await check('', metadata)).status).toBe(ServingStatus.SERVING);
      expect((await check('crm.v1.AdminService', metadata)).status).toBe(ServingStatus.SERVING);
    }
  });

  it('the same token-less client is refused by the crm services', async () => {
    const error = await t.query.getOperatorStats({}).catch((e: grpc.ServiceError) => e);
    expect(error).toMatchObject({ code: grpc.status.UNAUTHENTICATED });
  });

  for (const [version, service] of [
    ['v1', ServerReflection],
    ['v1alpha', ServerReflectionV1alpha],
  ] as const) {
    it(`reflection ${version} lists the services with no token`, async () => {
      const reflection = grpcClient(service, t.address);
      try {
        const stream = reflection.serverReflectionInfo();
        const answer = new Promise<ServerReflectionResponse>((resolve, reject) => {
          stream.once('data', resolve);
          stream.once('error', reject);
        });
        stream.write({ messageRequest: { case: 'listServices', value: '' } });
        const response = await answer;
        stream.end();
        expect(response.messageResponse.case).toBe('listServicesResponse');
        const names = response.messageResponse.case === 'listServicesResponse' ? response.messageResponse.value.service.map((s) => s.name) : [];
        expect(names).toEqual(expect.arrayContaining(SERVICES.map((s) => s.typeName)));
      } finally {
        reflection.close();
      }
    });
  }
});

describe('CRM_TOKENS and CRM_TOKENS_FILE (configFromEnv)', () => {
  let dir: string;
  beforeAll(() => {
    dir = mkdtempSync(join(tmpdir(), 'crm-tokens-'));
  });
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  const file = (text: string) => {
    const path = join(dir, `${unique('tokens')}.txt`);
    writeFileSync(path, text);
    return path;
  };

  it('reads one pair per line, skipping blank and # lines, trimming spaces and CR', () => {
    const path = file(['# tokens for the CRM', '', 'admin:a-1', '   ', '  bot:b-2  ', '# operator:commented-out', 'operator:o-3\r', ''].join('\n'));
    const config = configFromEnv({ HOST: '0.0.0.0', CRM_TOKENS_FILE: path });
    expect(config.tokens).toEqual([
      { role: 'admin', token: 'a-1' },
      { role: 'bot', token: 'b-2' },
      { role: 'operator', token: 'o-3' },
    ]);
  });

  it('adds the file to CRM_TOKENS', () => {
    const config = configFromEnv({ CRM_TOKENS: 'admin:x1, bot:x2', CRM_TOKENS_FILE: file('operator:x3\n') });
    expect(config.tokens).toEqual([
      { role: 'admin', token: 'x1' },
      { role: 'bot', token: 'x2' },
      { role: 'operator', token: 'x3' },
    ]);
  });

  it('keeps a token that contains a colon whole', () => {
    expect(parseRoleTokens('admin:a:b:c', 'X')).toEqual([{ role: 'admin', token: 'a:b:c' }]);
  });

  it.each([
    ['an unknown role', 'root:topsecret-1\n'],
    ['a role in another case', 'Admin:topsecret-1\n'],
    ['a line without a colon', 'admin\n'],
    ['an empty token', 'bot:\n'],
    ['an empty role', ':topsecret-1\n'],
    ['a bad line among good ones', 'admin:a\nsuperuser:topsecret-1\nbot:b\n'],
  ])('rejects %s, naming the file and not echoing the secret', (_label, text) => {
    expect(() => configFromEnv({ CRM_TOKENS_FILE: file(text) })).toThrow(/CRM_TOKENS_FILE/);
    let message = '';
    try {
      configFromEnv({ CRM_TOKENS_FILE: file(text) });
    } catch (error) {
      message = (error as Error).message;
    }
    expect(message).toMatch(/bot, operator, admin/);
    expect(message).not.toContain('topsecret-1');
  });

  it('rejects a bad CRM_TOKENS entry, naming CRM_TOKENS', () => {
    expect(() => configFromEnv({ CRM_TOKENS: 'admin:ok,guest:nope' })).toThrow(/^CRM_TOKENS: /);
  });

  it.each([
    ['in CRM_TOKENS', { CRM_TOKENS: 'bot:same,admin:same' }],
    ['across CRM_TOKENS and the file', { CRM_TOKENS: 'operator:shared-1', CRM_TOKENS_FILE: 'admin:shared-1\n' }],
  ])('refuses one token given to two roles %s (the last one used to win): the bot would hold admin rights', (_label, env) => {
    const resolved = 'CRM_TOKENS_FILE' in env ? { ...env, CRM_TOKENS_FILE: file(env.CRM_TOKENS_FILE) } : env;
    expect(() => configFromEnv(resolved)).toThrow(/two roles|both roles/);
    let message = '';
    try {
      configFromEnv(resolved);
    } catch (error) {
      message = (error as Error).message;
    }
    expect(message).not.toMatch(/same|shared-1/);
  });

  it('allows a token listed twice under the same role', () => {
    expect(configFromEnv({ CRM_TOKENS: 'bot:b1,bot:b1' }).tokens).toEqual([{ role: 'bot', token: 'b1' }, { role: 'bot', token: 'b1' }]);
  });

  it.each([' , ,', '#admin:x', ',', '\n#bot:y\n'])('refuses a CRM_TOKENS of %j, which is set but holds no token', (value) => {
    expect(() => configFromEnv({ CRM_TOKENS: value })).toThrow(/CRM_TOKENS is set but holds no role:token pair/);
  });

  it.each([
    ['a space inside', 'admin:two words'],
    ['non-ASCII letters', 'admin:пароль'],
    ['a tab inside', 'bot:a\tb'],
    ['an emoji', 'operator:key-🔑'],
  ])('refuses a token with %s: no authorization header could carry it', (_label, value) => {
    expect(() => configFromEnv({ CRM_TOKENS: value })).toThrow(/visible ASCII/);
  });

  it('fails on a CRM_TOKENS_FILE that does not exist', () => {
    expect(() => configFromEnv({ CRM_TOKENS_FILE: join(dir, 'missing.txt') })).toThrow(/ENOENT/);
  });

  it('a file of comments only is no tokens: refused on a non-loopback host, open on loopback', () => {
    const path = file('# nothing here\n\n#admin:x\n');
    expect(() => configFromEnv({ HOST: '0.0.0.0', CRM_TOKENS_FILE: path })).toThrow(/CRM_TOKENS/);
    expect(configFromEnv({ HOST: '127.0.0.1', CRM_TOKENS_FILE: path }).tokens).toEqual([]);
  });

  it.each(['0.0.0.0', '::', '192.168.1.10', '10.0.0.1', 'example.com', '::ffff:127.0.0.1', ''])('refuses HOST=%j with no tokens', (host) => {
    expect(() => configFromEnv({ HOST: host })).toThrow(/CRM_TOKENS/);
  });

  it.each(['127.0.0.1', '127.1.2.3', 'localhost', '::1'])('runs open on loopback HOST=%j with no tokens', (host) => {
    expect(configFromEnv({ HOST: host }).tokens).toEqual([]);
  });

  it('defaults to loopback, open, when HOST is unset', () => {
    const config = configFromEnv({});
    expect(config.host).toBe('127.0.0.1');
    expect(config.tokens).toEqual([]);
  });
});
