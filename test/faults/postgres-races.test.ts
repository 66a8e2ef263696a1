// Fault injection on PostgreSQL with two real server processes on one
// database: calls racing across replicas for the same new lead or the same
// request_id, foreign NOTIFYs on the assignment channel, start-up load
// reconciliation while another replica serves, and concurrent replacements of
// one source's operator list. Runs when TEST_DATABASE_URL names a PostgreSQL server.
import type { ServiceError } from '@grpc/grpc-js';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type AssignmentEvent, type RegisterContactResponse } from '../../gen/crm/v1/distribution_pb.js';
import { ContactStatus, DistributionStrategy } from '../../gen/crm/v1/resources_pb.js';
import { HealthCheckResponse_ServingStatus as ServingStatus } from '../../gen/grpc/health/v1/health_pb.js';
import { startChildServer, type ChildServer } from '../support/child-server.ts';
import { sleep } from '../support/faults.ts';
import { serviceClients, type ServiceClients } from '../support/grpc-client.ts';
import { StreamReader } from '../support/stream-reader.ts';
import { createTestDatabase, testDialect, type TestDatabase } from '../support/test-database.ts';

interface Replica extends ServiceClients {
  child: ChildServer;
}

type LeadInput = { externalId?: string; phone?: string; email?: string };

/** What a failed call said, for assertions that print every failure. */
function describeError(error: unknown): string {
  const e = error as Partial<ServiceError>;
  return typeof e.code === 'number' ? `code ${e.code}: ${e.details}` : String(error);
}

/** Runs `count` jobs, at most `width` at a time. */
async function inWaves(count: number, width: number, job: (i: number) => Promise<void>): Promise<void> {
  let next = 0;
  await Promise.all(Array.from({ length: width }, async () => {
    while (next < count) await job(next++);
  }));
}

