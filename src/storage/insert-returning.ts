import type { SqlEntityManager } from '@mikro-orm/sql';
import { execute, powerOfTwoChunks, type SqlValue } from './prepared-statements.ts';

/**
 * Multi-row INSERT ... RETURNING id, ids in row order. Registration writes
 * leads, contacts and assignments this way in every batch: em.insertMany with
 * plain rows reports only the first id on SQLite, and the query builder's
 * per-row mapping cost more than the statement itself. The rows go in chunks
 * of a power of two, so a table has a few prepared texts (nine up to 256 rows)
 * rather than one per batch size.
 */
export async function insertReturningIds(tx: SqlEntityManager, table: string, columns: readonly string[], rows: readonly (readonly SqlValue[])[]): Promise<number[]> {
  const placeholders = `(${columns.map(() => '?').join(', ')})`;
  const ids: number[] = [];
  let start = 0;
  for (const size of powerOfTwoChunks(rows.length)) {
    const chunk = rows.slice(start, (start += size));
    const { rows: inserted } = await execute<{ id: number }>(
      tx,
      `insert into ${table} (${columns.join(', ')}) values ${chunk.map(() => placeholders).join(', ')} returning id`,
      chunk.flat(),
    );
    for (const row of inserted) ids.push(Number(row.id));
  }
  return ids;
}
