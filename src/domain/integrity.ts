import { raw } from '@mikro-orm/core';
import { Contact, Operator, Source } from './entities.ts';
import { lockAllOperators } from '../storage/locks.ts';
import { drainQueue, lockForDrain } from './assignment/queue.ts';
import type { UnitOfWork } from './unit-of-work.ts';

export interface LoadRepair {
  operatorId: number;
  stored: number;
  actual: number;
}

/**
 * Start-up check: every operator's stored open_load must equal its NEW +
 * IN_PROGRESS contacts. Writes keep them equal in one transaction, so a
 * mismatch means the database was changed behind the service's back; it is
 * repaired (and capacity that appears is handed to the queue) and reported.
 *
 * Other replicas may be serving meanwhile. Every write that changes an
 * operator's open contacts also updates (so locks) its row in the same
 * transaction, so the operator rows are locked first, and the counts are read
 * after, in a statement of their own: each count then includes exactly the
 * writes that its open_load includes. The sources are locked before them,
 * as every writer does, so the drain of freed capacity cannot deadlock.
 */
export async function reconcileLoads(uow: UnitOfWork): Promise<LoadRepair[]> {
  return uow.run(async (tx, assigned) => {
    const sources = await tx.find(Source, {}, { fields: ['id'], disableIdentityMap: true });
    await lockForDrain(tx, { sourceIds: sources.map((s) => s.id) });
    await lockAllOperators(tx);
    const counted = await tx.createQueryBuilder(Contact, 'c')
      .select(['c.operator', raw('count(*) as open')])
      .where({ operator: { $ne: null }, status: { $ne: 'CLOSED' } })
      .groupBy('c.operator')
      .execute<{ operator_id: number; open: number }[]>('all', false);
    const actual = new Map(counted.map((row) => [row.operator_id, Number(row.open)]));
    const operators = await tx.find(Operator, {}, { fields: ['id', 'openLoad'], disableIdentityMap: true });
    const repairs = operators
      .map((o) => ({ operatorId: o.id, stored: o.openLoad, actual: actual.get(o.id) ?? 0 }))
      .filter((r) => r.stored !== r.actual);
    for (const repair of repairs) await tx.nativeUpdate(Operator, { id: repair.operatorId }, { openLoad: repair.actual });
    const freed = repairs.filter((r) => r.actual < r.stored).map((r) => r.operatorId);
    if (freed.length > 0) await drainQueue(tx, { operatorIds: freed }, Math.random, assigned);
    return repairs;
  });
}
