// Two server processes on one PostgreSQL database: every guarantee holds across
// them. Runs when TEST_DATABASE_URL names a PostgreSQL server (.ci/run sets it
// when one answers on 127.0.0.1:5432).
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { AdminService } from '../../gen/crm/v1/admin_pb.js';
import { DistributionService, type AssignmentEvent } from '../../gen/crm/v1/distribution_pb.js';
import { ContactStatus, DistributionStrategy } from '../../gen/crm/v1/resources_pb.js';
import { migrations } from '../../src/storage/migrations/index.ts';
import { startChildServer, type ChildServer } from '../support/child-server.ts';
import { grpcClient, type GrpcClient } from '../support/grpc-client.ts';
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
