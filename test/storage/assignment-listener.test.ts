// The assignment listener on a real PostgreSQL database: a listening session
// only between hear() and stopHearing(), hearing again while the last session
// is still being closed, a lost session reported once, and refusal (never a
// hang) when the database does not take connections.
import { pino } from 'pino';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { UnavailableError } from '../../src/domain/errors.ts';
import { assignmentListener, LISTENER_APPLICATION_NAME, type AssignmentListener } from '../../src/storage/assignment-channel.ts';
import { queryOnce, terminateBackends, withDatabaseOutage } from '../support/faults.ts';
import { createTestDatabase, testDialect, type TestDatabase } from '../support/test-database.ts';

describe.skipIf(testDialect !== 'postgresql')('assignmentListener (PostgreSQL)', () => {
  let database: TestDatabase;
  let listener: AssignmentListener | undefined;
  let heard: number[][];
  let lost: string[];

  beforeAll(async () => {
    database = await createTestDatabase();
  });

  afterEach(async () => {
    await listener?.close();
    listener = undefined;
  });

  afterAll(async () => {
    await database?.drop();
  });

  function start(): AssignmentListener {
    heard = [];
    lost = [];
    listener = assignmentListener(database.url, pino({ level: 'silent' }), { deliver: (ids) => heard.push(ids), lost: (reason) => lost.push(reason) });
    return listener;
  }

  async function sessions(): Promise<number> {
    const rows = await queryOnce<{ n: number }>(database.url, 'select count(*)::int as n from pg_stat_activity where datname = current_database() and application_name = $1', [LISTENER_APPLICATION_NAME]);
    return rows[0]!.n;
  }

  const notify = (ids: number[]) => queryOnce(database.url, 'select pg_notify($1, $2)', ['crm_assignments', JSON.stringify(ids)]);

  it('listens only from hear() until stopHearing(), and hears what is committed in between', async () => {
    const listener = start();
    expect(await sessions()).toBe(0);
    await notify([1]);
    await listener.hear();
    expect(await sessions()).toBe(1);
    // A second hear() while listening shares the session.
    await listener.hear();
    expect(await sessions()).toBe(1);
    await notify([2]);
    await expect.poll(() => heard).toEqual([[2]]);
    listener.stopHearing();
    await expect.poll(sessions).toBe(0);
    await notify([3]);
    await new Promise((resolve) => setTimeout(resolve, 200));
    expect(heard).toEqual([[2]]);
    expect(lost).toEqual([]);
  });

  it('hear() right after stopHearing(), while that session is still closing, listens again on a new one and hears each notification once', async () => {
    const listener = start();
    await listener.hear();
    listener.stopHearing();
    await listener.hear();
    await notify([4]);
    await notify([5]);
    await expect.poll(() => heard).toEqual([[4], [5]]);
    await expect.poll(sessions).toBe(1);
    await new Promise((resolve) => setTimeout(resolve, 200));
    expect(heard).toEqual([[4], [5]]);
    expect(lost).toEqual([]);
  });

  it('a session lost while listening is reported once; the next hear() listens on a new one', async () => {
    const listener = start();
    await listener.hear();
    expect(await terminateBackends(database.url, `application_name = '${LISTENER_APPLICATION_NAME}'`)).toBe(1);
    await expect.poll(() => lost.length).toBe(1);
    expect(await sessions()).toBe(0);
    await listener.hear();
    await notify([6]);
    await expect.poll(() => heard).toEqual([[6]]);
    expect(lost).toHaveLength(1);
  });

  it('hear() is refused with UnavailableError while the database takes no connections, and listens once it does', async () => {
    const listener = start();
    await withDatabaseOutage(database.url, async () => {
      await expect(listener.hear()).rejects.toThrow(UnavailableError);
    });
    await listener.hear();
    expect(await sessions()).toBe(1);
    expect(lost).toEqual([]);
  });

  it('after close(), hear() is refused and no session is left', async () => {
    const listener = start();
    await listener.hear();
    await listener.close();
    expect(await sessions()).toBe(0);
    await expect(listener.hear()).rejects.toThrow(UnavailableError);
  });
});
