// The load-aware strategies of the pure engine: CAPACITY_WEIGHTED_RANDOM
// (weight x free capacity) and LEAST_LOADED (smallest open_load / max_load,
// then larger weight, then least recent assignment, then smaller id).
import { describe, expect, it } from 'vitest';
import {
  chooseOperator,
  compareForLeastLoaded,
  isDeterministic,
  pickCapacityWeightedRandom,
  pickLeastLoaded,
  withoutOperator,
  type Candidate,
  type SourceSettings,
} from '../../src/domain/assignment/choice.ts';
import { STRATEGIES, type Strategy } from '../../src/domain/entities.ts';
import { goodnessOfFit } from '../support/chi-square.ts';
import { mulberry32, randomInt } from '../support/seeded-random.ts';

function cand(operatorId: number, weight: number, over: Partial<Omit<Candidate, 'operatorId' | 'weight'>> = {}): Candidate {
  return { operatorId, weight, active: true, openLoad: 0, maxLoad: 10, swrrCurrent: 0, lastAssignedAt: null, ...over };
}

function settings(strategy: Strategy, candidates: Candidate[]): SourceSettings {
  return { strategy, cycle: '', candidates };
}

function picked(strategy: Strategy, candidates: Candidate[], random: () => number = () => 0.5): number {
  const choice = chooseOperator(settings(strategy, candidates), random);
  if (choice.kind !== 'assign') throw new Error(`expected an assignment, got ${choice.reason}`);
  return choice.operatorId;
}

/** Eligible operators with random weights (1-50) and loads below random max_loads (1-60). */
function randomTeam(random: () => number): Candidate[] {
  return Array.from({ length: randomInt(random, 2, 6) }, (_, i) => {
    const maxLoad = randomInt(random, 1, 60);
    return cand(i + 1, randomInt(random, 1, 50), { maxLoad, openLoad: randomInt(random, 0, maxLoad - 1) });
  });
}

describe('pickCapacityWeightedRandom', () => {
  it('each of the sum of weight x free tickets maps to its owner: counts equal weight x free exactly (200 random teams, seeded)', () => {
    const random = mulberry32(2024);
    for (let team = 0; team < 200; team++) {
      const eligible = randomTeam(random);
      const tickets = eligible.map((c) => c.weight * (c.maxLoad - c.openLoad));
      const total = tickets.reduce((a, b) => a + b, 0);
      const counts = new Map<number, number>();
      for (let t = 0; t < total; t++) {
        const id = pickCapacityWeightedRandom(eligible, () => (t + 0.5) / total).operatorId;
        counts.set(id, (counts.get(id) ?? 0) + 1);
      }
      expect(eligible.map((c) => counts.get(c.operatorId) ?? 0)).toEqual(tickets);
    }
  });

  it('worked by hand: weights 1/1 with max_load 10/30, empty, give 10:30 tickets (25% / 75%)', () => {
    const team = [cand(1, 1, { maxLoad: 10 }), cand(2, 1, { maxLoad: 30 })];
    expect(pickCapacityWeightedRandom(team, () => 0.2499).operatorId).toBe(1);
    expect(pickCapacityWeightedRandom(team, () => 0.25).operatorId).toBe(2);
    // Loads 5/25 of 10/30 leave 5 and 5 free: an even split.
    const loaded = [cand(1, 1, { maxLoad: 10, openLoad: 5 }), cand(2, 1, { maxLoad: 30, openLoad: 25 })];
    expect(pickCapacityWeightedRandom(loaded, () => 0.4999).operatorId).toBe(1);
    expect(pickCapacityWeightedRandom(loaded, () => 0.5).operatorId).toBe(2);
  });

  it('chi-square: draws fit weight x free / sum for 20 random teams, 20,000 draws each (p > 0.001)', () => {
    const random = mulberry32(99);
    for (let team = 0; team < 20; team++) {
      const eligible = randomTeam(random);
      const tickets = eligible.map((c) => c.weight * (c.maxLoad - c.openLoad));
      const total = tickets.reduce((a, b) => a + b, 0);
      const observed = eligible.map(() => 0);
      for (let i = 0; i < 20_000; i++) observed[eligible.indexOf(pickCapacityWeightedRandom(eligible, random))]! += 1;
      expect(goodnessOfFit(observed, tickets.map((n) => n / total))).toBeGreaterThan(0.001);
    }
  });

  it('through chooseOperator: full, inactive and weight-0 operators get nothing', () => {
    const random = mulberry32(7);
    const team = [
      cand(1, 5, { maxLoad: 4 }),
      cand(2, 9, { maxLoad: 4, openLoad: 4 }),
      cand(3, 9, { active: false }),
      cand(4, 0),
      cand(5, 1, { maxLoad: 100, openLoad: 50 }),
    ];
    const seen = new Set<number>();
    for (let i = 0; i < 2_000; i++) seen.add(picked('CAPACITY_WEIGHTED_RANDOM', team, random));
    expect([...seen].sort()).toEqual([1, 5]);
  });

  it('throws when there is nobody to pick', () => {
    expect(() => pickCapacityWeightedRandom([], () => 0.5)).toThrow();
  });
});

