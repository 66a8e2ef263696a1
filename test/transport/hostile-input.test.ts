// Hostile input: seeded fuzzing of every RPC with raw bytes, structurally valid
// messages carrying extreme values, oversized messages. Every reply must be a
// proper gRPC status from the contract (never INTERNAL, UNKNOWN or a transport
// failure), the server must stay up, and nothing may be written by a call that
// was refused.
import { create, fromBinary, ScalarType, toBinary, toJson, type DescField, type DescMessage, type DescMethod, type DescService } from '@bufbuild/protobuf';
import { reflect, type ReflectMessage } from '@bufbuild/protobuf/reflect';
import * as grpc from '@grpc/grpc-js';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { AdminService } from '../../gen/crm/v1/admin_pb.js';
import { DistributionService, RegisterContactRequestSchema, RegisterContactResponseSchema, WatchAssignmentsRequestSchema } from '../../gen/crm/v1/distribution_pb.js';
import { QueryService } from '../../gen/crm/v1/query_pb.js';
import { ContactStatus, DistributionStrategy } from '../../gen/crm/v1/resources_pb.js';
import { Health } from '../../gen/grpc/health/v1/health_pb.js';
import { allContacts, unique } from '../support/fixtures.ts';
import { fieldViolations } from '../support/status-details.ts';
import { startTestServer, type TestServer } from '../support/test-server.ts';

const MAX_INT64 = 9_223_372_036_854_775_807n;
const MIN_INT64 = -9_223_372_036_854_775_808n;
const MAX_SAFE = BigInt(Number.MAX_SAFE_INTEGER);
const MiB = 1024 * 1024;

/** The codes the contract lets these services answer with (no tokens configured). */
const CONTRACT_CODES = new Set<number>([grpc.status.OK, grpc.status.INVALID_ARGUMENT, grpc.status.NOT_FOUND, grpc.status.ALREADY_EXISTS, grpc.status.FAILED_PRECONDITION]);
const DEFINED_CODES = new Set<number>(Object.values(grpc.status).filter((v): v is number => typeof v === 'number'));

const identity = (bytes: Buffer) => bytes;

/** mulberry32: a small seeded PRNG, so a failing run can be replayed. */
class Random {
  #state: number;
  constructor(seed: number) {
    this.#state = seed >>> 0;
  }
  next(): number {
    this.#state = (this.#state + 0x6d2b79f5) >>> 0;
    let t = this.#state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4_294_967_296;
  }
  int(below: number): number {
    return Math.floor(this.next() * below);
  }
  chance(p: number): boolean {
    return this.next() < p;
  }
  pick<T>(items: readonly T[]): T {
    return items[this.int(items.length)]!;
  }
  bytes(length: number): Buffer {
    return Buffer.from(Array.from({ length }, () => this.int(256)));
  }
}

// ---------------------------------------------------------------------------
// Raw calls

interface Reply {
  code: number;
  details: string;
  body?: Buffer;
}

function rawUnary(client: grpc.Client, path: string, body: Buffer): Promise<Reply> {
  return new Promise((resolve) => {
    client.makeUnaryRequest(path, identity, identity, body, new grpc.Metadata(), (error, response) =>
      resolve(error ? { code: error.code, details: error.details } : { code: grpc.status.OK, details: '', body: response! }),
    );
  });
}

interface OpenStream {
  stream: grpc.ClientReadableStream<Buffer>;
  ended: Promise<Reply>;
}

function rawStream(client: grpc.Client, path: string, body: Buffer): OpenStream {
  const stream = client.makeServerStreamRequest(path, identity, identity, body, new grpc.Metadata());
  stream.on('data', () => undefined);
  stream.on('error', () => undefined);
  const ended = new Promise<Reply>((resolve) => stream.on('status', (status: grpc.StatusObject) => resolve({ code: status.code, details: status.details })));
  return { stream, ended };
}

// ---------------------------------------------------------------------------
// Row counts, through the Query service

interface Counts {
  operators: number;
  sources: number;
  leads: number;
  contacts: number;
}

async function countAll<T>(page: (pageToken: string) => Promise<{ items: T[]; next: string }>): Promise<number> {
  let total = 0;
  let token = '';
  do {
    const { items, next } = await page(token);
    total += items.length;
    token = next;
  } while (token !== '');
  return total;
}

async function counts(t: TestServer): Promise<Counts> {
  return {
    operators: await countAll(async (pageToken) => {
      const r = await t.query.listOperators({ pageSize: 500, pageToken });
      return { items: r.operators, next: r.nextPageToken };
    }),
    sources: await countAll(async (pageToken) => {
      const r = await t.query.listSources({ pageSize: 500, pageToken });
      return { items: r.sources, next: r.nextPageToken };
    }),
    leads: await countAll(async (pageToken) => {
      const r = await t.query.listLeads({ pageSize: 500, pageToken });
      return { items: r.leads, next: r.nextPageToken };
    }),
    contacts: (await allContacts(t)).length,
  };
}

// ---------------------------------------------------------------------------
// Fuzz bodies

const STRINGS = [
  '',
  ' ',
  ' \t\r\n ',
  '\u00a0\u2003',
  'a',
  'ops',
  "'; DROP TABLE contact; --",
  "' OR '1'='1",
  '😀👩‍💻',
  '\u202Eevil\u202C',
  'שלום',
  '\u0000',
  'nul\u0000inside',
  'x'.repeat(65),
  'y'.repeat(201),
  'z'.repeat(321),
  'm'.repeat(10_001),
  'user@example.com',
  '+7 (999) 123-45-67',
  Buffer.from('after:1').toString('base64url'),
  Buffer.from('after:-1').toString('base64url'),
  Buffer.from('after:1e999').toString('base64url'),
];
const INT64S = [0n, 1n, 2n, 3n, 4n, -1n, MAX_INT64, MIN_INT64, MAX_SAFE, MAX_SAFE + 1n];
const INT32S = [0, 1, 2, 3, -1, 50, 500, 501, 1_000_000, 1_000_001, 2_147_483_647, -2_147_483_648];
const ENUMS = [0, 1, 2, 3, 4, 99, -1, 2_147_483_647, -2_147_483_648];

