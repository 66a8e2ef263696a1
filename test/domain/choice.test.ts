import { describe, it, expect } from 'vitest';
import {
  chooseAffinity,
  chooseOperator,
  cycleKey,
  isConfigured,
  isEligible,
  pickSmoothRoundRobin,
  pickWeightedRandom,
  type Candidate,
  type Choice,
  type RoundRobinState,
  type SourceSettings,
} from '../../src/domain/assignment/choice.ts';
import type { Strategy } from '../../src/domain/entities.ts';
import { goodnessOfFit } from '../support/chi-square.ts';
import { mulberry32, randomInt } from '../support/seeded-random.ts';

// ---------------------------------------------------------------------------
// helpers

function cand(operatorId: number, weight: number, over: Partial<Omit<Candidate, 'operatorId' | 'weight'>> = {}): Candidate {
  return { operatorId, weight, active: true, openLoad: 0, maxLoad: 1_000_000, swrrCurrent: 0, lastAssignedAt: null, ...over };
}

/** A source's settings, mutable so a test can apply returned state back as the caller does. */
interface Source extends SourceSettings {
  strategy: Strategy;
  cycle: string;
  candidates: Candidate[];
}

function source(strategy: Strategy, candidates: Candidate[], cycle = ''): Source {
  return { strategy, cycle, candidates };
}

/** A SMOOTH_WEIGHTED_ROUND_ROBIN source with operators 1..k of the given weights, from a fresh cycle. */
function rrSource(weights: readonly number[]): Source {
  return source('SMOOTH_WEIGHTED_ROUND_ROBIN', weights.map((w, i) => cand(i + 1, w)));
}

/** A `random` that must not be called (round-robin is deterministic). */
const noRandom = (): number => {
  throw new Error('random() must not be called');
};

/** Applies returned round-robin state, as the caller (recordRoundRobin) does. */
function applyRoundRobin(settings: Source, state: RoundRobinState): void {
  settings.cycle = state.cycle;
  for (const c of settings.candidates) {
    const current = state.currents.get(c.operatorId);
    if (current !== undefined) c.swrrCurrent = current;
  }
}

function assigned(choice: Choice): number {
  if (choice.kind !== 'assign') throw new Error(`expected an assignment, got queue ${choice.reason}`);
  return choice.operatorId;
}

const byId = (a: number, b: number): number => a - b;

/** A cheap assertion for hot loops (expect() per pick is slow over a million picks). */
function check(condition: boolean, message: string): asserts condition {
  if (!condition) throw new Error(message);
}

/**
 * One round-robin pick through chooseOperator, with the state written back.
 * Checks what every pick must satisfy: an eligible operator is chosen, the
 * returned cycle is the eligible set's key, and the currents cover exactly the
 * eligible operators.
 */
function rrStep(settings: Source): number {
  const choice = chooseOperator(settings, noRandom);
  if (choice.kind !== 'assign') throw new Error(`expected an assignment, got queue ${choice.reason}`);
  const eligible = settings.candidates.filter(isEligible);
  const state = choice.roundRobin;
  check(eligible.some((c) => c.operatorId === choice.operatorId), `chose ${choice.operatorId}, not eligible`);
  check(state !== undefined, 'a round-robin choice returns its new state');
  check(state.cycle === cycleKey(eligible), `cycle ${state.cycle} is not the eligible set ${cycleKey(eligible)}`);
  const keys = [...state.currents.keys()].sort(byId).join(',');
  const ids = eligible.map((c) => c.operatorId).sort(byId).join(',');
  check(keys === ids, `currents cover ${keys}, eligible are ${ids}`);
  applyRoundRobin(settings, state);
  return choice.operatorId;
}

/**
 * The documented bound for k operators: 1 - 1/(2k-2) = (2k-3)/(2k-2), as a
 * fraction num/den; 0 for a single operator (it gets everything).
 */
function shareBound(k: number): { num: number; den: number } {
  return k === 1 ? { num: 0, den: 1 } : { num: 2 * k - 3, den: 2 * k - 2 };
}

interface ShareViolation {
  pick: number;
  operatorId: number;
  count: number;
  exactShare: number;
  deviation: number;
  bound: number;
  weights: number[];
  sequence: string;
}

/**
 * Counts the picks of one run with an unchanged eligible set, measured from the
 * start of the run, and reports the first prefix where some operator's count is
 * further than 1 - 1/(2k-2) from its exact share n*w/W (checked in integers:
 * |count*W - n*w| * (2k-2) <= W * (2k-3)).
 */
