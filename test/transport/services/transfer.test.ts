// TransferContact: to a named operator (capacity checked) or through the
// source's strategy (never back to the holder; back to the queue, in its
// place, when nobody else can take it), in one transaction with the release
// of the holder's capacity and the drain it triggers.
import { status } from '@grpc/grpc-js';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { AssignmentEvent } from '../../../gen/crm/v1/distribution_pb.js';
import { AssignmentOutcome, AssignmentReason, ContactStatus } from '../../../gen/crm/v1/resources_pb.js';
import { expectCode } from '../../support/expect-status.ts';
import { allContacts, createOperators, createSource, loads, register } from '../../support/fixtures.ts';
import { StreamReader } from '../../support/stream-reader.ts';
import { startTestServer, type TestServer } from '../../support/test-server.ts';

let t: TestServer;
beforeAll(async () => {
  t = await startTestServer();
});
afterAll(() => t.dispose());

const openLoad = async (operatorId: bigint) => (await t.query.getOperator({ operatorId })).operator!.openLoad;
const contactById = async (contactId: bigint, leadId: bigint) => (await allContacts(t, { leadId })).find((c) => c.id === contactId)!;

describe('TransferContact to a named operator', () => {
  it('moves the contact, NEW again with a new assigned_at, and moves one unit of load; no weight for the source is needed', async () => {
    const [a, b] = await createOperators(t, 2, 10);
    const sourceId = await createSource(t, [[a!, 1]]);
    const { contact } = await register(t, sourceId);
    await t.distribution.updateContactStatus({ contactId: contact!.id, status: ContactStatus.IN_PROGRESS });
    const moved = await t.distribution.transferContact({ contactId: contact!.id, operatorId: b! });
    expect(moved.outcome).toBe(AssignmentOutcome.ASSIGNED);
    expect(moved.contact!.operator!.id).toBe(b);
    expect(moved.contact!.status).toBe(ContactStatus.NEW);
    expect(moved.contact!.assignedAt!.seconds * 1000n + BigInt(moved.contact!.assignedAt!.nanos / 1e6)).toBeGreaterThanOrEqual(
      contact!.assignedAt!.seconds * 1000n + BigInt(Math.floor(contact!.assignedAt!.nanos / 1e6)),
    );
    expect([await openLoad(a!), await openLoad(b!)]).toEqual([0, 1]);
    expect((await contactById(contact!.id, contact!.lead!.id)).operator!.id).toBe(b);
  });

  it.each([
    ['at its max_load', { maxLoad: 1, active: true, fill: true }],
    ['inactive', { maxLoad: 5, active: false, fill: false }],
  ])('refuses an operator %s with FAILED_PRECONDITION, and changes nothing', async (_label, target) => {
    const [a] = await createOperators(t, 1, 10);
    const [b] = await createOperators(t, 1, target.maxLoad, target.active);
    const sourceId = await createSource(t, [[a!, 1]]);
    if (target.fill) await register(t, await createSource(t, [[b!, 1]]));
    const { contact } = await register(t, sourceId);
    const before = [await openLoad(a!), await openLoad(b!)];
    await expectCode(t.distribution.transferContact({ contactId: contact!.id, operatorId: b! }), status.FAILED_PRECONDITION);
    expect([await openLoad(a!), await openLoad(b!)]).toEqual(before);
    expect((await contactById(contact!.id, contact!.lead!.id)).operator!.id).toBe(a);
  });

  it('to the operator that holds it: a successful no-op', async () => {
    const [a] = await createOperators(t, 1, 1);
    const sourceId = await createSource(t, [[a!, 1]]);
    const { contact } = await register(t, sourceId);
    const same = await t.distribution.transferContact({ contactId: contact!.id, operatorId: a! });
    expect(same.contact!.operator!.id).toBe(a);
    expect(same.contact!.assignedAt).toEqual(contact!.assignedAt);
    expect(await openLoad(a!)).toBe(1);
  });

  it('gives a queued contact to the named operator', async () => {
    const [a] = await createOperators(t, 1, 0);
    const [b] = await createOperators(t, 1, 1);
    const sourceId = await createSource(t, [[a!, 1]]);
    const { contact } = await register(t, sourceId);
    expect(contact!.operator).toBeUndefined();
    const moved = await t.distribution.transferContact({ contactId: contact!.id, operatorId: b! });
    expect(moved.contact!.operator!.id).toBe(b);
    expect(await openLoad(b!)).toBe(1);
    expect(await allContacts(t, { sourceId, queuedOnly: true })).toEqual([]);
  });

  it('refuses a CLOSED contact with FAILED_PRECONDITION, and unknown contacts or operators with NOT_FOUND', async () => {
    const [a, b] = await createOperators(t, 2, 5);
    const sourceId = await createSource(t, [[a!, 1]]);
    const { contact } = await register(t, sourceId);
    await t.distribution.updateContactStatus({ contactId: contact!.id, status: ContactStatus.CLOSED });
    await expectCode(t.distribution.transferContact({ contactId: contact!.id, operatorId: b! }), status.FAILED_PRECONDITION);
    await expectCode(t.distribution.transferContact({ contactId: contact!.id }), status.FAILED_PRECONDITION);
    await expectCode(t.distribution.transferContact({ contactId: 9_999_999n }), status.NOT_FOUND);
    const open = await register(t, sourceId);
    await expectCode(t.distribution.transferContact({ contactId: open.contact!.id, operatorId: 9_999_999n }), status.NOT_FOUND);
  });
});

