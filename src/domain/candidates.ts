import { raw, sql } from '@mikro-orm/core';
import type { Candidate, RoundRobinState, SourceSettings } from './assignment/choice.ts';
import { Operator, Source, SourceOperator } from './entities.ts';
import type { Tx } from './unit-of-work.ts';

/** A source's distribution settings with its configured operators, as read in this transaction. */
export interface SourceCandidates extends SourceSettings {
  sourceId: number;
  candidates: Candidate[];
}

export interface CandidatePool {
  bySource: Map<number, SourceCandidates>;
  operatorNames: Map<number, string>;
}

/** Loads the operators configured for the given sources, with their loads. */
export async function loadCandidates(tx: Tx, sourceIds: readonly number[]): Promise<CandidatePool> {
  const pool: CandidatePool = { bySource: new Map(), operatorNames: new Map() };
  if (sourceIds.length === 0) return pool;
  const sources = await tx.find(Source, { id: { $in: [...sourceIds] } }, { fields: ['id', 'strategy', 'swrrCycle'], disableIdentityMap: true });
  for (const source of sources) {
    pool.bySource.set(source.id, { sourceId: source.id, strategy: source.strategy, cycle: source.swrrCycle, candidates: [] });
  }
  const rows = await tx.createQueryBuilder(SourceOperator, 'so')
    .select(['so.source', 'so.weight', 'so.swrrCurrent', raw('o.id as operator_id')])
    // Joined columns are not fields of SourceOperator, hence the widening.
    .addSelect(['o.name', 'o.active', 'o.maxLoad', 'o.openLoad'] as never[])
    .join('so.operator', 'o')
    .where({ source: { $in: [...sourceIds] } })
    .orderBy({ operator: 'asc' })
    .execute<RawCandidateRow[]>('all', false);
  for (const row of rows) {
    pool.operatorNames.set(row.operator_id, row.name);
    pool.bySource.get(row.source_id)?.candidates.push({
      operatorId: row.operator_id,
      weight: row.weight,
      active: Boolean(row.active),
      maxLoad: row.max_load,
      openLoad: row.open_load,
      swrrCurrent: row.swrr_current,
    });
  }
  return pool;
}

/** Keeps the in-memory loads in step after a claim: one operator may serve several sources. */
export function recordClaim(pool: CandidatePool, operatorId: number): void {
  setLoad(pool, operatorId, (c) => c.openLoad + 1);
}

/** A claim was refused: the operator is full (or inactive) as far as this transaction can tell. */
export function recordFull(pool: CandidatePool, operatorId: number): void {
  setLoad(pool, operatorId, (c) => c.maxLoad);
}

function setLoad(pool: CandidatePool, operatorId: number, load: (c: Candidate) => number): void {
  for (const { candidates } of pool.bySource.values()) {
    for (const c of candidates) if (c.operatorId === operatorId) c.openLoad = load(c);
  }
}

interface RawCandidateRow {
  source_id: number;
  operator_id: number;
  weight: number;
  swrr_current: number;
  name: string;
  active: number | boolean;
  max_load: number;
  open_load: number;
}

/**
 * Takes one unit of the operator's capacity, atomically: the conditional update
 * succeeds only while the operator is active and under max_load, whatever other
 * transactions or processes did since the candidates were read.
 */
export async function claimCapacity(tx: Tx, operatorId: number): Promise<boolean> {
  const claimed = await tx.nativeUpdate(
    Operator,
    { id: operatorId, active: true, openLoad: { $lt: sql.ref('max_load') } },
    { openLoad: sql`open_load + 1` },
  );
  return claimed === 1;
}

export async function releaseCapacity(tx: Tx, operatorId: number): Promise<void> {
  await tx.nativeUpdate(Operator, { id: operatorId }, { openLoad: sql`open_load - 1` });
}

/** Keeps a source's in-memory round-robin state in step after a choice. */
export function recordRoundRobin(settings: SourceCandidates, state: RoundRobinState): void {
  settings.cycle = state.cycle;
  for (const c of settings.candidates) {
    const current = state.currents.get(c.operatorId);
    if (current !== undefined) c.swrrCurrent = current;
  }
}

/** Stores the round-robin state of the given sources as it now is in memory. */
export async function saveRoundRobin(tx: Tx, sources: Iterable<SourceCandidates>): Promise<void> {
  for (const settings of sources) {
    if (settings.strategy !== 'SMOOTH_WEIGHTED_ROUND_ROBIN') continue;
    await tx.nativeUpdate(Source, { id: settings.sourceId }, { swrrCycle: settings.cycle });
    for (const c of settings.candidates) {
      await tx.nativeUpdate(SourceOperator, { source: settings.sourceId, operator: c.operatorId }, { swrrCurrent: c.swrrCurrent });
    }
  }
}
