// npm run copy-to-postgres: a SQLite server's data, built through the API,
// moved into a fresh PostgreSQL database, where a server sees the same
// operators, sources, leads, contacts, loads and statistics, and new rows get
// fresh ids. Runs only with TEST_DATABASE_URL (a PostgreSQL server).
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import pg from 'pg';
import { describe, expect, it } from 'vitest';
import { ContactPriority, ContactStatus, DistributionStrategy } from '../../gen/crm/v1/resources_pb.js';
import { allContacts, createOperators, createSource, isOpen, register, unique } from '../support/fixtures.ts';
import { runNpmScript, type ScriptResult } from '../support/npm-script.ts';
import { createTestDatabase, testDialect } from '../support/test-database.ts';
import { startTestServer, type TestServer } from '../support/test-server.ts';

/** Every table, ordered by its primary key. */
const TABLES = { operator: 'id', source: 'id', source_operator: 'source_id, operator_id', lead: 'id', contact: 'id', assignment: 'id' } as const;

/** What the API shows of everything stored. */
async function snapshot(t: TestServer) {
  const { sources } = await t.query.listSources({ pageSize: 500 });
  return {
    operators: (await t.query.listOperators({ pageSize: 500 })).operators,
    sources,
    leads: (await t.query.listLeads({ pageSize: 500 })).leads,
    contacts: await allContacts(t),
    operatorStats: (await t.query.getOperatorStats({})).operators,
    distributionStats: await Promise.all(sources.map((source) => t.query.getDistributionStats({ sourceId: source.id }))),
  };
}

/** Builds a database with something of everything: weights and strategies, every status, queued contacts, a transfer, an inactive operator. */
async function buildData(t: TestServer): Promise<void> {
  const [anna, boris, clara] = await createOperators(t, 3, 2);
  await t.admin.updateOperator({ operatorId: clara!, maxLoad: 4 });
  const telegram = await createSource(t, [[anna!, 1], [boris!, 2]], { acceptWithin: { seconds: 3600n, nanos: 0 } });
  await t.admin.updateSource({ sourceId: telegram, code: 'tg', description: 'Main Telegram bot' });
  const whatsapp = await createSource(t, [[boris!, 1], [clara!, 2]], { strategy: DistributionStrategy.SMOOTH_WEIGHTED_ROUND_ROBIN, leadAffinity: false });
  const unstaffed = await createSource(t, []);

  for (let i = 0; i < 6; i++) {
    await register(t, telegram, undefined, {
      requestId: `tg-${i}`,
      priority: i === 5 ? ContactPriority.URGENT : ContactPriority.NORMAL,
      lead: { externalId: unique('lead'), phone: `+7999000000${i}`, email: `lead${i}@example.com`, name: `Lead ${i}` },
    });
  }
  for (let i = 0; i < 4; i++) await register(t, whatsapp, undefined, { message: `whatsapp ${i}`, priority: ContactPriority.HIGH });
  for (let i = 0; i < 2; i++) await register(t, unstaffed);

  const assigned = (await allContacts(t)).filter((contact) => contact.operator && isOpen(contact));
  await t.distribution.updateContactStatus({ contactId: assigned[0]!.id, status: ContactStatus.IN_PROGRESS });
  // Frees capacity: the queue drains into it.
  await t.distribution.updateContactStatus({ contactId: assigned[1]!.id, status: ContactStatus.CLOSED });
  await t.distribution.transferContact({ contactId: assigned[2]!.id });
  await t.admin.updateOperator({ operatorId: clara!, active: false });
}

/** A table's rows as SQLite stores them (datetimes in epoch ms, booleans 0/1). */
function sqliteRows(path: string, table: keyof typeof TABLES): Record<string, unknown>[] {
  const database = new Database(path, { readonly: true });
  try {
    return database.prepare(`select * from "${table}" order by ${TABLES[table]}`).all() as Record<string, unknown>[];
  } finally {
    database.close();
  }
}

/** A table's rows in PostgreSQL, in SQLite's representation. */
async function postgresRows(client: pg.Client, table: keyof typeof TABLES): Promise<Record<string, unknown>[]> {
  const { rows } = await client.query<Record<string, unknown>>(`select * from "${table}" order by ${TABLES[table]}`);
  return rows.map((row) => Object.fromEntries(Object.entries(row).map(([column, value]) => [
    column,
    value instanceof Date ? value.getTime() : typeof value === 'boolean' ? Number(value) : value,
  ])));
}