describe('pickLeastLoaded', () => {
  it('the smallest open_load / max_load wins, compared exactly (1/3 against 2/6 is a tie)', () => {
    expect(pickLeastLoaded([cand(1, 1, { openLoad: 2, maxLoad: 10 }), cand(2, 1, { openLoad: 3, maxLoad: 20 })]).operatorId).toBe(2);
    expect(pickLeastLoaded([cand(1, 1, { openLoad: 1, maxLoad: 3 }), cand(2, 2, { openLoad: 2, maxLoad: 6 })]).operatorId).toBe(2);
    expect(compareForLeastLoaded(cand(1, 5, { openLoad: 1, maxLoad: 3 }), cand(2, 5, { openLoad: 2, maxLoad: 6 }))).toBeLessThan(0);
  });

  it('a tie on load goes to the larger weight', () => {
    expect(pickLeastLoaded([cand(1, 2, { openLoad: 1, maxLoad: 4 }), cand(2, 7, { openLoad: 2, maxLoad: 8 }), cand(3, 3)]).operatorId).toBe(3);
    expect(pickLeastLoaded([cand(1, 2, { openLoad: 1, maxLoad: 4 }), cand(2, 7, { openLoad: 2, maxLoad: 8 })]).operatorId).toBe(2);
  });

  it('a tie on load and weight goes to the least recent assignment; never assigned counts as least recent', () => {
    expect(pickLeastLoaded([cand(1, 1, { lastAssignedAt: 2_000 }), cand(2, 1, { lastAssignedAt: 1_000 }), cand(3, 1, { lastAssignedAt: 3_000 })]).operatorId).toBe(2);
    expect(pickLeastLoaded([cand(1, 1, { lastAssignedAt: 1 }), cand(2, 1, { lastAssignedAt: null })]).operatorId).toBe(2);
  });

  it('a tie on everything goes to the smaller id, whatever the order given', () => {
    expect(pickLeastLoaded([cand(7, 1), cand(3, 1), cand(5, 1)]).operatorId).toBe(3);
    expect(pickLeastLoaded([cand(4, 1, { lastAssignedAt: 10 }), cand(2, 1, { lastAssignedAt: 10 })]).operatorId).toBe(2);
  });

  it('load comes before weight, and weight before recency', () => {
    expect(pickLeastLoaded([cand(1, 100, { openLoad: 1, maxLoad: 10 }), cand(2, 1, { openLoad: 0, maxLoad: 10, lastAssignedAt: 9e12 })]).operatorId).toBe(2);
    expect(pickLeastLoaded([cand(1, 2, { lastAssignedAt: 9e12 }), cand(2, 1, { lastAssignedAt: null })]).operatorId).toBe(1);
  });

  it('is deterministic and never calls random', () => {
    const team = [cand(1, 1, { openLoad: 3 }), cand(2, 1, { openLoad: 1 })];
    expect(picked('LEAST_LOADED', team, () => {
      throw new Error('random called');
    })).toBe(2);
    expect(isDeterministic('LEAST_LOADED')).toBe(true);
    expect(isDeterministic('CAPACITY_WEIGHTED_RANDOM')).toBe(false);
  });

  it('max_load 10/20/40, equal weights, 35 picks each taking one unit: no ratio exceeds another by more than 1/max_load of the fuller', () => {
    const team = [cand(1, 1, { maxLoad: 10 }), cand(2, 1, { maxLoad: 20 }), cand(3, 1, { maxLoad: 40 })];
    for (let n = 1; n <= 35; n++) {
      const chosen = team.find((c) => c.operatorId === picked('LEAST_LOADED', team))!;
      chosen.openLoad += 1;
      chosen.lastAssignedAt = n;
      for (const a of team) {
        for (const b of team) expect(a.openLoad / a.maxLoad - b.openLoad / b.maxLoad).toBeLessThanOrEqual(1 / a.maxLoad + 1e-12);
      }
    }
    expect(team.map((c) => c.openLoad)).toEqual([5, 10, 20]);
  });

  it('property: 300 random teams picked to full, one unit at a time, keep that bound after every pick (seeded)', () => {
    const random = mulberry32(31337);
    for (let round = 0; round < 300; round++) {
      const team = Array.from({ length: randomInt(random, 2, 5) }, (_, i) => cand(i + 1, randomInt(random, 1, 3), { maxLoad: randomInt(random, 1, 25) }));
      for (let n = 1; team.some((c) => c.openLoad < c.maxLoad); n++) {
        const chosen = team.find((c) => c.operatorId === picked('LEAST_LOADED', team))!;
        chosen.openLoad += 1;
        chosen.lastAssignedAt = n;
        const open = team.filter((c) => c.openLoad < c.maxLoad);
        // Among those still open, the fuller is never more than one contact's worth ahead.
        for (const a of open) for (const b of open) expect(a.openLoad / a.maxLoad - b.openLoad / b.maxLoad).toBeLessThanOrEqual(1 / a.maxLoad + 1e-12);
      }
    }
  });

  it('throws when there is nobody to pick', () => {
    expect(() => pickLeastLoaded([])).toThrow();
  });
});

describe('every strategy', () => {
  it.each(STRATEGIES)('%s never picks an operator left out with withoutOperator, and queues when only it was eligible', (strategy) => {
    const random = mulberry32(5);
    const team = [cand(1, 3), cand(2, 1, { openLoad: 9 }), cand(3, 2)];
    for (let i = 0; i < 500; i++) {
      const choice = chooseOperator(withoutOperator(settings(strategy, team), 3), random);
      expect(choice.kind === 'assign' && choice.operatorId).not.toBe(3);
    }
    expect(chooseOperator(withoutOperator(settings(strategy, [cand(3, 2), cand(4, 1, { active: false })]), 3), random)).toEqual({ kind: 'queue', reason: 'QUEUED_NO_CAPACITY' });
    expect(chooseOperator(withoutOperator(settings(strategy, [cand(3, 2)]), 3), random)).toEqual({ kind: 'queue', reason: 'QUEUED_NO_OPERATORS' });
  });
});