function shareTracker(eligible: readonly Candidate[]) {
  const weights = eligible.map((c) => c.weight);
  const total = weights.reduce((s, w) => s + w, 0);
  const { num, den } = shareBound(eligible.length);
  const counts = new Map<number, number>(eligible.map((c) => [c.operatorId, 0]));
  const sequence: number[] = [];
  let first: ShareViolation | undefined;
  return {
    record(operatorId: number): void {
      check(counts.has(operatorId), `operator ${operatorId} is not in this run's eligible set`);
      counts.set(operatorId, counts.get(operatorId)! + 1);
      sequence.push(operatorId);
      const n = sequence.length;
      for (const c of eligible) {
        const count = counts.get(c.operatorId)!;
        if (first === undefined && Math.abs(count * total - n * c.weight) * den > total * num) {
          first = {
            pick: n,
            operatorId: c.operatorId,
            count,
            exactShare: (n * c.weight) / total,
            deviation: Math.abs(count - (n * c.weight) / total),
            bound: num / den,
            weights,
            sequence: sequence.slice(-40).join(','),
          };
        }
      }
    },
    get violation(): ShareViolation | undefined {
      return first;
    },
    get counts(): ReadonlyMap<number, number> {
      return counts;
    },
    get sequence(): readonly number[] {
      return sequence;
    },
  };
}

/** Runs `picks` round-robin picks with the eligible set unchanged; the first prefix beyond the bound, or undefined. */
function firstPrefixViolation(settings: Source, picks: number): ShareViolation | undefined {
  const tracker = shareTracker(settings.candidates.filter(isEligible));
  for (let n = 0; n < picks; n++) tracker.record(rrStep(settings));
  return tracker.violation;
}

/** The sequence a brand-new source with just these operators (weights, order) would produce. */
function freshSequence(eligible: readonly Candidate[], picks: number): number[] {
  const settings = source('SMOOTH_WEIGHTED_ROUND_ROBIN', eligible.map((c) => cand(c.operatorId, c.weight)));
  return Array.from({ length: picks }, () => rrStep(settings));
}

const STRATEGIES: readonly Strategy[] = ['WEIGHTED_RANDOM', 'SMOOTH_WEIGHTED_ROUND_ROBIN'];

// ---------------------------------------------------------------------------

describe('isConfigured / isEligible', () => {
  const maxLoad = 3;
  const loads = [
    { label: 'below max_load', openLoad: 2, belowMax: true },
    { label: 'at max_load', openLoad: 3, belowMax: false },
    { label: 'above max_load', openLoad: 4, belowMax: false },
  ] as const;
  const rows: { weight: number; active: boolean; openLoad: number; loadLabel: string; configured: boolean; eligible: boolean }[] = [];
  for (const weight of [0, 1, 7])
    for (const active of [true, false])
      for (const load of loads)
        rows.push({
          weight,
          active,
          openLoad: load.openLoad,
          loadLabel: load.label,
          configured: weight > 0,
          eligible: weight > 0 && active && load.belowMax,
        });

  it('covers all 18 combinations of weight (0, >0), active and load (below / at / above max_load)', () => {
    expect(rows).toHaveLength(18);
    expect(rows.filter((r) => r.eligible)).toHaveLength(2); // weights 1 and 7, active, below max
  });

  for (const r of rows) {
    it(`weight=${r.weight} active=${r.active} ${r.loadLabel}: configured=${r.configured} eligible=${r.eligible}`, () => {
      const c = cand(1, r.weight, { active: r.active, openLoad: r.openLoad, maxLoad });
      expect(isConfigured(c)).toBe(r.configured);
      expect(isEligible(c)).toBe(r.eligible);
    });
  }

  it('max_load 0 means never eligible, even with no load', () => {
    const c = cand(1, 5, { openLoad: 0, maxLoad: 0 });
    expect(isConfigured(c)).toBe(true);
    expect(isEligible(c)).toBe(false);
  });

  it('an operator with one free slot is eligible; the next claim makes it ineligible', () => {
    const c = cand(1, 5, { openLoad: 0, maxLoad: 1 });
    expect(isEligible(c)).toBe(true);
    c.openLoad = 1;
    expect(isEligible(c)).toBe(false);
  });
});

