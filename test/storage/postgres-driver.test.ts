// Transactions whose PostgreSQL connection dies under them give that
// connection back. Before, each kept one pooled connection forever: after ten
// (the pool's size) every later call waited for a connection and failed.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { UnavailableError } from '../../src/domain/errors.ts';
import { UnitOfWork } from '../../src/domain/unit-of-work.ts';
import { openDatabase, type OpenDatabase } from '../../src/storage/orm.ts';
import { sleep, terminateBackends } from '../support/faults.ts';
import { createTestDatabase, testDialect, type TestDatabase } from '../support/test-database.ts';

describe.skipIf(testDialect !== 'postgresql')('PostgreSQL connections lost inside a transaction', () => {
  let database: TestDatabase;
  let open: OpenDatabase;
  let uow: UnitOfWork;

  beforeAll(async () => {
    database = await createTestDatabase();
    open = await openDatabase(database.target);
    uow = new UnitOfWork(open.orm, { stage: async () => undefined, committed: () => undefined });
  });

  afterAll(async () => {
    await open?.close();
    await database?.drop();
  });

  it('are returned to the pool: 15 terminated transactions (more than the pool holds) later, calls still succeed', async () => {
    for (let round = 0; round < 15; round++) {
      const cut = uow.run(async (tx) => {
        await tx.execute('select pg_sleep(5)');
      }).then(() => 'committed', (error: unknown) => error);
      // Terminated as soon as it is running.
      let ended = 0;
      for (let wait = 0; wait < 100 && ended === 0; wait++) {
        await sleep(20);
        ended = await terminateBackends(database.url, "query like '%pg_sleep%'");
      }
      expect(ended).toBe(1);
      expect(await cut).toBeInstanceOf(UnavailableError);
    }
    await expect(uow.read(async (tx) => tx.execute<{ answer: number }[]>('select 42 as answer'))).resolves.toEqual([{ answer: 42 }]);
    await expect(uow.run(async (tx) => tx.execute<{ answer: number }[]>('select 43 as answer'))).resolves.toEqual([{ answer: 43 }]);
  });

  it('ended while idle in the pool: calls fail at most with UNAVAILABLE, and 15 rounds later still succeed', async () => {
    const outcomes = new Map<string, number>();
    for (let round = 0; round < 15; round++) {
      // Fill the pool with idle connections, end them all, and begin at once on whatever the pool still lends
      // (a BEGIN on a dead connection must give it back too; the pool usually drops them first).
      await Promise.all(Array.from({ length: 5 }, () => uow.run((tx) => tx.execute('select pg_sleep(0.05)'))));
      await terminateBackends(database.url);
      const results = await Promise.all(Array.from({ length: 5 }, () => uow.run((tx) => tx.execute('select 1')).then(() => 'ok', (error: unknown) => (error as Error).name)));
      for (const result of results) outcomes.set(result, (outcomes.get(result) ?? 0) + 1);
    }
    // Whatever failed, failed as UNAVAILABLE, never as a bug.
    expect([...outcomes.keys()].filter((name) => name !== 'ok' && name !== 'UnavailableError')).toEqual([]);
    await expect(uow.read(async (tx) => tx.execute<{ answer: number }[]>('select 44 as answer'))).resolves.toEqual([{ answer: 44 }]);
  });
});