function randomString(r: Random): string {
  if (r.chance(0.6)) return r.pick(STRINGS);
  const length = r.int(r.chance(0.1) ? 400 : 30);
  const codePoints = Array.from({ length }, () => {
    const plane = r.int(4);
    if (plane === 0) return 32 + r.int(95);
    if (plane === 1) return r.int(0xd800);
    if (plane === 2) return 0xe000 + r.int(0x2000);
    return 0x1_0000 + r.int(0x1_0000);
  });
  return String.fromCodePoint(...codePoints);
}

function randomScalar(type: ScalarType, r: Random): unknown {
  switch (type) {
    case ScalarType.STRING:
      return randomString(r);
    case ScalarType.BOOL:
      return r.chance(0.5);
    case ScalarType.INT64:
    case ScalarType.SINT64:
    case ScalarType.SFIXED64:
      return r.chance(0.8) ? r.pick(INT64S) : BigInt.asIntN(64, BigInt(r.int(2 ** 32)) * BigInt(r.int(2 ** 32)));
    case ScalarType.UINT64:
    case ScalarType.FIXED64:
      return BigInt(r.int(2 ** 32));
    case ScalarType.INT32:
    case ScalarType.SINT32:
    case ScalarType.SFIXED32:
      return r.chance(0.8) ? r.pick(INT32S) : r.int(2 ** 32) | 0;
    case ScalarType.UINT32:
    case ScalarType.FIXED32:
      return r.int(2 ** 32);
    case ScalarType.DOUBLE:
    case ScalarType.FLOAT:
      return r.pick([0, -0, 1.5, Number.NaN, Number.POSITIVE_INFINITY, -1e308]);
    case ScalarType.BYTES:
      return new Uint8Array(r.bytes(r.int(16)));
  }
}

function fieldValue(field: DescField & { fieldKind: 'scalar' | 'enum' | 'message' }, r: Random, depth: number): unknown {
  if (field.fieldKind === 'scalar') return randomScalar(field.scalar, r);
  if (field.fieldKind === 'enum') return r.pick(ENUMS);
  return randomMessage(field.message, r, depth + 1);
}

/** A message of `desc` with a random subset of its fields set to hostile values. */
function randomMessage(desc: DescMessage, r: Random, depth = 0): ReflectMessage {
  const message = reflect(desc);
  for (const field of desc.fields) {
    if (r.chance(0.3)) continue;
    switch (field.fieldKind) {
      case 'scalar':
      case 'enum':
        message.set(field, fieldValue(field, r, depth));
        break;
      case 'message':
        if (depth < 3) message.set(field, fieldValue(field, r, depth));
        break;
      case 'list': {
        const list = message.get(field);
        const n = r.int(4);
        for (let i = 0; i < n; i++) {
          if (field.listKind === 'scalar') list.add(randomScalar(field.scalar, r));
          else if (field.listKind === 'enum') list.add(r.pick(ENUMS));
          else if (depth < 3) list.add(randomMessage(field.message, r, depth + 1));
        }
        break;
      }
      case 'map':
        break;
    }
  }
  return message;
}

/** Bytes shaped like protobuf fields (any tag, any wire type, lengths that may lie). */
function protobufNoise(r: Random): Buffer {
  const parts: Buffer[] = [];
  const fields = r.int(6);
  const varint = (value: number) => {
    const out: number[] = [];
    let v = value >>> 0;
    while (v > 0x7f) {
      out.push((v & 0x7f) | 0x80);
      v >>>= 7;
    }
    out.push(v);
    return Buffer.from(out);
  };
  for (let i = 0; i < fields; i++) {
    const fieldNumber = r.chance(0.8) ? 1 + r.int(8) : r.int(2 ** 29);
    const wireType = r.int(8);
    parts.push(varint((fieldNumber << 3) | wireType));
    switch (wireType) {
      case 0:
        parts.push(r.chance(0.2) ? Buffer.alloc(11, 0xff) : varint(r.int(2 ** 32)));
        break;
      case 1:
        parts.push(r.bytes(8));
        break;
      case 2: {
        const payload = r.chance(0.5) ? Buffer.from(randomString(r)) : r.bytes(r.int(40));
        parts.push(varint(r.chance(0.85) ? payload.length : r.int(2 ** 31)), payload);
        break;
      }
      case 5:
        parts.push(r.bytes(4));
        break;
      default:
        parts.push(r.bytes(r.int(4)));
    }
  }
  return Buffer.concat(parts);
}

function mutate(bytes: Buffer, r: Random): Buffer {
  const copy = Buffer.from(bytes);
  switch (r.int(4)) {
    case 0:
      if (copy.length > 0) {
        const at = r.int(copy.length);
        copy[at] = copy[at]! ^ (1 << r.int(8));
      }
      return copy;
    case 1:
      return copy.subarray(0, r.int(copy.length + 1));
    case 2: {
      const at = r.int(copy.length + 1);
      return Buffer.concat([copy.subarray(0, at), r.bytes(1 + r.int(4)), copy.subarray(at)]);
    }
    default:
      return Buffer.concat([copy, copy]);
  }
}

function fuzzBody(method: DescMethod, r: Random): Buffer {
  const kind = r.int(10);
  if (kind < 3) return r.bytes(r.chance(0.05) ? r.int(4096) : r.int(96));
  if (kind < 5) return protobufNoise(r);
  const valid = Buffer.from(toBinary(method.input, randomMessage(method.input, r).message));
  return kind < 8 ? valid : mutate(valid, r);
}

