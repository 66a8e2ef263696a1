// The assignment engine through the real server: atomic capacity claims,
// race-safe lead creation, strategies, idempotency, affinity, queue drains.
import { status } from '@grpc/grpc-js';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { AssignmentOutcome, ContactStatus, DistributionStrategy } from '../../../gen/crm/v1/resources_pb.js';
import { goodnessOfFit } from '../../support/chi-square.ts';
import { allContacts, createOperators, createSource, isOpen, loads, register, unique } from '../../support/fixtures.ts';
import { startTestServer, type TestServer } from '../../support/test-server.ts';

let t: TestServer;
beforeAll(async () => {
  t = await startTestServer();
});
afterAll(() => t.dispose());

function countBy(operators: readonly bigint[], picks: readonly (bigint | undefined)[]): number[] {
  return operators.map((id) => picks.filter((p) => p === id).length);
}

describe('atomic capacity claim', () => {
  it('300 concurrent registrations against 3 operators with max_load 20: 60 assigned, 240 queued', async () => {
    const operators = await createOperators(t, 3, 20);
    const sourceId = await createSource(t, operators.map((id) => [id, 1] as const));
    const results = await Promise.all(Array.from({ length: 300 }, () => register(t, sourceId)));
    const assigned = results.filter((r) => r.contact?.operator !== undefined);
    expect(assigned).toHaveLength(60);
    expect(results.filter((r) => r.outcome === AssignmentOutcome.QUEUED_NO_CAPACITY)).toHaveLength(240);
    expect(countBy(operators, assigned.map((r) => r.contact!.operator!.id))).toEqual([20, 20, 20]);
    for (const load of await loads(t, operators)) expect(load).toEqual({ stored: 20, real: 20, max: 20 });
    expect(await allContacts(t, { sourceId, queuedOnly: true })).toHaveLength(240);
  });

  it('concurrent closes and registrations keep stored loads equal to real open counts', async () => {
    const operators = await createOperators(t, 2, 5);
    const sourceId = await createSource(t, operators.map((id) => [id, 1] as const));
    const first = await Promise.all(Array.from({ length: 30 }, () => register(t, sourceId)));
    const assigned = first.filter((r) => r.contact?.operator).map((r) => r.contact!.id);
    await Promise.all([
      ...assigned.map((contactId) => t.distribution.updateContactStatus({ contactId, status: ContactStatus.CLOSED })),
      ...assigned.map((contactId) => t.distribution.updateContactStatus({ contactId, status: ContactStatus.CLOSED })),
      ...Array.from({ length: 20 }, () => register(t, sourceId)),
    ]);
    for (const load of await loads(t, operators)) {
      expect(load.stored).toBe(load.real);
      expect(load.stored).toBeLessThanOrEqual(load.max);
    }
    // Every close freed room that the queue took at once: both operators are full again.
    expect((await loads(t, operators)).map((l) => l.stored)).toEqual([5, 5]);
  });
});

describe('race-safe lead upsert', () => {
  it('50 concurrent first contacts of one new lead create one lead', async () => {
    const [operator] = await createOperators(t, 1, 1000);
    const sourceId = await createSource(t, [[operator!, 1]]);
    const externalId = unique('same-lead');
    const results = await Promise.all(Array.from({ length: 50 }, () => register(t, sourceId, externalId)));
    expect(results.filter((r) => r.leadCreated)).toHaveLength(1);
    expect(new Set(results.map((r) => r.contact!.lead!.id)).size).toBe(1);
    expect(new Set(results.map((r) => r.contact!.id)).size).toBe(50);
    const { lead } = await t.query.getLead({ lead: { case: 'leadId', value: results[0]!.contact!.lead!.id } });
    expect(lead!.contacts).toHaveLength(50);
  });

  it('concurrent first contacts by phone in different spellings create one lead', async () => {
    const [operator] = await createOperators(t, 1, 1000);
    const sourceId = await createSource(t, [[operator!, 1]]);
    const spellings = ['+7 (912) 000-11-22', '+79120001122', '7 912 000 11 22', '+7-912-000-11-22'];
    const results = await Promise.all(Array.from({ length: 40 }, (_, i) =>
      register(t, sourceId, undefined, { lead: { phone: spellings[i % spellings.length]! } })));
    expect(results.filter((r) => r.leadCreated)).toHaveLength(1);
    expect(new Set(results.map((r) => r.contact!.lead!.id)).size).toBe(1);
  });
});

