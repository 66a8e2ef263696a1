import type { SqlEntityManager } from '@mikro-orm/sql';

/** A column's value as the driver takes it; dates are converted for the database at hand. */
export type ColumnValue = string | number | boolean | Date | null;

/**
 * One multi-row INSERT ... RETURNING id, ids in row order, in plain SQL.
 * Registration writes leads, contacts and assignments this way in every batch:
 * em.insertMany with plain rows reports only the first id on SQLite, and the
 * query builder's per-row mapping cost more than the statement itself.
 */
export async function insertReturningIds(tx: SqlEntityManager, table: string, columns: readonly string[], rows: readonly (readonly ColumnValue[])[]): Promise<number[]> {
  if (rows.length === 0) return [];
  const platform = tx.getPlatform();
  const placeholders = `(${columns.map(() => '?').join(', ')})`;
  const inserted = await tx.execute<{ id: number }[]>(
    `insert into ${table} (${columns.join(', ')}) values ${rows.map(() => placeholders).join(', ')} returning id`,
    rows.flatMap((row) => row.map((value) => (value instanceof Date ? platform.processDateProperty(value) : value))),
  );
  return inserted.map((row) => Number(row.id));
}