/** Whether WatchAssignments will accept this body (and so keep the stream open). */
function watchAccepts(body: Buffer): boolean {
  try {
    const request = fromBinary(WatchAssignmentsRequestSchema, body);
    // Beyond 2^53 the filter names no row: NOT_FOUND ends the stream.
    const ok = (id: bigint) => id >= 0n && id <= MAX_SAFE;
    return ok(request.operatorId) && ok(request.sourceId);
  } catch {
    return false;
  }
}

// ---------------------------------------------------------------------------

describe('fuzzing every RPC with random bytes', () => {
  const SEED = 0xc0ffee;
  const CASES_PER_METHOD = 130;
  const SERVICES: DescService[] = [DistributionService, AdminService, QueryService];
  const METHODS = [
    ...SERVICES.flatMap((service) => service.methods.map((method) => ({ method, path: `/${service.typeName}/${method.name}` }))),
    // Health/Watch stays open on any request it can decode: only the unary Health calls are fuzzed.
    ...Health.methods.filter((method) => method.methodKind === 'unary').map((method) => ({ method, path: `/${Health.typeName}/${method.name}` })),
  ];

  interface Result {
    path: string;
    /** Whether the body is a valid encoding of the method's input message. */
    decodable: boolean;
    code: number;
    details: string;
    request: string;
  }

  let t: TestServer;
  let client: grpc.Client;
  let cases: { method: DescMethod; path: string; body: Buffer }[];
  const results: Result[] = [];
  const watchEnds: Result[] = [];
  const expected: Counts = { operators: 0, sources: 0, leads: 0, contacts: 0 };

  /** The body as the server would read it, for failure messages. */
  function describeBody(method: DescMethod, body: Buffer): { decodable: boolean; request: string } {
    try {
      const json = JSON.stringify(toJson(method.input, fromBinary(method.input, body)));
      return { decodable: true, request: json.length > 160 ? `${json.slice(0, 160)}...` : json };
    } catch {
      return { decodable: false, request: `bytes ${body.toString('hex').slice(0, 80)}` };
    }
  }

  beforeAll(async () => {
    t = await startTestServer();
    client = new grpc.Client(t.address, grpc.credentials.createInsecure());
    // Something for ids 1..3 to hit.
    const operators = [];
    for (let i = 0; i < 3; i++) operators.push((await t.admin.createOperator({ name: unique('fuzz-op'), maxLoad: 5 })).operator!.id);
    for (let i = 0; i < 3; i++) {
      const { source } = await t.admin.createSource({ name: unique('fuzz-src'), code: unique('fz') });
      await t.admin.setSourceOperators({ sourceId: source!.id, operators: operators.map((operatorId) => ({ operatorId, weight: 1 })) });
      await t.distribution.registerContact({ source: { case: 'sourceId', value: source!.id }, lead: { externalId: unique('fuzz-lead') }, message: 'seed' });
    }
    Object.assign(expected, await counts(t));

    const r = new Random(SEED);
    cases = METHODS.flatMap(({ method, path }) => Array.from({ length: CASES_PER_METHOD }, () => ({ method, path, body: fuzzBody(method, r) })));
    const openStreams: { ended: Promise<Reply>; cancel(): void; path: string; method: DescMethod; body: Buffer }[] = [];
    for (let i = 0; i < cases.length; i += 64) {
      await Promise.all(
        cases.slice(i, i + 64).map(async ({ method, path, body }) => {
          if (method.methodKind === 'server_streaming') {
            const open = rawStream(client, path, body);
            // An accepted watch stays open with nothing to say: it is cancelled at the end.
            if (path === '/crm.v1.DistributionService/WatchAssignments' && watchAccepts(body)) {
              openStreams.push({ ended: open.ended, cancel: () => open.stream.cancel(), path, method, body });
              return;
            }
            const reply = await open.ended;
            results.push({ path, code: reply.code, details: reply.details, ...describeBody(method, body) });
            return;
          }
          const reply = await rawUnary(client, path, body);
          results.push({ path, code: reply.code, details: reply.details, ...describeBody(method, body) });
          if (reply.code !== grpc.status.OK) return;
          if (path === '/crm.v1.AdminService/CreateOperator') expected.operators += 1;
          if (path === '/crm.v1.AdminService/CreateSource') expected.sources += 1;
          if (path === '/crm.v1.DistributionService/RegisterContact') {
            const response = fromBinary(RegisterContactResponseSchema, reply.body!);
            if (!response.replayed) expected.contacts += 1;
            if (response.leadCreated) expected.leads += 1;
          }
        }),
      );
    }
    // Once a later call on the same connection is answered, the server has seen every
    // stream; only then are the accepted ones left.
    const health = await rawUnary(client, '/grpc.health.v1.Health/Check', Buffer.alloc(0));
    if (health.code !== grpc.status.OK) throw new Error(`health check after the fuzz: ${grpc.status[health.code]} ${health.details}`);
    for (const open of openStreams) open.cancel();
    for (const open of openStreams) {
      const reply = await open.ended;
      watchEnds.push({ path: open.path, code: reply.code, details: reply.details, ...describeBody(open.method, open.body) });
    }
  });
  afterAll(async () => {
    client.close();
    await t.dispose();
  });

  /** Offending replies grouped by method and code, with one example each. */
  function summary(list: readonly Result[]): Record<string, string> {
    const byKey = new Map<string, { count: number; example: string }>();
    for (const { path, code, details, request } of list) {
      const key = `${path} -> ${grpc.status[code] ?? code}`;
      const entry = byKey.get(key) ?? { count: 0, example: `"${decodeURIComponent(details)}" for ${request}` };
      entry.count += 1;
      byKey.set(key, entry);
    }
    return Object.fromEntries([...byKey].map(([key, { count, example }]) => [key, `${count}x, e.g. ${example}`]));
  }

  it(`sends ${CASES_PER_METHOD} seeded bodies to each RPC (>= 2,000 in all), many of them past decoding`, () => {
    expect(cases.length).toBeGreaterThanOrEqual(2_000);
    expect(results.length + watchEnds.length).toBe(cases.length);
    const decoded = results.filter((x) => x.decodable);
    expect(decoded.length).toBeGreaterThan(1_000);
    // Validation, lookups and writes were all reached, not only the parser.
    expect(decoded.filter((x) => x.code === grpc.status.INVALID_ARGUMENT).length).toBeGreaterThan(300);
    expect(decoded.filter((x) => x.code === grpc.status.OK).length).toBeGreaterThan(100);
    expect(decoded.filter((x) => x.code === grpc.status.NOT_FOUND).length).toBeGreaterThan(50);
  });

  it('every reply is a defined gRPC status, never a transport failure', () => {
    expect(summary([...results, ...watchEnds].filter((x) => !DEFINED_CODES.has(x.code) || x.code === grpc.status.UNAVAILABLE))).toEqual({});
  });

  it('bodies that are not a valid message are refused with INVALID_ARGUMENT (not INTERNAL)', () => {
    expect(summary(results.filter((x) => !x.decodable && x.code !== grpc.status.INVALID_ARGUMENT))).toEqual({});
  });

  it('decodable bodies get only codes the contract names: never INTERNAL or UNKNOWN', () => {
    expect(summary(results.filter((x) => x.decodable && !CONTRACT_CODES.has(x.code)))).toEqual({});
  });

  it('watch streams with an acceptable filter stayed open until the client left', () => {
    expect(watchEnds.length).toBeGreaterThan(0);
    expect(summary(watchEnds.filter((x) => x.code !== grpc.status.CANCELLED))).toEqual({});
  });

  it('the server is still up, and rows changed exactly by the calls it acknowledged', async () => {
    expect(await counts(t)).toEqual(expected);
    const { operator } = await t.admin.createOperator({ name: unique('after-fuzz'), maxLoad: 1 });
    expect((await t.query.getOperator({ operatorId: operator!.id })).operator?.maxLoad).toBe(1);
  });
});