describe('strategies', () => {
  it('SMOOTH_WEIGHTED_ROUND_ROBIN 1/2/3 stays within 1 of every prefix share, 600 calls give 100/200/300', async () => {
    const operators = await createOperators(t, 3, 100_000);
    const weights = [1, 2, 3];
    const sourceId = await createSource(t, operators.map((id, i) => [id, weights[i]!] as const), { strategy: DistributionStrategy.SMOOTH_WEIGHTED_ROUND_ROBIN });
    const counts = [0, 0, 0];
    for (let n = 1; n <= 600; n++) {
      const r = await register(t, sourceId);
      expect(r.outcome).toBe(AssignmentOutcome.ASSIGNED);
      counts[operators.indexOf(r.contact!.operator!.id)]! += 1;
      if (n <= 60) for (let i = 0; i < 3; i++) expect(Math.abs(counts[i]! - (n * weights[i]!) / 6)).toBeLessThanOrEqual(1);
    }
    expect(counts).toEqual([100, 200, 300]);
  });

  it('the smooth round-robin sequence continues across a server restart', async () => {
    const reference = await startTestServer();
    const sequenceOf = async (server: TestServer, sourceId: bigint, operators: bigint[], n: number) => {
      const picks: number[] = [];
      for (let i = 0; i < n; i++) picks.push(operators.indexOf((await register(server, sourceId)).contact!.operator!.id));
      return picks;
    };
    const setUp = async (server: TestServer) => {
      const operators = await createOperators(server, 3, 1000);
      const sourceId = await createSource(server, operators.map((id, i) => [id, i + 1] as const), { strategy: DistributionStrategy.SMOOTH_WEIGHTED_ROUND_ROBIN });
      return { operators, sourceId };
    };
    const ref = await setUp(reference);
    const expected = await sequenceOf(reference, ref.sourceId, ref.operators, 12);
    await reference.dispose();

    let server = await startTestServer();
    const { operators, sourceId } = await setUp(server);
    const before = await sequenceOf(server, sourceId, operators, 5);
    await server.stop();
    server = await startTestServer({ database: server.database });
    const after = await sequenceOf(server, sourceId, operators, 7);
    await server.dispose();
    expect([...before, ...after]).toEqual(expected);
  });

  it('WEIGHTED_RANDOM 10/30/60 over 3,000 distinct leads passes chi-square at p > 0.001', async () => {
    const operators = await createOperators(t, 3, 100_000);
    const weights = [10, 30, 60];
    const sourceId = await createSource(t, operators.map((id, i) => [id, weights[i]!] as const));
    const picks: bigint[] = [];
    for (let batch = 0; batch < 30; batch++) {
      const results = await Promise.all(Array.from({ length: 100 }, () => register(t, sourceId)));
      picks.push(...results.map((r) => r.contact!.operator!.id));
    }
    const observed = countBy(operators, picks);
    expect(goodnessOfFit(observed, [0.1, 0.3, 0.6])).toBeGreaterThan(0.001);
    const stats = await t.query.getDistributionStats({ sourceId });
    expect(stats.operators.map((o) => Number(o.assignedTotal))).toEqual(observed);
    expect(stats.operators.map((o) => o.targetShare)).toEqual([0.1, 0.3, 0.6]);
  });
});

