// The accept deadline: a contact its operator leaves NEW for the source's
// accept_within moves on (to another operator, or back to the queue) within
// 2 s of the deadline, with reason ACCEPT_TIMEOUT; one accepted in time
// stays; deadlines that passed while the service was down are honoured at
// start. The 2-4 s bounds below are the contract's, measured on the server's
// own assigned_at times.
import { timestampMs, type Timestamp } from '@bufbuild/protobuf/wkt';
import { status } from '@grpc/grpc-js';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { AssignmentEvent } from '../../../gen/crm/v1/distribution_pb.js';
import { AssignmentReason, ContactStatus, DistributionStrategy } from '../../../gen/crm/v1/resources_pb.js';
import { expectInvalid } from '../../support/expect-status.ts';
import { allContacts, createOperators, createSource, register, unique } from '../../support/fixtures.ts';
import { sleep } from '../../support/faults.ts';
import { StreamReader } from '../../support/stream-reader.ts';
import { startTestServer, type TestServer } from '../../support/test-server.ts';

const TWO_SECONDS = { seconds: 2n, nanos: 0 };

let t: TestServer;
beforeAll(async () => {
  t = await startTestServer();
});
afterAll(() => t.dispose());

const ms = (time: Timestamp | undefined) => timestampMs(time!);

/** The contact as stored now. */
async function current(contactId: bigint, leadId: bigint) {
  return (await allContacts(t, { leadId })).find((c) => c.id === contactId)!;
}

describe('accept_within on a source', () => {
  it('is set on create and update, shown on the source, and refused when negative or above 7 days', async () => {
    const { source } = await t.admin.createSource({ name: unique('source'), acceptWithin: { seconds: 90n, nanos: 0 } });
    expect(source!.acceptWithin).toMatchObject({ seconds: 90n });
    const updated = await t.admin.updateSource({ sourceId: source!.id, acceptWithin: { seconds: 0n, nanos: 0 } });
    expect(updated.source!.acceptWithin).toBeUndefined();
    const untouched = await t.admin.updateSource({ sourceId: source!.id, description: 'no change to the deadline' });
    expect(untouched.source!.acceptWithin).toBeUndefined();
    await expectInvalid(t.admin.createSource({ name: unique('source'), acceptWithin: { seconds: -1n, nanos: 0 } }), ['accept_within']);
    await expectInvalid(t.admin.updateSource({ sourceId: source!.id, acceptWithin: { seconds: 7n * 86_400n + 1n, nanos: 0 } }), ['accept_within']);
    const week = await t.admin.updateSource({ sourceId: source!.id, acceptWithin: { seconds: 7n * 86_400n, nanos: 0 } });
    expect(week.source!.acceptWithin).toMatchObject({ seconds: 604_800n });
  });
});

