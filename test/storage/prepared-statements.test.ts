// The hot path's prepared statements: one cache per database, errors
// converted as MikroORM converts its own (so the unit of work still retries
// lost races), and a bounded set of texts reused by batch after batch.
import { UniqueConstraintViolationException } from '@mikro-orm/core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { AssignmentFeed } from '../../src/domain/assignment/feed.ts';
import { localPublisher } from '../../src/domain/assignment/publisher.ts';
import { Registrations, type RegisterContactInput } from '../../src/domain/contacts/registration.ts';
import { Operator, Source, SourceOperator } from '../../src/domain/entities.ts';
import { UnitOfWork } from '../../src/domain/unit-of-work.ts';
import { execute, inList, paddedLength, powerOfTwoChunks, preparedCount } from '../../src/storage/prepared-statements.ts';
import { openDatabase, type OpenDatabase } from '../../src/storage/orm.ts';
import { mulberry32 } from '../support/seeded-random.ts';
import { createTestDatabase, testDialect, type TestDatabase } from '../support/test-database.ts';

describe('statement texts', () => {
  it('pads IN-lists to a power of two with the last value, and an empty one to (null)', () => {
    expect(inList([])).toEqual({ sql: '?', params: [null] });
    expect(inList([7])).toEqual({ sql: '?', params: [7] });
    expect(inList([1, 2, 3])).toEqual({ sql: '?, ?, ?, ?', params: [1, 2, 3, 3] });
    expect(inList(['a', 'b', 'c', 'd', 'e'])).toEqual({ sql: '?, ?, ?, ?, ?, ?, ?, ?', params: ['a', 'b', 'c', 'd', 'e', 'e', 'e', 'e'] });
    expect([0, 1, 2, 3, 4, 5, 8, 9, 256].map(paddedLength)).toEqual([1, 1, 2, 4, 4, 8, 8, 16, 256]);
  });

  it('splits inserts into power-of-two chunks, largest first, that add up', () => {
    expect(powerOfTwoChunks(0)).toEqual([]);
    expect(powerOfTwoChunks(13)).toEqual([8, 4, 1]);
    expect(powerOfTwoChunks(256)).toEqual([256]);
    for (let n = 1; n <= 300; n++) {
      const chunks = powerOfTwoChunks(n);
      expect(chunks.reduce((a, b) => a + b, 0)).toBe(n);
      expect(chunks.every((size, i) => Number.isInteger(Math.log2(size)) && (i === 0 || size < chunks[i - 1]!))).toBe(true);
    }
  });
});