describe('structurally valid hostile values', () => {
  let t: TestServer;
  let operatorId: bigint;
  let sourceId: bigint;
  let contactId: bigint;
  const sourceCode = 'hostile-src';
  beforeAll(async () => {
    t = await startTestServer();
    operatorId = (await t.admin.createOperator({ name: 'Hostile Alice', maxLoad: 10 })).operator!.id;
    sourceId = (await t.admin.createSource({ name: 'Hostile Source', code: sourceCode, description: 'd' })).source!.id;
    await t.admin.setSourceOperators({ sourceId, operators: [{ operatorId, weight: 3 }] });
    contactId = (await t.distribution.registerContact({ source: { case: 'sourceId', value: sourceId }, lead: { externalId: 'hostile-lead-1' }, message: 'hi' })).contact!.id;
  });
  afterAll(() => t.dispose());

  type Outcome = { code: number; fields: string[] };
  const outcome = (call: Promise<unknown>): Promise<Outcome> =>
    call.then(
      () => ({ code: grpc.status.OK, fields: [] }),
      (error: grpc.ServiceError) => ({ code: error.code, fields: fieldViolations(error).map((v) => v.field) }),
    );
  const invalid = (...fields: string[]): Outcome => ({ code: grpc.status.INVALID_ARGUMENT, fields });
  const notFound: Outcome = { code: grpc.status.NOT_FOUND, fields: [] };
  const huge = 'h'.repeat(500 * 1024);
  const src = () => ({ case: 'sourceId' as const, value: sourceId });
  const lead = (externalId = unique('lead')) => ({ externalId });

  it('refuses each one with the right code and field, and writes nothing', async () => {
    const cases: [string, () => Promise<unknown>, Outcome][] = [
      // Strings: empty, blank, beyond the documented limits, ~500 KB.
      ['operator name empty', () => t.admin.createOperator({ name: '', maxLoad: 1 }), invalid('name')],
      ['operator name whitespace', () => t.admin.createOperator({ name: ' \t\r\n ', maxLoad: 1 }), invalid('name')],
      ['operator name NBSP/em space only', () => t.admin.createOperator({ name: '\u00a0\u2003', maxLoad: 1 }), invalid('name')],
      ['operator name 201 chars', () => t.admin.createOperator({ name: 'n'.repeat(201), maxLoad: 1 }), invalid('name')],
      ['operator name 201 emoji', () => t.admin.createOperator({ name: '😀'.repeat(201), maxLoad: 1 }), invalid('name')],
      ['operator name 500 KB', () => t.admin.createOperator({ name: huge, maxLoad: 1 }), invalid('name')],
      ['rename operator to blank', () => t.admin.updateOperator({ operatorId, name: '   ' }), invalid('name')],
      ['source name 500 KB', () => t.admin.createSource({ name: huge }), invalid('name')],
      ['source code 65 chars', () => t.admin.createSource({ name: unique('s'), code: 'c'.repeat(65) }), invalid('code')],
      ['source description 2001 chars', () => t.admin.createSource({ name: unique('s'), description: 'd'.repeat(2_001) }), invalid('description')],
      ['source description 500 KB', () => t.admin.updateSource({ sourceId, description: huge }), invalid('description')],
      ['message 10001 chars', () => t.distribution.registerContact({ source: src(), lead: lead(), message: 'm'.repeat(10_001) }), invalid('message')],
      ['message 500 KB', () => t.distribution.registerContact({ source: src(), lead: lead(), message: huge }), invalid('message')],
      ['request_id 201 chars', () => t.distribution.registerContact({ source: src(), lead: lead(), requestId: 'r'.repeat(201) }), invalid('request_id')],
      ['external_id 201 chars', () => t.distribution.registerContact({ source: src(), lead: { externalId: 'e'.repeat(201) } }), invalid('lead.external_id')],
      ['external_id 500 KB', () => t.distribution.registerContact({ source: src(), lead: { externalId: huge } }), invalid('lead.external_id')],
      ['lead name 500 KB', () => t.distribution.registerContact({ source: src(), lead: { externalId: unique('l'), name: huge } }), invalid('lead.name')],
      ['phone 33 chars', () => t.distribution.registerContact({ source: src(), lead: { phone: '1'.repeat(33) } }), invalid('lead.phone')],
      ['phone without digits', () => t.distribution.registerContact({ source: src(), lead: { externalId: unique('l'), phone: "'; DROP TABLE lead; --" } }), invalid('lead.phone')],
      ['only a phone, without digits', () => t.distribution.registerContact({ source: src(), lead: { phone: '() - +' } }), invalid('lead.phone')],
      ['email without @', () => t.distribution.registerContact({ source: src(), lead: { email: 'not-an-email' } }), invalid('lead.email')],
      ['email with spaces (SQL)', () => t.distribution.registerContact({ source: src(), lead: { email: "' OR 1=1 --@x" } }), invalid('lead.email')],
      ['email 321 chars', () => t.distribution.registerContact({ source: src(), lead: { email: `${'a'.repeat(310)}@example.com` } }), invalid('lead.email')],
      ['lead of whitespace only', () => t.distribution.registerContact({ source: src(), lead: { externalId: '  ', phone: ' ', email: '\t' } }), invalid('lead')],
      ['lead missing', () => t.distribution.registerContact({ source: src(), message: 'x' }), invalid('lead')],
      ['source missing', () => t.distribution.registerContact({ lead: lead() }), invalid('source')],
      ['source code empty', () => t.distribution.registerContact({ source: { case: 'sourceCode', value: '' }, lead: lead() }), invalid('source_code')],
      ['source code blank', () => t.distribution.registerContact({ source: { case: 'sourceCode', value: '  ' }, lead: lead() }), invalid('source_code')],
      // Ids: 0, negative, beyond int53, max and min int64.
      ...(
        [
          ['0', 0n],
          ['-1', -1n],
          ['max int64', MAX_INT64],
          ['min int64', MIN_INT64],
          ['2^53', MAX_SAFE + 1n],
        ] as const
      ).flatMap(([label, id]): [string, () => Promise<unknown>, Outcome][] => {
        // A positive int64 is a valid id, even beyond 2^53: no row has it, so NOT_FOUND (never another row's).
        const refused = (field: string) => (id > 0n ? notFound : invalid(field));
        return [
          [`register source_id ${label}`, () => t.distribution.registerContact({ source: { case: 'sourceId', value: id }, lead: lead() }), refused('source_id')],
          [`update contact_id ${label}`, () => t.distribution.updateContactStatus({ contactId: id, status: ContactStatus.CLOSED }), refused('contact_id')],
          [`update operator_id ${label}`, () => t.admin.updateOperator({ operatorId: id, active: false }), refused('operator_id')],
          [`update source_id ${label}`, () => t.admin.updateSource({ sourceId: id, name: unique('s') }), refused('source_id')],
          [`set weights source_id ${label}`, () => t.admin.setSourceOperators({ sourceId: id, operators: [] }), refused('source_id')],
          [`set weights operator_id ${label}`, () => t.admin.setSourceOperators({ sourceId, operators: [{ operatorId: id, weight: 1 }] }), refused('operators[0].operator_id')],
          [`set weight operator_id ${label}`, () => t.admin.setOperatorWeight({ sourceId, operatorId: id, weight: 1 }), refused('operator_id')],
          [`remove operator_id ${label}`, () => t.admin.removeSourceOperator({ sourceId, operatorId: id }), refused('operator_id')],
          [`get operator ${label}`, () => t.query.getOperator({ operatorId: id }), refused('operator_id')],
          [`get source ${label}`, () => t.query.getSource({ source: { case: 'sourceId', value: id } }), refused('source_id')],
          [`get lead ${label}`, () => t.query.getLead({ lead: { case: 'leadId', value: id } }), refused('lead_id')],
          [`distribution stats ${label}`, () => t.query.getDistributionStats({ sourceId: id }), refused('source_id')],
        ];
      }),
      ['list contacts lead_id -1', () => t.query.listContacts({ leadId: -1n }), invalid('lead_id')],
      ['list contacts operator_id max int64', () => t.query.listContacts({ operatorId: MAX_INT64 }), notFound],
      // Valid ids that name nothing.
      ['get operator 2^53-1', () => t.query.getOperator({ operatorId: MAX_SAFE }), notFound],
      ['update contact 2^53-1', () => t.distribution.updateContactStatus({ contactId: MAX_SAFE, status: ContactStatus.CLOSED }), notFound],
      ['register on source 2^53-1', () => t.distribution.registerContact({ source: { case: 'sourceId', value: MAX_SAFE }, lead: lead() }), notFound],
      ['set weight of unknown operator', () => t.admin.setOperatorWeight({ sourceId, operatorId: MAX_SAFE, weight: 1 }), notFound],
      // Numbers out of range.
      ['max_load -1', () => t.admin.createOperator({ name: unique('o'), maxLoad: -1 }), invalid('max_load')],
      ['max_load int32 max', () => t.admin.createOperator({ name: unique('o'), maxLoad: 2_147_483_647 }), invalid('max_load')],
      ['max_load int32 min', () => t.admin.updateOperator({ operatorId, maxLoad: -2_147_483_648 }), invalid('max_load')],
      ['weight -1', () => t.admin.setOperatorWeight({ sourceId, operatorId, weight: -1 }), invalid('weight')],
      ['weight 1000001', () => t.admin.setSourceOperators({ sourceId, operators: [{ operatorId, weight: 1_000_001 }] }), invalid('operators[0].weight')],
      ['operator listed twice', () => t.admin.setSourceOperators({ sourceId, operators: [{ operatorId, weight: 1 }, { operatorId, weight: 2 }] }), invalid('operators[1].operator_id')],
      // Enum numbers no one defined.
      ['status 99', () => t.distribution.updateContactStatus({ contactId, status: 99 as ContactStatus }), invalid('status')],
      ['status -1', () => t.distribution.updateContactStatus({ contactId, status: -1 as ContactStatus }), invalid('status')],
      ['status UNSPECIFIED', () => t.distribution.updateContactStatus({ contactId, status: ContactStatus.UNSPECIFIED }), invalid('status')],
      ['strategy 99 on create', () => t.admin.createSource({ name: unique('s'), strategy: 99 as DistributionStrategy }), invalid('strategy')],
      ['strategy -7 on update', () => t.admin.updateSource({ sourceId, strategy: -7 as DistributionStrategy }), invalid('strategy')],
      ['list contacts status 99', () => t.query.listContacts({ status: 99 as ContactStatus }), invalid('status')],
      // Paging.
      ['page_size -1', () => t.query.listOperators({ pageSize: -1 }), invalid('page_size')],
      ['page_size 501', () => t.query.listSources({ pageSize: 501 }), invalid('page_size')],
      ['page_size int32 max', () => t.query.listLeads({ pageSize: 2_147_483_647 }), invalid('page_size')],
      ['page_token garbage', () => t.query.listOperators({ pageToken: "'; DROP TABLE operator; --" }), invalid('page_token')],
      ['page_token after:-1', () => t.query.listContacts({ pageToken: Buffer.from('after:-1').toString('base64url') }), invalid('page_token')],
      ['page_token after:1e999', () => t.query.listLeads({ pageToken: Buffer.from('after:1e999').toString('base64url') }), invalid('page_token')],
      ['page_token after:1 OR 1=1', () => t.query.listLeads({ pageToken: Buffer.from('after:1 OR 1=1').toString('base64url') }), invalid('page_token')],
      ['page_token 500 KB', () => t.query.listSources({ pageToken: huge }), invalid('page_token')],
      // SQL-looking lookups find nothing rather than everything.
      ['source code SQL', () => t.distribution.registerContact({ source: { case: 'sourceCode', value: "'; DROP TABLE contact; --" }, lead: lead() }), notFound],
      ['get source by code OR 1=1', () => t.query.getSource({ source: { case: 'sourceCode', value: "' OR '1'='1" } }), notFound],
      ['get lead by external_id OR 1=1', () => t.query.getLead({ lead: { case: 'identity', value: { externalId: "x' OR 'x'='x" } } }), notFound],
      ['get lead by email OR 1=1', () => t.query.getLead({ lead: { case: 'identity', value: { email: "x'or'1'='1@x" } } }), notFound],
      // State rules.
      ['reopen nothing: unknown contact', () => t.distribution.updateContactStatus({ contactId: contactId + 1_000n, status: ContactStatus.NEW }), notFound],
    ];

    const before = await counts(t);
    const sourceBefore = (await t.query.getSource({ source: { case: 'sourceId', value: sourceId } })).source;
    const operatorBefore = (await t.query.getOperator({ operatorId })).operator;
    const contactBefore = (await t.query.listContacts({ sourceId })).contacts;

    const actual: Record<string, Outcome> = {};
    for (const [label, call] of cases) actual[label] = await outcome(call());
    expect(actual).toEqual(Object.fromEntries(cases.map(([label, , expected]) => [label, expected])));

    expect(await counts(t)).toEqual(before);
    expect((await t.query.getSource({ source: { case: 'sourceId', value: sourceId } })).source).toEqual(sourceBefore);
    expect((await t.query.getOperator({ operatorId })).operator).toEqual(operatorBefore);
    expect((await t.query.listContacts({ sourceId })).contacts).toEqual(contactBefore);
  });

  it('WatchAssignments refuses a bad filter: INVALID_ARGUMENT naming the field, NOT_FOUND for an id beyond any row', async () => {
    const ends = async (request: { operatorId?: bigint; sourceId?: bigint }) => {
      const stream = t.distribution.watchAssignments(request);
      stream.on('data', () => undefined);
      return new Promise<Outcome>((resolve) => {
        stream.on('error', (error: grpc.ServiceError) => resolve({ code: error.code, fields: fieldViolations(error).map((v) => v.field) }));
        stream.on('status', (status: grpc.StatusObject) => {
          if (status.code === grpc.status.OK) resolve({ code: grpc.status.OK, fields: [] });
        });
      });
    };
    const actual = {
      'operator_id -1': await ends({ operatorId: -1n }),
      'source_id max int64': await ends({ sourceId: MAX_INT64 }),
      'operator_id min int64': await ends({ operatorId: MIN_INT64 }),
    };
    expect(actual).toEqual({
      'operator_id -1': invalid('operator_id'),
      'source_id max int64': notFound,
      'operator_id min int64': invalid('operator_id'),
    });
  });

  it('stores unicode, RTL, line breaks and SQL-looking text verbatim, and refuses other control characters', async () => {
    const before = await counts(t);
    const names = [
      '👩‍💻 Ольга עִברִית',
      '\u202Eevil\u202C right-to-left',
      "Robert'); DROP TABLE operator;--",
      "\\' OR 1=1 --",
      'q? $1 :name @p %s',
      'line\r\nbreak\ttab',
      '😀'.repeat(200),
    ];
    // Other control characters are refused (README, Limits), naming the field.
    for (const name of ['sub\u001achar', 'back\u0008space', 'del\u007f']) {
      const error = await t.admin.createOperator({ name, maxLoad: 1 }).catch((e: grpc.ServiceError) => e);
      expect(error).toMatchObject({ code: grpc.status.INVALID_ARGUMENT });
      expect(fieldViolations(error as grpc.ServiceError).map((v) => v.field)).toEqual(['name']);
    }
    const stored: Record<string, string | undefined> = {};
    for (const name of names) {
      const { operator } = await t.admin.createOperator({ name, maxLoad: 1 });
      stored[name] = (await t.query.getOperator({ operatorId: operator!.id })).operator?.name;
    }
    expect(stored).toEqual(Object.fromEntries(names.map((n) => [n, n])));

    const sqlSourceName = "x'); DROP TABLE source; --";
    const sqlCode = "' OR '1'='1";
    const { source } = await t.admin.createSource({ name: sqlSourceName, code: sqlCode, description: "'; DELETE FROM contact; --" });
    const byCode = (await t.query.getSource({ source: { case: 'sourceCode', value: sqlCode } })).source!;
    expect({ id: byCode.id, name: byCode.name, code: byCode.code, description: byCode.description }).toEqual({
      id: source!.id,
      name: sqlSourceName,
      code: sqlCode,
      description: "'; DELETE FROM contact; --",
    });

    const message = "'; DROP TABLE contact; --";
    const externalId = "x' OR 'x'='x";
    const registered = await t.distribution.registerContact({
      source: { case: 'sourceCode', value: sqlCode },
      lead: { externalId, name: 'Zoë «ﷺ» 👩‍👩‍👧' },
      message,
      requestId: "1; UPDATE contact SET status='CLOSED'",
    });
    expect(registered.contact?.message).toBe(message);
    const found = (await t.query.getLead({ lead: { case: 'identity', value: { externalId } } })).lead!;
    expect({ externalId: found.externalId, name: found.name, messages: found.contacts.map((c) => c.message) }).toEqual({
      externalId,
      name: 'Zoë «ﷺ» 👩‍👩‍👧',
      messages: [message],
    });
    const listed = (await t.query.listContacts({ sourceId: source!.id })).contacts;
    expect(listed.map((c) => [c.message, c.requestId])).toEqual([[message, "1; UPDATE contact SET status='CLOSED'"]]);

    // Every table is still there and counted as expected.
    expect(await counts(t)).toEqual({ operators: before.operators + names.length, sources: before.sources + 1, leads: before.leads + 1, contacts: before.contacts + 1 });
  });

  it('NUL characters are refused as INVALID_ARGUMENT naming the field, or stored verbatim: never INTERNAL', async () => {
    const before = await counts(t);
    const nul = (prefix: string) => `${prefix}\u0000${unique('after')}`;
    interface Attempt {
      label: string;
      /** The field a refusal must name. */
      field: string;
      value: string;
      /** Which table an accepted call adds a row to. */
      adds: (keyof Counts)[];
      call(): Promise<unknown>;
      /** Reads the value back after an accepted call. */
      stored(response: unknown): Promise<string | undefined>;
    }
    type Registered = { contact: { message: string; requestId: string; lead: { id: bigint } } };
    const registration = (key: 'message' | 'externalId' | 'name' | 'requestId', field: string): Attempt => {
      const value = nul(key);
      return {
        label: `RegisterContact ${field}`,
        field,
        value,
        adds: ['leads', 'contacts'],
        call: () =>
          t.distribution.registerContact({
            source: src(),
            lead: { externalId: key === 'externalId' ? value : unique('nul-lead'), name: key === 'name' ? value : '' },
            message: key === 'message' ? value : 'm',
            requestId: key === 'requestId' ? value : '',
          }),
        async stored(response) {
          const { contact } = response as Registered;
          const found = (await t.query.getLead({ lead: { case: 'leadId', value: contact.lead.id } })).lead!;
          return { message: contact.message, requestId: contact.requestId, externalId: found.externalId, name: found.name }[key];
        },
      };
    };
    const operatorName = nul('operator');
    const description = nul('source');
    const attempts: Attempt[] = [
      {
        label: 'CreateOperator name',
        field: 'name',
        value: operatorName,
        adds: ['operators'],
        call: () => t.admin.createOperator({ name: operatorName, maxLoad: 1 }),
        stored: async (response) => (await t.query.getOperator({ operatorId: (response as { operator: { id: bigint } }).operator.id })).operator?.name,
      },
      {
        label: 'CreateSource description',
        field: 'description',
        value: description,
        adds: ['sources'],
        call: () => t.admin.createSource({ name: unique('nul-src'), description }),
        stored: async (response) =>
          (await t.query.getSource({ source: { case: 'sourceId', value: (response as { source: { id: bigint } }).source.id } })).source?.description,
      },
      registration('message', 'message'),
      registration('externalId', 'lead.external_id'),
      registration('name', 'lead.name'),
      registration('requestId', 'request_id'),
    ];
    const lookups: [string, () => Promise<unknown>][] = [
      ['GetSource by code', () => t.query.getSource({ source: { case: 'sourceCode', value: nul('code') } })],
      ['GetLead by external_id', () => t.query.getLead({ lead: { case: 'identity', value: { externalId: nul('lead') } } })],
      ['RegisterContact by source code', () => t.distribution.registerContact({ source: { case: 'sourceCode', value: nul('code') }, lead: lead() })],
    ];

    const actual: Record<string, string> = {};
    const expected: Record<string, string> = {};
    const after = { ...before };
    for (const attempt of attempts) {
      const response = await attempt.call().catch((error: grpc.ServiceError) => error);
      if (response instanceof Error) {
        const error = response as grpc.ServiceError;
        actual[attempt.label] = `${grpc.status[error.code]} ${JSON.stringify(fieldViolations(error).map((v) => v.field))}`;
        expected[attempt.label] = `INVALID_ARGUMENT ${JSON.stringify([attempt.field])}`;
      } else {
        actual[attempt.label] = `OK, stored ${JSON.stringify(await attempt.stored(response))}`;
        expected[attempt.label] = `OK, stored ${JSON.stringify(attempt.value)}`;
        for (const table of attempt.adds) after[table] += 1;
      }
    }
    for (const [label, call] of lookups) {
      actual[label] = await call().then(
        () => 'OK',
        (error: grpc.ServiceError) => grpc.status[error.code]!,
      );
      expected[label] = ['INVALID_ARGUMENT', 'NOT_FOUND'].includes(actual[label]!) ? actual[label]! : 'INVALID_ARGUMENT or NOT_FOUND';
    }
    expect(actual).toEqual(expected);
    expect(await counts(t)).toEqual(after);
  });

  it('a message of exactly 10,000 characters (and 10,000 emoji) is accepted', async () => {
    const plain = await t.distribution.registerContact({ source: src(), lead: lead(), message: 'q'.repeat(10_000) });
    expect(plain.contact?.message).toHaveLength(10_000);
    const emoji = await t.distribution.registerContact({ source: src(), lead: lead(), message: '😀'.repeat(10_000) });
    expect(emoji.contact?.message).toBe('😀'.repeat(10_000));
  });
});