describe('TransferContact through the strategy', () => {
  it('never hands the contact back to its holder (30 transfers between two operators alternate)', async () => {
    const [a, b] = await createOperators(t, 2, 5);
    const sourceId = await createSource(t, [[a!, 1], [b!, 1]]);
    const { contact } = await register(t, sourceId);
    let holder = contact!.operator!.id;
    for (let i = 0; i < 30; i++) {
      const moved = await t.distribution.transferContact({ contactId: contact!.id });
      expect(moved.outcome).toBe(AssignmentOutcome.ASSIGNED);
      expect(moved.contact!.operator!.id).not.toBe(holder);
      holder = moved.contact!.operator!.id;
    }
    expect((await loads(t, [a!, b!])).every((l) => l.stored === l.real)).toBe(true);
  });

  it('with nobody else configured: back to the queue (QUEUED_NO_OPERATORS), not back to the holder by its freed capacity, and in its original place', async () => {
    const [a] = await createOperators(t, 1, 1);
    const sourceId = await createSource(t, [[a!, 1]], { leadAffinity: false });
    const moved = (await register(t, sourceId)).contact!;
    const later = (await register(t, sourceId)).contact!;
    expect(later.operator).toBeUndefined();
    const result = await t.distribution.transferContact({ contactId: moved.id });
    expect(result.outcome).toBe(AssignmentOutcome.QUEUED_NO_OPERATORS);
    expect(result.contact!.operator).toBeUndefined();
    // The holder's freed unit went to the next in the queue, not back to the contact it just left.
    expect((await allContacts(t, { operatorId: a! })).filter((c) => c.status !== ContactStatus.CLOSED).map((c) => c.id)).toEqual([later.id]);
    // Its original place: older than what was queued after it, so the next capacity is its.
    const newer = (await register(t, sourceId)).contact!;
    const [b] = await createOperators(t, 1, 1);
    await t.admin.setOperatorWeight({ sourceId, operatorId: b!, weight: 1 });
    expect((await allContacts(t, { operatorId: b! })).map((c) => c.id)).toEqual([moved.id]);
    expect((await allContacts(t, { sourceId, queuedOnly: true })).map((c) => c.id)).toEqual([newer.id]);
  });

  it('with the others full: back to the queue with QUEUED_NO_CAPACITY', async () => {
    const [a] = await createOperators(t, 1, 5);
    const [b] = await createOperators(t, 1, 0);
    const sourceId = await createSource(t, [[a!, 1], [b!, 1]]);
    const { contact } = await register(t, sourceId);
    const result = await t.distribution.transferContact({ contactId: contact!.id });
    expect(result.outcome).toBe(AssignmentOutcome.QUEUED_NO_CAPACITY);
    expect([await openLoad(a!), await openLoad(b!)]).toEqual([0, 0]);
  });
});

