// Fault injection on the database: a PostgreSQL database that stops accepting
// connections for a while (calls get UNAVAILABLE within their deadline, Health
// turns NOT_SERVING, and both come back without a restart, with readable
// logs), a replica whose LISTEN connection is cut while another replica keeps
// assigning (its watchers never miss an assignment silently), and watchers
// that hang up (logged as "canceled", never as a server fault).
import { readdirSync, readFileSync, readlinkSync } from 'node:fs';
import http2 from 'node:http2';
import { create, fromBinary, toBinary } from '@bufbuild/protobuf';
import * as grpc from '@grpc/grpc-js';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { AssignmentEventSchema, WatchAssignmentsRequestSchema, type AssignmentEvent } from '../../gen/crm/v1/distribution_pb.js';
import { ContactStatus } from '../../gen/crm/v1/resources_pb.js';
import { HealthCheckResponse_ServingStatus as ServingStatus } from '../../gen/grpc/health/v1/health_pb.js';
import { startChildServer, type ChildServer } from '../support/child-server.ts';
import { sleep, terminateBackends, withDatabaseOutage } from '../support/faults.ts';
import { unique } from '../support/fixtures.ts';
import { atLeast } from '../support/log-levels.ts';
import { serviceClients, type ServiceClients } from '../support/grpc-client.ts';
import { StreamReader } from '../support/stream-reader.ts';
import { createTestDatabase, testDialect, type TestDatabase } from '../support/test-database.ts';

const WATCH = 'crm.v1.DistributionService/WatchAssignments';

interface Outcome {
  code: grpc.status;
  details: string;
  ms: number;
}

/** How a call with a deadline ended: its status code (OK included) and how long it took. */
async function outcome(call: () => Promise<unknown>): Promise<Outcome> {
  const started = performance.now();
  try {
    await call();
    return { code: grpc.status.OK, details: '', ms: performance.now() - started };
  } catch (error) {
    const { code, details } = error as grpc.ServiceError;
    return { code, details, ms: performance.now() - started };
  }
}

/** Waits (at most `ms`) until `test` holds, checking every `every` ms; returns whether it did. */
async function eventually(test: () => boolean | Promise<boolean>, ms: number, every = 100): Promise<boolean> {
  const until = performance.now() + ms;
  for (;;) {
    if (await test()) return true;
    if (performance.now() >= until) return false;
    await sleep(every);
  }
}

/** The JSON log lines of `lines` (the child's stdout), parsed; throws on any line that is not JSON. */
function parseLogs(lines: readonly string[]): Record<string, unknown>[] {
  return lines.filter((line) => line.trim() !== '').map((line) => {
    try {
      return JSON.parse(line) as Record<string, unknown>;
    } catch {
      throw new Error(`a log line is not JSON: ${JSON.stringify(line)}`);
    }
  });
}