describe('oversized messages', () => {
  /** RegisterContactRequest with only `message` set, serialised to exactly `size` bytes. */
  function registerBodyOfSize(size: number): Buffer {
    // Tag (1 byte) + length varint (3 bytes below 2 MiB) + payload.
    const body = Buffer.from(toBinary(RegisterContactRequestSchema, create(RegisterContactRequestSchema, { message: 'x'.repeat(size - 4) })));
    expect(body.length).toBe(size);
    return body;
  }

  it('the 1 MiB default: above it RESOURCE_EXHAUSTED, at it decoded; the server stays up and nothing is written', async () => {
    const t = await startTestServer();
    const client = new grpc.Client(t.address, grpc.credentials.createInsecure());
    try {
      const { operator } = await t.admin.createOperator({ name: 'Big Bob', maxLoad: 5 });
      const { source } = await t.admin.createSource({ name: 'Big Source', code: 'big' });
      await t.admin.setSourceOperators({ sourceId: source!.id, operators: [{ operatorId: operator!.id, weight: 1 }] });
      const before = await counts(t);

      const twoMiB = 'x'.repeat(2 * MiB);
      const typed = {
        message: await t.distribution.registerContact({ source: { case: 'sourceId', value: source!.id }, lead: { externalId: 'big-lead' }, message: twoMiB }).catch((e: grpc.ServiceError) => e.code),
        name: await t.admin.createOperator({ name: twoMiB, maxLoad: 1 }).catch((e: grpc.ServiceError) => e.code),
        pageToken: await t.query.listOperators({ pageToken: twoMiB }).catch((e: grpc.ServiceError) => e.code),
      };
      expect(typed).toEqual({ message: grpc.status.RESOURCE_EXHAUSTED, name: grpc.status.RESOURCE_EXHAUSTED, pageToken: grpc.status.RESOURCE_EXHAUSTED });

      const path = '/crm.v1.DistributionService/RegisterContact';
      const raw = {
        atLimit: (await rawUnary(client, path, registerBodyOfSize(MiB))).code,
        aboveLimit: (await rawUnary(client, path, registerBodyOfSize(MiB + 1))).code,
        garbage3MiB: (await rawUnary(client, '/crm.v1.QueryService/GetOperator', new Random(7).bytes(3 * MiB))).code,
      };
      // At the limit the message is read and refused by validation (message > 10,000 characters).
      expect(raw).toEqual({ atLimit: grpc.status.INVALID_ARGUMENT, aboveLimit: grpc.status.RESOURCE_EXHAUSTED, garbage3MiB: grpc.status.RESOURCE_EXHAUSTED });

      expect(await counts(t)).toEqual(before);
      const ok = await t.distribution.registerContact({ source: { case: 'sourceId', value: source!.id }, lead: { externalId: 'small-lead' }, message: 'small' });
      expect(ok.contact?.operator?.id).toBe(operator!.id);
    } finally {
      client.close();
      await t.dispose();
    }
  });

  it('a smaller maxMessageBytes: a message above it is refused, one below it passes', async () => {
    const t = await startTestServer({ config: { maxMessageBytes: 4096 } });
    try {
      const { source } = await t.admin.createSource({ name: 'Small Source', code: 'small' });
      const before = await counts(t);
      const above = await t.distribution
        .registerContact({ source: { case: 'sourceId', value: source!.id }, lead: { externalId: 'lead-above' }, message: 'a'.repeat(5_000) })
        .catch((e: grpc.ServiceError) => e);
      expect(above).toMatchObject({ code: grpc.status.RESOURCE_EXHAUSTED });
      expect(await counts(t)).toEqual(before);

      const below = await t.distribution.registerContact({ source: { case: 'sourceId', value: source!.id }, lead: { externalId: 'lead-below' }, message: 'b'.repeat(3_000) });
      expect(below.contact?.message).toBe('b'.repeat(3_000));
      expect(await counts(t)).toEqual({ ...before, leads: before.leads + 1, contacts: before.contacts + 1 });
    } finally {
      await t.dispose();
    }
  });
});
