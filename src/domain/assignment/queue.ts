import { chooseOperator, isEligible } from './choice.ts';
import { claimCapacity, loadCandidates, recordClaim, recordFull, releaseCapacity, recordRoundRobin, saveRoundRobin, type CandidatePool, type SourceCandidates } from './candidates.ts';
import { findContactViews } from '../contacts/views.ts';
import { Contact, SourceOperator } from '../entities.ts';
import { lockSources } from '../../storage/locks.ts';
import type { Tx } from '../unit-of-work.ts';
import type { AssignmentEvent } from '../views.ts';

/** What freed capacity: these operators may take more, these sources' settings changed. */
export interface DrainScope {
  operatorIds?: readonly number[];
  sourceIds?: readonly number[];
}

/**
 * Hands queued contacts, oldest first, to operators that may take them now.
 * Runs inside the transaction of the change that freed the capacity, so a
 * contact is never left waiting while an eligible operator has room.
 * Each contact goes through its source's strategy among eligible operators.
 */
export async function drainQueue(tx: Tx, scope: DrainScope, random: () => number, assigned: AssignmentEvent[]): Promise<void> {
  const sourceIds = await lockForDrain(tx, scope);
  const pool = await loadCandidates(tx, sourceIds);
  const roundRobins = new Set<SourceCandidates>();
  for (;;) {
    const open = sourcesWithRoom(pool);
    const capacity = freeCapacity(pool);
    if (open.length === 0 || capacity === 0) break;
    const queued = await tx.find(
      Contact,
      { operator: null, status: 'NEW', source: { $in: open } },
      { fields: ['id', 'source'], orderBy: { id: 'asc' }, limit: capacity, disableIdentityMap: true },
    );
    if (queued.length === 0) break;
    const drained: number[] = [];
    let lostClaims = 0;
    let vanished = 0;
    const now = new Date();
    for (const contact of queued) {
      const settings = pool.bySource.get(contact.source.id)!;
      const choice = chooseOperator(settings, random);
      if (choice.kind !== 'assign') continue;
      if (!(await claimCapacity(tx, new Map([[choice.operatorId, 1]])))) {
        // Another process filled this operator since we read it: stop offering it.
        recordFull(pool, choice.operatorId);
        lostClaims += 1;
        continue;
      }
      // Only if it is still queued: a concurrent close (which takes no source lock) may have ended it.
      const taken = await tx.nativeUpdate(Contact, { id: contact.id, operator: null, status: 'NEW' }, { operator: choice.operatorId, assignedAt: now });
      if (taken !== 1) {
        await releaseCapacity(tx, choice.operatorId);
        vanished += 1;
        continue;
      }
      recordClaim(pool, choice.operatorId);
      if (choice.roundRobin) {
        recordRoundRobin(settings, choice.roundRobin);
        roundRobins.add(settings);
      }
      drained.push(contact.id);
    }
    if (drained.length > 0) {
      const views = await findContactViews(tx, { id: { $in: drained } });
      for (const contact of views) assigned.push({ contact, fromQueue: true });
    }
    if (drained.length === 0 && lostClaims === 0 && vanished === 0) break;
  }
  await saveRoundRobin(tx, roundRobins);
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
    const links = await tx.find(
      SourceOperator,
      { operator: { $in: [...scope.operatorIds] }, weight: { $gt: 0 } },
      { fields: ['source'], disableIdentityMap: true },
    );
    for (const link of links) ids.add(link.source.id);
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
