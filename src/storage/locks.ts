// Cross-process coordination on PostgreSQL. On SQLite every write transaction
// already runs alone, so these are no-ops there.
import { PostgreSqlPlatform } from '@mikro-orm/postgresql';
import type { SqlEntityManager } from '@mikro-orm/sql';
import { execute } from './prepared-statements.ts';

/** First key of our advisory locks; the second is the source id. */
const SOURCE_LOCKS = 0x43524d32;

function isPostgres(tx: SqlEntityManager): boolean {
  return tx.getPlatform() instanceof PostgreSqlPlatform;
}

/**
 * Transaction-scoped advisory locks on sources, taken in id order (no
 * deadlock between two lockers). Registrations take them shared, so they run
 * side by side; queue drains (and round-robin sources, whose state every pick
 * rewrites) take them exclusive. A drain therefore never misses a contact a
 * concurrent registration is about to queue: one of the two waits for the other.
 */
export async function lockSources(tx: SqlEntityManager, sources: readonly { id: number; exclusive: boolean }[]): Promise<void> {
  if (sources.length === 0 || !isPostgres(tx)) return;
  const sorted = [...sources].sort((a, b) => a.id - b.id);
  await execute(
    tx,
    `select case when id = any(?::int[]) then pg_advisory_xact_lock(${SOURCE_LOCKS}, id)::text
                 else pg_advisory_xact_lock_shared(${SOURCE_LOCKS}, id)::text end
       from unnest(?::int[]) with ordinality as t(id, n) order by n`,
    // As array literals: one text whatever the number of sources.
    [`{${sorted.filter((s) => s.exclusive).map((s) => s.id).join(',')}}`, `{${sorted.map((s) => s.id).join(',')}}`],
  );
}

/** Every operator row, locked for update in id order (a deadlock with a writer is retried like any other). */
export async function lockAllOperators(tx: SqlEntityManager): Promise<void> {
  if (isPostgres(tx)) await tx.execute('select id from operator order by id for update');
}

/**
 * Up to `limit` contacts whose accept deadline is at or before `now`, soonest
 * first, locked for this transaction; on PostgreSQL rows another replica has
 * locked are skipped, so two replicas never work the same contact.
 */
export async function lockDueContacts(tx: SqlEntityManager, now: Date, limit: number): Promise<number[]> {
  const rows = await tx.execute<{ id: number }[]>(
    `select id from contact where accept_by <= ? order by accept_by limit ?${isPostgres(tx) ? ' for update skip locked' : ''}`,
    [tx.getPlatform().processDateProperty(now), limit],
  );
  return rows.map((row) => Number(row.id));
}
