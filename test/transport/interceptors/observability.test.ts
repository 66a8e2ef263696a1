// Operations: the Prometheus endpoint on its own port reports calls, durations,
// registrations, the queue and operator loads with the right values; the real
// entry point logs one JSON object per line, one "call" line per RPC (at debug
// when it succeeded, so the default info level shows only failures), and never
// a bearer token.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Metadata, status } from '@grpc/grpc-js';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { AdminService } from '../../../gen/crm/v1/admin_pb.js';
import { DistributionService } from '../../../gen/crm/v1/distribution_pb.js';
import { QueryService } from '../../../gen/crm/v1/query_pb.js';
import { AssignmentOutcome } from '../../../gen/crm/v1/resources_pb.js';
import { spawnServer, type ServerProcess } from '../../support/child-server.ts';
import { failure } from '../../support/expect-status.ts';
import { allContacts, createSource, register, unique } from '../../support/fixtures.ts';
import { grpcClient } from '../../support/grpc-client.ts';
import { startTestServer, type TestServer } from '../../support/test-server.ts';

interface Sample {
  name: string;
  labels: Record<string, string>;
  value: number;
}

/** Parses the Prometheus text exposition format (samples only). */
function parseMetrics(text: string): Sample[] {
  const samples: Sample[] = [];
  for (const line of text.split('\n')) {
    if (line === '' || line.startsWith('#')) continue;
    const match = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})?\s+(\S+)$/.exec(line);
    expect(match, `metrics line ${JSON.stringify(line)}`).not.toBeNull();
    const labels: Record<string, string> = {};
    for (const [, key, raw] of match![2]?.matchAll(/([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"/g) ?? []) {
      labels[key!] = raw!.replace(/\\n/g, '\n').replace(/\\"/g, '"').replace(/\\\\/g, '\\');
    }
    samples.push({ name: match![1]!, labels, value: Number(match![3]!) });
  }
  return samples;
}

/** Samples of `name` whose labels include `labels`. */
function select(samples: Sample[], name: string, labels: Record<string, string> = {}): Sample[] {
  return samples.filter((s) => s.name === name && Object.entries(labels).every(([k, v]) => s.labels[k] === v));
}

/** The value of the one sample of `name` with exactly these labels (besides none other than `labels`). */
function value(samples: Sample[], name: string, labels: Record<string, string> = {}): number | undefined {
  const found = samples.filter((s) => s.name === name && Object.keys(s.labels).length === Object.keys(labels).length && Object.entries(labels).every(([k, v]) => s.labels[k] === v));
  expect(found.length, `${name}${JSON.stringify(labels)} appears at most once`).toBeLessThanOrEqual(1);
  return found[0]?.value;
}

async function scrape(port: number): Promise<Sample[]> {
  const response = await fetch(`http://127.0.0.1:${port}/metrics`);
  expect(response.status).toBe(200);
  expect(response.headers.get('content-type')).toMatch(/^text\/plain/);
  return parseMetrics(await response.text());
}

describe('Prometheus metrics', () => {
  let t: TestServer;
  beforeAll(async () => {
    t = await startTestServer();
  });
  afterAll(() => t.dispose());

  it('counts calls by method and code, times them, counts registrations and reads queue and loads live', async () => {
    expect(t.server.metricsPort).toEqual(expect.any(Number));
    const metricsPort = t.server.metricsPort!;
    // Nothing called yet: no call series at all.
    const before = await scrape(metricsPort);
    expect(select(before, 'crm_rpc_calls_total')).toEqual([]);
    expect(value(before, 'crm_queue_length')).toBe(0);

    // 2 x CreateOperator ok, 1 x CreateOperator invalid_argument.
    const a = (await t.admin.createOperator({ name: unique('metrics-a'), maxLoad: 1 })).operator!;
    const b = (await t.admin.createOperator({ name: unique('metrics-b'), maxLoad: 5 })).operator!;
    expect((await failure(t.admin.createOperator({ name: ' ', maxLoad: -1 }))).code).toBe(status.INVALID_ARGUMENT);
    // 3 x CreateSource ok, 2 x SetSourceOperators ok (createSource does both).
    const toA = await createSource(t, [[a.id, 1]]);
    const toB = await createSource(t, [[b.id, 1]]);
    const empty = (await t.admin.createSource({ name: unique('metrics-empty') })).source!.id;

    // RegisterContact: 8 calls, 7 ok, 1 not_found; 6 registrations counted (the replay is not).
    expect((await register(t, toA)).outcome).toBe(AssignmentOutcome.ASSIGNED);
    expect((await register(t, toA)).outcome).toBe(AssignmentOutcome.QUEUED_NO_CAPACITY);
    const lead = unique('lead');
    expect((await register(t, toB, lead)).outcome).toBe(AssignmentOutcome.ASSIGNED);
    expect((await register(t, toB, lead)).outcome).toBe(AssignmentOutcome.ASSIGNED_AFFINITY);
    const original = await register(t, toB, unique('lead'), { requestId: 'metrics-once' });
    expect(original).toMatchObject({ outcome: AssignmentOutcome.ASSIGNED, replayed: false });
    const replay = await register(t, toB, unique('lead'), { requestId: 'metrics-once' });
    expect(replay).toMatchObject({ replayed: true, contact: { id: original.contact!.id } });
    expect((await register(t, empty)).outcome).toBe(AssignmentOutcome.QUEUED_NO_OPERATORS);
    expect((await failure(register(t, 987654321n))).code).toBe(status.NOT_FOUND);

    // GetOperator: 1 ok, 2 not_found.
    expect((await t.query.getOperator({ operatorId: b.id })).operator!.openLoad).toBe(3);
    expect((await failure(t.query.getOperator({ operatorId: 987654321n }))).code).toBe(status.NOT_FOUND);
    expect((await failure(t.query.getOperator({ operatorId: 987654322n }))).code).toBe(status.NOT_FOUND);
    // The real queue, read over the API (1 x ListContacts ok).
    const queued = await allContacts(t, { queuedOnly: true });
    expect(queued).toHaveLength(2);

    const samples = await scrape(metricsPort);
    const calls = (method: string, code: string) => value(samples, 'crm_rpc_calls_total', { method, code });
    expect(calls('crm.v1.AdminService/CreateOperator', 'ok')).toBe(2);
    expect(calls('crm.v1.AdminService/CreateOperator', 'invalid_argument')).toBe(1);
    expect(calls('crm.v1.AdminService/CreateSource', 'ok')).toBe(3);
    expect(calls('crm.v1.AdminService/SetSourceOperators', 'ok')).toBe(2);
    expect(calls('crm.v1.DistributionService/RegisterContact', 'ok')).toBe(7);
    expect(calls('crm.v1.DistributionService/RegisterContact', 'not_found')).toBe(1);
    expect(calls('crm.v1.QueryService/GetOperator', 'ok')).toBe(1);
    expect(calls('crm.v1.QueryService/GetOperator', 'not_found')).toBe(2);
    expect(calls('crm.v1.QueryService/ListContacts', 'ok')).toBe(1);
    // Exactly those series: nothing else was called.
    expect(select(samples, 'crm_rpc_calls_total').reduce((sum, s) => sum + s.value, 0)).toBe(2 + 1 + 3 + 2 + 7 + 1 + 1 + 2 + 1);

    // Duration histogram of GetOperator: 3 observations, cumulative buckets ending at +Inf = count.
    const buckets = select(samples, 'crm_rpc_duration_seconds_bucket', { method: 'crm.v1.QueryService/GetOperator' });
    expect(buckets.map((s) => s.labels.le)).toEqual(['0.001', '0.0025', '0.005', '0.01', '0.025', '0.05', '0.1', '0.25', '0.5', '1', '2.5', '+Inf']);
    for (let i = 1; i < buckets.length; i++) expect(buckets[i]!.value).toBeGreaterThanOrEqual(buckets[i - 1]!.value);
    expect(buckets.at(-1)!.value).toBe(3);
    expect(value(samples, 'crm_rpc_duration_seconds_count', { method: 'crm.v1.QueryService/GetOperator' })).toBe(3);
    const sum = value(samples, 'crm_rpc_duration_seconds_sum', { method: 'crm.v1.QueryService/GetOperator' });
    expect(sum).toBeGreaterThan(0);
    expect(sum).toBeLessThan(30);
    expect(value(samples, 'crm_rpc_duration_seconds_count', { method: 'crm.v1.DistributionService/RegisterContact' })).toBe(8);

    // Registrations by source and outcome; the replay is not counted.
    const registered = (source: bigint, outcome: string) => value(samples, 'crm_contacts_registered_total', { source_id: String(source), outcome });
    expect(registered(toA, 'ASSIGNED')).toBe(1);
    expect(registered(toA, 'QUEUED_NO_CAPACITY')).toBe(1);
    expect(registered(toB, 'ASSIGNED')).toBe(2);
    expect(registered(toB, 'ASSIGNED_AFFINITY')).toBe(1);
    expect(registered(empty, 'QUEUED_NO_OPERATORS')).toBe(1);
    expect(select(samples, 'crm_contacts_registered_total').reduce((total, s) => total + s.value, 0)).toBe(6);

    // Live figures equal the database.
    expect(value(samples, 'crm_queue_length')).toBe(queued.length);
    const load = (name: string, operator: { id: bigint; name: string }) => value(samples, name, { operator_id: String(operator.id), operator: operator.name });
    expect(load('crm_operator_open_load', a)).toBe(1);
    expect(load('crm_operator_max_load', a)).toBe(1);
    expect(load('crm_operator_open_load', b)).toBe(3);
    expect(load('crm_operator_max_load', b)).toBe(5);
    expect(select(samples, 'crm_operator_open_load')).toHaveLength(2);

    // Gauges follow changes: raising a's capacity drains the queue onto it.
    await t.admin.updateOperator({ operatorId: a.id, maxLoad: 3 });
    const after = await scrape(metricsPort);
    expect(value(after, 'crm_queue_length')).toBe((await allContacts(t, { queuedOnly: true })).length);
    expect(value(after, 'crm_queue_length')).toBe(1);
    expect(value(after, 'crm_operator_open_load', { operator_id: String(a.id), operator: a.name })).toBe(2);
    expect(value(after, 'crm_operator_max_load', { operator_id: String(a.id), operator: a.name })).toBe(3);
    expect(value(after, 'crm_rpc_calls_total', { method: 'crm.v1.AdminService/UpdateOperator', code: 'ok' })).toBe(1);
  });

  it('answers 404 for any path but /metrics', async () => {
    const response = await fetch(`http://127.0.0.1:${t.server.metricsPort!}/`);
    expect(response.status).toBe(404);
    await response.arrayBuffer();
  });
});

describe('structured logs of the real process', () => {
  let dir: string;
  let child: ServerProcess | undefined;
  beforeAll(() => {
    dir = mkdtempSync(join(tmpdir(), 'crm-logs-'));
  });
  afterEach(async () => {
    await child?.stop();
    child = undefined;
  });
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  it('writes one JSON object per line (level by name, time in ISO 8601), one "call" line per RPC with method, code and ms (debug when ok, info otherwise), and never a token', async () => {
    const token = 'sekret-token-123';
    const wrongToken = 'wrong-token-456';
    child = spawnServer({ DATABASE_URL: `sqlite:${join(dir, 'crm.sqlite')}`, CRM_TOKENS: `admin:${token}`, LOG_LEVEL: 'debug' }, { isolated: true });
    const { port } = await child.listening();
    const address = `127.0.0.1:${port}`;
    const auth = new Metadata();
    auth.set('authorization', `Bearer ${token}`);
    const wrong = new Metadata();
    wrong.set('authorization', `Bearer ${wrongToken}`);
    const admin = grpcClient(AdminService, address, auth);
    const query = grpcClient(QueryService, address, auth);
    const distribution = grpcClient(DistributionService, address, auth);
    const anonymous = grpcClient(QueryService, address);
    const expected: { method: string; code: string }[] = [];
    try {
      const { operator } = await admin.createOperator({ name: 'Logged', maxLoad: 2 });
      expected.push({ method: 'crm.v1.AdminService/CreateOperator', code: 'ok' });
      const { source } = await admin.createSource({ name: 'LoggedSource' });
      expected.push({ method: 'crm.v1.AdminService/CreateSource', code: 'ok' });
      await admin.setSourceOperators({ sourceId: source!.id, operators: [{ operatorId: operator!.id, weight: 1 }] });
      expected.push({ method: 'crm.v1.AdminService/SetSourceOperators', code: 'ok' });
      await distribution.registerContact({ source: { case: 'sourceId', value: source!.id }, lead: { externalId: 'logged-lead' }, message: 'hi' });
      expected.push({ method: 'crm.v1.DistributionService/RegisterContact', code: 'ok' });
      expect((await failure(query.getOperator({ operatorId: 987654321n }))).code).toBe(status.NOT_FOUND);
      expected.push({ method: 'crm.v1.QueryService/GetOperator', code: 'not_found' });
      expect((await failure(admin.createOperator({ name: ' ', maxLoad: 1 }))).code).toBe(status.INVALID_ARGUMENT);
      expected.push({ method: 'crm.v1.AdminService/CreateOperator', code: 'invalid_argument' });
      expect((await failure(anonymous.listOperators({}))).code).toBe(status.UNAUTHENTICATED);
      expected.push({ method: 'crm.v1.QueryService/ListOperators', code: 'unauthenticated' });
      expect((await failure(anonymous.listOperators({}, wrong))).code).toBe(status.UNAUTHENTICATED);
      expected.push({ method: 'crm.v1.QueryService/ListOperators', code: 'unauthenticated' });
    } finally {
      for (const client of [admin, query, distribution, anonymous]) client.close();
    }

    child.process.kill('SIGTERM');
    const exit = await child.exitStatus;
    expect(exit).toEqual({ code: 0, signal: null });

    const parsed = child.lines.map((line, i) => {
      try {
        return JSON.parse(line) as Record<string, unknown>;
      } catch {
        throw new Error(`stdout line ${i + 1} is not JSON: ${JSON.stringify(line)}`);
      }
    });
    for (const entry of parsed) {
      expect(entry).toEqual(expect.objectContaining({ level: expect.stringMatching(/^(?:trace|debug|info|warn|error|fatal)$/), time: expect.any(String), msg: expect.any(String) }));
      // UTC, to the millisecond: exactly what Date writes back.
      expect(new Date(entry.time as string).toISOString()).toBe(entry.time);
      expect(entry.constructor).toBe(Object);
    }
    const calls = parsed.filter((entry) => entry.msg === 'call');
    expect(calls.map(({ method, code }) => ({ method, code }))).toEqual(expected);
    // Successful calls only at debug: at the default level a busy server logs its failures, not its traffic.
    expect(calls.map(({ code, level }) => ({ code, level }))).toEqual(expected.map(({ code }) => ({ code, level: code === 'ok' ? 'debug' : 'info' })));
    for (const call of calls) {
      expect(call.ms).toEqual(expect.any(Number));
      expect(call.ms as number).toBeGreaterThanOrEqual(0);
    }
    expect(parsed.some((entry) => entry.msg === 'stopped')).toBe(true);

    const everything = `${child.lines.join('\n')}\n${child.stderr()}`;
    expect(everything).not.toContain(token);
    expect(everything).not.toContain(wrongToken);
  });
});
