import type { Candidate, RoundRobinState, SourceSettings } from './choice.ts';
import type { ISource } from '../entities.ts';
import { execute, inList, paddedLength, storedDate, type StoredTime } from '../../storage/prepared-statements.ts';
import type { Tx } from '../unit-of-work.ts';

/** A source's distribution settings with its configured operators, as read in this transaction. */
export interface SourceCandidates extends SourceSettings {
  sourceId: number;
  /** The source's accept deadline (0: none), for the contacts it assigns. */
  acceptWithinMs: number;
  candidates: Candidate[];
}

export interface CandidatePool {
  bySource: Map<number, SourceCandidates>;
  operatorNames: Map<number, string>;
  /**
   * The latest assignment known to this transaction, in ms: each claim made in
   * it comes after the one before (by a thousandth of a ms, in memory only),
   * so LEAST_LOADED sees the order of the batch's own assignments.
   */
  latestAssignment: number;
}

/**
 * Loads the operators configured for the given sources, with their loads. It
 * reads the sources' round-robin state itself, even where the caller has read
 * the sources already: only a read after the caller's source locks is current
 * when several processes share one database.
 */
export async function loadCandidates(tx: Tx, sourceIds: readonly number[]): Promise<CandidatePool> {
  const pool: CandidatePool = { bySource: new Map(), operatorNames: new Map(), latestAssignment: 0 };
  if (sourceIds.length === 0) return pool;
  const ids = inList([...sourceIds]);
  // One statement: each source with its operators, or alone (null operator columns) when it has none.
  const { rows } = await execute<RawCandidateRow>(
    tx,
    `select s.id as source_id, s.strategy, s.swrr_cycle, s.accept_within_ms,
            so.weight, so.swrr_current, o.id as operator_id, o.name, o.active, o.max_load, o.open_load, o.last_assigned_at
       from source s
       left join source_operator so on so.source_id = s.id
       left join operator o on o.id = so.operator_id
      where s.id in (${ids.sql}) order by so.operator_id`,
    ids.params,
  );
  for (const row of rows) {
    let settings = pool.bySource.get(row.source_id);
    if (!settings) {
      settings = { sourceId: row.source_id, strategy: row.strategy, cycle: row.swrr_cycle, acceptWithinMs: row.accept_within_ms, candidates: [] };
      pool.bySource.set(row.source_id, settings);
    }
    if (row.operator_id === null) continue;
    const lastAssignedAt = row.last_assigned_at === null ? null : storedDate(row.last_assigned_at).getTime();
    pool.operatorNames.set(row.operator_id, row.name);
    pool.latestAssignment = Math.max(pool.latestAssignment, lastAssignedAt ?? 0);
    settings.candidates.push({
      operatorId: row.operator_id,
      weight: row.weight,
      active: Boolean(row.active),
      maxLoad: row.max_load,
      openLoad: row.open_load,
      swrrCurrent: row.swrr_current,
      lastAssignedAt,
    });
  }
  return pool;
}

/** Keeps the in-memory state in step after a claim at `now`: one operator may serve several sources. */
export function recordClaim(pool: CandidatePool, operatorId: number, now: Date): void {
  pool.latestAssignment = Math.max(pool.latestAssignment + 0.001, now.getTime());
  const at = pool.latestAssignment;
  forCandidate(pool, operatorId, (c) => {
    c.openLoad += 1;
    c.lastAssignedAt = at;
  });
}

/** A claim was refused: the operator is full (or inactive) as far as this transaction can tell. */
export function recordFull(pool: CandidatePool, operatorId: number): void {
  forCandidate(pool, operatorId, (c) => (c.openLoad = c.maxLoad));
}

/** A unit of the operator's load was given back. */
export function recordRelease(pool: CandidatePool, operatorId: number): void {
  forCandidate(pool, operatorId, (c) => (c.openLoad -= 1));
}

function forCandidate(pool: CandidatePool, operatorId: number, change: (c: Candidate) => void): void {
  for (const { candidates } of pool.bySource.values()) {
    for (const c of candidates) if (c.operatorId === operatorId) change(c);
  }
}

/** A source's row, joined with one of its operators (all operator columns null for a source without any). */
type RawCandidateRow = {
  source_id: number;
  strategy: ISource['strategy'];
  swrr_cycle: string;
  accept_within_ms: number;
} & (
  | { operator_id: number; weight: number; swrr_current: number; name: string; active: number | boolean; max_load: number; open_load: number; last_assigned_at: StoredTime | null }
  | { operator_id: null }
);

/**
 * Takes the given units of capacity from each operator in one statement,
 * atomically: it changes the rows only where the operator is active and stays
 * within max_load, whatever other transactions or processes did since the
 * candidates were read. False if any operator refused (the caller reruns).
 */
export async function claimCapacity(tx: Tx, units: ReadonlyMap<number, number>, now: Date): Promise<boolean> {
  if (units.size === 0) return true;
  const sorted = new Map([...units].sort(([a], [b]) => a - b));
  const delta = caseOf('id', sorted);
  const ids = inList([...sorted.keys()]);
  const { affected } = await execute(
    tx,
    `update operator set open_load = open_load + ${delta.sql}, last_assigned_at = ?
      where id in (${ids.sql}) and active and open_load + ${delta.sql} <= max_load`,
    [...delta.params, now, ...ids.params, ...delta.params],
  );
  return affected === units.size;
}

/**
 * `case <column> when key then value ... end` over whole numbers, the same in
 * SQLite and PostgreSQL. Its branches are padded to a power of two by
 * repeating the last one (the first match wins), so it makes few distinct texts.
 */
function caseOf(column: string, values: ReadonlyMap<number, number>): { sql: string; params: number[] } {
  const branches = [...values];
  while (branches.length < paddedLength(values.size)) branches.push(branches[branches.length - 1]!);
  return {
    sql: `case ${column} ${branches.map(() => 'when ? then cast(? as integer)').join(' ')} end`,
    params: branches.flat(),
  };
}

export async function releaseCapacity(tx: Tx, operatorId: number): Promise<void> {
  await execute(tx, 'update operator set open_load = open_load - 1 where id = ?', [operatorId]);
}

/** Keeps a source's in-memory round-robin state in step after a choice. */
export function recordRoundRobin(settings: SourceCandidates, state: RoundRobinState): void {
  settings.cycle = state.cycle;
  for (const c of settings.candidates) {
    const current = state.currents.get(c.operatorId);
    if (current !== undefined) c.swrrCurrent = current;
  }
}

/** Stores the round-robin state of the given sources as it now is in memory: two statements a source. */
export async function saveRoundRobin(tx: Tx, sources: Iterable<SourceCandidates>): Promise<void> {
  for (const settings of sources) {
    if (settings.strategy !== 'SMOOTH_WEIGHTED_ROUND_ROBIN' || settings.candidates.length === 0) continue;
    await execute(tx, 'update source set swrr_cycle = ? where id = ?', [settings.cycle, settings.sourceId]);
    const currents = caseOf('operator_id', new Map(settings.candidates.map((c) => [c.operatorId, c.swrrCurrent])));
    const operatorIds = inList(settings.candidates.map((c) => c.operatorId));
    await execute(
      tx,
      `update source_operator set swrr_current = ${currents.sql} where source_id = ? and operator_id in (${operatorIds.sql})`,
      [...currents.params, settings.sourceId, ...operatorIds.params],
    );
  }
}