describe('idempotency', () => {
  it('a repeated request_id returns the original contact, replayed, with no load change', async () => {
    const [operator] = await createOperators(t, 1, 10);
    const sourceId = await createSource(t, [[operator!, 1]]);
    const first = await register(t, sourceId, 'idem-lead', { requestId: 'req-1' });
    const again = await register(t, sourceId, 'idem-lead', { requestId: 'req-1' });
    expect(first.replayed).toBe(false);
    expect(again.replayed).toBe(true);
    expect(again.contact!.id).toBe(first.contact!.id);
    expect(again.outcome).toBe(first.outcome);
    expect((await loads(t, [operator!]))[0]).toEqual({ stored: 1, real: 1, max: 10 });
  });

  it('20 concurrent repeats of one request_id make one contact', async () => {
    const [operator] = await createOperators(t, 1, 10);
    const sourceId = await createSource(t, [[operator!, 1]]);
    const results = await Promise.all(Array.from({ length: 20 }, () => register(t, sourceId, unique('lead'), { requestId: 'same-request' })));
    expect(new Set(results.map((r) => r.contact!.id)).size).toBe(1);
    expect(results.filter((r) => !r.replayed)).toHaveLength(1);
    expect(await allContacts(t, { sourceId })).toHaveLength(1);
    expect((await loads(t, [operator!]))[0]!.stored).toBe(1);
  });
});

describe('lead affinity', () => {
  it('on: a repeat contact goes to the operator holding the lead', async () => {
    const operators = await createOperators(t, 4, 100);
    const sourceId = await createSource(t, operators.map((id) => [id, 1] as const));
    const first = await register(t, sourceId, 'affine');
    for (let i = 0; i < 20; i++) {
      const r = await register(t, sourceId, 'affine');
      expect(r.outcome).toBe(AssignmentOutcome.ASSIGNED_AFFINITY);
      expect(r.contact!.operator!.id).toBe(first.contact!.operator!.id);
    }
  });

  it('on: falls back to the strategy when the holder is full, inactive or not configured', async () => {
    const [holder, other] = await createOperators(t, 2, 100);
    const sourceId = await createSource(t, [[holder!, 1], [other!, 0]]);
    const lead = unique('affine');
    await register(t, sourceId, lead);
    await t.admin.setSourceOperators({ sourceId, operators: [{ operatorId: holder!, weight: 0 }, { operatorId: other!, weight: 1 }] });
    const notConfigured = await register(t, sourceId, lead);
    expect(notConfigured.outcome).toBe(AssignmentOutcome.ASSIGNED);
    expect(notConfigured.contact!.operator!.id).toBe(other);

    const [a, b] = await createOperators(t, 2, 1);
    const source2 = await createSource(t, [[a!, 1], [b!, 1]]);
    const lead2 = unique('affine');
    const first = await register(t, source2, lead2);
    const second = await register(t, source2, lead2);
    expect(second.outcome).toBe(AssignmentOutcome.ASSIGNED);
    expect(second.contact!.operator!.id).not.toBe(first.contact!.operator!.id);
  });

  it('off: the strategy decides even for a lead with an open contact', async () => {
    const operators = await createOperators(t, 2, 1000);
    const sourceId = await createSource(t, [[operators[0]!, 1], [operators[1]!, 1]], { leadAffinity: false, strategy: DistributionStrategy.SMOOTH_WEIGHTED_ROUND_ROBIN });
    const picks = [];
    for (let i = 0; i < 6; i++) {
      const r = await register(t, sourceId, 'no-affinity-lead');
      expect(r.outcome).toBe(AssignmentOutcome.ASSIGNED);
      picks.push(r.contact!.operator!.id);
    }
    expect(countBy(operators, picks)).toEqual([3, 3]);
  });
});

