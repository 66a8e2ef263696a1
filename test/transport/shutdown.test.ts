// Graceful shutdown of the real process (node src/main.ts) on SIGTERM: calls
// the server has accepted finish, later calls fail fast with UNAVAILABLE,
// Health watchers see NOT_SERVING, WatchAssignments streams end with OK, the
// process exits 0 in bounded time, and every acknowledged contact is stored.
import { mkdtempSync, rmSync } from 'node:fs';
import http2 from 'node:http2';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { create, fromBinary, toBinary } from '@bufbuild/protobuf';
import { status as grpcStatus, type ServiceError } from '@grpc/grpc-js';
import { afterEach, describe, expect, it } from 'vitest';
import { AdminService } from '../../gen/crm/v1/admin_pb.js';
import { DistributionService, RegisterContactRequestSchema, RegisterContactResponseSchema, type AssignmentEvent } from '../../gen/crm/v1/distribution_pb.js';
import { Health, HealthCheckResponse_ServingStatus as ServingStatus, type HealthCheckResponse } from '../../gen/grpc/health/v1/health_pb.js';
import { spawnServer, type ServerProcess } from '../support/child-server.ts';
import { allContacts } from '../support/fixtures.ts';
import { within } from '../support/faults.ts';
import { grpcClient } from '../support/grpc-client.ts';
import { StreamReader } from '../support/stream-reader.ts';
import { startTestServer, type TestServer } from '../support/test-server.ts';

/** The bound on SIGTERM -> exit. Not a speed assertion: a server that drains never takes this long here. */
const EXIT_DEADLINE_MS = 10_000;

/** A gRPC frame: flags byte, 4-byte big-endian length, payload. */
function frame(payload: Uint8Array): Buffer {
  const header = Buffer.alloc(5);
  header.writeUInt32BE(payload.length, 1);
  return Buffer.concat([header, Buffer.from(payload)]);
}

/**
 * A gRPC RegisterContact opened by hand over HTTP/2: the HEADERS go now, the
 * message later, so the call is provably in flight on the server (a PING
 * answered after the HEADERS means the server has read them) while its outcome
 * is still open.
 */
class HeldCall {
  readonly result: Promise<{ status: string | undefined; message: Buffer; httpStatus: number }>;
  readonly #stream: http2.ClientHttp2Stream;

  constructor(session: http2.ClientHttp2Session) {
    this.#stream = session.request({
      ':method': 'POST',
      ':path': '/crm.v1.DistributionService/RegisterContact',
      'content-type': 'application/grpc+proto',
      te: 'trailers',
    });
    const stream = this.#stream;
    this.result = new Promise((resolve, reject) => {
      const chunks: Buffer[] = [];
      let httpStatus = 0;
      let status: string | undefined;
      stream.on('response', (headers) => {
        httpStatus = Number(headers[':status']);
        // A trailers-only response carries the status in the headers.
        if (headers['grpc-status'] !== undefined) status = String(headers['grpc-status']);
      });
      stream.on('trailers', (trailers) => {
        if (trailers['grpc-status'] !== undefined) status = String(trailers['grpc-status']);
      });
      stream.on('data', (chunk: Buffer) => chunks.push(chunk));
      stream.on('error', reject);
      stream.on('close', () => resolve({ status, message: Buffer.concat(chunks), httpStatus }));
    });
  }

  send(message: string, sourceId: bigint): void {
    const request = create(RegisterContactRequestSchema, { source: { case: 'sourceId', value: sourceId }, lead: { externalId: `lead-${message}` }, message });
    this.#stream.end(frame(toBinary(RegisterContactRequestSchema, request)));
  }
}