describe('TransferContact under concurrency and in the feeds', () => {
  it('200 concurrent transfers mixed with registrations and closes leave every load equal to its real open count, none above max_load', async () => {
    const operators = await createOperators(t, 4, 15);
    const sourceId = await createSource(t, operators.map((id) => [id, 1] as const), { leadAffinity: false });
    const contacts = await Promise.all(Array.from({ length: 40 }, () => register(t, sourceId)));
    const ids = contacts.map((c) => c.contact!.id);
    const calls: Promise<unknown>[] = [];
    for (let i = 0; i < 200; i++) {
      const contactId = ids[i % ids.length]!;
      const named = i % 3 === 0 ? { operatorId: operators[i % operators.length]! } : {};
      calls.push(t.distribution.transferContact({ contactId, ...named }).catch((error: { code: number }) => {
        // A named operator may be full, a contact closed meanwhile: both are the caller's to hear.
        if (error.code !== status.FAILED_PRECONDITION) throw error;
      }));
      if (i % 4 === 0) calls.push(register(t, sourceId));
      if (i % 10 === 0) {
        calls.push(t.distribution.updateContactStatus({ contactId: ids[(i * 7) % ids.length]!, status: ContactStatus.CLOSED }).catch((error: { code: number }) => {
          if (error.code !== status.FAILED_PRECONDITION) throw error;
        }));
      }
    }
    await Promise.all(calls);
    for (const load of await loads(t, operators)) {
      expect(load.stored).toBe(load.real);
      expect(load.stored).toBeLessThanOrEqual(load.max);
    }
  });

  it('WatchAssignments streams TRANSFER with previous_operator_id, to watchers of the new and of the previous operator; a move back to the queue has no operator', async () => {
    const [a, b] = await createOperators(t, 2, 5);
    const sourceId = await createSource(t, [[a!, 1]], { leadAffinity: false });
    const first = (await register(t, sourceId)).contact!;
    const byPrevious = new StreamReader<AssignmentEvent>(t.distribution.watchAssignments({ operatorId: a! }));
    const byNew = new StreamReader<AssignmentEvent>(t.distribution.watchAssignments({ operatorId: b! }));
    // Subscribed once a transfer comes back on both streams.
    let probe = first.id;
    for (let attempt = 0; attempt < 50 && (byPrevious.messages.length === 0 || byNew.messages.length === 0); attempt++) {
      await t.distribution.transferContact({ contactId: probe, operatorId: b! });
      await t.distribution.transferContact({ contactId: probe, operatorId: a! });
      await new Promise((resolve) => setTimeout(resolve, 20));
      probe = first.id;
    }
    const contact = (await register(t, sourceId)).contact!;
    await t.distribution.transferContact({ contactId: contact.id, operatorId: b! });
    const toB = (e: AssignmentEvent) => e.contact!.id === contact.id && e.reason === AssignmentReason.TRANSFER;
    for (const reader of [byPrevious, byNew]) {
      const event = await reader.until(toB);
      expect(event.contact!.operator!.id).toBe(b);
      expect(event.previousOperatorId).toBe(a);
      expect(event.fromQueue).toBe(false);
    }
    // Through the strategy, with a (the only operator with a weight) inactive: nobody can take it.
    await t.admin.updateOperator({ operatorId: a!, active: false });
    await t.distribution.transferContact({ contactId: contact.id });
    const back = await byNew.until((e) => e.contact!.id === contact.id && e.previousOperatorId === b);
    expect(back.contact!.operator).toBeUndefined();
    expect(back.reason).toBe(AssignmentReason.TRANSFER);
    byPrevious.stream.cancel();
    byNew.stream.cancel();
  });

  it('statistics count a transfer as an assignment to the new operator, and keep the first one', async () => {
    const [a, b] = await createOperators(t, 2, 5);
    const sourceId = await createSource(t, [[a!, 1], [b!, 1]]);
    const { contact } = await register(t, sourceId);
    const from = contact!.operator!.id;
    const to = from === a ? b! : a!;
    await t.distribution.transferContact({ contactId: contact!.id, operatorId: to });
    const stats = await t.query.getDistributionStats({ sourceId });
    expect(Object.fromEntries(stats.operators.map((o) => [String(o.operatorId), Number(o.assignedTotal)]))).toEqual({ [String(from)]: 1, [String(to)]: 1 });
    const perOperator = (await t.query.getOperatorStats({})).operators;
    expect(perOperator.find((o) => o.operatorId === to)!.totalAssigned).toBe(1n);
    expect(perOperator.find((o) => o.operatorId === from)!.sources.find((s) => s.sourceId === sourceId)).toMatchObject({ open: 0n, total: 1n });
  });
});
