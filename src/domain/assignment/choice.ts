// The assignment choice: which operator, if any, gets a contact. Pure code with
// no I/O, so every rule can be tested exhaustively; the transaction that loads
// the candidates and claims capacity lives in contacts/registration.ts and assignment/queue.ts.
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
  /** When the operator last got a contact, from any source (ms since the epoch); null if never. */
  lastAssignedAt: number | null;
}

export type QueueReason = 'QUEUED_NO_OPERATORS' | 'QUEUED_NO_CAPACITY';

/** A source's distribution settings and state, with its configured operators. */
export interface SourceSettings {
  strategy: Strategy;
  /** The operators of the current round-robin cycle (see cycleKey); '' starts a new one. */
  cycle: string;
  candidates: readonly Candidate[];
}

/** New round-robin state to store: the cycle and the current weights of its members. */
export interface RoundRobinState {
  cycle: string;
  currents: ReadonlyMap<number, number>;
}

export type Choice =
  | { kind: 'assign'; operatorId: number; roundRobin?: RoundRobinState }
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
 * CAPACITY_WEIGHTED_RANDOM: an operator's ticket count is its weight times its
 * free capacity (max_load - open_load), so emptier operators get more. The
 * counts are whole numbers (at most 10^6 x 10^6 each, well within 2^53 summed
 * over any realistic team), so each ticket is equally likely.
 */
export function pickCapacityWeightedRandom(eligible: readonly Candidate[], random: () => number): Candidate {
  const tickets = eligible.map((c) => c.weight * (c.maxLoad - c.openLoad));
  const total = tickets.reduce((sum, n) => sum + n, 0);
  let ticket = Math.floor(random() * total);
  for (let i = 0; i < eligible.length; i++) {
    ticket -= tickets[i]!;
    if (ticket < 0) return eligible[i]!;
  }
  throw new Error('pickCapacityWeightedRandom needs at least one candidate with free capacity and weight > 0');
}

/**
 * LEAST_LOADED: the smallest open_load / max_load (compared by cross
 * multiplication, exactly); ties go to the larger weight, then to the
 * operator whose last assignment is oldest (never assigned counts as
 * oldest), then to the smaller id.
 */
export function pickLeastLoaded(eligible: readonly Candidate[]): Candidate {
  if (eligible.length === 0) throw new Error('pickLeastLoaded needs at least one candidate');
  return eligible.reduce((best, c) => (compareForLeastLoaded(c, best) < 0 ? c : best));
}

/** Negative when `a` goes before `b` under LEAST_LOADED. */
export function compareForLeastLoaded(a: Candidate, b: Candidate): number {
  const fuller = a.openLoad * b.maxLoad - b.openLoad * a.maxLoad;
  if (fuller !== 0) return fuller;
  if (a.weight !== b.weight) return b.weight - a.weight;
  const aLast = a.lastAssignedAt ?? Number.NEGATIVE_INFINITY;
  const bLast = b.lastAssignedAt ?? Number.NEGATIVE_INFINITY;
  if (aLast !== bLast) return aLast < bLast ? -1 : 1;
  return a.operatorId - b.operatorId;
}

/** Identifies a set of eligible operators; a round-robin cycle runs while it stays the same. */
export function cycleKey(eligible: readonly Candidate[]): string {
  return eligible.map((c) => c.operatorId).join(',');
}

/**
 * Smooth weighted round-robin with a proven bound: Tijdeman's algorithm for the
 * chairman assignment problem. With k operators and W the sum of their weights,
 * each keeps `current` = (picks so far x weight) - W x (its own picks), i.e. W
 * times how far it is behind its exact share. At each pick, the operators at
 * least 1/(2k-2) of a contact behind are ready, and the ready one whose next
 * contact falls due first wins. Every count then stays within
 * 1 - 1/(2k-2) (< 1) of its exact share after every pick; nginx's simpler rule
 * (largest current wins) can drift beyond 1 with four or more operators.
 *
 * A cycle lasts while the eligible set stays the same; when someone joins or
 * leaves (fills up, is deactivated, weights change), a new cycle starts from
 * zero among the new set, so the bound holds for each run of contacts with one
 * eligible set.
 */
