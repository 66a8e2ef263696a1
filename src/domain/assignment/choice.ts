// The assignment choice: which operator, if any, gets a contact. Pure code with
// no I/O, so every rule can be tested exhaustively; the transaction that loads
// the candidates and claims capacity lives in ../distribution.ts.
import type { Strategy } from '../entities.ts';

/** An operator as configured for one source, with its current load. */
export interface Candidate {
  operatorId: number;
  weight: number;
  active: boolean;
  openLoad: number;
  maxLoad: number;
  /** Smooth weighted round-robin state of this (source, operator) pair. */
  swrrCurrent: number;
}

export type QueueReason = 'QUEUED_NO_OPERATORS' | 'QUEUED_NO_CAPACITY';

export type Choice =
  | { kind: 'assign'; operatorId: number; swrr: ReadonlyMap<number, number> }
  | { kind: 'queue'; reason: QueueReason };

/** Configured with weight > 0: the operator takes this source's contacts at all. */
export function isConfigured(candidate: Candidate): boolean {
  return candidate.weight > 0;
}

/** May take one more contact of this source right now. */
export function isEligible(candidate: Candidate): boolean {
  return isConfigured(candidate) && candidate.active && candidate.openLoad < candidate.maxLoad;
}

/** Draws an operator with probability weight / sum of weights; `random` is in [0, 1). */
export function pickWeightedRandom(eligible: readonly Candidate[], random: () => number): Candidate {
  const total = eligible.reduce((sum, c) => sum + c.weight, 0);
  let ticket = Math.floor(random() * total);
  for (const candidate of eligible) {
    ticket -= candidate.weight;
    if (ticket < 0) return candidate;
  }
  throw new Error('pickWeightedRandom needs at least one candidate with weight > 0');
}

/**
 * Smooth weighted round-robin (nginx): every eligible operator's current weight
 * grows by its weight, the largest wins and gives back the eligible total. Over
 * a run with one eligible set, each count stays within 1 of its exact share.
 * Ineligible operators keep their state untouched until they return.
 */
export function pickSmoothRoundRobin(eligible: readonly Candidate[]): { chosen: Candidate; swrr: Map<number, number> } {
  const total = eligible.reduce((sum, c) => sum + c.weight, 0);
  const swrr = new Map<number, number>();
  let chosen: Candidate | undefined;
  for (const candidate of eligible) {
    const current = candidate.swrrCurrent + candidate.weight;
    swrr.set(candidate.operatorId, current);
    if (chosen === undefined || current > swrr.get(chosen.operatorId)!) chosen = candidate;
  }
  if (chosen === undefined) throw new Error('pickSmoothRoundRobin needs at least one candidate');
  swrr.set(chosen.operatorId, swrr.get(chosen.operatorId)! - total);
  return { chosen, swrr };
}

/** Applies a source's strategy to its configured operators. */
export function chooseOperator(strategy: Strategy, candidates: readonly Candidate[], random: () => number = Math.random): Choice {
  if (!candidates.some(isConfigured)) return { kind: 'queue', reason: 'QUEUED_NO_OPERATORS' };
  const eligible = candidates.filter(isEligible);
  if (eligible.length === 0) return { kind: 'queue', reason: 'QUEUED_NO_CAPACITY' };
  if (strategy === 'SMOOTH_WEIGHTED_ROUND_ROBIN') {
    const { chosen, swrr } = pickSmoothRoundRobin(eligible);
    return { kind: 'assign', operatorId: chosen.operatorId, swrr };
  }
  return { kind: 'assign', operatorId: pickWeightedRandom(eligible, random).operatorId, swrr: new Map() };
}

/**
 * Affinity: the operator already holding an open contact of the lead keeps the
 * lead, if it may take this source's contact now. Holders are oldest first.
 */
export function chooseAffinity(holders: readonly number[], candidates: readonly Candidate[]): number | undefined {
  return holders.find((operatorId) => candidates.some((c) => c.operatorId === operatorId && isEligible(c)));
}
