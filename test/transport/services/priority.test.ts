// Priority: the queue hands out URGENT before HIGH before NORMAL before LOW,
// oldest first within each, on every trigger; it never changes who gets a contact.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ContactPriority, ContactStatus } from '../../../gen/crm/v1/resources_pb.js';
import { allContacts, createOperators, createSource, register } from '../../support/fixtures.ts';
import { startTestServer, type TestServer } from '../../support/test-server.ts';

let t: TestServer;
beforeAll(async () => {
  t = await startTestServer();
});
afterAll(() => t.dispose());

describe('contact priority', () => {
  it('is stored and shown: UNSPECIFIED reads as NORMAL, the rest as given', async () => {
    const [operator] = await createOperators(t, 1, 100);
    const sourceId = await createSource(t, [[operator!, 1]]);
    for (const [given, shown] of [
      [ContactPriority.UNSPECIFIED, ContactPriority.NORMAL],
      [ContactPriority.LOW, ContactPriority.LOW],
      [ContactPriority.HIGH, ContactPriority.HIGH],
      [ContactPriority.URGENT, ContactPriority.URGENT],
    ] as const) {
      const { contact } = await register(t, sourceId, undefined, { priority: given });
      expect(contact!.priority).toBe(shown);
      const [listed] = await allContacts(t, { leadId: contact!.lead!.id });
      expect(listed!.priority).toBe(shown);
    }
  });

  it('with every operator full, 5 LOW, 5 URGENT and 5 NORMAL queued interleaved come out URGENT, NORMAL, LOW, oldest first, as capacity frees one unit at a time', async () => {
    const [operator] = await createOperators(t, 1, 1);
    const sourceId = await createSource(t, [[operator!, 1]], { leadAffinity: false });
    let holder = (await register(t, sourceId)).contact!.id;
    const order = [ContactPriority.LOW, ContactPriority.URGENT, ContactPriority.NORMAL];
    const queued: { id: bigint; priority: ContactPriority }[] = [];
    for (let i = 0; i < 15; i++) {
      const { contact } = await register(t, sourceId, undefined, { priority: order[i % 3] });
      expect(contact!.operator).toBeUndefined();
      queued.push({ id: contact!.id, priority: order[i % 3]! });
    }
    const handedOut: bigint[] = [];
    for (let i = 0; i < 15; i++) {
      await t.distribution.updateContactStatus({ contactId: holder, status: ContactStatus.CLOSED });
      const [assigned] = (await allContacts(t, { operatorId: operator! })).filter((c) => c.status === ContactStatus.NEW);
      handedOut.push(assigned!.id);
      holder = assigned!.id;
    }
    const byPriority = (p: ContactPriority) => queued.filter((q) => q.priority === p).map((q) => q.id);
    expect(handedOut).toEqual([...byPriority(ContactPriority.URGENT), ...byPriority(ContactPriority.NORMAL), ...byPriority(ContactPriority.LOW)]);
  });

  it('orders the queue on the other triggers too: a higher max_load, an activation and new weights hand out URGENT first', async () => {
    const [operator] = await createOperators(t, 1, 0);
    const sourceId = await createSource(t, [[operator!, 1]], { leadAffinity: false });
    const low = await register(t, sourceId, undefined, { priority: ContactPriority.LOW });
    const urgent = await register(t, sourceId, undefined, { priority: ContactPriority.URGENT });
    const high = await register(t, sourceId, undefined, { priority: ContactPriority.HIGH });
    await t.admin.updateOperator({ operatorId: operator!, maxLoad: 1 });
    expect((await allContacts(t, { operatorId: operator! })).map((c) => c.id)).toEqual([urgent.contact!.id]);
    const [second] = await createOperators(t, 1, 1, false);
    await t.admin.setOperatorWeight({ sourceId, operatorId: second!, weight: 1 });
    await t.admin.updateOperator({ operatorId: second!, active: true });
    expect((await allContacts(t, { operatorId: second! })).map((c) => c.id)).toEqual([high.contact!.id]);
    const [third] = await createOperators(t, 1, 1);
    await t.admin.setSourceOperators({ sourceId, operators: [{ operatorId: operator!, weight: 1 }, { operatorId: second!, weight: 1 }, { operatorId: third!, weight: 1 }] });
    expect((await allContacts(t, { operatorId: third! })).map((c) => c.id)).toEqual([low.contact!.id]);
  });
});