describe(`prepared statements on ${testDialect}`, () => {
  const opened: { database: TestDatabase; open: OpenDatabase; uow: UnitOfWork }[] = [];

  beforeAll(async () => {
    for (let i = 0; i < 2; i++) {
      const database = await createTestDatabase();
      const open = await openDatabase(database.target);
      opened.push({ database, open, uow: new UnitOfWork(open.orm, localPublisher(new AssignmentFeed())) });
    }
  });

  afterAll(async () => {
    for (const { database, open } of opened) {
      await open.close();
      await database.drop();
    }
  });

  const insertOperator = 'insert into operator (name, max_load, open_load, active, created_at) values (?, ?, 0, ?, ?) returning id';
  const operatorNames = 'select name from operator order by id';

  it('each database keeps its own: the same text runs on each database and sees only its rows', async () => {
    const [first, second] = opened;
    const before = await Promise.all(opened.map(({ uow }) => uow.run(async (tx) => preparedCount(tx))));
    await first!.uow.run((tx) => execute(tx, insertOperator, ['only-in-first', 3, true, new Date()]));
    await second!.uow.run((tx) => execute(tx, insertOperator, ['only-in-second', 4, false, new Date()]));
    const names = await Promise.all(opened.map(({ uow }) => uow.run(async (tx) => (await execute<{ name: string }>(tx, operatorNames)).rows.map((row) => row.name))));
    expect(names).toEqual([['only-in-first'], ['only-in-second']]);
    // Values were bound as given, dates and booleans included, and the ORM reads them back.
    const stored = await second!.uow.read((tx) => tx.findOneOrFail(Operator, { name: 'only-in-second' }));
    expect({ active: stored.active, maxLoad: stored.maxLoad }).toEqual({ active: false, maxLoad: 4 });
    expect(Math.abs(stored.createdAt.getTime() - Date.now())).toBeLessThan(60_000);

    const after = await Promise.all(opened.map(({ uow }) => uow.run(async (tx) => preparedCount(tx))));
    expect(after).toEqual(before.map((n) => n + 2));
    // Run again, in new transactions: nothing new is prepared.
    for (const { uow } of opened) await uow.run((tx) => execute(tx, operatorNames));
    expect(await Promise.all(opened.map(({ uow }) => uow.run(async (tx) => preparedCount(tx))))).toEqual(after);
  });

  it.runIf(testDialect === 'postgresql')('on PostgreSQL a text is a named statement of the connection that ran it, parsed once', async () => {
    const { uow } = opened[0]!;
    // One unit at a time on a pool that reuses idle connections: the same connection runs them all.
    for (let i = 0; i < 3; i++) await uow.run((tx) => execute(tx, operatorNames));
    const statements = await uow.run(async (tx) => (await execute<{ name: string; statement: string }>(tx, 'select name, statement from pg_prepared_statements')).rows);
    expect(statements.filter((s) => s.statement === 'select name from operator order by id')).toHaveLength(1);
    expect(statements.every((s) => /^crm_\d+$/.test(s.name))).toBe(true);
  });

  it('refuses to run outside a unit of work, where the connection may be another transaction\'s', async () => {
    await expect(opened[0]!.uow.read((tx) => execute(tx, operatorNames))).rejects.toThrow(/only inside a unit of work/);
  });

  it('converts errors as MikroORM does: a unique violation is one, and the unit of work runs again on it', async () => {
    const { uow } = opened[0]!;
    await uow.run((tx) => execute(tx, insertOperator, ['taken', 1, true, new Date()]));
    const refused = await uow.run((tx) => execute(tx, insertOperator, ['taken', 1, true, new Date()]), { uniqueViolation: (error) => error as Error }).catch((error: unknown) => error);
    expect(refused).toBeInstanceOf(UniqueConstraintViolationException);

    // Without a refusal, a unique violation is a lost race: the unit runs again, and this time finds the name taken.
    let attempts = 0;
    const name = await uow.run(async (tx) => {
      attempts += 1;
      const wanted = attempts === 1 ? 'taken' : 'taken-2';
      await execute(tx, insertOperator, [wanted, 1, true, new Date()]);
      return wanted;
    });
    expect({ attempts, name }).toEqual({ attempts: 2, name: 'taken-2' });
  });

  it('registration batches of every size from 1 to 64 share a bounded set of texts, reused by the next batches', async () => {
    const { open, uow } = opened[1]!;
    const em = open.orm.em.fork();
    const now = new Date();
    const source = await em.insert(Source, { name: 'bot', code: 'bot', createdAt: now });
    for (let i = 1; i <= 4; i++) {
      const operator = await em.insert(Operator, { name: `op${i}`, maxLoad: 1_000_000, createdAt: now });
      await em.insert(SourceOperator, { source, operator, weight: i });
    }
    // Each pass makes the same batches with the same draws: its own leads, some repeated within it.
    const pass = async (name: string) => {
      const registrations = new Registrations(uow, { random: mulberry32(1) });
      let sequence = 0;
      const input = (repeat: boolean): RegisterContactInput => {
        sequence += 1;
        const externalId = `${name}-lead-${repeat ? sequence % 7 : sequence}`;
        return { source: { id: source }, lead: { externalId, phone: '', email: '', name: '' }, message: 'm', requestId: `${name}-${sequence}`, priority: 'NORMAL' };
      };
      for (let size = 1; size <= 64; size++) await Promise.all(Array.from({ length: size }, (_, i) => registrations.register(input(i % 2 === 0))));
    };
    await pass('first');
    const texts = await uow.run(async (tx) => preparedCount(tx));
    // A few dozen: each padded list or chunk size is one text, not one per batch size or per value.
    expect(texts).toBeLessThanOrEqual(80);
    await pass('second');
    expect(await uow.run(async (tx) => preparedCount(tx))).toBe(texts);
    const contacts = await uow.read((tx) => tx.getConnection().execute<{ n: number | string }[]>('select count(*) as n from contact'));
    expect(Number(contacts[0]!.n)).toBe(2 * (64 * 65) / 2);
  });
});