describe('chooseOperator: queueing', () => {
  for (const strategy of STRATEGIES) {
    describe(strategy, () => {
      it('QUEUED_NO_OPERATORS for an empty candidate list', () => {
        expect(chooseOperator(source(strategy, []), () => 0.5)).toEqual({ kind: 'queue', reason: 'QUEUED_NO_OPERATORS' });
      });

      it('QUEUED_NO_OPERATORS when every candidate has weight 0 (even active and free)', () => {
        const candidates = [cand(1, 0), cand(2, 0, { active: false }), cand(3, 0, { openLoad: 5, maxLoad: 5 })];
        expect(chooseOperator(source(strategy, candidates), () => 0.5)).toEqual({ kind: 'queue', reason: 'QUEUED_NO_OPERATORS' });
      });

      it('QUEUED_NO_CAPACITY when the configured operators are all inactive', () => {
        const candidates = [cand(1, 3, { active: false }), cand(2, 1, { active: false })];
        expect(chooseOperator(source(strategy, candidates), () => 0.5)).toEqual({ kind: 'queue', reason: 'QUEUED_NO_CAPACITY' });
      });

      it('QUEUED_NO_CAPACITY when the configured operators are all at or above max_load', () => {
        const candidates = [cand(1, 3, { openLoad: 2, maxLoad: 2 }), cand(2, 1, { openLoad: 9, maxLoad: 4 })];
        expect(chooseOperator(source(strategy, candidates), () => 0.5)).toEqual({ kind: 'queue', reason: 'QUEUED_NO_CAPACITY' });
      });

      it('QUEUED_NO_CAPACITY (not NO_OPERATORS) when a weight-0 operator is free but every weighted one is full or inactive', () => {
        const candidates = [cand(1, 0), cand(2, 4, { openLoad: 1, maxLoad: 1 }), cand(3, 2, { active: false })];
        expect(chooseOperator(source(strategy, candidates), () => 0.5)).toEqual({ kind: 'queue', reason: 'QUEUED_NO_CAPACITY' });
      });

      it('the single eligible operator is chosen whatever the others are', () => {
        const candidates = [
          cand(1, 0),
          cand(2, 100, { active: false }),
          cand(3, 100, { openLoad: 3, maxLoad: 3 }),
          cand(4, 1, { openLoad: 2, maxLoad: 3 }),
          cand(5, 100, { openLoad: 7, maxLoad: 3 }),
        ];
        for (const r of [0, 0.25, 0.5, 0.999999]) expect(assigned(chooseOperator(source(strategy, candidates), () => r))).toBe(4);
      });
    });
  }

  it('WEIGHTED_RANDOM carries no round-robin state (nothing to save)', () => {
    const choice = chooseOperator(source('WEIGHTED_RANDOM', [cand(1, 1), cand(2, 1)], '1,2'), () => 0);
    expect(choice.kind).toBe('assign');
    if (choice.kind === 'assign') expect(choice.roundRobin).toBeUndefined();
  });

  it('property: never picks an ineligible candidate; queue reasons match the candidates (2,000 random sets, seeded)', () => {
    const random = mulberry32(20240501);
    let assignedCount = 0;
    let noOperators = 0;
    let noCapacity = 0;
    let continuedCycles = 0;
    for (let trial = 0; trial < 2000; trial++) {
      const size = randomInt(random, 0, 8);
      const candidates: Candidate[] = [];
      for (let i = 0; i < size; i++) {
        const maxLoad = randomInt(random, 0, 5);
        candidates.push(
          cand(i + 1, random() < 0.3 ? 0 : randomInt(random, 1, 50), {
            active: random() < 0.7,
            maxLoad,
            openLoad: randomInt(random, 0, maxLoad + 1),
            swrrCurrent: randomInt(random, -100, 100),
          }),
        );
      }
      const strategy: Strategy = random() < 0.5 ? 'WEIGHTED_RANDOM' : 'SMOOTH_WEIGHTED_ROUND_ROBIN';
      const eligibleNow = candidates.filter(isEligible);
      // The stored cycle: none, another set's (stale state, ignored), or this set's
      // with state from real picks (a cycle in progress).
      const settings = source(strategy, candidates, random() < 0.5 ? '' : '99,98');
      if (strategy === 'SMOOTH_WEIGHTED_ROUND_ROBIN' && eligibleNow.length > 0 && random() < 0.5) {
        const warmUp = randomInt(random, 1, 20);
        for (let i = 0; i < warmUp; i++) rrStep(settings);
        expect(settings.cycle).toBe(cycleKey(eligibleNow));
        continuedCycles++;
      }
      const before = structuredClone(settings);
      const choice = chooseOperator(settings, random);
      expect(settings).toEqual(before); // pure: the input is not mutated
      const configured = candidates.filter((c) => c.weight > 0);
      const eligible = configured.filter((c) => c.active && c.openLoad < c.maxLoad);
      if (configured.length === 0) {
        expect(choice).toEqual({ kind: 'queue', reason: 'QUEUED_NO_OPERATORS' });
        noOperators++;
      } else if (eligible.length === 0) {
        expect(choice).toEqual({ kind: 'queue', reason: 'QUEUED_NO_CAPACITY' });
        noCapacity++;
      } else {
        const id = assigned(choice);
        expect(eligible.map((c) => c.operatorId)).toContain(id);
        if (choice.kind === 'assign') {
          if (strategy === 'SMOOTH_WEIGHTED_ROUND_ROBIN') {
            // the new state names the eligible set and covers exactly its operators
            expect(choice.roundRobin?.cycle).toBe(cycleKey(eligible));
            expect([...choice.roundRobin!.currents.keys()].sort(byId)).toEqual(eligible.map((c) => c.operatorId));
          } else {
            expect(choice.roundRobin).toBeUndefined();
          }
        }
        assignedCount++;
      }
    }
    // the generator really exercised every branch
    expect(assignedCount).toBeGreaterThan(100);
    expect(noOperators).toBeGreaterThan(50);
    expect(noCapacity).toBeGreaterThan(50);
    expect(continuedCycles).toBeGreaterThan(50);
  });
});

