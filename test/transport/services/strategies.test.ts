// The load-aware strategies end to end: CAPACITY_WEIGHTED_RANDOM gives each
// operator a share proportional to weight x free capacity, LEAST_LOADED keeps
// the operators' loads level.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ContactStatus, DistributionStrategy } from '../../../gen/crm/v1/resources_pb.js';
import { goodnessOfFit } from '../../support/chi-square.ts';
import { createSource, register, unique } from '../../support/fixtures.ts';
import { startTestServer, type TestServer } from '../../support/test-server.ts';

let t: TestServer;
beforeAll(async () => {
  t = await startTestServer();
});
afterAll(() => t.dispose());

async function operatorsWith(maxLoads: readonly number[]): Promise<bigint[]> {
  const ids: bigint[] = [];
  for (const maxLoad of maxLoads) ids.push((await t.admin.createOperator({ name: unique('op'), maxLoad })).operator!.id);
  return ids;
}

/** Registers `count` contacts one after another, closing each as soon as it is assigned; returns how many each operator got. */
async function registerAndClose(sourceId: bigint, operators: readonly bigint[], count: number): Promise<number[]> {
  const counts = operators.map(() => 0);
  for (let i = 0; i < count; i++) {
    const { contact } = await register(t, sourceId);
    counts[operators.indexOf(contact!.operator!.id)]! += 1;
    await t.distribution.updateContactStatus({ contactId: contact!.id, status: ContactStatus.CLOSED });
  }
  return counts;
}

/** 4,000 calls one after another: a few seconds on SQLite, more on PostgreSQL beside other test files. */
const SEQUENTIAL = { timeout: 240_000 };

describe('CAPACITY_WEIGHTED_RANDOM', () => {
  it('weights 1/1, max_load 10/30, loads kept at 0: 2,000 registrations split 25/75 (chi-square, p > 0.001)', SEQUENTIAL, async () => {
    const operators = await operatorsWith([10, 30]);
    const sourceId = await createSource(t, operators.map((id) => [id, 1] as const), { strategy: DistributionStrategy.CAPACITY_WEIGHTED_RANDOM, leadAffinity: false });
    const counts = await registerAndClose(sourceId, operators, 2_000);
    expect(counts[0]! + counts[1]!).toBe(2_000);
    expect(goodnessOfFit(counts, [0.25, 0.75])).toBeGreaterThan(0.001);
    // The check has power: the same counts do not pass for the plain weights' 50/50.
    expect(goodnessOfFit(counts, [0.5, 0.5])).toBeLessThan(0.001);
  });

  it('weights 1/1, loads held at 5/25 of 10/30 (5 free each): 2,000 registrations split 50/50 (chi-square, p > 0.001)', SEQUENTIAL, async () => {
    const operators = await operatorsWith([10, 30]);
    // Loads from another source, where each operator is alone, held open throughout.
    for (const [operatorId, held] of [[operators[0]!, 5], [operators[1]!, 25]] as const) {
      const filler = await createSource(t, [[operatorId, 1]]);
      for (let i = 0; i < held; i++) await register(t, filler);
    }
    const sourceId = await createSource(t, operators.map((id) => [id, 1] as const), { strategy: DistributionStrategy.CAPACITY_WEIGHTED_RANDOM, leadAffinity: false });
    const counts = await registerAndClose(sourceId, operators, 2_000);
    expect(goodnessOfFit(counts, [0.5, 0.5])).toBeGreaterThan(0.001);
    expect(goodnessOfFit(counts, [0.25, 0.75])).toBeLessThan(0.001);
    const loads = await Promise.all(operators.map(async (operatorId) => (await t.query.getOperator({ operatorId })).operator!.openLoad));
    expect(loads).toEqual([5, 25]);
  });

  it('in one batch, each choice sees the capacity the choices before it took', async () => {
    // 12 concurrent registrations share a transaction; two operators with 6 free units each must end with 6 each.
    const operators = await operatorsWith([6, 6]);
    const sourceId = await createSource(t, operators.map((id) => [id, 1] as const), { strategy: DistributionStrategy.CAPACITY_WEIGHTED_RANDOM, leadAffinity: false });
    const results = await Promise.all(Array.from({ length: 13 }, () => register(t, sourceId)));
    const per = operators.map((id) => results.filter((r) => r.contact!.operator?.id === id).length);
    expect(per).toEqual([6, 6]);
    expect(results.filter((r) => !r.contact!.operator)).toHaveLength(1);
  });
});

describe('LEAST_LOADED', () => {
  it('max_load 10/20/40, equal weights, 35 registrations without closes: after each, no open_load / max_load exceeds another by more than 1 / max_load of the fuller', async () => {
    const operators = await operatorsWith([10, 20, 40]);
    const sourceId = await createSource(t, operators.map((id) => [id, 1] as const), { strategy: DistributionStrategy.LEAST_LOADED, leadAffinity: false });
    for (let n = 1; n <= 35; n++) {
      await register(t, sourceId);
      const loads = await Promise.all(operators.map(async (operatorId) => (await t.query.getOperator({ operatorId })).operator!));
      for (const a of loads) {
        for (const b of loads) expect(a.openLoad / a.maxLoad - b.openLoad / b.maxLoad).toBeLessThanOrEqual(1 / a.maxLoad + 1e-12);
      }
    }
    const final = await Promise.all(operators.map(async (operatorId) => (await t.query.getOperator({ operatorId })).operator!.openLoad));
    expect(final).toEqual([5, 10, 20]);
  });

  it('a tie in load and weight goes to the operator assigned least recently, from any source', async () => {
    const [a, b] = await operatorsWith([100, 100]);
    const other = await createSource(t, [[a!, 1], [b!, 1]], { strategy: DistributionStrategy.LEAST_LOADED, leadAffinity: false });
    // Equal loads of 1 each, b assigned last (from the other source) ...
    const first = await register(t, other);
    const second = await register(t, other);
    expect([first.contact!.operator!.id, second.contact!.operator!.id]).toEqual([a, b]);
    // ... so a source of its own gives the next to a, then (loads 2/1) to b.
    const sourceId = await createSource(t, [[a!, 1], [b!, 1]], { strategy: DistributionStrategy.LEAST_LOADED, leadAffinity: false });
    expect((await register(t, sourceId)).contact!.operator!.id).toBe(a);
    expect((await register(t, sourceId)).contact!.operator!.id).toBe(b);
  });

  it('in one batch, each choice sees the loads the choices before it took: 30 concurrent registrations level 3 operators at 10 each', async () => {
    const operators = await operatorsWith([50, 50, 50]);
    const sourceId = await createSource(t, operators.map((id) => [id, 1] as const), { strategy: DistributionStrategy.LEAST_LOADED, leadAffinity: false });
    const results = await Promise.all(Array.from({ length: 30 }, () => register(t, sourceId)));
    expect(operators.map((id) => results.filter((r) => r.contact!.operator!.id === id).length)).toEqual([10, 10, 10]);
  });
});
