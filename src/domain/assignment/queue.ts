import { acceptDeadline } from '../contacts/accept-deadlines.ts';
import { chooseOperator, isEligible, withoutOperator } from './choice.ts';
import { claimCapacity, loadCandidates, recordClaim, recordFull, releaseCapacity, recordRoundRobin, saveRoundRobin, type CandidatePool, type SourceCandidates } from './candidates.ts';
import { findContactViews } from '../contacts/views.ts';
import { recordAssignments } from './history.ts';
import { lockSources } from '../../storage/locks.ts';
import { execute, inList } from '../../storage/prepared-statements.ts';
import type { Tx } from '../unit-of-work.ts';
import type { AssignmentEvent } from '../views.ts';

/** What freed capacity: these operators may take more, these sources' settings changed. */
export interface DrainScope {
  operatorIds?: readonly number[];
  sourceIds?: readonly number[];
}

/**
 * Hands queued contacts to operators that may take them now: the highest
 * priority first, then the oldest. Runs inside the transaction of the change
 * that freed the capacity, so a contact is never left waiting while an
 * eligible operator has room. Each contact goes through its source's strategy
 * among eligible operators; `exclude` names, for a contact, the operator it
 * must not go back to (the one a transfer just took it from).
 */
export async function drainQueue(
  tx: Tx,
  scope: DrainScope,
  random: () => number,
  assigned: AssignmentEvent[],
  exclude: ReadonlyMap<number, number> = new Map(),
): Promise<void> {
  const sourceIds = await lockForDrain(tx, scope);
  const pool = await loadCandidates(tx, sourceIds);
  const roundRobins = new Set<SourceCandidates>();
  for (;;) {
    const open = sourcesWithRoom(pool);
    const capacity = freeCapacity(pool);
    if (open.length === 0 || capacity === 0) break;
    // Contacts that may not go to some operator could take places at the head without taking capacity: read past them.
    const queued = await nextInQueue(tx, open, capacity + exclude.size);
    if (queued.length === 0) break;
    const drained: number[] = [];
    let lostClaims = 0;
    let vanished = 0;
    const now = new Date();
    for (const contact of queued) {
      const settings = pool.bySource.get(contact.source.id)!;
      const notBack = exclude.get(contact.id);
      const choice = chooseOperator(notBack === undefined ? settings : withoutOperator(settings, notBack), random);
      if (choice.kind !== 'assign') continue;
      if (!(await claimCapacity(tx, new Map([[choice.operatorId, 1]]), now))) {
        // Another process filled this operator since we read it: stop offering it.
        recordFull(pool, choice.operatorId);
        lostClaims += 1;
        continue;
      }
      // Only if it is still queued: a concurrent close (which takes no source lock) may have ended it.
      const { affected: taken } = await execute(
        tx,
        "update contact set operator_id = ?, assigned_at = ?, accept_by = ? where id = ? and operator_id is null and status = 'NEW'",
        [choice.operatorId, now, acceptDeadline(settings, now), contact.id],
      );
      if (taken !== 1) {
        await releaseCapacity(tx, choice.operatorId);
        vanished += 1;
        continue;
      }
      recordClaim(pool, choice.operatorId, now);
      if (choice.roundRobin) {
        recordRoundRobin(settings, choice.roundRobin);
        roundRobins.add(settings);
      }
      drained.push(contact.id);
    }
    if (drained.length > 0) {
      const views = await findContactViews(tx, { id: { $in: drained } });
      await recordAssignments(tx, views.map((contact) => ({ contact, reason: 'QUEUE', previousOperatorId: null })), now, assigned);
    }
    if (drained.length === 0 && lostClaims === 0 && vanished === 0) break;
  }
  await saveRoundRobin(tx, roundRobins);
}

/**
 * The next `limit` queued contacts of these sources, in drain order. One
 * query per source, each reading only the head of that source's queue from
 * its index: the cost does not grow with the queue.
 */
async function nextInQueue(tx: Tx, sourceIds: readonly number[], limit: number): Promise<{ id: number; source: { id: number }; priority: number }[]> {
  const heads = [];
  for (const sourceId of sourceIds) {
    const { rows } = await execute<{ id: number; priority: number }>(
      tx,
      "select id, priority from contact where source_id = ? and operator_id is null and status = 'NEW' order by priority desc, id limit ?",
      [sourceId, limit],
    );
    heads.push(...rows.map((row) => ({ id: row.id, source: { id: sourceId }, priority: row.priority })));
  }
  return heads.sort((a, b) => b.priority - a.priority || a.id - b.id).slice(0, limit);
}

/**
 * Takes the locks a drain of `scope` needs (see storage/locks.ts). A change
 * that frees capacity calls it before touching the operator row, so every
 * transaction takes source locks before operator row locks.
 */
export async function lockForDrain(tx: Tx, scope: DrainScope): Promise<number[]> {
  const sourceIds = await affectedSources(tx, scope);
  await lockSources(tx, sourceIds.map((id) => ({ id, exclusive: true })));
  return sourceIds;
}

async function affectedSources(tx: Tx, scope: DrainScope): Promise<number[]> {
  const ids = new Set(scope.sourceIds ?? []);
  if (scope.operatorIds && scope.operatorIds.length > 0) {
    const operatorIds = inList([...scope.operatorIds]);
    const { rows } = await execute<{ source_id: number }>(tx, `select source_id from source_operator where operator_id in (${operatorIds.sql}) and weight > 0`, operatorIds.params);
    for (const row of rows) ids.add(row.source_id);
  }
  return [...ids];
}

function sourcesWithRoom(pool: CandidatePool): number[] {
  return [...pool.bySource.values()].filter((s) => s.candidates.some(isEligible)).map((s) => s.sourceId);
}

function freeCapacity(pool: CandidatePool): number {
  const room = new Map<number, number>();
  for (const { candidates } of pool.bySource.values()) {
    for (const c of candidates) if (isEligible(c)) room.set(c.operatorId, c.maxLoad - c.openLoad);
  }
  return [...room.values()].reduce((sum, n) => sum + n, 0);
}