describe('pickWeightedRandom', () => {
  // weights 1 / 3 / 4 (total 8): every boundary k/8 is an exact binary fraction
  const eligible = [cand(11, 1), cand(22, 3), cand(33, 4)];
  const pick = (r: number): number => pickWeightedRandom(eligible, () => r).operatorId;

  it('random() = 0 gives the first operator', () => {
    expect(pick(0)).toBe(11);
  });

  it('random() just below 1 gives the last operator', () => {
    expect(pick(1 - Number.EPSILON / 2)).toBe(33);
    expect(pick(0.999999)).toBe(33);
  });

  it('thresholds sit exactly at the cumulative weight boundaries', () => {
    expect(pick(1 / 8 - 1e-12)).toBe(11);
    expect(pick(1 / 8)).toBe(22);
    expect(pick(4 / 8 - 1e-12)).toBe(22);
    expect(pick(4 / 8)).toBe(33);
  });

  it('each of the W equal tickets maps to the operator owning it: counts equal the weights exactly (10/30/60)', () => {
    const ops = [cand(1, 10), cand(2, 30), cand(3, 60)];
    const counts = new Map<number, number>();
    for (let t = 0; t < 100; t++) {
      const id = pickWeightedRandom(ops, () => (t + 0.5) / 100).operatorId;
      counts.set(id, (counts.get(id) ?? 0) + 1);
    }
    expect(Object.fromEntries(counts)).toEqual({ 1: 10, 2: 30, 3: 60 });
  });

  it('throws when there is nobody to pick', () => {
    expect(() => pickWeightedRandom([], () => 0.5)).toThrow();
  });

  it('chi-square: weights 10/30/60 over 30,000 seeded draws fit 0.1/0.3/0.6 (p > 0.001)', () => {
    const random = mulberry32(12345);
    const ops = [cand(1, 10), cand(2, 30), cand(3, 60)];
    const observed = [0, 0, 0];
    for (let i = 0; i < 30_000; i++) observed[pickWeightedRandom(ops, random).operatorId - 1]! += 1;
    expect(observed.reduce((a, b) => a + b, 0)).toBe(30_000);
    expect(goodnessOfFit(observed, [0.1, 0.3, 0.6])).toBeGreaterThan(0.001);
  });

  it('chi-square through chooseOperator: ineligible operators get nothing, the rest fit weight / eligible sum (p > 0.001)', () => {
    const random = mulberry32(777);
    const settings = source('WEIGHTED_RANDOM', [
      cand(1, 10),
      cand(2, 500, { active: false }),
      cand(3, 30),
      cand(4, 500, { openLoad: 2, maxLoad: 2 }),
      cand(5, 0),
      cand(6, 60),
    ]);
    const counts = new Map<number, number>();
    for (let i = 0; i < 30_000; i++) {
      const id = assigned(chooseOperator(settings, random));
      counts.set(id, (counts.get(id) ?? 0) + 1);
    }
    expect([...counts.keys()].sort(byId)).toEqual([1, 3, 6]);
    const observed = [counts.get(1) ?? 0, counts.get(3) ?? 0, counts.get(6) ?? 0];
    expect(goodnessOfFit(observed, [0.1, 0.3, 0.6])).toBeGreaterThan(0.001);
  });

  it('chi-square sanity: the same draws are rejected against a slightly wrong distribution (the check has power)', () => {
    const random = mulberry32(12345);
    const ops = [cand(1, 10), cand(2, 30), cand(3, 60)];
    const observed = [0, 0, 0];
    for (let i = 0; i < 30_000; i++) observed[pickWeightedRandom(ops, random).operatorId - 1]! += 1;
    // 0.11/0.30/0.59 is only slightly off, yet 30,000 draws reject it (statistic ~32)
    expect(goodnessOfFit(observed, [0.11, 0.3, 0.59])).toBeLessThan(0.001);
  });
});