describe('a contact left NEW past accept_within', () => {
  it('moves to another operator 2 to 4 s after its assignment, with reason ACCEPT_TIMEOUT; one set IN_PROGRESS in time stays', async () => {
    const [a, b] = await createOperators(t, 2, 10);
    const sourceId = await createSource(t, [[a!, 1], [b!, 1]], { acceptWithin: TWO_SECONDS, strategy: DistributionStrategy.SMOOTH_WEIGHTED_ROUND_ROBIN, leadAffinity: false });
    const watcher = new StreamReader<AssignmentEvent>(t.distribution.watchAssignments({ sourceId }));
    const left = (await register(t, sourceId)).contact!;
    const accepted = (await register(t, sourceId)).contact!;
    await t.distribution.updateContactStatus({ contactId: accepted.id, status: ContactStatus.IN_PROGRESS });
    const moved = await watcher.until((e) => e.contact!.id === left.id && e.reason === AssignmentReason.ACCEPT_TIMEOUT);
    expect(moved.previousOperatorId).toBe(left.operator!.id);
    expect(moved.contact!.operator!.id).not.toBe(left.operator!.id);
    expect(moved.contact!.status).toBe(ContactStatus.NEW);
    const after = ms(moved.contact!.assignedAt) - ms(left.assignedAt);
    expect(after).toBeGreaterThanOrEqual(2_000);
    expect(after).toBeLessThanOrEqual(4_000);
    const stored = await current(left.id, left.lead!.id);
    expect(stored.operator!.id).toBe(moved.contact!.operator!.id);
    // The accepted one stays where it is, well past its deadline.
    await sleep(1_000);
    const kept = await current(accepted.id, accepted.lead!.id);
    expect(kept).toMatchObject({ status: ContactStatus.IN_PROGRESS, operator: { id: accepted.operator!.id } });
    expect(kept.assignedAt).toEqual(accepted.assignedAt);
    watcher.stream.cancel();
  });

  it('goes back to the queue when nobody else is eligible, and its deadline is gone with its operator', async () => {
    const [a] = await createOperators(t, 1, 10);
    const sourceId = await createSource(t, [[a!, 1]], { acceptWithin: TWO_SECONDS, leadAffinity: false });
    const watcher = new StreamReader<AssignmentEvent>(t.distribution.watchAssignments({ operatorId: a! }));
    const contact = (await register(t, sourceId)).contact!;
    const back = await watcher.until((e) => e.contact!.id === contact.id && e.reason === AssignmentReason.ACCEPT_TIMEOUT);
    expect(back.contact!.operator).toBeUndefined();
    expect(back.previousOperatorId).toBe(a);
    expect((await allContacts(t, { sourceId, queuedOnly: true })).map((c) => c.id)).toEqual([contact.id]);
    expect((await t.query.getOperator({ operatorId: a! })).operator!.openLoad).toBe(0);
    watcher.stream.cancel();
    // It waits in the queue without moving again; capacity elsewhere takes it (a, left at 0, takes nothing).
    await sleep(2_500);
    expect((await allContacts(t, { sourceId, queuedOnly: true })).map((c) => c.id)).toEqual([contact.id]);
    await t.admin.updateOperator({ operatorId: a!, maxLoad: 0 });
    const [b] = await createOperators(t, 1, 1);
    await t.admin.setOperatorWeight({ sourceId, operatorId: b!, weight: 1 });
    expect((await current(contact.id, contact.lead!.id)).operator!.id).toBe(b);
  });

  it('a server restarted after the deadline passed moves it at start', async () => {
    const restartable = await startTestServer();
    try {
      const [a, b] = await createOperators(restartable, 2, 10);
      const sourceId = await createSource(restartable, [[a!, 1], [b!, 1]], { acceptWithin: { seconds: 1n, nanos: 0 }, strategy: DistributionStrategy.SMOOTH_WEIGHTED_ROUND_ROBIN, leadAffinity: false });
      const contact = (await register(restartable, sourceId)).contact!;
      await restartable.stop();
      // Down through the deadline, and well past it.
      await sleep(2_500);
      const again = await startTestServer({ database: restartable.database });
      try {
        // Moved by the pass made at start (no registration, no other trigger needed).
        await expect.poll(async () => (await allContacts(again, { leadId: contact.lead!.id }))[0]!.operator?.id, { timeout: 2_000 }).not.toBe(contact.operator!.id);
        const moved = (await allContacts(again, { leadId: contact.lead!.id }))[0]!;
        expect(moved.operator).toBeDefined();
        expect(ms(moved.assignedAt) - ms(contact.assignedAt)).toBeGreaterThanOrEqual(2_500);
      } finally {
        await again.stop();
      }
    } finally {
      await restartable.dispose();
    }
  });

  it('is refused a transfer after it closed: FAILED_PRECONDITION, and the closed contact never moves', async () => {
    const [a, b] = await createOperators(t, 2, 10);
    const sourceId = await createSource(t, [[a!, 1], [b!, 1]], { acceptWithin: TWO_SECONDS, leadAffinity: false });
    const contact = (await register(t, sourceId)).contact!;
    await t.distribution.updateContactStatus({ contactId: contact.id, status: ContactStatus.CLOSED });
    await sleep(2_700);
    expect(await current(contact.id, contact.lead!.id)).toMatchObject({ status: ContactStatus.CLOSED, operator: { id: contact.operator!.id } });
    await expect(t.distribution.transferContact({ contactId: contact.id })).rejects.toMatchObject({ code: status.FAILED_PRECONDITION });
  });
});
