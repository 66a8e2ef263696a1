// Micro-batching of RegisterContact at the domain level, over an in-memory SQLite.
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { AssignmentFeed } from '../../src/domain/assignment/feed.ts';
import { localPublisher } from '../../src/domain/assignment/publisher.ts';
import { Contact, Lead, Operator, Source, SourceOperator } from '../../src/domain/entities.ts';
import { Registrations, type RegisterContactInput } from '../../src/domain/contacts/registration.ts';
import { UnitOfWork } from '../../src/domain/unit-of-work.ts';
import { openDatabase, type OpenDatabase } from '../../src/storage/orm.ts';

let database: OpenDatabase;
let batches: number[];
let splits: number;
let registrations: Registrations;

beforeEach(async () => {
  database = await openDatabase({ kind: 'sqlite', path: ':memory:' });
  const em = database.orm.em.fork();
  const now = new Date();
  await em.insert(Source, { name: 'bot', code: 'bot', createdAt: now });
  for (let i = 1; i <= 3; i++) {
    await em.insert(Operator, { name: `op${i}`, maxLoad: 5, createdAt: now });
    await em.insert(SourceOperator, { source: 1, operator: i, weight: i });
  }
  batches = [];
  splits = 0;
  registrations = new Registrations(new UnitOfWork(database.orm, localPublisher(new AssignmentFeed())), {
    observer: { committed: (size) => batches.push(size), split: () => (splits += 1) },
  });
});
afterEach(() => database.close());

function input(externalId: string, requestId = ''): RegisterContactInput {
  return { source: { id: 1 }, lead: { externalId, phone: '', email: '', name: '' }, message: 'm', requestId, priority: 'NORMAL' };
}

describe('RegisterContact batching', () => {
  it('concurrent calls share transactions and each gets its own contact and lead', async () => {
    const results = await Promise.all(Array.from({ length: 40 }, (_, i) => registrations.register(input(`lead-${i}`))));
    expect(splits).toBe(0);
    expect(batches.reduce((a, b) => a + b, 0)).toBe(40);
    expect(Math.max(...batches)).toBeGreaterThan(1);
    expect(new Set(results.map((r) => r.contact.id)).size).toBe(40);
    expect(new Set(results.map((r) => r.contact.lead.id)).size).toBe(40);
    expect(results.every((r) => r.leadCreated)).toBe(true);
    // 3 operators x max_load 5: exactly 15 assigned, never more than 5 each.
    const assigned = results.filter((r) => r.contact.operator !== null);
    expect(assigned).toHaveLength(15);
    const em = database.orm.em.fork();
    for (const operator of await em.find(Operator, {})) expect(operator.openLoad).toBe(5);
  });

  it('within one batch, a repeated lead is created once and a repeated request_id is replayed', async () => {
    const results = await Promise.all([
      registrations.register(input('first')),
      registrations.register(input('same')),
      registrations.register(input('same')),
      registrations.register(input('other', 'req-1')),
      registrations.register(input('other', 'req-1')),
    ]);
    expect(splits).toBe(0);
    expect(results.slice(1, 3).map((r) => r.leadCreated)).toEqual([true, false]);
    expect(results[1]!.contact.lead.id).toBe(results[2]!.contact.lead.id);
    expect(results[1]!.contact.id).not.toBe(results[2]!.contact.id);
    expect(results[4]!.replayed).toBe(true);
    expect(results[4]!.contact.id).toBe(results[3]!.contact.id);
  });

  it('a call whose deadline passed while it waited is dropped and writes nothing', async () => {
    const expired = new AbortController();
    expired.abort(new Error('deadline exceeded'));
    const results = await Promise.allSettled([
      registrations.register(input('kept')),
      registrations.register(input('dropped'), expired.signal),
    ]);
    expect(results.map((r) => r.status)).toEqual(['fulfilled', 'rejected']);
    expect((results[1] as PromiseRejectedResult).reason).toBe(expired.signal.reason);
    const em = database.orm.em.fork();
    expect(await em.count(Contact, {})).toBe(1);
    expect(await em.count(Lead, { externalId: 'dropped' })).toBe(0);
  });

  it('an unknown source fails only its own call', async () => {
    const results = await Promise.allSettled([
      registrations.register(input('a')),
      registrations.register({ ...input('b'), source: { code: 'nope' } }),
      registrations.register(input('c')),
    ]);
    expect(results.map((r) => r.status)).toEqual(['fulfilled', 'rejected', 'fulfilled']);
    expect(splits).toBe(0);
  });

  it('with isolateExclusiveSources, calls for a round-robin source are batched in a lane of their own beside the others, once the source was seen', async () => {
    const em = database.orm.em.fork();
    await em.insert(Source, { name: 'rr', code: 'rr', strategy: 'SMOOTH_WEIGHTED_ROUND_ROBIN', createdAt: new Date() });
    for (let i = 1; i <= 3; i++) await em.insert(SourceOperator, { source: 2, operator: i, weight: 1 });
    const sizes: number[] = [];
    const isolating = new Registrations(new UnitOfWork(database.orm, localPublisher(new AssignmentFeed())), {
      isolateExclusiveSources: true,
      observer: { committed: (size) => sizes.push(size), split: () => (splits += 1) },
    });
    const roundRobin = (externalId: string): RegisterContactInput => ({ ...input(externalId), source: { code: 'rr' } });
    // Not seen yet: one transaction, which learns that the source locks exclusively; from then on its calls take the other lane.
    await Promise.all([isolating.register(input('w0')), isolating.register(roundRobin('r0'))]);
    expect(sizes).toEqual([2]);
    sizes.length = 0;
    const results = await Promise.all([
      ...['w1', 'w2', 'w3'].map((id) => isolating.register(input(id))),
      ...['r1', 'r2', 'r3'].map((id) => isolating.register(roundRobin(id))),
    ]);
    expect(sizes.sort()).toEqual([3, 3]);
    expect(splits).toBe(0);
    // Round-robin stays exact across the split: with equal weights, the three calls after the first went to three different operators.
    const rrOperators = [...results.slice(3)].map((r) => r.contact.operator!.id);
    expect(new Set(rrOperators).size).toBe(3);
  });
});