/** crm_rpc_calls_total for one method, by code. */
async function callCounts(metricsPort: number, method: string): Promise<Record<string, number>> {
  const response = await fetch(`http://127.0.0.1:${metricsPort}/metrics`);
  expect(response.status).toBe(200);
  const counts: Record<string, number> = {};
  for (const line of (await response.text()).split('\n')) {
    const match = /^crm_rpc_calls_total\{(.*)\} (\S+)$/.exec(line);
    if (!match) continue;
    const labels = Object.fromEntries([...match[1]!.matchAll(/(\w+)="([^"]*)"/g)].map(([, k, v]) => [k, v]));
    if (labels.method === method) counts[labels.code!] = Number(match[2]);
  }
  return counts;
}

interface Server extends ServiceClients {
  child: ChildServer;
}

async function startServer(database: TestDatabase): Promise<Server> {
  // Isolated: nothing set around the tests (CRM_TOKENS, ...) changes what the server does.
  const child = await startChildServer({ DATABASE_URL: database.url }, { isolated: true });
  return { child, ...serviceClients(child.address) };
}

async function stopServer(server: Server | undefined): Promise<void> {
  if (!server) return;
  server.close();
  await server.child.stop();
}

/** An operator that takes everything, and a source that sends everything to it. */
async function setUpSource(server: Server): Promise<{ operatorId: bigint; sourceId: bigint }> {
  const { operator } = await server.admin.createOperator({ name: unique('op'), maxLoad: 100_000, active: true });
  const { source } = await server.admin.createSource({ name: unique('source'), leadAffinity: false });
  await server.admin.setSourceOperators({ sourceId: source!.id, operators: [{ operatorId: operator!.id, weight: 1 }] });
  return { operatorId: operator!.id, sourceId: source!.id };
}

const registerOn = (server: Server, sourceId: bigint) =>
  server.distribution.registerContact({ source: { case: 'sourceId', value: sourceId }, lead: { externalId: unique('lead') }, message: 'hello' });

/** A WatchAssignments stream read as it comes, as contact ids. */
function watch(server: Server, sourceId: bigint): StreamReader<AssignmentEvent, bigint> {
  return new StreamReader(server.distribution.watchAssignments({ sourceId }), (event) => event.contact!.id);
}

/**
 * Waits until `reader` is subscribed: a contact registered on `via` (after the
 * watch began) reaches it. Returns false if the stream ended first or nothing came within `ms`.
 */
async function subscribed(reader: StreamReader<AssignmentEvent, bigint>, via: Server, sourceId: bigint, ms = 5_000): Promise<boolean> {
  let ended = false;
  void reader.ended.then(() => (ended = true));
  const until = performance.now() + ms;
  while (!ended && performance.now() < until) {
    const probe = (await registerOn(via, sourceId)).contact!.id;
    if (await eventually(() => ended || reader.messages.includes(probe), 500, 20)) return !ended;
  }
  return false;
}

/**
 * Opens watchers on `server` until one is served (an assignment made on `via`
 * after it began reaches it), for at most `ms`; each one refused meanwhile must
 * be refused with UNAVAILABLE (the replica is not listening yet). Returns the
 * served watcher, or undefined, and how many were refused.
 */
async function watchWhenListening(server: Server, via: Server, sourceId: bigint, ms: number): Promise<{ watcher?: StreamReader<AssignmentEvent, bigint>; refused: number }> {
  const until = performance.now() + ms;
  let refused = 0;
  while (performance.now() < until) {
    const next = watch(server, sourceId);
    if (await subscribed(next, via, sourceId, Math.min(1_000, Math.max(0, until - performance.now())))) return { watcher: next, refused };
    const status = await Promise.race([next.ended, sleep(100).then(() => undefined)]);
    next.stream.cancel();
    if (status) {
      expect(grpc.status[status.code], `a watcher refused while the replica does not listen: ${status.details}`).toBe('UNAVAILABLE');
      refused += 1;
    }
    await sleep(200);
  }
  return { refused };
}

describe.skipIf(testDialect !== 'postgresql')('PostgreSQL outage: UNAVAILABLE, NOT_SERVING, and back without a restart', () => {
  let database: TestDatabase;
  let server: Server;
  let sourceId: bigint;

  beforeAll(async () => {
    database = await createTestDatabase();
    server = await startServer(database);
    ({ sourceId } = await setUpSource(server));
  });

  afterAll(async () => {
    await stopServer(server);
    await database?.drop();
  });

  const check = (deadlineMs = 2_000) => server.health.check({ service: '' }, undefined, { deadline: Date.now() + deadlineMs });
  const register = (deadlineMs = 5_000) =>
    server.distribution.registerContact({ source: { case: 'sourceId', value: sourceId }, lead: { externalId: unique('lead') }, message: 'm' }, undefined, { deadline: Date.now() + deadlineMs });
  const listOperators = (deadlineMs = 5_000) => server.query.listOperators({ pageSize: 10 }, undefined, { deadline: Date.now() + deadlineMs });
  const updateStatus = (contactId: bigint, status: ContactStatus, deadlineMs = 5_000) =>
    server.distribution.updateContactStatus({ contactId, status }, undefined, { deadline: Date.now() + deadlineMs });
  const isServing = async () => (await outcome(() => check())).code === grpc.status.OK && (await check()).status === ServingStatus.SERVING;

  it('fails calls with UNAVAILABLE within their deadline, says NOT_SERVING, then serves again in the same process', async () => {
    const { child } = server;
    const pid = child.process.pid;
    const before = (await register()).contact!;
    expect((await check()).status).toBe(ServingStatus.SERVING);

    // A watcher from before the outage: the replica stops hearing assignments, so its stream must end, not go quiet.
    const watcher = watch(server, sourceId);
    expect(await subscribed(watcher, server, sourceId)).toBe(true);

    const logsBefore = child.lines.length;
    let sawNotServing = false;
    let healthMs = Number.NaN;
    let notServingAfterCalls = false;
    const during: Record<string, Outcome[]> = {};
    await withDatabaseOutage(database.url, async () => {
      const started = performance.now();
      // Nothing calls the server here: the periodic probe alone must notice.
      sawNotServing = await eventually(async () => (await check()).status === ServingStatus.NOT_SERVING, 6_000, 200);
      healthMs = performance.now() - started;

      // Concurrent registrations share a batch: the batch's failure must not turn into a split-and-retry per call.
      during.RegisterContact = await Promise.all([1, 2, 3, 4, 5].map(() => outcome(() => register())));
      during.ListOperators = [await outcome(() => listOperators())];
      during.UpdateContactStatus = [await outcome(() => updateStatus(before.id, ContactStatus.IN_PROGRESS))];
      during.WatchAssignments = [await outcome(() => watch(server, sourceId).ended.then((s) => (s.code === grpc.status.OK ? undefined : Promise.reject(s))))];
      notServingAfterCalls = (await check()).status === ServingStatus.NOT_SERVING;

      // The database stays unreachable for 8 s in all.
      await sleep(Math.max(0, 8_000 - (performance.now() - started)));
    });
    const reconnected = performance.now();

    expect(sawNotServing, `Health turned NOT_SERVING within 6 s (took ${Math.round(healthMs)} ms)`).toBe(true);
    for (const [method, outcomes] of Object.entries(during)) {
      for (const o of outcomes) {
        expect({ method, code: grpc.status[o.code], details: o.details }).toMatchObject({ method, code: 'UNAVAILABLE' });
        expect(o.ms, `${method} answered within its 5 s deadline`).toBeLessThan(5_000);
      }
    }
    expect(notServingAfterCalls, 'still NOT_SERVING after the calls').toBe(true);
    const watchEnd = await watcher.ended;
    expect(grpc.status[watchEnd.code], watchEnd.details).toBe('UNAVAILABLE');

    // Back within 10 s of the database accepting connections again, without a restart.
    expect(await eventually(isServing, 10_000, 200), 'Health said SERVING again within 10 s').toBe(true);
    const servingMs = performance.now() - reconnected;
    const after = await register();
    expect(after.contact!.id).toBeGreaterThan(before.id);
    expect((await listOperators()).operators.length).toBeGreaterThan(0);
    expect((await updateStatus(before.id, ContactStatus.CLOSED)).contact!.status).toBe(ContactStatus.CLOSED);
    // A new watcher makes the replica listen again (one that cannot is refused with UNAVAILABLE).
    const { watcher: rewatch, refused } = await watchWhenListening(server, server, sourceId, 10_000 - (performance.now() - reconnected));
    expect(rewatch, 'a new watcher is served within 10 s').toBeDefined();
    rewatch!.stream.cancel();
    const recoveredMs = performance.now() - reconnected;
    expect(recoveredMs, 'recovered within 10 s').toBeLessThan(10_000);
    expect(child.running).toBe(true);
    expect(child.process.pid).toBe(pid);
    expect(child.lines.filter((l) => l.includes('"msg":"listening')), 'started once').toHaveLength(1);

    // Readable logs: every line JSON, no stack traces, no "unexpected error", one "call" line per call and little else.
    await sleep(200);
    const logs = parseLogs(child.lines);
    const outageLogs = parseLogs(child.lines.slice(logsBefore));
    expect(child.lines.filter((l) => /stack/i.test(l)), 'no stack traces in the logs').toEqual([]);
    expect(logs.filter((l) => l.msg === 'unexpected error'), 'no unexpected errors').toEqual([]);
    expect(logs.filter((l) => l.msg === 'call' && ['internal', 'unknown', 'deadline_exceeded'].includes(l.code as string))).toEqual([]);
    expect(outageLogs.filter((l) => l.msg === 'call' && l.code === 'unavailable')).toHaveLength(Object.values(during).flat().length + 1);
    // Errors (and worse): the one "cannot be reached" of this outage, nothing else.
    expect(outageLogs.filter((l) => atLeast(l, 'error')).map((l) => l.msg)).toEqual([expect.stringMatching(/database cannot be reached/)]);
    expect(outageLogs.filter((l) => l.msg === 'the database answers again')).toHaveLength(1);
    expect(outageLogs.filter((l) => /batch failed as a whole/.test(l.msg as string)), 'no split-and-retry of a batch the outage failed').toEqual([]);
    // Everything else that is not a call line: a few lines about the database and the listener, not one per call.
    const other = outageLogs.filter((l) => l.msg !== 'call');
    console.log(
      `outage: NOT_SERVING after ${Math.round(healthMs)} ms; SERVING again ${Math.round(servingMs)} ms after reconnecting, watchers served again after ${Math.round(recoveredMs)} ms (${refused} refused before)\n` +
        `calls during the outage: ${Object.entries(during).map(([m, os]) => `${m} ${os.map((o) => `${grpc.status[o.code]} in ${Math.round(o.ms)} ms`).join(', ')}`).join('; ')}\n` +
        `log lines besides calls (${other.length}):\n${other.map((l) => `  ${l.level} ${l.msg}${l.reason ? ` (${l.reason})` : ''}`).join('\n')}`,
    );
    expect(other.length, other.map((l) => l.msg).join('\n')).toBeLessThanOrEqual(20);
    expect(child.stderr()).toBe('');
  });

  it('calls in flight when the database goes away end OK or UNAVAILABLE, never INTERNAL', async () => {
    const { child } = server;
    const logsBefore = child.lines.length;
    const outcomes: (Outcome & { method: string })[] = [];
    let stop = false;
    // Four clients keep registering, closing what they registered, and listing, as fast as they can.
    const worker = async () => {
      while (!stop) {
        const registered = await outcome(() => register());
        outcomes.push({ method: 'RegisterContact', ...registered });
        outcomes.push({ method: 'ListOperators', ...(await outcome(() => listOperators())) });
        if (registered.code !== grpc.status.OK) await sleep(50);
      }
    };
    const load = Promise.all([1, 2, 3, 4].map(worker));
    // Plus status changes on contacts registered before.
    const contacts = await Promise.all([1, 2, 3, 4, 5, 6].map(async () => (await register()).contact!.id));
    const closing = (async () => {
      for (const id of contacts) {
        await sleep(300);
        outcomes.push({ method: 'UpdateContactStatus', ...(await outcome(() => updateStatus(id, ContactStatus.CLOSED))) });
      }
    })();
    await sleep(700);
    const okBefore = outcomes.filter((o) => o.code === grpc.status.OK).length;
    await withDatabaseOutage(database.url, async () => {
      await sleep(2_500);
      stop = true;
      await load;
      await closing;
    });
    const summary: Record<string, number> = {};
    for (const o of outcomes) summary[`${o.method} ${grpc.status[o.code]}`] = (summary[`${o.method} ${grpc.status[o.code]}`] ?? 0) + 1;
    console.log(`calls in flight across the outage: ${JSON.stringify(summary)}`);
    expect(okBefore).toBeGreaterThan(0);
    expect(outcomes.filter((o) => o.code !== grpc.status.OK && o.code !== grpc.status.UNAVAILABLE).map((o) => `${o.method}: ${grpc.status[o.code]} ${o.details}`)).toEqual([]);
    expect(outcomes.filter((o) => o.code === grpc.status.UNAVAILABLE).length).toBeGreaterThan(0);
    expect(outcomes.every((o) => o.ms < 5_000), 'every call answered within its deadline').toBe(true);

    expect(await eventually(isServing, 10_000, 200), 'Health said SERVING again within 10 s').toBe(true);
    expect((await register()).contact!.id).toBeGreaterThan(0);
    await sleep(200);
    expect(child.lines.slice(logsBefore).filter((l) => /stack|unexpected error/i.test(l)), 'no stack traces').toEqual([]);
    expect(parseLogs(child.lines.slice(logsBefore)).filter((l) => atLeast(l, 'error')).map((l) => l.msg)).toEqual([expect.stringMatching(/database cannot be reached/)]);
    expect(child.stderr()).toBe('');
  });

  it('write transactions cut by the outage give their connections back: more of them than the pool holds, then the server serves again', async () => {
    const { child } = server;
    const logsBefore = child.lines.length;
    const POOL = 10; // pg's default pool size, which the server keeps
    const contacts = await Promise.all(Array.from({ length: POOL + 2 }, async () => (await register()).contact!.id));
    // Hold the contacts' rows, so that every UpdateContactStatus waits inside its transaction, on a pooled connection.
    const locker = new pg.Client({ connectionString: database.url });
    locker.on('error', () => undefined); // the outage ends it
    await locker.connect();
    await locker.query('begin');
    await locker.query('select id from contact where id = any($1::int[]) for update', [contacts.map(Number)]);
    const calls = contacts.map((id) => outcome(() => updateStatus(id, ContactStatus.IN_PROGRESS)));
    // Watched from a connection of its own (pg_stat_activity holds still inside a transaction).
    const observer = new pg.Client({ connectionString: database.url });
    await observer.connect();
    const waiting = async () => {
      const { rows } = await observer.query<{ n: number }>(
        `select count(*)::int as n from pg_stat_activity where datname = current_database() and wait_event_type = 'Lock'`,
      );
      return rows[0]!.n >= POOL;
    };
    const poolWaits = await eventually(waiting, 4_000, 50);
    await observer.end();
    expect(poolWaits, 'the whole pool waits on the locked rows').toBe(true);
    // The database goes away under them: their backends first (ending the locker first would let some commit), then all of it.
    expect(await terminateBackends(database.url, `wait_event_type = 'Lock'`)).toBeGreaterThanOrEqual(POOL);
    let inFlight: Outcome[] = [];
    await withDatabaseOutage(database.url, async () => {
      inFlight = await Promise.all(calls);
      await sleep(1_000);
    });
    await locker.end().catch(() => undefined);
    // The ones cut in their transaction get UNAVAILABLE; the two that waited for a connection may have got one and committed once the locker was gone.
    expect(inFlight.map((o) => `${grpc.status[o.code]} ${o.details}`).filter((o) => !/^(UNAVAILABLE|OK) /.test(o))).toEqual([]);
    expect(inFlight.filter((o) => o.code === grpc.status.UNAVAILABLE).length).toBeGreaterThanOrEqual(POOL);

    // Back: Health, and as many concurrent writes as the pool holds and more (each needs a connection of its own).
    expect(await eventually(isServing, 10_000, 200), 'Health said SERVING again within 10 s').toBe(true);
    const after = await Promise.all(contacts.map((id) => outcome(() => updateStatus(id, ContactStatus.CLOSED))));
    expect(after.map((o) => `${grpc.status[o.code]} ${o.details}`.trim())).toEqual(contacts.map(() => 'OK'));
    await sleep(200);
    expect(child.lines.slice(logsBefore).filter((l) => /stack|unexpected error/i.test(l)), 'no stack traces').toEqual([]);
    expect(child.stderr()).toBe('');
  });
});

describe.skipIf(testDialect !== 'postgresql')('two replicas: the LISTEN connection of one is cut while the other assigns', () => {
  let database: TestDatabase;
  let one: Server;
  let two: Server;

  beforeAll(async () => {
    database = await createTestDatabase();
    [one, two] = await Promise.all([startServer(database), startServer(database)]);
  });

  afterAll(async () => {
    await stopServer(one);
    await stopServer(two);
    await database?.drop();
  });

  /** The backends LISTENing on the channel, with the client port each uses. */
  async function listeners(): Promise<{ pid: number; port: number }[]> {
    const client = new pg.Client({ connectionString: database.url });
    await client.connect();
    try {
      const { rows } = await client.query<{ pid: number; port: number }>(
        `select pid, client_port as port from pg_stat_activity where datname = current_database() and query ilike 'listen%'`,
      );
      return rows;
    } finally {
      await client.end();
    }
  }

  /** The backend that replica `server`'s listener is connected to (matched by the local TCP port of one of its sockets). */
  async function listenerOf(server: Server): Promise<number> {
    const all = await listeners();
    expect(all, 'one LISTEN backend: only the replica with watchers listens').toHaveLength(1);
    const ports = ownPorts(server.child.process.pid!);
    const found = all.filter((l) => ports.has(l.port));
    expect(found, "replica 1's LISTEN backend").toHaveLength(1);
    return found[0]!.pid;
  }

  it('a watcher gets every assignment of the other replica or ends with UNAVAILABLE; new watchers are served once it listens again', async () => {
    const { sourceId } = await setUpSource(two);
    const filtered = watch(one, sourceId);
    const unfiltered = new StreamReader(one.distribution.watchAssignments({}), (event: AssignmentEvent) => event.contact!.id);
    expect(await subscribed(filtered, two, sourceId)).toBe(true);
    expect(await subscribed(unfiltered, two, sourceId)).toBe(true);
    const firstSeen = { filtered: filtered.messages.length, unfiltered: unfiltered.messages.length };

    // A steady stream of assignments on replica 2, before, during and after the cut.
    const made: bigint[] = [];
    let stop = false;
    const producing = (async () => {
      while (!stop) {
        made.push((await registerOn(two, sourceId)).contact!.id);
        await sleep(10);
      }
    })();
    await sleep(500);
    const listenerPid = await listenerOf(one);
    const logsBefore = one.child.lines.length;
    expect(await terminateBackends(database.url, `pid = ${listenerPid}`)).toBe(1);
    const cut = performance.now();
    const cutAt = made.length;

    // The moment a watcher is ended, a new watcher right then listens on a connection of its own, or is refused with UNAVAILABLE.
    const ended = await Promise.race([filtered.ended, sleep(3_000).then(() => undefined)]);
    let early: string | undefined;
    if (ended) {
      const next = watch(one, sourceId);
      const status = await Promise.race([next.ended, sleep(500).then(() => undefined)]);
      next.stream.cancel();
      early = status ? `${grpc.status[status.code]}: ${status.details}` : 'accepted (it listens again)';
      if (status) expect(grpc.status[status.code], status.details).toBe('UNAVAILABLE');
    }
    await sleep(Math.max(0, 1_500 - (performance.now() - cut)));
    stop = true;
    await producing;
    expect(cutAt).toBeGreaterThan(5);
    expect(made.length - cutAt).toBeGreaterThan(5);

    // Either every assignment arrives, or the stream ends with UNAVAILABLE after a prefix of them: never a silent gap.
    const report: string[] = [];
    for (const [name, reader] of [['filtered', filtered], ['unfiltered', unfiltered]] as const) {
      await eventually(() => made.every((id) => reader.messages.includes(id)) || reader.errors.length > 0, 5_000, 50);
      const got = reader.messages.slice(firstSeen[name]);
      const end = await Promise.race([reader.ended, sleep(500).then(() => undefined)]);
      report.push(`${name} watcher got ${got.length}/${made.length} (${cutAt} made before the cut); stream ${end ? `ended ${grpc.status[end.code]}: ${decodeURIComponent(end.details)}` : 'still open'}`);
      expect(got, `${name}: a prefix of the assignments, in commit order, each once`).toEqual(made.slice(0, got.length));
      if (got.length < made.length || end !== undefined) {
        expect(end && grpc.status[end.code], `${name}: missing ${made.length - got.length} assignment(s), so the stream must end with UNAVAILABLE`).toBe('UNAVAILABLE');
      }
    }

    // A new watcher makes the replica listen again (within a few seconds), and gets what is assigned next.
    const { watcher: next, refused } = await watchWhenListening(one, two, sourceId, 8_000);
    const backMs = performance.now() - cut;
    console.log(`listener cut:\n  ${report.join('\n  ')}\n  a new watcher right after: ${early ?? 'not tried (the stream had not ended)'}\n  later watchers refused ${refused} time(s); one served ${Math.round(backMs)} ms after the cut`);
    expect(next, 'a new watcher on replica 1 is served within a few seconds').toBeDefined();
    const ids = (await Promise.all([1, 2, 3].map(() => registerOn(two, sourceId)))).map((r) => r.contact!.id);
    expect(await eventually(() => ids.every((id) => next!.messages.includes(id)), 3_000, 20), 'the new watcher receives the assignments made after it subscribed').toBe(true);
    next!.stream.cancel();

    const logs = parseLogs(one.child.lines.slice(logsBefore));
    expect(logs.filter((l) => l.msg === 'assignment listener lost; ending watch streams (the next one listens again)')).toHaveLength(1);
    expect(logs.filter((l) => l.msg === 'call' && l.method === WATCH && (l.code === 'internal' || l.code === 'unknown'))).toEqual([]);
    expect(logs.filter((l) => atLeast(l, 'error'))).toEqual([]);
    expect(one.child.lines.filter((l) => /stack/i.test(l))).toEqual([]);
    // Replica 2 is untouched (with no watcher, it never listened): it logged nothing worse than the start-up notice.
    expect(parseLogs(two.child.lines).filter((l) => atLeast(l, 'warn') && !/no CRM_TOKENS configured/.test(l.msg as string))).toEqual([]);
  });
});

/** The local TCP ports of the sockets `pid` holds (from /proc/<pid>/net/tcp*, filtered by the process's socket inodes). */
function ownPorts(pid: number): Set<number> {
  const inodes = new Set<string>();
  for (const fd of readdir(`/proc/${pid}/fd`)) {
    const target = readlink(`/proc/${pid}/fd/${fd}`);
    const match = target && /^socket:\[(\d+)\]$/.exec(target);
    if (match) inodes.add(match[1]!);
  }
  const ports = new Set<number>();
  for (const table of [`/proc/${pid}/net/tcp`, `/proc/${pid}/net/tcp6`]) {
    for (const line of readText(table).split('\n').slice(1)) {
      const fields = line.trim().split(/\s+/);
      if (fields.length < 10 || !inodes.has(fields[9]!)) continue;
      ports.add(parseInt(fields[1]!.split(':')[1]!, 16));
    }
  }
  return ports;
}

function readdir(path: string): string[] {
  try {
    return readdirSync(path);
  } catch {
    return [];
  }
}
function readlink(path: string): string | undefined {
  try {
    return readlinkSync(path);
  } catch {
    return undefined;
  }
}
function readText(path: string): string {
  try {
    return readFileSync(path, 'utf8');
  } catch {
    return '';
  }
}

describe(`watchers that hang up (${testDialect})`, () => {
  let database: TestDatabase;
  let server: Server;
  let metricsPort: number;

  beforeAll(async () => {
    database = await createTestDatabase();
    server = await startServer(database);
    metricsPort = (await server.child.listening()).metricsPort!;
  });

  afterAll(async () => {
    await stopServer(server);
    await database?.drop();
  });

  const watchLines = () => parseLogs(server.child.lines).filter((l) => l.msg === 'call' && l.method === WATCH);

  it('a watcher that cancels its stream is logged at info level as "canceled", never as internal', async () => {
    const { sourceId } = await setUpSource(server);
    const before = watchLines().length;
    const watcher = watch(server, sourceId);
    expect(await subscribed(watcher, server, sourceId)).toBe(true);
    watcher.stream.cancel();
    expect((await watcher.ended).code).toBe(grpc.status.CANCELLED);

    expect(await eventually(() => watchLines().length > before, 5_000, 20), 'the call is logged when it ends').toBe(true);
    expect(watchLines().slice(before)).toEqual([expect.objectContaining({ level: 'info', code: 'canceled' })]);
    expect(await callCounts(metricsPort, WATCH)).toEqual({ canceled: 1 });
  });

  it('a watcher whose deadline passes is logged at info level as "deadline_exceeded"', async () => {
    const { sourceId } = await setUpSource(server);
    const before = watchLines().length;
    // Raw HTTP/2, so that only the server's deadline ends the call (grpc-js would cancel at its own deadline, racing the server's).
    const watcher = rawWatch(server, sourceId, { 'grpc-timeout': '1500m' });
    expect(await subscribedRaw(watcher, server, sourceId, 1_000)).toBe(true);
    expect((await watcher.trailers)['grpc-status']).toBe(String(grpc.status.DEADLINE_EXCEEDED));
    watcher.session.close();

    expect(await eventually(() => watchLines().length > before, 5_000, 20), 'the call is logged when it ends').toBe(true);
    expect(watchLines().slice(before)).toEqual([expect.objectContaining({ level: 'info', code: 'deadline_exceeded' })]);
    expect(await callCounts(metricsPort, WATCH)).toEqual({ canceled: 1, deadline_exceeded: 1 });
  });

  it('a watcher whose connection drops is logged as "canceled" too', async () => {
    const { sourceId } = await setUpSource(server);
    const before = watchLines().length;
    const watcher = rawWatch(server, sourceId);
    expect(await subscribedRaw(watcher, server, sourceId)).toBe(true);
    // Hang up: the whole connection goes, without a RST_STREAM for the call.
    watcher.session.socket.destroy();
    watcher.session.destroy();

    expect(await eventually(() => watchLines().length > before, 5_000, 20), 'the call is logged when it ends').toBe(true);
    expect(watchLines().slice(before)).toEqual([expect.objectContaining({ level: 'info', code: 'canceled' })]);
    expect(await callCounts(metricsPort, WATCH)).toEqual({ canceled: 2, deadline_exceeded: 1 });
    expect(server.child.lines.filter((l) => /stack|unexpected error/i.test(l))).toEqual([]);
  });
});

interface RawWatch {
  session: http2.ClientHttp2Session;
  /** The contact ids received so far (complete messages only). */
  ids(): bigint[];
  /** The response trailers, once the server ends the call. */
  trailers: Promise<http2.IncomingHttpHeaders>;
}

/** WatchAssignments over a plain HTTP/2 connection of its own, which the test can cut at will. */
function rawWatch(server: Server, sourceId: bigint, headers: http2.OutgoingHttpHeaders = {}): RawWatch {
  const session = http2.connect(`http://${server.child.address}`);
  session.on('error', () => undefined);
  const body = toBinary(WatchAssignmentsRequestSchema, create(WatchAssignmentsRequestSchema, { sourceId }));
  const frame = Buffer.concat([Buffer.from([0, 0, 0, 0, body.length]), Buffer.from(body)]);
  const stream = session.request({ ':method': 'POST', ':path': `/${WATCH}`, 'content-type': 'application/grpc', te: 'trailers', ...headers });
  stream.on('error', () => undefined);
  let received = Buffer.alloc(0);
  stream.on('data', (chunk: Buffer) => (received = Buffer.concat([received, chunk])));
  const trailers = new Promise<http2.IncomingHttpHeaders>((resolve) => stream.on('trailers', resolve));
  stream.end(frame);
  return { session, ids: () => decodeFrames(received), trailers };
}

/** Waits until a contact registered after the watch began reaches `watcher`. */
async function subscribedRaw(watcher: RawWatch, via: Server, sourceId: bigint, ms = 5_000): Promise<boolean> {
  const until = performance.now() + ms;
  while (performance.now() < until) {
    const id = (await registerOn(via, sourceId)).contact!.id;
    if (await eventually(() => watcher.ids().includes(id), 500, 20)) return true;
  }
  return false;
}
/** The contact ids in a gRPC response body of AssignmentEvent messages (complete frames only). */
function decodeFrames(body: Buffer): bigint[] {
  const ids: bigint[] = [];
  for (let at = 0; at + 5 <= body.length;) {
    const length = body.readUInt32BE(at + 1);
    if (at + 5 + length > body.length) break;
    ids.push(fromBinary(AssignmentEventSchema, body.subarray(at + 5, at + 5 + length)).contact!.id);
    at += 5 + length;
  }
  return ids;
}
