// Two server processes on one PostgreSQL database: every guarantee holds across
// them. Runs when TEST_DATABASE_URL names a PostgreSQL server (.ci/run sets it
// when one answers on 127.0.0.1:5432).
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { AdminService } from '../../gen/crm/v1/admin_pb.js';
import { DistributionService, type AssignmentEvent } from '../../gen/crm/v1/distribution_pb.js';
import { ContactStatus, DistributionStrategy } from '../../gen/crm/v1/resources_pb.js';
import { LISTENER_APPLICATION_NAME } from '../../src/storage/assignment-channel.ts';
import { migrations } from '../../src/storage/migrations/index.ts';
import { startChildServer, type ChildServer } from '../support/child-server.ts';
import { grpcClient, type GrpcClient } from '../support/grpc-client.ts';
import { StreamReader } from '../support/stream-reader.ts';
import { createTestDatabase, testDialect, type TestDatabase } from '../support/test-database.ts';

interface Replica {
  child: ChildServer;
  admin: GrpcClient<typeof AdminService>;
  distribution: GrpcClient<typeof DistributionService>;
}

describe.skipIf(testDialect !== 'postgresql')('two replicas on one PostgreSQL database', () => {
  let database: TestDatabase;
  let replicas: Replica[];
  let db: pg.Client;
  let sequence = 0;

  beforeAll(async () => {
    database = await createTestDatabase();
    // Both start at once on an empty database.
    const children = await Promise.all([0, 1].map(() => startChildServer({ DATABASE_URL: database.url })));
    replicas = children.map((child) => ({
      child,
      admin: grpcClient(AdminService, child.address),
      distribution: grpcClient(DistributionService, child.address),
    }));
    db = new pg.Client({ connectionString: database.url });
    await db.connect();
  });

  afterAll(async () => {
    await db?.end();
    for (const r of replicas ?? []) {
      r.admin.close();
      r.distribution.close();
      r.child.kill('SIGTERM');
      await r.child.exited;
    }
    await database?.drop();
  });

  const replica = (i: number) => replicas[i % 2]!;
  const unique = (prefix: string) => `${prefix}-${++sequence}`;

  async function setUp(count: number, maxLoad: number, weights: number[], strategy = DistributionStrategy.WEIGHTED_RANDOM) {
    const operators: bigint[] = [];
    for (let i = 0; i < count; i++) operators.push((await replica(i).admin.createOperator({ name: unique('op'), maxLoad })).operator!.id);
    const { source } = await replica(0).admin.createSource({ name: unique('source'), strategy, leadAffinity: false });
    await replica(1).admin.setSourceOperators({ sourceId: source!.id, operators: operators.map((operatorId, i) => ({ operatorId, weight: weights[i]! })) });
    return { operators, sourceId: source!.id };
  }

  const register = (i: number, sourceId: bigint, externalId: string, requestId = '') =>
    replica(i).distribution.registerContact({ source: { case: 'sourceId', value: sourceId }, lead: { externalId }, message: 'm', requestId });

  async function loadMismatches(operators: bigint[]) {
    const { rows } = await db.query(
      `select o.id, o.open_load, o.max_load,
              (select count(*)::int from contact c where c.operator_id = o.id and c.status <> 'CLOSED') as actual
         from operator o where o.id = any($1::int[])`,
      [operators.map(Number)],
    );
    return rows.filter((r: { open_load: number; actual: number; max_load: number }) => r.open_load !== r.actual || r.open_load > r.max_load);
  }

  it('migrated the empty database exactly once', async () => {
    const { rows } = await db.query('select name from mikro_orm_migrations order by id');
    expect(rows.map((r: { name: string }) => r.name)).toEqual(migrations.postgresql.map((m) => m.name));
  });

  it('concurrent registrations split across replicas never exceed max_load', async () => {
    const { operators, sourceId } = await setUp(3, 10, [1, 2, 3]);
    const results = await Promise.all(Array.from({ length: 200 }, (_, i) => register(i, sourceId, unique('lead'))));
    expect(results.filter((r) => r.contact!.operator)).toHaveLength(30);
    expect(await loadMismatches(operators)).toEqual([]);
    // Closing on one replica drains the queue that both filled, to its capacity.
    const assigned = results.filter((r) => r.contact!.operator).slice(0, 10);
    await Promise.all(assigned.map((r, i) => replica(i).distribution.updateContactStatus({ contactId: r.contact!.id, status: ContactStatus.CLOSED })));
    const { rows } = await db.query(`select count(*)::int as n from contact where source_id = $1 and operator_id is not null and status <> 'CLOSED'`, [Number(sourceId)]);
    expect(rows[0].n).toBe(30);
    expect(await loadMismatches(operators)).toEqual([]);
  });

  it('concurrent first contacts of one lead across replicas create one lead', async () => {
    const { sourceId } = await setUp(1, 1000, [1]);
    const externalId = unique('same');
    const results = await Promise.all(Array.from({ length: 40 }, (_, i) => register(i, sourceId, externalId)));
    expect(results.filter((r) => r.leadCreated)).toHaveLength(1);
    expect(new Set(results.map((r) => r.contact!.lead!.id)).size).toBe(1);
    expect(new Set(results.map((r) => r.contact!.id)).size).toBe(40);
  });

  it('a request_id repeated across replicas makes one contact', async () => {
    const { operators, sourceId } = await setUp(1, 1000, [1]);
    const results = await Promise.all(Array.from({ length: 20 }, (_, i) => register(i, sourceId, unique('lead'), 'same-request')));
    expect(new Set(results.map((r) => r.contact!.id)).size).toBe(1);
    expect(results.filter((r) => !r.replayed)).toHaveLength(1);
    expect(await loadMismatches(operators)).toEqual([]);
    const { rows } = await db.query('select open_load from operator where id = $1', [Number(operators[0])]);
    expect(rows[0].open_load).toBe(1);
  });

  it('the smooth round-robin sequence is shared: alternating replicas, every prefix within 1', async () => {
    const weights = [1, 2, 3];
    const { operators, sourceId } = await setUp(3, 100_000, weights, DistributionStrategy.SMOOTH_WEIGHTED_ROUND_ROBIN);
    const counts = [0, 0, 0];
    for (let n = 1; n <= 60; n++) {
      const r = await register(n, sourceId, unique('lead'));
      counts[operators.indexOf(r.contact!.operator!.id)]! += 1;
      for (let i = 0; i < 3; i++) expect(Math.abs(counts[i]! - (n * weights[i]!) / 6)).toBeLessThanOrEqual(1);
    }
    expect(counts).toEqual([10, 20, 30]);
  });

  it('concurrent round-robin picks across replicas still give exact shares', async () => {
    const { operators, sourceId } = await setUp(3, 100_000, [1, 2, 3], DistributionStrategy.SMOOTH_WEIGHTED_ROUND_ROBIN);
    const results = await Promise.all(Array.from({ length: 120 }, (_, i) => register(i, sourceId, unique('lead'))));
    const counts = operators.map((id) => results.filter((r) => r.contact!.operator!.id === id).length);
    expect(counts).toEqual([20, 40, 60]);
  });

  it('a watcher on one replica sees assignments made by the other, including queue drains', async () => {
    const { operators, sourceId } = await setUp(1, 1, [1]);
    const stream = replica(1).distribution.watchAssignments({ sourceId });
    const events: AssignmentEvent[] = [];
    const arrived = (predicate: (e: AssignmentEvent) => boolean) => new Promise<AssignmentEvent>((resolve) => {
      const found = events.find(predicate);
      if (found) return resolve(found);
      stream.on('data', (e: AssignmentEvent) => predicate(e) && resolve(e));
    });
    stream.on('data', (e: AssignmentEvent) => events.push(e));
    stream.on('error', () => undefined);
    // Subscribed once a probe assignment made on the other replica comes back.
    let probe = await register(0, sourceId, unique('probe'));
    for (let attempt = 0; attempt < 100 && !events.some((e) => e.contact!.id === probe.contact!.id); attempt++) {
      await replica(0).distribution.updateContactStatus({ contactId: probe.contact!.id, status: ContactStatus.CLOSED });
      probe = await register(0, sourceId, unique('probe'));
      await new Promise((resolve) => setTimeout(resolve, 50));
    }
    expect(events.some((e) => e.contact!.id === probe.contact!.id)).toBe(true);

    const queued = await register(0, sourceId, unique('lead'));
    expect(queued.contact!.operator).toBeUndefined();
    await replica(0).distribution.updateContactStatus({ contactId: probe.contact!.id, status: ContactStatus.CLOSED });
    const drained = await arrived((e) => e.contact!.id === queued.contact!.id);
    expect(drained.fromQueue).toBe(true);
    expect(drained.contact!.operator!.id).toBe(operators[0]);
    stream.cancel();
  });

  /** How many sessions of the database listen for assignments (each replica's listener names itself in pg_stat_activity). */
  async function listenerSessions(): Promise<number> {
    const { rows } = await db.query<{ n: number }>(
      'select count(*)::int as n from pg_stat_activity where datname = current_database() and application_name = $1',
      [LISTENER_APPLICATION_NAME],
    );
    return rows[0]!.n;
  }

  /** crm_assignments_relayed_total of replica `i`: the assignments it read back from the database for its watchers. */
  async function relayed(i: number): Promise<number> {
    const { metricsPort } = await replica(i).child.listening();
    const body = await (await fetch(`http://127.0.0.1:${metricsPort}/metrics`)).text();
    return Number(/^crm_assignments_relayed_total (\S+)$/m.exec(body)![1]);
  }

  it('a replica listens, and reads assignments back, only while a watcher is connected to it: it then hears every later assignment, in order', async () => {
    const { sourceId } = await setUp(1, 100_000, [1]);
    // Earlier tests' watchers are gone: nobody listens.
    await expect.poll(listenerSessions, { timeout: 5_000 }).toBe(0);
    const before = [await relayed(0), await relayed(1)];
    for (let n = 0; n < 10; n++) await register(n, sourceId, unique('unwatched'));
    // A relay would follow its commit at once; give it time to show.
    await new Promise((resolve) => setTimeout(resolve, 300));
    expect(await listenerSessions()).toBe(0);
    expect([await relayed(0), await relayed(1)]).toEqual(before);

    // A watcher on replica 1: subscribed once a probe registered on replica 0 comes back.
    const watcher = new StreamReader<AssignmentEvent, bigint>(replica(1).distribution.watchAssignments({ sourceId }), (e) => e.contact!.id);
    const probes: bigint[] = [];
    for (let attempt = 0; attempt < 100 && watcher.messages.length === 0; attempt++) {
      probes.push((await register(0, sourceId, unique('probe'))).contact!.id);
      await watcher.next(100);
    }
    expect(watcher.messages.length).toBeGreaterThan(0);
    expect(await listenerSessions()).toBe(1);
    // Every assignment committed after the subscription, made on the other replica, one after the other: all heard, in commit order, once each.
    const made: bigint[] = [];
    for (let n = 0; n < 30; n++) made.push((await register(0, sourceId, unique('watched'))).contact!.id);
    await expect.poll(() => made.every((id) => watcher.messages.includes(id)), { timeout: 5_000 }).toBe(true);
    const lastProbe = probes.at(-1)!;
    const afterProbes = watcher.messages.slice(watcher.messages.indexOf(lastProbe) + 1);
    expect(afterProbes).toEqual(made);
    expect(watcher.errors).toEqual([]);
    // Only the replica with the watcher read them back; the other one (which made them) did not.
    expect(await relayed(1)).toBeGreaterThanOrEqual(before[1]! + made.length);
    expect(await relayed(0)).toBe(before[0]);

    // The last watcher leaves: the replica stops listening, and reads nothing more.
    watcher.stream.cancel();
    await expect.poll(listenerSessions, { timeout: 5_000 }).toBe(0);
    const after = await relayed(1);
    for (let n = 0; n < 10; n++) await register(n, sourceId, unique('unwatched'));
    await new Promise((resolve) => setTimeout(resolve, 300));
    expect(await listenerSessions()).toBe(0);
    expect([await relayed(0), await relayed(1)]).toEqual([before[0], after]);
  });

  it('watchers coming and going keep one listening session per replica that has watchers, and each watcher hears what follows its subscription', async () => {
    const { sourceId } = await setUp(1, 100_000, [1]);
    await expect.poll(listenerSessions, { timeout: 5_000 }).toBe(0);
    const subscribed = async (i: number) => {
      const reader = new StreamReader<AssignmentEvent, bigint>(replica(i).distribution.watchAssignments({ sourceId }), (e) => e.contact!.id);
      for (let attempt = 0; attempt < 100 && reader.messages.length === 0; attempt++) {
        await register(i + 1, sourceId, unique('probe'));
        await reader.next(100);
      }
      expect(reader.messages.length).toBeGreaterThan(0);
      return reader;
    };
    const first = await subscribed(1);
    const second = await subscribed(1);
    expect(await listenerSessions()).toBe(1);
    // One of two leaves: the other keeps hearing, on the same session.
    first.stream.cancel();
    const kept = (await register(0, sourceId, unique('kept'))).contact!.id;
    await second.until((id) => id === kept);
    expect(await listenerSessions()).toBe(1);
    // Watchers on both replicas: a session each.
    const other = await subscribed(0);
    expect(await listenerSessions()).toBe(2);
    // The last one of replica 1 leaves and another comes right after, perhaps while the first session is still being closed: it hears all the same.
    second.stream.cancel();
    const again = await subscribed(1);
    const heard = (await register(0, sourceId, unique('again'))).contact!.id;
    await again.until((id) => id === heard);
    await other.until((id) => id === heard);
    await expect.poll(listenerSessions, { timeout: 5_000 }).toBe(2);
    again.stream.cancel();
    other.stream.cancel();
    await expect.poll(listenerSessions, { timeout: 5_000 }).toBe(0);
  });

  it('100 contacts with accept_within 1 s, never accepted: each deadline moves its contact exactly once, whichever replica sees it; events match the stored assignments', { timeout: 120_000 }, async () => {
    const { operators, sourceId } = await setUp(3, 1_000, [1, 1, 1]);
    await replica(0).admin.updateSource({ sourceId, acceptWithin: { seconds: 1n, nanos: 0 } });
    const stream = replica(0).distribution.watchAssignments({ sourceId });
    const events: AssignmentEvent[] = [];
    stream.on('data', (e: AssignmentEvent) => events.push(e));
    stream.on('error', () => undefined);
    // Subscribed once a probe assignment made on the other replica comes back.
    for (let attempt = 0; attempt < 100 && events.length === 0; attempt++) {
      const probe = await register(1, sourceId, unique('probe'));
      await replica(1).distribution.updateContactStatus({ contactId: probe.contact!.id, status: ContactStatus.CLOSED });
      await new Promise((resolve) => setTimeout(resolve, 50));
    }
    expect(events.length).toBeGreaterThan(0);
    const results = await Promise.all(Array.from({ length: 100 }, (_, i) => register(i, sourceId, unique('lead'))));
    const ids = results.map((r) => r.contact!.id);
    // Until every contact has been moved twice by the replicas' timers (however busy the machine), then every contact closed.
    const movedTwice = async () => (await db.query<{ n: number }>(
      `select count(*)::int as n from (select contact_id from assignment where contact_id = any($1::int[]) group by contact_id having count(*) >= 3) twice`,
      [ids.map(Number)],
    )).rows[0]!.n;
    await expect.poll(movedTwice, { timeout: 60_000, interval: 250 }).toBe(ids.length);
    await Promise.all(ids.map((contactId, i) => replica(i).distribution.updateContactStatus({ contactId, status: ContactStatus.CLOSED })));
    // Events of the last moves may still be on their way to the watcher.
    const stored = async () => (await db.query<{ n: number }>('select count(*)::int as n from assignment where contact_id = any($1::int[])', [ids.map(Number)])).rows[0]!.n;
    await expect.poll(async () => events.filter((e) => ids.includes(e.contact!.id)).length === (await stored()), { timeout: 10_000 }).toBe(true);
    stream.cancel();

    const { rows } = await db.query<{ contact_id: number; operator_id: number | null; previous_operator_id: number | null; reason: string; at: string }>(
      `select contact_id, operator_id, previous_operator_id, reason, (extract(epoch from assigned_at) * 1000)::bigint as at
         from assignment where contact_id = any($1::int[]) order by id`,
      [ids.map(Number)],
    );
    let moves = 0;
    for (const contactId of ids.map(Number)) {
      const history = rows.filter((r) => r.contact_id === contactId);
      expect(history[0]!.reason).toBe('NEW_CONTACT');
      for (let i = 1; i < history.length; i++) {
        const [before, move] = [history[i - 1]!, history[i]!];
        expect(move.reason).toBe('ACCEPT_TIMEOUT');
        // One move per deadline: each starts from where the last one left it, a whole accept_within later.
        expect(move.previous_operator_id).toBe(before.operator_id);
        expect(move.operator_id).not.toBeNull();
        expect(Number(move.at) - Number(before.at)).toBeGreaterThanOrEqual(1_000);
        moves += 1;
      }
      expect(history.length).toBeGreaterThanOrEqual(3);
      // The watcher heard exactly the stored assignments of this contact, in order.
      const heard = events.filter((e) => Number(e.contact!.id) === contactId);
      expect(heard.map((e) => [Number(e.contact!.operator?.id ?? 0), Number(e.previousOperatorId)])).toEqual(
        history.map((r) => [r.operator_id ?? 0, r.previous_operator_id ?? 0]),
      );
    }
    expect(moves).toBeGreaterThanOrEqual(200);
    expect(await loadMismatches(operators)).toEqual([]);
  });
});