describe.skipIf(testDialect !== 'postgresql')('PostgreSQL races and faults across two replicas', () => {
  let database: TestDatabase;
  /** The replicas serving now; index 1 is replaced when it restarts. */
  const replicas: Replica[] = [];
  /** Every process started, restarted ones included: their logs, and clean-up. */
  const started: ChildServer[] = [];
  let db: pg.Client;
  const run = `${process.pid}x${Date.now() % 1_000_000}`;
  let sequence = 0;
  const unique = (prefix: string) => `${prefix}-${run}-${++sequence}`;

  async function startReplica(): Promise<Replica> {
    const child = await startChildServer({ DATABASE_URL: database.url });
    started.push(child);
    return { child, ...serviceClients(child.address) };
  }

  beforeAll(async () => {
    database = await createTestDatabase();
    replicas.push(...(await Promise.all([startReplica(), startReplica()])));
    db = new pg.Client({ connectionString: database.url });
    await db.connect();
  });

  afterAll(async () => {
    await db?.end();
    for (const r of replicas) r.close();
    for (const child of started) {
      child.kill('SIGTERM');
      await Promise.race([child.exited, sleep(15_000)]);
      await child.stop();
    }
    await database?.drop();
  });

  const replica = (i: number) => replicas[i % 2]!;

  async function setUp(count: number, maxLoad: number, options: { leadAffinity?: boolean; strategy?: DistributionStrategy } = {}) {
    const operators: bigint[] = [];
    for (let i = 0; i < count; i++) operators.push((await replica(i).admin.createOperator({ name: unique('op'), maxLoad })).operator!.id);
    const { source } = await replica(0).admin.createSource({ name: unique('source'), leadAffinity: options.leadAffinity ?? false, strategy: options.strategy });
    await replica(1).admin.setSourceOperators({ sourceId: source!.id, operators: operators.map((operatorId) => ({ operatorId, weight: 1 })) });
    return { operators, sourceId: source!.id };
  }

  const register = (i: number, sourceId: bigint, lead: LeadInput, requestId = '') =>
    replica(i).distribution.registerContact({ source: { case: 'sourceId', value: sourceId }, lead, message: 'm', requestId });

  /** Operators whose stored open_load differs from their open contacts, or exceeds max_load. */
  async function loadMismatches(operators: readonly bigint[]) {
    const { rows } = await db.query<{ id: number; open_load: number; max_load: number; actual: number }>(
      `select o.id, o.open_load, o.max_load,
              (select count(*)::int from contact c where c.operator_id = o.id and c.status in ('NEW', 'IN_PROGRESS')) as actual
         from operator o where o.id = any($1::int[]) order by o.id`,
      [operators.map(Number)],
    );
    return rows.filter((r) => r.open_load !== r.actual || r.open_load > r.max_load);
  }

  /** Both calls of a round, issued together; every failure is kept, none thrown. */
  async function both<T>(calls: [Promise<T>, Promise<T>]): Promise<{ values: T[]; errors: string[] }> {
    const settled = await Promise.allSettled(calls);
    return {
      values: settled.flatMap((s) => (s.status === 'fulfilled' ? [s.value] : [])),
      errors: settled.flatMap((s) => (s.status === 'rejected' ? [describeError(s.reason)] : [])),
    };
  }

  describe('races across replicas', () => {
    const ROUNDS = 200;
    /**
     * Most rounds run alone: each replica then commits a batch of one call, so
     * a lost race cannot hide behind a batch that fails and reruns its calls
     * one by one. The rest run a few at a time, so batches race too.
     */
    const ALONE = 140;
    const eachRound = async (job: (i: number) => Promise<void>) => {
      await inWaves(ALONE, 1, job);
      await inWaves(ROUNDS - ALONE, 4, (i) => job(ALONE + i));
    };

    it('the same new lead sent to both replicas at once: both succeed, one lead', async () => {
      const { operators, sourceId } = await setUp(2, 100_000);
      const rounds = Array.from({ length: ROUNDS }, (_, i) => {
        const n = ++sequence;
        // Every round's lead has an external_id; a third also a phone, a third an
        // email, so each unique identifier is raced for. Phones are stored as "+"
        // and the digits, emails lower-cased.
        const stored = {
          external_id: `lead-${run}-${n}`,
          ...(i % 3 === 1 ? { phone: `+${run.replace(/\D/g, '')}${n}` } : {}),
          ...(i % 3 === 2 ? { email: `lead-${run}-${n}@example.test` } : {}),
        };
        const lead: LeadInput = { externalId: stored.external_id, phone: stored.phone ?? '', email: stored.email?.toUpperCase() ?? '' };
        // Rounds alternate between no request_id and one of its own per call.
        const requestIds: [string, string] = i % 2 === 1 ? ['', ''] : [unique('a'), unique('b')];
        return { stored, lead, requestIds };
      });
      const errors: string[] = [];
      const results: RegisterContactResponse[][] = [];
      await eachRound(async (i) => {
        const round = rounds[i]!;
        const outcome = await both([register(0, sourceId, round.lead, round.requestIds[0]), register(1, sourceId, round.lead, round.requestIds[1])]);
        errors.push(...outcome.errors.map((e) => `round ${i}: ${e}`));
        results[i] = outcome.values;
      });
      expect(errors).toEqual([]);

      for (const [i, pair] of results.entries()) {
        expect(pair, `round ${i}`).toHaveLength(2);
        expect(new Set(pair.map((r) => r.contact!.lead!.id)).size, `round ${i}: one lead for both calls`).toBe(1);
        expect(pair.filter((r) => r.leadCreated), `round ${i}: exactly one call created the lead`).toHaveLength(1);
        expect(new Set(pair.map((r) => r.contact!.id)).size, `round ${i}: two contacts`).toBe(2);
        expect(pair.filter((r) => r.replayed), `round ${i}: nothing replayed`).toEqual([]);
      }

      // Exactly one stored lead per identifier, and it is the one both calls named.
      for (const column of ['external_id', 'phone', 'email'] as const) {
        const withIt = rounds.flatMap((r, i) => (r.stored[column] === undefined ? [] : [{ value: r.stored[column], i }]));
        expect(withIt.length).toBeGreaterThan(60);
        const { rows } = await db.query<{ value: string; ids: number[] }>(
          `select ${column} as value, array_agg(id order by id) as ids from lead where ${column} = any($1::text[]) group by ${column}`,
          [withIt.map((r) => r.value)],
        );
        const byValue = new Map(rows.map((row) => [row.value, row.ids]));
        for (const { value, i } of withIt) expect(byValue.get(value), `round ${i}: leads with ${column} ${value}`).toEqual([Number(results[i]![0]!.contact!.lead!.id)]);
      }
      // Two contacts per round, each request_id stored once.
      const { rows: contacts } = await db.query<{ n: number; keyed: number; distinct_keys: number }>(
        `select count(*)::int as n, count(request_id)::int as keyed, count(distinct request_id)::int as distinct_keys from contact where source_id = $1`,
        [Number(sourceId)],
      );
      const keyedRounds = rounds.filter((r) => r.requestIds[0] !== '').length;
      expect(contacts[0]).toEqual({ n: 2 * ROUNDS, keyed: 2 * keyedRounds, distinct_keys: 2 * keyedRounds });
      expect(await loadMismatches(operators)).toEqual([]);
    }, 120_000);

    it('the same request_id sent to both replicas at once: both succeed, one contact, the loser replays it', async () => {
      const { operators, sourceId } = await setUp(2, 100_000, { leadAffinity: true });
      // Half the rounds race for a new lead as well; the other half register for a lead that exists.
      const known = unique('known');
      await register(0, sourceId, { externalId: known });
      const rounds = Array.from({ length: ROUNDS }, (_, i) => ({ requestId: unique('request'), externalId: i % 2 === 0 ? unique('lead') : known }));
      const errors: string[] = [];
      const results: RegisterContactResponse[][] = [];
      await eachRound(async (i) => {
        const { requestId, externalId } = rounds[i]!;
        const outcome = await both([register(0, sourceId, { externalId }, requestId), register(1, sourceId, { externalId }, requestId)]);
        errors.push(...outcome.errors.map((e) => `round ${i}: ${e}`));
        results[i] = outcome.values;
      });
      expect(errors).toEqual([]);

      for (const [i, pair] of results.entries()) {
        expect(pair, `round ${i}`).toHaveLength(2);
        expect(pair.map((r) => r.replayed).sort(), `round ${i}: exactly one original answer`).toEqual([false, true]);
        expect(pair[0]!.contact!.id, `round ${i}: both name one contact`).toBe(pair[1]!.contact!.id);
        expect(pair[0]!.contact!.lead!.id, `round ${i}: both name one lead`).toBe(pair[1]!.contact!.lead!.id);
        expect(pair.every((r) => r.contact!.requestId === rounds[i]!.requestId), `round ${i}: request_id echoed`).toBe(true);
        const original = pair.find((r) => !r.replayed)!;
        const replay = pair.find((r) => r.replayed)!;
        expect(replay.leadCreated, `round ${i}: a replay creates no lead`).toBe(false);
        expect(original.leadCreated, `round ${i}: lead created only for a new lead`).toBe(i % 2 === 0);
        expect(replay.contact!.operator?.id, `round ${i}: the replay names the same operator`).toBe(original.contact!.operator?.id);
      }

      // One contact per request_id, one lead per identity.
      const { rows: perRequest } = await db.query<{ request_id: string; n: number }>(
        `select request_id, count(*)::int as n from contact where source_id = $1 and request_id = any($2::text[]) group by request_id`,
        [Number(sourceId), rounds.map((r) => r.requestId)],
      );
      expect(perRequest.length).toBe(ROUNDS);
      expect(perRequest.filter((r) => r.n !== 1)).toEqual([]);
      const { rows: perLead } = await db.query<{ external_id: string; n: number }>(
        `select external_id, count(*)::int as n from lead where external_id = any($1::text[]) group by external_id`,
        [[...new Set(rounds.map((r) => r.externalId))]],
      );
      expect(perLead.length).toBe(ROUNDS / 2 + 1);
      expect(perLead.filter((r) => r.n !== 1)).toEqual([]);
      const { rows: total } = await db.query<{ n: number }>('select count(*)::int as n from contact where source_id = $1', [Number(sourceId)]);
      expect(total[0]!.n).toBe(ROUNDS + 1);
      expect(await loadMismatches(operators)).toEqual([]);
    }, 120_000);
  });

  describe('a foreign NOTIFY on the assignment channel', () => {
    const FOREIGN = [
      'not json',
      '[1',
      '[["x",1]]',
      '{}',
      'null',
      '[[1,2]]',
      '[[-5,0]]',
      `1${'0'.repeat(400)}`, // a huge number (Infinity once parsed)
      '[[1e400,0]]',
      '[0]',
      '["1"]',
      '[1.5]',
      '[9007199254740993]', // beyond a safe integer
      '[9007199254740991]', // a safe integer, beyond PostgreSQL's integer
      '[2147483648]', // just beyond PostgreSQL's integer
      '[2147483647]', // well-formed, no such assignment
      '[]',
      `[${Array.from({ length: 700 }, () => '[1,0]').join(',')}]`.slice(0, 7_900), // cut short: not JSON
    ];

    it('is ignored: every replica keeps serving, and a watcher still hears real assignments from the other replica', async () => {
      const { operators, sourceId } = await setUp(1, 100_000);
      const watcher = new StreamReader<AssignmentEvent>(replica(1).distribution.watchAssignments({ sourceId }));
      // Subscribed once a probe registered on the other replica comes back.
      const probes = new Set<bigint>();
      for (let attempt = 0; attempt < 100 && watcher.messages.length === 0; attempt++) {
        probes.add((await register(0, sourceId, { externalId: unique('probe') })).contact!.id);
        await watcher.next(100);
      }
      expect(watcher.messages.length).toBeGreaterThan(0);

      const foreign = new pg.Client({ connectionString: database.url });
      await foreign.connect();
      try {
        for (const payload of FOREIGN) await foreign.query('select pg_notify($1, $2)', ['crm_assignments', payload]);
        await foreign.query(`notify crm_assignments, 'not json'`);
      } finally {
        await foreign.end();
      }

      // Notifications arrive in commit order and are relayed in order: once
      // this assignment is heard, every foreign payload before it was handled.
      const real = await register(0, sourceId, { externalId: unique('real') });
      expect(real.contact!.operator?.id).toBe(operators[0]);
      const heard = await watcher.until((e) => e.contact?.id === real.contact!.id);
      expect(heard).toMatchObject({ fromQueue: false, contact: { id: real.contact!.id, source: { id: sourceId }, operator: { id: operators[0] } } });
      expect(watcher.errors).toEqual([]);
      // Nothing but real assignments reached the watcher.
      const known = new Set([...probes, real.contact!.id]);
      expect(watcher.messages.filter((e) => !known.has(e.contact!.id)).map((e) => e.contact!.id)).toEqual([]);

      // And it keeps hearing: an assignment made on the watcher's own replica too.
      const local = await register(1, sourceId, { externalId: unique('local') });
      await watcher.until((e) => e.contact?.id === local.contact!.id);
      expect(watcher.errors).toEqual([]);

      for (const [i, r] of replicas.entries()) {
        expect(r.child.running, `replica ${i} runs`).toBe(true);
        expect((await r.health.check({ service: '' })).status, `replica ${i} health`).toBe(ServingStatus.SERVING);
        const after = await register(i, sourceId, { externalId: unique('after') });
        expect(after.contact!.operator?.id).toBe(operators[0]);
        // The replica with the watcher heard the foreign payloads and said so once; the other one, with no watcher, did not listen.
        const warnings = r.child.logs().filter((l) => typeof l.msg === 'string' && l.msg.startsWith('ignoring a notification that is not ours'));
        expect(warnings, `replica ${i} warnings`).toHaveLength(i === 1 ? 1 : 0);
        const relayFailures = r.child.logs().filter((l) => l.msg === 'could not read assignments to relay; ending watch streams');
        expect(relayFailures, `replica ${i} relay failures`).toEqual([]);
      }
      watcher.stream.cancel();
    }, 60_000);
  });

  describe('closing a queued contact while a drain on the other replica assigns it', () => {
    it('frees the load exactly once and never gives a closed contact an operator (100 rounds)', async () => {
      // max_load 1: closing the holder drains the queued contact, which is being closed at the same time.
      const { operators: [operator], sourceId } = await setUp(1, 1);
      let holder = (await register(0, sourceId, { externalId: unique('holder') })).contact!.id;
      for (let round = 0; round < 100; round++) {
        const queued = (await register(round, sourceId, { externalId: unique('queued') })).contact!;
        expect(queued.operator).toBeUndefined();
        const { errors } = await both([
          replica(round).distribution.updateContactStatus({ contactId: holder, status: ContactStatus.CLOSED }),
          replica(round + 1).distribution.updateContactStatus({ contactId: queued.id, status: ContactStatus.CLOSED }),
        ]);
        expect(errors).toEqual([]);
        expect(await loadMismatches([operator!])).toEqual([]);
        const { rows } = await db.query<{ operator_id: number | null }>('select operator_id from contact where id = $1', [Number(queued.id)]);
        // Closed while queued, or closed after the drain gave it the operator: either way it is closed and counted right.
        expect(rows[0]!.operator_id === null || rows[0]!.operator_id === Number(operator)).toBe(true);
        // Whichever way the race went, the operator has room again for the next holder.
        const next = await register(round, sourceId, { externalId: unique('holder') });
        expect(next.contact!.operator?.id).toBe(operator);
        holder = next.contact!.id;
      }
    });
  });

  describe('concurrent SetSourceOperators', () => {
    it('50 replacements of one list across both replicas all succeed, and one of them is what is stored', async () => {
      const operators: bigint[] = [];
      for (let i = 0; i < 6; i++) operators.push((await replica(i).admin.createOperator({ name: unique('op'), maxLoad: 10 })).operator!.id);
      const { source } = await replica(0).admin.createSource({ name: unique('source') });
      const sourceId = source!.id;
      // 50 different lists: different subsets of the operators (one empty), different weights.
      const lists = Array.from({ length: 50 }, (_, i) => {
        const mask = i === 0 ? 0 : (i % 63) + 1;
        return operators.flatMap((operatorId, k) => (mask & (1 << k) ? [{ operatorId, weight: i + k + 1 }] : []));
      });
      const key = (list: readonly { operatorId: bigint; weight: number }[]) =>
        JSON.stringify([...list].sort((a, b) => Number(a.operatorId - b.operatorId)).map((o) => [Number(o.operatorId), o.weight]));
      expect(new Set(lists.map(key)).size).toBe(50);

      const settled = await Promise.allSettled(lists.map((list, i) => replica(i).admin.setSourceOperators({ sourceId, operators: list })));
      expect(settled.flatMap((s, i) => (s.status === 'rejected' ? [`call ${i}: ${describeError(s.reason)}`] : []))).toEqual([]);
      // Each call ran alone: its answer is exactly the list it set.
      settled.forEach((s, i) => {
        const answer = (s as PromiseFulfilledResult<Awaited<ReturnType<Replica['admin']['setSourceOperators']>>>).value.source!.operators;
        expect(key(answer), `call ${i}`).toBe(key(lists[i]!));
      });

      const { rows } = await db.query<{ operator_id: number; weight: number }>(
        'select operator_id, weight from source_operator where source_id = $1 order by operator_id',
        [Number(sourceId)],
      );
      const stored = JSON.stringify(rows.map((r) => [r.operator_id, r.weight]));
      expect(lists.map(key)).toContain(stored);
      for (const i of [0, 1]) {
        const { source: read } = await replica(i).query.getSource({ source: { case: 'sourceId', value: sourceId } });
        expect(key(read!.operators), `GetSource on replica ${i}`).toBe(stored);
      }
    }, 60_000);
  });

  describe('start-up reconciliation while another replica serves', () => {
    /** Closed contacts of long ago: each start-up count reads them all, so it takes a while. */
    const HISTORY = 150_000;

    it('six restarts of one replica while the other registers and closes (queue in use) leave every load exact, with nothing to repair', async () => {
      // Operators full with a queue behind them: every close hands its place to a queued contact.
      const queue = await setUp(3, 3, { leadAffinity: true });
      // Operators with room: every registration and every close changes a load.
      const room = await setUp(2, 100_000);
      const sources = [queue.sourceId, room.sourceId];
      const operators = [...queue.operators, ...room.operators];
      const a = replica(0);
      // The history belongs to an operator of its own, whose load (0) is right:
      // nothing for a start-up to repair, only more for its count to read, so
      // that A's commits land while B counts.
      const historian = (await a.admin.createOperator({ name: unique('historian'), maxLoad: 1 })).operator!.id;
      const archive = (await a.admin.createSource({ name: unique('archive') })).source!.id;
      const old = await register(0, archive, { externalId: unique('old') });
      await db.query(
        `insert into contact (lead_id, source_id, operator_id, status, message, outcome, created_at, assigned_at, closed_at)
         select $1, $2, $3, 'CLOSED', 'old', 'ASSIGNED', now(), now(), now() from generate_series(1, $4)`,
        [Number(old.contact!.lead!.id), Number(archive), Number(historian), HISTORY],
      );
      await db.query('analyze contact');
      expect(await loadMismatches([...operators, historian])).toEqual([]);

      const pool = new pg.Pool({ connectionString: database.url, max: 2 });
      const errors: string[] = [];
      const claimed = new Set<number>();
      let stop = false;
      let registered = 0;
      let closed = 0;
      const returning = Array.from({ length: 40 }, () => unique('returning'));

      const registering = async (w: number) => {
        for (let n = 0; !stop; n++) {
          // Some leads come back (affinity), most are new.
          const externalId = n % 4 === 0 ? returning[(w * 7 + n) % returning.length]! : unique('load');
          try {
            await a.distribution.registerContact({ source: { case: 'sourceId', value: sources[(w + n) % 2]! }, lead: { externalId }, message: 'm', requestId: '' });
            registered += 1;
          } catch (error) {
            errors.push(`register: ${describeError(error)}`);
          }
        }
      };
      const closing = async (w: number) => {
        for (let n = 0; !stop; n++) {
          const { rows } = await pool.query<{ id: number }>(
            `select id from contact where source_id = any($1::int[]) and operator_id is not null and status in ('NEW', 'IN_PROGRESS')
              and not (id = any($2::int[])) order by random() limit 1`,
            [sources.map(Number), [...claimed]],
          );
          const id = rows[0]?.id;
          if (id === undefined || claimed.has(id)) {
            await sleep(5);
            continue;
          }
          claimed.add(id);
          try {
            if ((w + n) % 2 === 0) await a.distribution.updateContactStatus({ contactId: BigInt(id), status: ContactStatus.IN_PROGRESS });
            await a.distribution.updateContactStatus({ contactId: BigInt(id), status: ContactStatus.CLOSED });
            closed += 1;
          } catch (error) {
            errors.push(`close ${id}: ${describeError(error)}`);
          }
        }
      };
      const load = Promise.all([...[0, 1, 2, 3].map(registering), ...[0, 1, 2].map(closing)]);

      const exits: (number | string)[] = [];
      try {
        for (let restart = 0; restart < 6; restart++) {
          const b = replicas[1]!;
          b.close();
          b.child.kill('SIGTERM');
          exits.push(await b.child.exited);
          // Each start reconciles the loads before it listens.
          replicas[1] = await startReplica();
          expect((await replicas[1].health.check({ service: '' })).status).toBe(ServingStatus.SERVING);
        }
      } finally {
        stop = true;
        await load;
        await pool.end();
      }

      expect(exits).toEqual([0, 0, 0, 0, 0, 0]);
      expect(errors).toEqual([]);
      // The load was real: the queue was used and drained, and loads moved.
      expect(registered).toBeGreaterThan(50);
      expect(closed).toBeGreaterThan(20);
      const { rows: outcomes } = await db.query<{ queued: number; drained: number }>(
        `select count(*) filter (where outcome like 'QUEUED%')::int as queued,
                count(*) filter (where outcome like 'QUEUED%' and operator_id is not null)::int as drained
           from contact where source_id = $1`,
        [Number(queue.sourceId)],
      );
      expect(outcomes[0]!.queued).toBeGreaterThan(0);
      expect(outcomes[0]!.drained).toBeGreaterThan(0);

      // Every stored load is its real count of open contacts, within max_load.
      expect(await loadMismatches([...operators, historian])).toEqual([]);
      // No contact waits in the queue while an operator of its source has room.
      const { rows: idle } = await db.query<{ id: number; open_load: number; max_load: number }>(
        `select o.id, o.open_load, o.max_load from operator o join source_operator so on so.operator_id = o.id
          where so.source_id = $1 and so.weight > 0 and o.active and o.open_load < o.max_load
            and exists (select 1 from contact c where c.source_id = $1 and c.operator_id is null and c.status = 'NEW')`,
        [Number(queue.sourceId)],
      );
      expect(idle).toEqual([]);

      // Nothing changed loads behind the service's back: no start-up found anything to repair.
      const repairs = started.flatMap((child) => child.logs().filter((l) => typeof l.msg === 'string' && l.msg.startsWith('repaired an operator load')));
      console.info(`reconciliation: ${started.length} processes, ${repairs.length} "repaired an operator load" warnings, ${registered} registered, ${closed} closed during ${exits.length} restarts`);
      expect(repairs).toEqual([]);
      expect(replica(0).child.running).toBe(true);
      expect((await replica(0).health.check({ service: '' })).status).toBe(ServingStatus.SERVING);
    }, 150_000);
  });
});