describe('queue drain triggers', () => {
  /** A source whose only operator is full, with `queued` contacts waiting. */
  async function fullSource(queued: number) {
    const [busy] = await createOperators(t, 1, 1);
    const sourceId = await createSource(t, [[busy!, 1]]);
    const holding = await register(t, sourceId);
    const waiting = [];
    for (let i = 0; i < queued; i++) waiting.push((await register(t, sourceId)).contact!.id);
    return { busy: busy!, sourceId, holding: holding.contact!.id, waiting };
  }

  /** Operators of the source's contacts, in the order given; undefined while queued. */
  async function operatorsOf(sourceId: bigint, contactIds: readonly bigint[]): Promise<(bigint | undefined)[]> {
    const contacts = await allContacts(t, { sourceId });
    return contactIds.map((id) => contacts.find((c) => c.id === id)!.operator?.id);
  }

  it('closing a contact hands the oldest queued contact to that operator', async () => {
    const q = await fullSource(3);
    await t.distribution.updateContactStatus({ contactId: q.holding, status: ContactStatus.CLOSED });
    expect(await operatorsOf(q.sourceId, q.waiting)).toEqual([q.busy, undefined, undefined]);
  });

  it('activating an operator drains up to its capacity, oldest first', async () => {
    const q = await fullSource(4);
    const [sleeper] = await createOperators(t, 1, 2, false);
    await t.admin.setOperatorWeight({ sourceId: q.sourceId, operatorId: sleeper!, weight: 1 });
    expect(await allContacts(t, { sourceId: q.sourceId, queuedOnly: true })).toHaveLength(4);
    await t.admin.updateOperator({ operatorId: sleeper!, active: true });
    expect(await operatorsOf(q.sourceId, q.waiting)).toEqual([sleeper, sleeper, undefined, undefined]);
  });

  it('raising max_load drains the raise, oldest first', async () => {
    const q = await fullSource(3);
    await t.admin.updateOperator({ operatorId: q.busy, maxLoad: 3 });
    expect(await operatorsOf(q.sourceId, q.waiting)).toEqual([q.busy, q.busy, undefined]);
  });

  it('setting weights drains to the newly eligible operator; a weight of 0 does not', async () => {
    const q = await fullSource(2);
    const [fresh] = await createOperators(t, 1, 5);
    await t.admin.setOperatorWeight({ sourceId: q.sourceId, operatorId: fresh!, weight: 0 });
    expect(await allContacts(t, { sourceId: q.sourceId, queuedOnly: true })).toHaveLength(2);
    await t.admin.setSourceOperators({ sourceId: q.sourceId, operators: [{ operatorId: q.busy, weight: 1 }, { operatorId: fresh!, weight: 3 }] });
    expect(await operatorsOf(q.sourceId, q.waiting)).toEqual([fresh, fresh]);
  });

  it('queued contacts go only to operators eligible for their source', async () => {
    const q = await fullSource(1);
    const [stranger] = await createOperators(t, 1, 1);
    const otherSource = await createSource(t, [[stranger!, 1]]);
    const held = await register(t, otherSource);
    await t.distribution.updateContactStatus({ contactId: held.contact!.id, status: ContactStatus.CLOSED });
    expect(await operatorsOf(q.sourceId, q.waiting)).toEqual([undefined]);
    const { operator } = await t.query.getOperator({ operatorId: stranger! });
    expect(operator!.openLoad).toBe(0);
  });

  it('a queued contact can be closed but not taken IN_PROGRESS', async () => {
    const q = await fullSource(1);
    await expect(t.distribution.updateContactStatus({ contactId: q.waiting[0]!, status: ContactStatus.IN_PROGRESS }))
      .rejects.toMatchObject({ code: status.FAILED_PRECONDITION });
    const { contact } = await t.distribution.updateContactStatus({ contactId: q.waiting[0]!, status: ContactStatus.CLOSED });
    expect(contact!.status).toBe(ContactStatus.CLOSED);
    expect(isOpen(contact!)).toBe(false);
  });
});