describe('pickSmoothRoundRobin / SMOOTH_WEIGHTED_ROUND_ROBIN', () => {
  it('the bound 1 - 1/(2k-2) is strictly below 1 for every k >= 2, and 0 for k = 1', () => {
    expect(shareBound(1).num).toBe(0);
    for (let k = 2; k <= 100; k++) {
      const { num, den } = shareBound(k);
      expect(num / den).toBeCloseTo(1 - 1 / (2 * k - 2), 12);
      expect(num).toBeLessThan(den);
    }
  });

  it('is deterministic, never calls random, and does not mutate its input', () => {
    const settings = rrSource([1, 2, 3]);
    rrStep(settings); // a cycle in progress: '1,2,3' with currents 1, 2, -3
    const before = structuredClone(settings);
    const a = chooseOperator(settings, noRandom);
    const b = chooseOperator(settings, noRandom);
    expect(a).toEqual(b);
    expect(pickSmoothRoundRobin(settings.candidates, settings.cycle)).toEqual(pickSmoothRoundRobin(settings.candidates, settings.cycle));
    expect(settings).toEqual(before);
  });

  it('two runs of the same source give the same sequence (500 picks, weights 5/3/9/1)', () => {
    const run = (): number[] => {
      const settings = rrSource([5, 3, 9, 1]);
      return Array.from({ length: 500 }, () => rrStep(settings));
    };
    expect(run()).toEqual(run());
  });

  it('weights 1/2/3 from zero, worked by hand: C B C A B C, currents back to zero after one cycle', () => {
    // k = 3, W = 6: ready when behind = current + weight >= W/(2k-2) = 1.5; the
    // ready one whose behind reaches W(1 - 1/(2k-2)) = 4.5 first wins.
    // Pick 3 (behind 3, 0, 3) is where "largest current wins" would take A instead.
    const expected = [
      { id: 3, currents: { 1: 1, 2: 2, 3: -3 } },
      { id: 2, currents: { 1: 2, 2: -2, 3: 0 } },
      { id: 3, currents: { 1: 3, 2: 0, 3: -3 } },
      { id: 1, currents: { 1: -2, 2: 2, 3: 0 } },
      { id: 2, currents: { 1: -1, 2: -2, 3: 3 } },
      { id: 3, currents: { 1: 0, 2: 0, 3: 0 } },
    ];
    const settings = rrSource([1, 2, 3]);
    for (const step of expected) {
      const { chosen, roundRobin } = pickSmoothRoundRobin(settings.candidates, settings.cycle);
      expect({ id: chosen.operatorId, currents: Object.fromEntries(roundRobin.currents) }).toEqual(step);
      expect(roundRobin.cycle).toBe('1,2,3');
      applyRoundRobin(settings, roundRobin);
    }
  });

  it('continues a cycle in progress; an empty or another set\'s cycle starts afresh with every current treated as 0', () => {
    const state = () => [cand(1, 1, { swrrCurrent: 1 }), cand(2, 2, { swrrCurrent: 2 }), cand(3, 3, { swrrCurrent: -3 })];
    const fresh = pickSmoothRoundRobin([cand(1, 1), cand(2, 2), cand(3, 3)], '');
    // the same cycle: second pick of the hand-worked sequence
    const continued = pickSmoothRoundRobin(state(), '1,2,3');
    expect(continued.chosen.operatorId).toBe(2);
    expect(Object.fromEntries(continued.roundRobin.currents)).toEqual({ 1: 2, 2: -2, 3: 0 });
    for (const cycle of ['', '1,2', '1,2,3,4', '3,2,1']) {
      const restarted = pickSmoothRoundRobin(state(), cycle);
      expect(restarted.chosen.operatorId, `stored cycle '${cycle}'`).toBe(3);
      expect(restarted.roundRobin, `stored cycle '${cycle}'`).toEqual(fresh.roundRobin);
      expect(Object.fromEntries(restarted.roundRobin.currents)).toEqual({ 1: 1, 2: 2, 3: -3 });
    }
    // arbitrary stale currents are ignored too
    const stale = pickSmoothRoundRobin([cand(1, 1, { swrrCurrent: 999 }), cand(2, 2, { swrrCurrent: -40 }), cand(3, 3, { swrrCurrent: 7 })], '4,5');
    expect(stale.chosen.operatorId).toBe(fresh.chosen.operatorId);
    expect(stale.roundRobin).toEqual(fresh.roundRobin);
  });

  it('cycleKey names the eligible set: chooseOperator keys the cycle on eligible operators only', () => {
    const settings = source('SMOOTH_WEIGHTED_ROUND_ROBIN', [
      cand(1, 2),
      cand(2, 0),
      cand(3, 5, { active: false }),
      cand(4, 1, { openLoad: 2, maxLoad: 2 }),
      cand(5, 3),
    ]);
    const choice = chooseOperator(settings, noRandom);
    expect(choice.kind === 'assign' && choice.roundRobin?.cycle).toBe(cycleKey([cand(1, 2), cand(5, 3)]));
    expect(cycleKey([cand(1, 2), cand(5, 3)])).not.toBe(cycleKey([cand(1, 2), cand(4, 1), cand(5, 3)]));
    expect(choice.kind === 'assign' && [...choice.roundRobin!.currents.keys()].sort(byId)).toEqual([1, 5]);
  });

  it('a single eligible operator gets every contact; its current stays 0', () => {
    const settings = source('SMOOTH_WEIGHTED_ROUND_ROBIN', [cand(1, 4, { active: false }), cand(2, 7)]);
    expect(firstPrefixViolation(settings, 20)).toBeUndefined();
    expect(settings.cycle).toBe('2');
    expect(settings.candidates.map((c) => c.swrrCurrent)).toEqual([0, 0]);
  });

  it('weights 1/2/3: 600 picks give exactly 100/200/300, and every prefix is within 1 - 1/4 of n*w/W (so within 1)', () => {
    const settings = rrSource([1, 2, 3]);
    const tracker = shareTracker(settings.candidates);
    for (let i = 0; i < 600; i++) tracker.record(rrStep(settings));
    expect(tracker.violation).toBeUndefined();
    expect(Object.fromEntries(tracker.counts)).toEqual({ 1: 100, 2: 200, 3: 300 });
  });

  it('the currents of the cycle sum to 0 after each pick', () => {
    const settings = rrSource([5, 1, 1, 9]);
    for (let i = 0; i < 100; i++) {
      rrStep(settings);
      expect(settings.candidates.reduce((s, c) => s + c.swrrCurrent, 0)).toBe(0);
    }
  });

  it('throws when there is nobody to pick', () => {
    expect(() => pickSmoothRoundRobin([], '')).toThrow();
  });

  it('two operators, any weights: every prefix within 1 - 1/2 (exhaustive over weights 1..30, two cycles)', () => {
    for (let a = 1; a <= 30; a++)
      for (let b = 1; b <= 30; b++) expect(firstPrefixViolation(rrSource([a, b]), 2 * (a + b))).toBeUndefined();
  });

  it('three operators, small weights: every prefix within 1 - 1/4 (exhaustive over weights 1..12, two cycles)', () => {
    for (let a = 1; a <= 12; a++)
      for (let b = 1; b <= 12; b++)
        for (let c = 1; c <= 12; c++) expect(firstPrefixViolation(rrSource([a, b, c]), 2 * (a + b + c))).toBeUndefined();
  });

  it('weights 1/1/1/1/3/3/3/3 (beyond 1 under the nginx rule): every prefix within 1 - 1/14', () => {
    // nginx's "largest current wins" went 5,6,7,8,1,2,3,4,5,6,7: after 11 picks
    // operator 8 had 1 contact against an exact share of 11*3/16 = 2.0625.
    expect(firstPrefixViolation(rrSource([1, 1, 1, 1, 3, 3, 3, 3]), 16 * 8)).toBeUndefined();
  });

  it('weights 637/421/56/467/237/931/102 (beyond 1 under the nginx rule): every prefix of two cycles within 1 - 1/12', () => {
    const weights = [637, 421, 56, 467, 237, 931, 102];
    const total = weights.reduce((s, w) => s + w, 0);
    const settings = rrSource(weights);
    const tracker = shareTracker(settings.candidates);
    for (let n = 0; n < 2 * total; n++) tracker.record(rrStep(settings));
    expect(tracker.violation).toBeUndefined();
    // a bound below 1 forces exact shares whenever n*w/W is whole: after each cycle
    expect(weights.map((_, i) => tracker.counts.get(i + 1))).toEqual(weights.map((w) => 2 * w));
  });

  it('property: 300 random weight vectors (2-8 operators, weights 1-1000, 3,000 picks, seeded): every prefix within 1 - 1/(2k-2)', () => {
    const random = mulberry32(424242);
    const violations: ShareViolation[] = [];
    const sizes = new Set<number>();
    for (let trial = 0; trial < 300; trial++) {
      const size = randomInt(random, 2, 8);
      sizes.add(size);
      const weights = Array.from({ length: size }, () => randomInt(random, 1, 1000));
      const violation = firstPrefixViolation(rrSource(weights), 3000);
      if (violation) violations.push(violation);
    }
    expect(sizes.size).toBe(7);
    expect({ count: violations.length, first: violations[0] }).toEqual({ count: 0, first: undefined });
  });

  it('a weight change with the caller\'s reset (cycle \'\', as admin does) starts a fresh cycle under the new weights', () => {
    const settings = rrSource([1, 2, 3]);
    for (let i = 0; i < 4; i++) rrStep(settings);
    settings.candidates[0]!.weight = 5;
    settings.cycle = '';
    const tracker = shareTracker(settings.candidates);
    for (let i = 0; i < 40; i++) tracker.record(rrStep(settings));
    expect(tracker.violation).toBeUndefined();
    expect(tracker.sequence).toEqual(freshSequence(settings.candidates, 40));
  });

  describe('the eligible set changes mid-run', () => {
    type How = 'inactive' | 'full';
    function makeIneligible(c: Candidate, how: How): void {
      if (how === 'inactive') c.active = false;
      else c.openLoad = c.maxLoad;
    }
    function makeEligible(c: Candidate): void {
      c.active = true;
      c.openLoad = 0;
    }

    /**
     * Runs `warmUp` picks with everyone eligible, makes `dropId` ineligible for
     * `after` picks, then eligible again for `back` picks. Each run must be a
     * fresh cycle of its own set: its picks are exactly a new source's, its
     * counts measured from the change stay within the bound, and the stored
     * cycle names its set.
     */
    function runWithDrop(weights: number[], warmUp: number, dropId: number, after: number, back: number, how: How) {
      const settings = rrSource(weights);
      const everyone = [...settings.candidates];
      const warm = firstPrefixViolation(settings, warmUp);
      const dropped = settings.candidates.find((c) => c.operatorId === dropId)!;
      makeIneligible(dropped, how);
      const rest = settings.candidates.filter(isEligible);
      const whileDropped = shareTracker(rest);
      for (let m = 0; m < after; m++) whileDropped.record(rrStep(settings)); // rrStep: never dropId, cycle = cycleKey(rest)
      const droppedCycle = settings.cycle;
      makeEligible(dropped);
      const restored = shareTracker(everyone);
      for (let m = 0; m < back; m++) restored.record(rrStep(settings));
      return {
        warm,
        droppedCycle,
        restoredCycle: settings.cycle,
        whileDropped: whileDropped.violation,
        restored: restored.violation,
        freshWhileDropped: sameSequence(whileDropped.sequence, freshSequence(rest, after)),
        freshRestored: sameSequence(restored.sequence, freshSequence(everyone, back)),
        rest,
        everyone,
      };
    }

    function sameSequence(a: readonly number[], b: readonly number[]): boolean {
      return a.length === b.length && a.every((x, i) => x === b[i]);
    }

    it('weights 1/2/3, any operator dropped after 0-5 picks (deactivated or at max_load), then back: each run is a fresh cycle within the bound', () => {
      for (const how of ['inactive', 'full'] as const)
        for (let warmUp = 0; warmUp < 6; warmUp++)
          for (const dropId of [1, 2, 3]) {
            const r = runWithDrop([1, 2, 3], warmUp, dropId, 60, 60, how);
            const label = `${how} warmUp=${warmUp} drop=${dropId}`;
            expect(r.warm, label).toBeUndefined();
            expect(r.droppedCycle, label).toBe(cycleKey(r.rest));
            expect(r.droppedCycle, label).not.toBe(cycleKey(r.everyone));
            expect(r.whileDropped, label).toBeUndefined();
            expect(r.freshWhileDropped, label).toBe(true);
            expect(r.restoredCycle, label).toBe(cycleKey(r.everyone));
            expect(r.restored, label).toBeUndefined();
            expect(r.freshRestored, label).toBe(true);
          }
    });

    it('an operator that becomes ineligible is left out of the state and keeps its stored current', () => {
      const settings = rrSource([1, 2, 3]);
      rrStep(settings); // C: currents 1, 2, -3
      settings.candidates[2]!.active = false;
      const choice = chooseOperator(settings, noRandom);
      // fresh cycle among A, B (weights 1, 2): behind 1, 2 -> B
      expect(choice).toEqual({ kind: 'assign', operatorId: 2, roundRobin: { cycle: '1,2', currents: new Map([[1, 1], [2, -1]]) } });
      if (choice.kind === 'assign') applyRoundRobin(settings, choice.roundRobin!);
      expect(settings.candidates.map((c) => c.swrrCurrent)).toEqual([1, -1, -3]);
      // C returns: its stale -3 is ignored, the cycle of A, B, C starts from zero
      settings.candidates[2]!.active = true;
      expect(chooseOperator(settings, noRandom)).toEqual(chooseOperator(rrSource([1, 2, 3]), noRandom));
    });

    it('an operator joining (activated for the first time) starts a fresh cycle of the larger set', () => {
      const settings = source('SMOOTH_WEIGHTED_ROUND_ROBIN', [cand(1, 3), cand(2, 1), cand(3, 2), cand(4, 4, { active: false })]);
      expect(firstPrefixViolation(settings, 7)).toBeUndefined();
      expect(settings.cycle).toBe('1,2,3');
      settings.candidates[3]!.active = true;
      const tracker = shareTracker(settings.candidates);
      for (let i = 0; i < 50; i++) tracker.record(rrStep(settings));
      expect(settings.cycle).toBe('1,2,3,4');
      expect(tracker.violation).toBeUndefined();
      expect(tracker.sequence).toEqual(freshSequence(settings.candidates, 50));
    });

    it('weights A=1, B=1, C=3 with C reaching max_load 2 as loads grow: then A and B alternate, within 1/2 of their equal shares', () => {
      // Loads grow with each assignment, as claimCapacity makes them. Picks: C, A, C;
      // C is then full and a fresh cycle of A and B begins.
      const settings = source('SMOOTH_WEIGHTED_ROUND_ROBIN', [cand(1, 1), cand(2, 1), cand(3, 3, { maxLoad: 2 })]);
      const step = (): number => {
        const id = rrStep(settings);
        settings.candidates[id - 1]!.openLoad += 1;
        return id;
      };
      const sequence = [step(), step(), step()];
      expect(sequence).toEqual([3, 1, 3]);
      expect(isEligible(settings.candidates[2]!)).toBe(false);
      const storedC = settings.candidates[2]!.swrrCurrent;
      const tracker = shareTracker(settings.candidates.slice(0, 2));
      for (let m = 0; m < 20; m++) tracker.record(step());
      expect(tracker.sequence).toEqual([1, 2, 1, 2, 1, 2, 1, 2, 1, 2, 1, 2, 1, 2, 1, 2, 1, 2, 1, 2]);
      expect(tracker.violation).toBeUndefined();
      expect(settings.cycle).toBe('1,2');
      expect(settings.candidates[2]!.swrrCurrent).toBe(storedC); // not in the state since it became full
    });

    it('property: random weights (3-6 operators, 1-1000) and random eligibility changes: each run of one eligible set is a fresh cycle within 1 - 1/(2k-2)', () => {
      const random = mulberry32(99);
      const problems: unknown[] = [];
      let runs = 0;
      let continued = 0;
      for (let trial = 0; trial < 200; trial++) {
        const size = randomInt(random, 3, 6);
        const settings = rrSource(Array.from({ length: size }, () => randomInt(random, 1, 1000)));
        let runEligible = settings.candidates.filter(isEligible);
        let tracker = shareTracker(runEligible);
        const finishRun = (): void => {
          runs++;
          if (tracker.violation) problems.push({ trial, ...tracker.violation });
          const fresh = freshSequence(runEligible, tracker.sequence.length);
          if (!sameSequence(tracker.sequence, fresh)) problems.push({ trial, notFresh: cycleKey(runEligible), run: tracker.sequence.slice(0, 20), fresh: fresh.slice(0, 20) });
        };
        const segments = randomInt(random, 2, 7);
        for (let s = 0; s < segments; s++) {
          if (s > 0) {
            // toggle one or two operators' eligibility, by activity or load; keep someone eligible
            for (let t = randomInt(random, 0, 2); t > 0; t--) {
              const c = settings.candidates[randomInt(random, 0, size - 1)]!;
              if (isEligible(c)) makeIneligible(c, random() < 0.5 ? 'inactive' : 'full');
              else makeEligible(c);
            }
            if (!settings.candidates.some(isEligible)) makeEligible(settings.candidates[randomInt(random, 0, size - 1)]!);
          }
          const picks = randomInt(random, 0, 150);
          // A run is the picks made with one eligible set: a change that sees no
          // pick before the set changes back leaves the stored cycle running.
          const eligible = settings.candidates.filter(isEligible);
          if (picks > 0 && cycleKey(eligible) !== cycleKey(runEligible)) {
            if (tracker.sequence.length > 0) finishRun();
            runEligible = eligible;
            tracker = shareTracker(runEligible);
          } else if (picks > 0 && tracker.sequence.length > 0) {
            continued++; // same set: the cycle goes on, measured from its start
          }
          for (let m = picks; m > 0; m--) tracker.record(rrStep(settings));
          if (tracker.sequence.length > 0 && settings.cycle !== cycleKey(runEligible)) problems.push({ trial, cycle: settings.cycle, expected: cycleKey(runEligible) });
        }
        finishRun();
      }
      expect(runs).toBeGreaterThan(400);
      expect(continued).toBeGreaterThan(50);
      expect({ count: problems.length, first: problems[0] }).toEqual({ count: 0, first: undefined });
    });
  });
});