export function pickSmoothRoundRobin(eligible: readonly Candidate[], cycle: string): { chosen: Candidate; roundRobin: RoundRobinState } {
  if (eligible.length === 0) throw new Error('pickSmoothRoundRobin needs at least one candidate');
  const key = cycleKey(eligible);
  return pickInCycle(eligible, key, key === cycle)
    // Stored state no real run produces (nobody ready): start the cycle afresh rather than fail.
    ?? pickInCycle(eligible, key, false)!;
}

function pickInCycle(eligible: readonly Candidate[], key: string, continuing: boolean): { chosen: Candidate; roundRobin: RoundRobinState } | undefined {
  const k = BigInt(eligible.length);
  const total = eligible.reduce((sum, c) => sum + c.weight, 0);
  const behind = eligible.map((c) => (continuing ? c.swrrCurrent : 0) + c.weight);
  // In whole numbers: ready when 2(k-1)·behind >= W; due in (W(2k-3) - 2(k-1)·behind) / weight.
  const dueIn = (i: number) => BigInt(total) * (2n * k - 3n) - 2n * (k - 1n) * BigInt(behind[i]!);
  let best = -1;
  for (let i = 0; i < eligible.length; i++) {
    if (eligible.length > 1 && 2n * (k - 1n) * BigInt(behind[i]!) < BigInt(total)) continue;
    if (best < 0 || dueIn(i) * BigInt(eligible[best]!.weight) < dueIn(best) * BigInt(eligible[i]!.weight)) best = i;
  }
  if (best < 0) return undefined;
  const currents = new Map(eligible.map((c, i) => [c.operatorId, behind[i]! - (i === best ? total : 0)]));
  return { chosen: eligible[best]!, roundRobin: { cycle: key, currents } };
}

/** The settings with one operator left out: a transfer never gives a contact back to the operator it takes it from. */
export function withoutOperator<T extends SourceSettings>(settings: T, operatorId: number): T {
  return { ...settings, candidates: settings.candidates.filter((c) => c.operatorId !== operatorId) };
}

/** Applies a source's strategy to its configured operators. */
export function chooseOperator(settings: SourceSettings, random: () => number = Math.random): Choice {
  const { candidates } = settings;
  if (!candidates.some(isConfigured)) return { kind: 'queue', reason: 'QUEUED_NO_OPERATORS' };
  const eligible = candidates.filter(isEligible);
  if (eligible.length === 0) return { kind: 'queue', reason: 'QUEUED_NO_CAPACITY' };
  switch (settings.strategy) {
    case 'SMOOTH_WEIGHTED_ROUND_ROBIN': {
      const { chosen, roundRobin } = pickSmoothRoundRobin(eligible, settings.cycle);
      return { kind: 'assign', operatorId: chosen.operatorId, roundRobin };
    }
    case 'CAPACITY_WEIGHTED_RANDOM':
      return { kind: 'assign', operatorId: pickCapacityWeightedRandom(eligible, random).operatorId };
    case 'LEAST_LOADED':
      return { kind: 'assign', operatorId: pickLeastLoaded(eligible).operatorId };
    case 'WEIGHTED_RANDOM':
      return { kind: 'assign', operatorId: pickWeightedRandom(eligible, random).operatorId };
  }
}

/** The strategies whose every pick depends on the picks before it: one transaction at a time may make them. */
export function isDeterministic(strategy: Strategy): boolean {
  return strategy === 'SMOOTH_WEIGHTED_ROUND_ROBIN' || strategy === 'LEAST_LOADED';
}

/**
 * Affinity: the operator already holding an open contact of the lead keeps the
 * lead, if it may take this source's contact now. Holders are oldest first.
 */
export function chooseAffinity(holders: readonly number[], candidates: readonly Candidate[]): number | undefined {
  return holders.find((operatorId) => candidates.some((c) => c.operatorId === operatorId && isEligible(c)));
}