function errorLine(result: ScriptResult): string {
  expect(result.stdout).toBe('');
  const lines = result.stderr.trim().split('\n');
  expect(lines).toHaveLength(1);
  return lines[0]!;
}

describe.skipIf(testDialect !== 'postgresql')('npm run copy-to-postgres', () => {
  it('moves every row of a SQLite database into an empty PostgreSQL one, where the server shows the same data', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'crm-copy-'));
    const sqlitePath = join(dir, 'crm.sqlite');
    const target = await createTestDatabase();
    const { host, pathname } = new URL(target.url);
    try {
      const onSqlite = await startTestServer({ database: { kind: 'sqlite', path: sqlitePath } });
      let before: Awaited<ReturnType<typeof snapshot>>;
      try {
        await buildData(onSqlite);
        before = await snapshot(onSqlite);
        expect(new Set(before.contacts.map((contact) => contact.status))).toEqual(new Set([ContactStatus.NEW, ContactStatus.IN_PROGRESS, ContactStatus.CLOSED]));
        expect(before.contacts.filter((contact) => !contact.operator && isOpen(contact)).length).toBeGreaterThan(0);

        // While a server runs on the file, what it writes after the copy would be lost: refused, and the target is left alone.
        const whileServing = await runNpmScript('copy-to-postgres', [sqlitePath, target.url]);
        expect(whileServing.code).toBe(1);
        expect(errorLine(whileServing)).toMatch(new RegExp(`^crm-distributor copy-to-postgres: ${sqlitePath} is in use by a running server: stop it first`));
      } finally {
        await onSqlite.stop();
      }

      const copy = await runNpmScript('copy-to-postgres', [sqlitePath, target.url]);
      expect(copy.stderr).toBe('');
      expect(copy.code).toBe(0);
      const counts = ['operator', 'source', 'lead', 'source_operator', 'contact', 'assignment'].map((table) => `${table} ${sqliteRows(sqlitePath, table as keyof typeof TABLES).length}`);
      expect(copy.stdout).toBe(`copied ${sqlitePath} to postgres://${host}${pathname}: ${counts.join(', ')} rows\n`);

      // Every column of every row, including those the API does not show (deadlines, round-robin state, the assignment history).
      const client = new pg.Client({ connectionString: target.url });
      await client.connect();
      try {
        for (const table of Object.keys(TABLES) as (keyof typeof TABLES)[]) {
          expect(await postgresRows(client, table), table).toEqual(sqliteRows(sqlitePath, table));
        }
      } finally {
        await client.end();
      }

      const again = await runNpmScript('copy-to-postgres', [sqlitePath, target.url]);
      expect(again.code).toBe(2);
      expect(errorLine(again)).toBe(`crm-distributor copy-to-postgres: postgres://${host}${pathname} is not empty (table operator has rows): copy into an empty database`);

      const onPostgres = await startTestServer({ database: target.target });
      try {
        expect(await snapshot(onPostgres)).toEqual(before);

        // New rows of every table get ids above the copied ones.
        const maxId = (ids: bigint[]) => ids.reduce((max, id) => (id > max ? id : max), 0n);
        const [operatorId] = await createOperators(onPostgres, 1, 5);
        expect(operatorId!).toBeGreaterThan(maxId(before.operators.map((operator) => operator.id)));
        const sourceId = await createSource(onPostgres, [[operatorId!, 1]]);
        expect(sourceId).toBeGreaterThan(maxId(before.sources.map((source) => source.id)));
        // Assigned, so an assignment row is inserted too: a sequence left behind would collide with a copied id.
        const { contact } = await register(onPostgres, sourceId);
        expect(contact!.operator?.id).toBe(operatorId);
        expect(contact!.id).toBeGreaterThan(maxId(before.contacts.map((c) => c.id)));
        expect(contact!.lead!.id).toBeGreaterThan(maxId(before.leads.map((lead) => lead.id)));
      } finally {
        await onPostgres.stop();
      }
    } finally {
      rmSync(dir, { recursive: true, force: true });
      await target.drop();
    }
  });
});