describe('chooseAffinity', () => {
  it('returns the first holder that is eligible for the source (holders are oldest first)', () => {
    const candidates = [cand(1, 1), cand(2, 1), cand(3, 1)];
    expect(chooseAffinity([2, 3], candidates)).toBe(2);
    expect(chooseAffinity([3, 2], candidates)).toBe(3);
  });

  it('holder order wins over candidate order and over weight', () => {
    const candidates = [cand(9, 100), cand(4, 1)];
    expect(chooseAffinity([4, 9], candidates)).toBe(4);
  });

  it('skips a holder not configured for the source (weight 0)', () => {
    expect(chooseAffinity([1, 2], [cand(1, 0), cand(2, 1)])).toBe(2);
  });

  it('skips an inactive holder', () => {
    expect(chooseAffinity([1, 2], [cand(1, 5, { active: false }), cand(2, 1)])).toBe(2);
  });

  it('skips a holder at max_load', () => {
    expect(chooseAffinity([1, 2], [cand(1, 5, { openLoad: 3, maxLoad: 3 }), cand(2, 1)])).toBe(2);
  });

  it('skips a holder above max_load', () => {
    expect(chooseAffinity([1, 2], [cand(1, 5, { openLoad: 4, maxLoad: 3 }), cand(2, 1)])).toBe(2);
  });

  it('keeps a holder with exactly one free slot', () => {
    expect(chooseAffinity([1, 2], [cand(1, 5, { openLoad: 2, maxLoad: 3 }), cand(2, 1)])).toBe(1);
  });

  it('skips a holder that is not in the candidate list (not configured for this source at all)', () => {
    expect(chooseAffinity([7, 2], [cand(1, 1), cand(2, 1)])).toBe(2);
  });

  it('returns undefined when no holder is eligible', () => {
    const candidates = [cand(1, 0), cand(2, 1, { active: false }), cand(3, 1, { openLoad: 1, maxLoad: 1 }), cand(4, 1)];
    expect(chooseAffinity([1, 2, 3, 99], candidates)).toBeUndefined();
  });

  it('returns undefined with no holders, or no candidates', () => {
    expect(chooseAffinity([], [cand(1, 1)])).toBeUndefined();
    expect(chooseAffinity([1], [])).toBeUndefined();
  });

  it('a holder listed twice (two open contacts) is still found', () => {
    expect(chooseAffinity([1, 1, 2], [cand(2, 1), cand(1, 1)])).toBe(1);
  });

  it('property: the result is always an eligible holder, and the first such (seeded)', () => {
    const random = mulberry32(31337);
    for (let trial = 0; trial < 1000; trial++) {
      const candidates = Array.from({ length: randomInt(random, 0, 6) }, (_, i) => {
        const maxLoad = randomInt(random, 0, 3);
        return cand(i + 1, randomInt(random, 0, 3), { active: random() < 0.7, maxLoad, openLoad: randomInt(random, 0, maxLoad + 1) });
      });
      const holders = Array.from({ length: randomInt(random, 0, 4) }, () => randomInt(random, 1, 8));
      const expected = holders.find((h) => {
        const c = candidates.find((x) => x.operatorId === h);
        return c !== undefined && c.weight > 0 && c.active && c.openLoad < c.maxLoad;
      });
      expect(chooseAffinity(holders, candidates)).toBe(expected);
    }
  });
});