describe('graceful shutdown on SIGTERM', () => {
  let dir: string | undefined;
  let child: ServerProcess | undefined;
  let restarted: TestServer | undefined;
  const cleanups: (() => void)[] = [];

  afterEach(async () => {
    for (const cleanup of cleanups.splice(0)) cleanup();
    await child?.stop();
    child = undefined;
    await restarted?.stop();
    restarted = undefined;
    if (dir) rmSync(dir, { recursive: true, force: true });
    dir = undefined;
  });

  it('finishes accepted calls, refuses later ones with UNAVAILABLE, ends streams cleanly, exits 0, loses no acknowledged contact', async () => {
    dir = mkdtempSync(join(tmpdir(), 'crm-shutdown-'));
    const dbPath = join(dir, 'crm.sqlite');
    // At debug: a line for every call, successful ones included.
    child = spawnServer({ DATABASE_URL: `sqlite:${dbPath}`, LOG_LEVEL: 'debug' }, { isolated: true });
    const { port } = await child.listening();
    const address = `127.0.0.1:${port}`;
    const admin = grpcClient(AdminService, address);
    const distribution = grpcClient(DistributionService, address);
    const health = grpcClient(Health, address);
    cleanups.push(() => admin.close(), () => distribution.close(), () => health.close());
    const session = http2.connect(`http://${address}`);
    session.on('error', () => undefined);
    cleanups.push(() => session.destroy());

    const { operator } = await admin.createOperator({ name: 'Drainer', maxLoad: 100_000 });
    const { source } = await admin.createSource({ name: 'ShutdownSource' });
    await admin.setSourceOperators({ sourceId: source!.id, operators: [{ operatorId: operator!.id, weight: 1 }] });
    const sourceId = source!.id;

    /** Every contact the server acknowledged, by its message. */
    const acknowledged = new Map<string, bigint>();
    let sequence = 0;
    const registerTagged = async (prefix: string) => {
      const message = `${prefix}-${++sequence}`;
      const response = await distribution.registerContact({ source: { case: 'sourceId', value: sourceId }, lead: { externalId: `lead-${message}` }, message });
      expect(response.contact?.message).toBe(message);
      acknowledged.set(message, response.contact!.id);
      return response;
    };

    // Health/Watch on the whole server: SERVING first.
    const healthWatch = new StreamReader<HealthCheckResponse>(health.watch({ service: '' }));
    await healthWatch.until((m) => m.status === ServingStatus.SERVING);
    // WatchAssignments: subscribed once one of our probe contacts comes back on it.
    const assignments = new StreamReader<AssignmentEvent>(distribution.watchAssignments({ sourceId }));
    for (let attempt = 0; attempt < 100 && assignments.messages.length === 0; attempt++) {
      const probe = await registerTagged('probe');
      await Promise.race([
        assignments.until((e) => e.contact?.id === probe.contact!.id),
        new Promise((resolve) => setTimeout(resolve, 100)),
      ]);
    }
    expect(assignments.messages.length).toBeGreaterThan(0);

    // Calls held open on the server: HEADERS read (the PING is answered after them), message not yet sent.
    const held = Array.from({ length: 5 }, () => new HeldCall(session));
    await new Promise<void>((resolve, reject) => session.ping((error) => (error ? reject(error) : resolve())));
    // A burst over grpc-js, some of it still being processed when the signal comes.
    const burst = Array.from({ length: 40 }, () => settle(registerTagged('burst')));
    await Promise.race(burst);

    const signalled = performance.now();
    child.process.kill('SIGTERM');
    const exit = within(child.exitStatus, EXIT_DEADLINE_MS, 'exit after SIGTERM');
    exit.catch(() => undefined);

    // Calls made after the shutdown began: keep issuing until refused (4 callers).
    const late = Array.from({ length: 4 }, async () => {
      const outcomes: Outcome[] = [];
      for (let i = 0; i < 1_000; i++) {
        const outcome = await settle(registerTagged('late'));
        outcomes.push(outcome);
        if (!outcome.ok) break;
      }
      return outcomes;
    });

    // Watchers are told before their streams end.
    await within(healthWatch.until((m) => m.status === ServingStatus.NOT_SERVING), EXIT_DEADLINE_MS, 'Health NOT_SERVING');
    // Now the server is shutting down: the held calls get their messages and must still succeed.
    held.forEach((call, i) => call.send(`held-${i}`, sourceId));
    const heldResults = await within(Promise.all(held.map((call) => call.result)), EXIT_DEADLINE_MS, 'the held calls to finish');
    heldResults.forEach((result, i) => {
      expect({ call: i, httpStatus: result.httpStatus, grpcStatus: result.status }).toEqual({ call: i, httpStatus: 200, grpcStatus: '0' });
      expect(result.message.length).toBeGreaterThan(5);
      const response = fromBinary(RegisterContactResponseSchema, result.message.subarray(5, 5 + result.message.readUInt32BE(1)));
      expect(response.contact).toMatchObject({ message: `held-${i}`, operator: { id: operator!.id } });
      acknowledged.set(`held-${i}`, response.contact!.id);
    });

    const burstOutcomes = await within(Promise.all(burst), EXIT_DEADLINE_MS, 'the burst calls to settle');
    const lateOutcomes = (await within(Promise.all(late), EXIT_DEADLINE_MS, 'the late calls to settle')).flat();
    const healthEnd = await within(healthWatch.ended, EXIT_DEADLINE_MS, 'the Health watch to end');
    const assignmentsEnd = await within(assignments.ended, EXIT_DEADLINE_MS, 'the WatchAssignments stream to end');
    const { code, signal } = await exit;
    const elapsed = performance.now() - signalled;

    // Calls sent before the signal were accepted by the server and finish; none is refused or cut.
    expect(burstOutcomes.filter(failed).map((o) => o.error)).toEqual([]);
    // Calls sent after it either finish or are refused with UNAVAILABLE, and the last one of every caller is refused.
    expect(lateOutcomes.filter(failed).filter((o) => o.code !== grpcStatus.UNAVAILABLE).map((o) => o.error)).toEqual([]);
    expect(lateOutcomes.filter(failed)).toHaveLength(4);

    expect(healthWatch.messages.map((m) => m.status)).toEqual([ServingStatus.SERVING, ServingStatus.NOT_SERVING]);
    expect({ code: healthEnd.code, details: healthEnd.details }).toEqual({ code: grpcStatus.OK, details: expect.any(String) });
    expect(healthWatch.errors).toEqual([]);
    expect({ code: assignmentsEnd.code, details: assignmentsEnd.details }).toEqual({ code: grpcStatus.OK, details: expect.any(String) });
    expect(assignments.errors).toEqual([]);
    expect({ code, signal }).toEqual({ code: 0, signal: null });
    expect(elapsed).toBeLessThan(EXIT_DEADLINE_MS);

    // The process logged its stop, and the server handled exactly the acknowledged registrations.
    const logs = child.lines.map((line) => JSON.parse(line) as { msg?: string; method?: string; code?: string });
    expect(logs.some((l) => l.msg === 'stopped')).toBe(true);
    const registerLogs = logs.filter((l) => l.msg === 'call' && l.method === 'crm.v1.DistributionService/RegisterContact');
    expect(registerLogs.filter((l) => l.code !== 'ok')).toEqual([]);
    expect(registerLogs).toHaveLength(acknowledged.size);

    // Restart on the same database: every acknowledged contact is there, and nothing else.
    restarted = await startTestServer({ database: { kind: 'sqlite', path: dbPath } });
    const stored = await allContacts(restarted, { sourceId });
    expect(new Map(stored.map((c) => [c.message, c.id]))).toEqual(acknowledged);
    expect(stored.every((c) => c.operator?.id === operator!.id)).toBe(true);
  });
});

type Failure = { ok: false; code: number | undefined; error: string };
type Outcome = { ok: true } | Failure;

function failed(outcome: Outcome): outcome is Failure {
  return !outcome.ok;
}

/** Never rejects: the call's outcome, with the gRPC code when it failed. */
async function settle(call: Promise<unknown>): Promise<Outcome> {
  try {
    await call;
    return { ok: true };
  } catch (error) {
    const e = error as ServiceError;
    return { ok: false, code: e.code, error: `${e.code} ${e.message}` };
  }
}
