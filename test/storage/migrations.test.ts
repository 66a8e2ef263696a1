// Upgrading a database that holds data: the routing-policies migration keeps
// every row (SQLite rebuilds the source table to widen its strategy check,
// which must not lose a source's operators to ON DELETE CASCADE) and fills in
// the assignment history from the contacts.
import { MikroORM as PostgresORM } from '@mikro-orm/postgresql';
import { MikroORM as SqliteORM } from '@mikro-orm/sqlite';
import type { SqlEntityManager } from '@mikro-orm/sql';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { openDatabase, postgresConfig, sqliteConfig, type OpenDatabase } from '../../src/storage/orm.ts';
import { createTestDatabase, type TestDatabase } from '../support/test-database.ts';

const BEFORE_ROUTING_POLICIES = 'Migration20261127000000_lead_holders';

describe('the routing-policies migration on a database with data', () => {
  let database: TestDatabase;
  let upgraded: OpenDatabase;
  const t0 = Date.UTC(2026, 10, 1, 12, 0, 0);
  const at = (minutes: number) => new Date(t0 + minutes * 60_000);

  beforeAll(async () => {
    database = await createTestDatabase();
    const target = database.target;
    const old = target.kind === 'sqlite' ? await SqliteORM.init(sqliteConfig(target.path)) : await PostgresORM.init(postgresConfig(target.url));
    await old.migrator.up({ to: BEFORE_ROUTING_POLICIES });
    const em = old.em.fork() as SqlEntityManager;
    const run = (sql: string, params: unknown[] = []) => em.execute(sql, params.map((p) => (p instanceof Date ? em.getPlatform().processDateProperty(p) : p)));
    await run(`insert into operator (id, name, active, max_load, open_load, created_at) values (1, 'Anna', true, 5, 2, ?), (2, 'Boris', true, 5, 1, ?), (3, 'Vera', false, 5, 0, ?)`, [at(0), at(0), at(0)]);
    await run(`insert into source (id, name, code, description, strategy, lead_affinity, swrr_cycle, created_at) values
      (1, 'Telegram', 'tg', 'main bot', 'SMOOTH_WEIGHTED_ROUND_ROBIN', true, '1,2', ?), (2, 'WhatsApp', null, '', 'WEIGHTED_RANDOM', false, '', ?)`, [at(0), at(0)]);
    await run(`insert into source_operator (source_id, operator_id, weight, swrr_current) values (1, 1, 2, -1), (1, 2, 1, 1), (2, 2, 5, 0), (2, 3, 1, 0)`);
    await run(`insert into lead (id, external_id, name, created_at) values (1, 'tg-1', 'Ivan', ?)`, [at(0)]);
    await run(`insert into contact (id, lead_id, source_id, operator_id, status, message, outcome, created_at, assigned_at, closed_at) values
      (1, 1, 1, 1, 'NEW', 'hi', 'ASSIGNED', ?, ?, null),
      (2, 1, 1, 1, 'IN_PROGRESS', 'again', 'ASSIGNED_AFFINITY', ?, ?, null),
      (3, 1, 2, 2, 'NEW', 'queued, then drained', 'QUEUED_NO_CAPACITY', ?, ?, null),
      (4, 1, 2, null, 'NEW', 'still queued', 'QUEUED_NO_CAPACITY', ?, null, null),
      (5, 1, 2, 2, 'CLOSED', 'done', 'ASSIGNED', ?, ?, ?)`,
    [at(1), at(1), at(2), at(2), at(3), at(5), at(4), at(6), at(6), at(7)]);
    await old.close();
    upgraded = await openDatabase(target);
  });

  afterAll(async () => {
    await upgraded?.close();
    await database?.drop();
  });

  const fork = () => upgraded.orm.em.fork() as SqlEntityManager;
  const query = <T>(sql: string) => fork().execute<T[]>(sql);

  it('keeps every source, with its settings and round-robin state, and every operator weight', async () => {
    expect(await query('select id, name, code, strategy, swrr_cycle, accept_within_ms from source order by id')).toEqual([
      { id: 1, name: 'Telegram', code: 'tg', strategy: 'SMOOTH_WEIGHTED_ROUND_ROBIN', swrr_cycle: '1,2', accept_within_ms: 0 },
      { id: 2, name: 'WhatsApp', code: null, strategy: 'WEIGHTED_RANDOM', swrr_cycle: '', accept_within_ms: 0 },
    ]);
    expect(await query('select source_id, operator_id, weight, swrr_current from source_operator order by source_id, operator_id')).toEqual([
      { source_id: 1, operator_id: 1, weight: 2, swrr_current: -1 },
      { source_id: 1, operator_id: 2, weight: 1, swrr_current: 1 },
      { source_id: 2, operator_id: 2, weight: 5, swrr_current: 0 },
      { source_id: 2, operator_id: 3, weight: 1, swrr_current: 0 },
    ]);
  });

  it('keeps every contact, NORMAL priority, no accept deadline', async () => {
    expect(await query('select id, operator_id, status, priority, accept_by from contact order by id')).toEqual([
      { id: 1, operator_id: 1, status: 'NEW', priority: 2, accept_by: null },
      { id: 2, operator_id: 1, status: 'IN_PROGRESS', priority: 2, accept_by: null },
      { id: 3, operator_id: 2, status: 'NEW', priority: 2, accept_by: null },
      { id: 4, operator_id: null, status: 'NEW', priority: 2, accept_by: null },
      { id: 5, operator_id: 2, status: 'CLOSED', priority: 2, accept_by: null },
    ]);
  });

  it('fills in the assignment history: one row per assigned contact, its reason read from its outcome', async () => {
    expect(await query('select contact_id, source_id, operator_id, previous_operator_id, reason from assignment order by contact_id')).toEqual([
      { contact_id: 1, source_id: 1, operator_id: 1, previous_operator_id: null, reason: 'NEW_CONTACT' },
      { contact_id: 2, source_id: 1, operator_id: 1, previous_operator_id: null, reason: 'AFFINITY' },
      { contact_id: 3, source_id: 2, operator_id: 2, previous_operator_id: null, reason: 'QUEUE' },
      { contact_id: 5, source_id: 2, operator_id: 2, previous_operator_id: null, reason: 'NEW_CONTACT' },
    ]);
    const last = await query<{ id: number; last: unknown }>('select id, last_assigned_at as last from operator order by id');
    // SQLite keeps ms; PostgreSQL answers a timestamp's text.
    const millis = (value: unknown) => (value === null ? null : typeof value === 'string' ? Date.parse(value) : Number(value));
    expect(last.map((row) => [row.id, millis(row.last)])).toEqual([[1, at(2).getTime()], [2, at(6).getTime()], [3, null]]);
  });

  it('takes the new strategies, still refuses unknown ones, and keeps its references whole', async () => {
    const em = fork();
    await em.execute(`update source set strategy = 'LEAST_LOADED' where id = 2`);
    await em.execute(`update source set strategy = 'CAPACITY_WEIGHTED_RANDOM' where id = 1`);
    await expect(em.execute(`update source set strategy = 'FASTEST' where id = 1`)).rejects.toThrow();
    await expect(em.execute(`insert into source_operator (source_id, operator_id, weight) values (99, 1, 1)`)).rejects.toThrow();
    if (database.target.kind === 'sqlite') {
      expect(await query('pragma foreign_key_check')).toEqual([]);
      expect(await query('pragma integrity_check')).toEqual([{ integrity_check: 'ok' }]);
    }
  });
});
