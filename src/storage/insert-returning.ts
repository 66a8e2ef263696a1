import type { EntityName, RequiredEntityData } from '@mikro-orm/core';
import type { SqlEntityManager } from '@mikro-orm/sql';

/**
 * One multi-row INSERT ... RETURNING id, ids in row order. (em.insertMany with
 * plain rows reports only the first id on SQLite; going through entities costs
 * an entity per row.)
 */
export async function insertReturningIds<T extends object>(tx: SqlEntityManager, entity: EntityName<T>, rows: RequiredEntityData<T>[]): Promise<number[]> {
  if (rows.length === 0) return [];
  const inserted = await tx.createQueryBuilder(entity).insert(rows).execute<{ id: number }[]>('all', false);
  return inserted.map((row) => Number(row.id));
}
