// QueryService over real gRPC: every RPC, filters, pagination, statistics, and
// a restart on the same database.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { status } from '@grpc/grpc-js';
import type { Contact, Operator, Source } from '../../../gen/crm/v1/resources_pb.js';
import { AssignmentOutcome, ContactStatus, DistributionStrategy } from '../../../gen/crm/v1/resources_pb.js';
import { expectCode, expectInvalid } from '../../support/expect-status.ts';
import { startTestServer, type TestServer } from '../../support/test-server.ts';

const ids = (items: readonly { id: bigint }[]) => items.map((item) => item.id);

/** A contact as plain data: who, where, whom, state. */
function summary(contact: Contact) {
  return {
    id: contact.id,
    leadId: contact.lead?.id,
    sourceId: contact.source?.id,
    operatorId: contact.operator?.id,
    status: contact.status,
    message: contact.message,
  };
}

/** A page of any list RPC as ids and the next token. */
type PageFetch = (pageSize: number, pageToken: string) => Promise<{ ids: bigint[]; next: string }>;

function pagers(t: () => TestServer): Record<string, PageFetch> {
  return {
    ListOperators: async (pageSize, pageToken) => {
      const r = await t().query.listOperators({ pageSize, pageToken });
      return { ids: ids(r.operators), next: r.nextPageToken };
    },
    ListSources: async (pageSize, pageToken) => {
      const r = await t().query.listSources({ pageSize, pageToken });
      return { ids: ids(r.sources), next: r.nextPageToken };
    },
    ListLeads: async (pageSize, pageToken) => {
      const r = await t().query.listLeads({ pageSize, pageToken });
      return { ids: ids(r.leads), next: r.nextPageToken };
    },
    ListContacts: async (pageSize, pageToken) => {
      const r = await t().query.listContacts({ pageSize, pageToken });
      return { ids: ids(r.contacts), next: r.nextPageToken };
    },
  };
}

/** Follows next_page_token to the end; returns each page's ids and the tokens seen. */
async function walk(fetch: PageFetch, pageSize: number): Promise<{ pages: bigint[][]; tokens: string[] }> {
  const pages: bigint[][] = [];
  const tokens: string[] = [];
  let token = '';
  for (let i = 0; i < 1_000; i++) {
    const page = await fetch(pageSize, token);
    pages.push(page.ids);
    tokens.push(page.next);
    if (page.next === '') return { pages, tokens };
    token = page.next;
  }
  throw new Error('pagination did not end');
}

describe('QueryService: operators, sources, leads, contacts', () => {
  let t: TestServer;
  let ann: Operator;
  let bob: Operator;
  let idle: Operator;
  let tg: Source;
  let wa: Source;
  let web: Source;
  // Leads: one (three contacts), two (closed), three (in progress), four (queued, closed).
  const lead = {} as Record<'one' | 'two' | 'three' | 'four', bigint>;
  const contact = {} as Record<'oneTg' | 'oneWa' | 'oneWeb' | 'twoTg' | 'threeWa' | 'fourWeb', Contact>;

  beforeAll(async () => {
    t = await startTestServer();
    ann = (await t.admin.createOperator({ name: 'Ann', maxLoad: 10 })).operator!;
    bob = (await t.admin.createOperator({ name: 'Bob', maxLoad: 10 })).operator!;
    idle = (await t.admin.createOperator({ name: 'Idle', maxLoad: 2, active: false })).operator!;
    tg = (await t.admin.createSource({ name: 'TelegramBot', code: 'tg', description: 'Telegram' })).source!;
    wa = (await t.admin.createSource({ name: 'WhatsApp bot', code: 'wa', strategy: DistributionStrategy.SMOOTH_WEIGHTED_ROUND_ROBIN })).source!;
    web = (await t.admin.createSource({ name: 'Web form' })).source!;
    tg = (await t.admin.setSourceOperators({ sourceId: tg.id, operators: [{ operatorId: ann.id, weight: 10 }, { operatorId: idle.id, weight: 0 }] })).source!;
    wa = (await t.admin.setSourceOperators({ sourceId: wa.id, operators: [{ operatorId: bob.id, weight: 5 }] })).source!;

    const register = async (src: Source, identity: { externalId?: string; phone?: string; email?: string; name?: string }, message: string) =>
      (await t.distribution.registerContact({ source: { case: 'sourceId', value: src.id }, lead: identity, message })).contact!;

    contact.oneTg = await register(tg, { externalId: 'ext-1', phone: '+7 999 111-22-33', email: 'One@Example.com', name: 'One' }, 'one via tg');
    contact.oneWa = await register(wa, { externalId: 'ext-1' }, 'one via wa');
    contact.oneWeb = await register(web, { email: 'one@example.com' }, 'one via web');
    contact.twoTg = await register(tg, { phone: '8 (900) 000-00-02', name: 'Two' }, 'two via tg');
    contact.threeWa = await register(wa, { email: 'three@example.com' }, 'three via wa');
    contact.fourWeb = await register(web, { externalId: 'ext-4' }, 'four via web');
    contact.twoTg = (await t.distribution.updateContactStatus({ contactId: contact.twoTg.id, status: ContactStatus.CLOSED })).contact!;
    contact.threeWa = (await t.distribution.updateContactStatus({ contactId: contact.threeWa.id, status: ContactStatus.IN_PROGRESS })).contact!;
    contact.fourWeb = (await t.distribution.updateContactStatus({ contactId: contact.fourWeb.id, status: ContactStatus.CLOSED })).contact!;
    lead.one = contact.oneTg.lead!.id;
    lead.two = contact.twoTg.lead!.id;
    lead.three = contact.threeWa.lead!.id;
    lead.four = contact.fourWeb.lead!.id;
  });
  afterAll(() => t.dispose());

  it('the fixture is what the tests assume', () => {
    expect(new Set(Object.values(lead)).size).toBe(4);
    expect(contact.oneWa.lead?.id).toBe(lead.one);
    expect(contact.oneWeb.lead?.id).toBe(lead.one);
    expect(contact.oneTg.operator?.id).toBe(ann.id);
    expect(contact.oneWa.operator?.id).toBe(bob.id);
    expect(contact.oneWeb.operator).toBeUndefined();
    expect(contact.twoTg).toMatchObject({ status: ContactStatus.CLOSED, operator: { id: ann.id } });
    expect(contact.threeWa).toMatchObject({ status: ContactStatus.IN_PROGRESS, operator: { id: bob.id } });
    expect(contact.fourWeb.operator).toBeUndefined();
    expect(contact.fourWeb.status).toBe(ContactStatus.CLOSED);
  });

  describe('GetOperator', () => {
    it('returns the operator with its current open_load', async () => {
      expect((await t.query.getOperator({ operatorId: ann.id })).operator).toMatchObject({ id: ann.id, name: 'Ann', active: true, maxLoad: 10, openLoad: 1 });
      expect((await t.query.getOperator({ operatorId: bob.id })).operator).toMatchObject({ id: bob.id, name: 'Bob', active: true, maxLoad: 10, openLoad: 2 });
      const read = (await t.query.getOperator({ operatorId: idle.id })).operator!;
      expect(read).toEqual(idle);
    });

    it('returns NOT_FOUND for an unknown id', async () => {
      await expectCode(t.query.getOperator({ operatorId: 424_242n }), status.NOT_FOUND);
    });

    it('rejects operator_id 0 or negative naming operator_id', async () => {
      await expectInvalid(t.query.getOperator({ operatorId: 0n }), ['operator_id']);
      await expectInvalid(t.query.getOperator({ operatorId: -3n }), ['operator_id']);
    });
  });

  describe('ListOperators', () => {
    it('lists every operator in id order with the same data GetOperator returns', async () => {
      const { operators, nextPageToken } = await t.query.listOperators({});
      expect(ids(operators)).toEqual([ann.id, bob.id, idle.id]);
      expect(nextPageToken).toBe('');
      for (const op of operators) expect((await t.query.getOperator({ operatorId: op.id })).operator).toEqual(op);
    });
  });

  describe('GetSource', () => {
    it('by id returns the source with its operators and weights', async () => {
      const { source } = await t.query.getSource({ source: { case: 'sourceId', value: tg.id } });
      expect(source).toMatchObject({ id: tg.id, name: 'TelegramBot', code: 'tg', description: 'Telegram', strategy: DistributionStrategy.WEIGHTED_RANDOM, leadAffinity: true });
      expect(source!.operators.map((o) => [o.operatorId, o.operatorName, o.weight])).toEqual([[ann.id, 'Ann', 10], [idle.id, 'Idle', 0]]);
      expect(source).toEqual(tg);
    });

    it('by code returns the same source', async () => {
      expect((await t.query.getSource({ source: { case: 'sourceCode', value: 'wa' } })).source).toEqual(wa);
      expect(wa).toMatchObject({ name: 'WhatsApp bot', strategy: DistributionStrategy.SMOOTH_WEIGHTED_ROUND_ROBIN });
      expect(wa.operators.map((o) => [o.operatorId, o.operatorName, o.weight])).toEqual([[bob.id, 'Bob', 5]]);
    });

    it('returns NOT_FOUND for an unknown id or code', async () => {
      await expectCode(t.query.getSource({ source: { case: 'sourceId', value: 424_242n } }), status.NOT_FOUND);
      await expectCode(t.query.getSource({ source: { case: 'sourceCode', value: 'nope' } }), status.NOT_FOUND);
    });

    it('rejects source_id 0, a blank code and a missing key, naming the field', async () => {
      await expectInvalid(t.query.getSource({ source: { case: 'sourceId', value: 0n } }), ['source_id']);
      await expectInvalid(t.query.getSource({ source: { case: 'sourceCode', value: '  ' } }), ['source_code']);
      await expectInvalid(t.query.getSource({}), ['source']);
    });
  });

  describe('ListSources', () => {
    it('lists every source in id order with its operators', async () => {
      const { sources, nextPageToken } = await t.query.listSources({});
      expect(sources).toEqual([tg, wa, await t.query.getSource({ source: { case: 'sourceId', value: web.id } }).then((r) => r.source)]);
      expect(sources[2]!.operators).toEqual([]);
      expect(nextPageToken).toBe('');
    });
  });

  describe('GetLead', () => {
    it('by id returns the lead with every contact from every source, oldest first', async () => {
      const { lead: one } = await t.query.getLead({ lead: { case: 'leadId', value: lead.one } });
      expect(one).toMatchObject({ id: lead.one, externalId: 'ext-1', phone: '+79991112233', email: 'one@example.com', name: 'One' });
      expect(one!.createdAt).toBeDefined();
      expect(one!.contacts.map(summary)).toEqual([
        { id: contact.oneTg.id, leadId: lead.one, sourceId: tg.id, operatorId: ann.id, status: ContactStatus.NEW, message: 'one via tg' },
        { id: contact.oneWa.id, leadId: lead.one, sourceId: wa.id, operatorId: bob.id, status: ContactStatus.NEW, message: 'one via wa' },
        { id: contact.oneWeb.id, leadId: lead.one, sourceId: web.id, operatorId: undefined, status: ContactStatus.NEW, message: 'one via web' },
      ]);
      expect(one!.contacts[0]).toMatchObject({ source: { id: tg.id, name: 'TelegramBot', code: 'tg' }, operator: { id: ann.id, name: 'Ann' }, lead: { id: lead.one, externalId: 'ext-1', name: 'One' } });
      expect(one!.contacts[0]!.assignedAt).toBeDefined();
      expect(one!.contacts[2]!.assignedAt).toBeUndefined();
    });

    it('shows closed contacts with closed_at', async () => {
      const { lead: two } = await t.query.getLead({ lead: { case: 'leadId', value: lead.two } });
      expect(two).toMatchObject({ id: lead.two, externalId: '', phone: '+89000000002', email: '', name: 'Two' });
      expect(two!.contacts.map(summary)).toEqual([
        { id: contact.twoTg.id, leadId: lead.two, sourceId: tg.id, operatorId: ann.id, status: ContactStatus.CLOSED, message: 'two via tg' },
      ]);
      expect(two!.contacts[0]!.closedAt).toBeDefined();
      expect(two!.contacts[0]).toEqual(contact.twoTg);
    });

    it('by identity finds the lead by external_id, by phone in any format and by email in any case', async () => {
      const byExternal = (await t.query.getLead({ lead: { case: 'identity', value: { externalId: ' ext-1 ' } } })).lead!;
      expect(byExternal.id).toBe(lead.one);
      expect(byExternal.contacts).toHaveLength(3);
      const byPhone = (await t.query.getLead({ lead: { case: 'identity', value: { phone: '+7 (999) 111 22 33' } } })).lead!;
      expect(byPhone).toEqual(byExternal);
      const byEmail = (await t.query.getLead({ lead: { case: 'identity', value: { email: 'ONE@example.COM' } } })).lead!;
      expect(byEmail).toEqual(byExternal);
      const byId = (await t.query.getLead({ lead: { case: 'leadId', value: lead.one } })).lead!;
      expect(byId).toEqual(byExternal);
    });

    it('by identity prefers external_id, then phone, then email', async () => {
      const mixed = (await t.query.getLead({ lead: { case: 'identity', value: { externalId: 'ext-1', phone: '89000000002', email: 'three@example.com' } } })).lead!;
      expect(mixed.id).toBe(lead.one);
      const phoneFirst = (await t.query.getLead({ lead: { case: 'identity', value: { externalId: 'unknown', phone: '89000000002', email: 'three@example.com' } } })).lead!;
      expect(phoneFirst.id).toBe(lead.two);
      const emailLast = (await t.query.getLead({ lead: { case: 'identity', value: { externalId: 'unknown', phone: '+1 000', email: 'three@example.com' } } })).lead!;
      expect(emailLast.id).toBe(lead.three);
    });

    it('returns NOT_FOUND for an unknown id or identity', async () => {
      await expectCode(t.query.getLead({ lead: { case: 'leadId', value: 424_242n } }), status.NOT_FOUND);
      await expectCode(t.query.getLead({ lead: { case: 'identity', value: { externalId: 'nobody', email: 'nobody@example.com' } } }), status.NOT_FOUND);
    });

    it('rejects lead_id 0, an identity without identifiers and a missing key, naming the field', async () => {
      await expectInvalid(t.query.getLead({ lead: { case: 'leadId', value: 0n } }), ['lead_id']);
      await expectInvalid(t.query.getLead({ lead: { case: 'identity', value: { name: 'Only a name' } } }), ['identity']);
      await expectInvalid(t.query.getLead({}), ['lead']);
    });
  });

  describe('ListLeads', () => {
    it('lists every lead in id order, each with its contacts', async () => {
      const { leads, nextPageToken } = await t.query.listLeads({});
      expect(nextPageToken).toBe('');
      expect(ids(leads)).toEqual([lead.one, lead.two, lead.three, lead.four]);
      expect(leads.map((l) => ids(l.contacts))).toEqual([
        [contact.oneTg.id, contact.oneWa.id, contact.oneWeb.id],
        [contact.twoTg.id],
        [contact.threeWa.id],
        [contact.fourWeb.id],
      ]);
      for (const l of leads) expect((await t.query.getLead({ lead: { case: 'leadId', value: l.id } })).lead).toEqual(l);
    });
  });

  describe('ListContacts', () => {
    const list = async (filter: { leadId?: bigint; sourceId?: bigint; operatorId?: bigint; status?: ContactStatus; queuedOnly?: boolean }) => {
      const r = await t.query.listContacts(filter);
      expect(r.nextPageToken).toBe('');
      return ids(r.contacts);
    };

    it('with no filter lists every contact, oldest first', async () => {
      const { contacts } = await t.query.listContacts({});
      expect(ids(contacts)).toEqual([contact.oneTg.id, contact.oneWa.id, contact.oneWeb.id, contact.twoTg.id, contact.threeWa.id, contact.fourWeb.id]);
      expect(contacts[3]).toEqual(contact.twoTg);
      expect(contacts[4]).toEqual(contact.threeWa);
    });

    it('filters by lead_id', async () => {
      expect(await list({ leadId: lead.one })).toEqual([contact.oneTg.id, contact.oneWa.id, contact.oneWeb.id]);
      expect(await list({ leadId: lead.three })).toEqual([contact.threeWa.id]);
    });

    it('filters by source_id', async () => {
      expect(await list({ sourceId: tg.id })).toEqual([contact.oneTg.id, contact.twoTg.id]);
      expect(await list({ sourceId: web.id })).toEqual([contact.oneWeb.id, contact.fourWeb.id]);
    });

    it('filters by operator_id', async () => {
      expect(await list({ operatorId: ann.id })).toEqual([contact.oneTg.id, contact.twoTg.id]);
      expect(await list({ operatorId: bob.id })).toEqual([contact.oneWa.id, contact.threeWa.id]);
      expect(await list({ operatorId: idle.id })).toEqual([]);
    });

    it('filters by status', async () => {
      expect(await list({ status: ContactStatus.NEW })).toEqual([contact.oneTg.id, contact.oneWa.id, contact.oneWeb.id]);
      expect(await list({ status: ContactStatus.IN_PROGRESS })).toEqual([contact.threeWa.id]);
      expect(await list({ status: ContactStatus.CLOSED })).toEqual([contact.twoTg.id, contact.fourWeb.id]);
    });

    it('queued_only lists contacts waiting in the queue: no operator and NEW (not a closed unassigned one)', async () => {
      const { contacts } = await t.query.listContacts({ queuedOnly: true });
      expect(contacts.map(summary)).toEqual([
        { id: contact.oneWeb.id, leadId: lead.one, sourceId: web.id, operatorId: undefined, status: ContactStatus.NEW, message: 'one via web' },
      ]);
      expect(await list({ queuedOnly: true, sourceId: web.id })).toEqual([contact.oneWeb.id]);
      expect(await list({ queuedOnly: true, sourceId: tg.id })).toEqual([]);
      expect(await list({ queuedOnly: true, leadId: lead.four })).toEqual([]);
    });

    it('combines filters as a conjunction', async () => {
      expect(await list({ sourceId: wa.id, status: ContactStatus.NEW })).toEqual([contact.oneWa.id]);
      expect(await list({ leadId: lead.one, operatorId: bob.id })).toEqual([contact.oneWa.id]);
      expect(await list({ sourceId: tg.id, operatorId: bob.id })).toEqual([]);
      expect(await list({ leadId: lead.two, status: ContactStatus.NEW })).toEqual([]);
    });

    it('queued_only AND operator_id matches nothing (a contact with an operator is not queued)', async () => {
      expect(await list({ queuedOnly: true, operatorId: ann.id })).toEqual([]);
    });

    it('queued_only AND status CLOSED matches nothing (a closed contact is not waiting in the queue)', async () => {
      expect(await list({ queuedOnly: true, status: ContactStatus.CLOSED })).toEqual([]);
    });

    it('queued_only AND status NEW is the queue', async () => {
      expect(await list({ queuedOnly: true, status: ContactStatus.NEW })).toEqual([contact.oneWeb.id]);
    });

    it('walks filtered pages: each matching contact exactly once, last token empty', async () => {
      const fetch: PageFetch = async (pageSize, pageToken) => {
        const r = await t.query.listContacts({ sourceId: web.id, pageSize, pageToken });
        return { ids: ids(r.contacts), next: r.nextPageToken };
      };
      const { pages, tokens } = await walk(fetch, 1);
      expect(pages).toEqual([[contact.oneWeb.id], [contact.fourWeb.id]]);
      expect(tokens[0]).not.toBe('');
      expect(tokens.at(-1)).toBe('');
    });

    it('rejects an unknown status naming status', async () => {
      await expectInvalid(t.query.listContacts({ status: 42 as ContactStatus }), ['status']);
    });
  });
});

describe('QueryService pagination', () => {
  let t: TestServer;
  const all: Record<string, bigint[]> = {};
  const COUNT = 53;

  beforeAll(async () => {
    t = await startTestServer();
    const operators: bigint[] = [];
    const sources: bigint[] = [];
    for (let i = 0; i < COUNT; i++) {
      operators.push((await t.admin.createOperator({ name: `op-${i}`, maxLoad: 1 })).operator!.id);
      sources.push((await t.admin.createSource({ name: `src-${i}` })).source!.id);
    }
    const leads: bigint[] = [];
    const contacts: bigint[] = [];
    for (let i = 0; i < COUNT; i++) {
      const r = await t.distribution.registerContact({ source: { case: 'sourceId', value: sources[i % 3]! }, lead: { externalId: `lead-${i}` }, message: `m${i}` });
      leads.push(r.contact!.lead!.id);
      contacts.push(r.contact!.id);
    }
    Object.assign(all, { ListOperators: operators, ListSources: sources, ListLeads: leads, ListContacts: contacts });
  });
  afterAll(() => t.dispose());

  const lists = pagers(() => t);

  it.each(Object.keys(lists))('%s: page_size 0 means 50', async (name) => {
    const fetch = lists[name]!;
    const first = await fetch(0, '');
    expect(first.ids).toEqual(all[name]!.slice(0, 50));
    expect(first.next).not.toBe('');
    const second = await fetch(0, first.next);
    expect(second.ids).toEqual(all[name]!.slice(50));
    expect(second.next).toBe('');
  });

  it.each(Object.keys(lists))('%s: walking pages returns every item exactly once, in order, and the last token is empty', async (name) => {
    const { pages, tokens } = await walk(lists[name]!, 7);
    expect(pages.flat()).toEqual(all[name]);
    expect(pages.map((p) => p.length)).toEqual([7, 7, 7, 7, 7, 7, 7, 4]);
    expect(tokens.slice(0, -1).every((token) => token !== '')).toBe(true);
    expect(tokens.at(-1)).toBe('');
  });

  it.each(Object.keys(lists))('%s: a page that ends exactly at the last item has an empty token', async (name) => {
    const exact = await lists[name]!(COUNT, '');
    expect(exact.ids).toEqual(all[name]);
    expect(exact.next).toBe('');
    const max = await lists[name]!(500, '');
    expect(max.ids).toEqual(all[name]);
    expect(max.next).toBe('');
  });

  it.each(Object.keys(lists))('%s: page_size above 500 or negative is INVALID_ARGUMENT naming page_size', async (name) => {
    await expectInvalid(lists[name]!(501, ''), ['page_size']);
    await expectInvalid(lists[name]!(-1, ''), ['page_size']);
  });

  it.each(Object.keys(lists))('%s: a garbage page_token is INVALID_ARGUMENT naming page_token', async (name) => {
    await expectInvalid(lists[name]!(10, 'garbage'), ['page_token']);
    await expectInvalid(lists[name]!(10, '%%%not-base64%%%'), ['page_token']);
    await expectInvalid(lists[name]!(10, Buffer.from('after:-5').toString('base64url')), ['page_token']);
  });
});

describe('QueryService statistics', () => {
  let t: TestServer;
  let x: Operator;
  let y: Operator;
  let z: Operator;
  let s: Source;
  let tSource: Source;
  let zeroSource: Source;

  const register = async (src: Source, externalId: string) =>
    t.distribution.registerContact({ source: { case: 'sourceId', value: src.id }, lead: { externalId }, message: externalId });

  beforeAll(async () => {
    t = await startTestServer();
    x = (await t.admin.createOperator({ name: 'X', maxLoad: 3 })).operator!;
    y = (await t.admin.createOperator({ name: 'Y', maxLoad: 1 })).operator!;
    z = (await t.admin.createOperator({ name: 'Z', maxLoad: 5 })).operator!;
    s = (await t.admin.createSource({ name: 'S', code: 's' })).source!;
    tSource = (await t.admin.createSource({ name: 'T', code: 't' })).source!;
    zeroSource = (await t.admin.createSource({ name: 'Zero' })).source!;

    // S: X alone takes three contacts (X is then full), then Y alone takes one (Y full).
    await t.admin.setSourceOperators({ sourceId: s.id, operators: [{ operatorId: x.id, weight: 3 }] });
    const s1 = await register(s, 's1');
    for (const id of ['s2', 's3']) expect((await register(s, id)).contact?.operator?.id).toBe(x.id);
    expect(s1.contact?.operator?.id).toBe(x.id);
    await t.admin.setSourceOperators({ sourceId: s.id, operators: [{ operatorId: y.id, weight: 1 }] });
    expect((await register(s, 's4')).contact?.operator?.id).toBe(y.id);
    // Final configuration of S: X 3, Y 1, Z 0. Everyone eligible is full: two contacts queue.
    await t.admin.setSourceOperators({ sourceId: s.id, operators: [{ operatorId: x.id, weight: 3 }, { operatorId: y.id, weight: 1 }, { operatorId: z.id, weight: 0 }] });
    expect((await register(s, 's5')).outcome).toBe(AssignmentOutcome.QUEUED_NO_CAPACITY);
    expect((await register(s, 's6')).outcome).toBe(AssignmentOutcome.QUEUED_NO_CAPACITY);
    // Closing one of X's contacts gives the oldest queued contact (s5) to X.
    await t.distribution.updateContactStatus({ contactId: s1.contact!.id, status: ContactStatus.CLOSED });

    // T: Z alone; t1 twice (the second by affinity), the first one closed.
    await t.admin.setSourceOperators({ sourceId: tSource.id, operators: [{ operatorId: z.id, weight: 1 }] });
    const t1 = await register(tSource, 't1');
    expect(t1.outcome).toBe(AssignmentOutcome.ASSIGNED);
    expect((await register(tSource, 't1')).outcome).toBe(AssignmentOutcome.ASSIGNED_AFFINITY);
    await t.distribution.updateContactStatus({ contactId: t1.contact!.id, status: ContactStatus.CLOSED });

    // Zero: one operator with weight 0, one queued contact.
    await t.admin.setSourceOperators({ sourceId: zeroSource.id, operators: [{ operatorId: y.id, weight: 0 }] });
    expect((await register(zeroSource, 'z1')).outcome).toBe(AssignmentOutcome.QUEUED_NO_OPERATORS);

    // Y goes inactive; its open contact stays with it.
    await t.admin.updateOperator({ operatorId: y.id, active: false });
  });
  afterAll(() => t.dispose());

  it('the queue drained s5 to X when s1 was closed; s6 still waits', async () => {
    const queued = await t.query.listContacts({ queuedOnly: true, sourceId: s.id });
    expect(queued.contacts.map((c) => c.message)).toEqual(['s6']);
    const xs = await t.query.listContacts({ operatorId: x.id });
    expect(xs.contacts.map((c) => [c.message, c.status])).toEqual([
      ['s1', ContactStatus.CLOSED], ['s2', ContactStatus.NEW], ['s3', ContactStatus.NEW], ['s5', ContactStatus.NEW],
    ]);
    // The drained contact got assigned_at when it left the queue; the waiting one has none.
    expect(xs.contacts[3]!.assignedAt).toBeDefined();
    expect(queued.contacts[0]!.assignedAt).toBeUndefined();
    expect(queued.contacts[0]!.operator).toBeUndefined();
  });

  it('GetOperatorStats: open_load, total_assigned and per-source open/total', async () => {
    const { operators } = await t.query.getOperatorStats({});
    expect(operators.map((o) => o.operatorId)).toEqual([x.id, y.id, z.id]);
    const loads = (i: number) => operators[i]!.sources.map((l) => [l.sourceId, l.sourceName, l.open, l.total]);

    expect(operators[0]).toMatchObject({ operatorId: x.id, operatorName: 'X', active: true, maxLoad: 3, openLoad: 3, totalAssigned: 4n });
    expect(loads(0)).toEqual([[s.id, 'S', 3n, 4n]]);

    // Y: inactive, still holding its open contact; configured for Zero (weight 0) with nothing from it.
    expect(operators[1]).toMatchObject({ operatorId: y.id, operatorName: 'Y', active: false, maxLoad: 1, openLoad: 1, totalAssigned: 1n });
    expect(loads(1)).toEqual([[s.id, 'S', 1n, 1n], [zeroSource.id, 'Zero', 0n, 0n]]);

    // Z: configured for S with weight 0 (nothing from it), two contacts from T, one closed.
    expect(operators[2]).toMatchObject({ operatorId: z.id, operatorName: 'Z', active: true, maxLoad: 5, openLoad: 1, totalAssigned: 2n });
    expect(loads(2)).toEqual([[s.id, 'S', 0n, 0n], [tSource.id, 'T', 1n, 2n]]);
  });

  it('GetOperatorStats keeps a source an operator was removed from but has contacts from', async () => {
    const other = await startTestServer();
    try {
      const op = (await other.admin.createOperator({ name: 'Solo', maxLoad: 5 })).operator!;
      const src = (await other.admin.createSource({ name: 'Old' })).source!;
      await other.admin.setSourceOperators({ sourceId: src.id, operators: [{ operatorId: op.id, weight: 1 }] });
      await other.distribution.registerContact({ source: { case: 'sourceId', value: src.id }, lead: { externalId: 'a' } });
      await other.admin.removeSourceOperator({ sourceId: src.id, operatorId: op.id });
      const { operators } = await other.query.getOperatorStats({});
      expect(operators).toHaveLength(1);
      expect(operators[0]).toMatchObject({ operatorId: op.id, openLoad: 1, totalAssigned: 1n });
      expect(operators[0]!.sources.map((l) => [l.sourceId, l.sourceName, l.open, l.total])).toEqual([[src.id, 'Old', 1n, 1n]]);
    } finally {
      await other.dispose();
    }
  });

  it('GetOperatorStats open_load agrees with GetOperator', async () => {
    const { operators } = await t.query.getOperatorStats({});
    for (const stats of operators) {
      const { operator } = await t.query.getOperator({ operatorId: stats.operatorId });
      expect(stats.openLoad).toBe(operator!.openLoad);
      expect(stats.sources.reduce((sum, l) => sum + l.open, 0n)).toBe(BigInt(operator!.openLoad));
      expect(stats.sources.reduce((sum, l) => sum + l.total, 0n)).toBe(stats.totalAssigned);
    }
  });

  it('GetDistributionStats: target_share = weight / sum, assigned_total, actual_share, queued', async () => {
    const stats = await t.query.getDistributionStats({ sourceId: s.id });
    expect(stats.sourceId).toBe(s.id);
    expect(stats.queued).toBe(1n);
    expect(stats.operators.map((o) => [o.operatorId, o.operatorName, o.weight, o.assignedTotal])).toEqual([
      [x.id, 'X', 3, 4n],
      [y.id, 'Y', 1, 1n],
      [z.id, 'Z', 0, 0n],
    ]);
    const [ox, oy, oz] = stats.operators;
    expect(ox!.targetShare).toBeCloseTo(0.75, 12);
    expect(oy!.targetShare).toBeCloseTo(0.25, 12);
    expect(oz!.targetShare).toBe(0);
    expect(ox!.actualShare).toBeCloseTo(0.8, 12);
    expect(oy!.actualShare).toBeCloseTo(0.2, 12);
    expect(oz!.actualShare).toBe(0);
  });

  it('GetDistributionStats counts contacts assigned by affinity and closed ones', async () => {
    const stats = await t.query.getDistributionStats({ sourceId: tSource.id });
    expect(stats).toMatchObject({ sourceId: tSource.id, queued: 0n });
    expect(stats.operators).toHaveLength(1);
    expect(stats.operators[0]).toMatchObject({ operatorId: z.id, operatorName: 'Z', weight: 1, targetShare: 1, assignedTotal: 2n, actualShare: 1 });
  });

  it('GetDistributionStats with all weights 0 has zero shares and counts the queue', async () => {
    const stats = await t.query.getDistributionStats({ sourceId: zeroSource.id });
    expect(stats).toMatchObject({ sourceId: zeroSource.id, queued: 1n });
    expect(stats.operators).toHaveLength(1);
    expect(stats.operators[0]).toMatchObject({ operatorId: y.id, operatorName: 'Y', weight: 0, targetShare: 0, assignedTotal: 0n, actualShare: 0 });
  });

  it('GetDistributionStats returns NOT_FOUND for an unknown source and INVALID_ARGUMENT for source_id 0', async () => {
    await expectCode(t.query.getDistributionStats({ sourceId: 424_242n }), status.NOT_FOUND);
    await expectInvalid(t.query.getDistributionStats({ sourceId: 0n }), ['source_id']);
  });
});

describe('QueryService after a restart on the same database', () => {
  it('a new server sees operators, sources with weights, leads with contacts and loads', async () => {
    const t = await startTestServer();
    let restarted: TestServer | undefined;
    try {
      const ann = (await t.admin.createOperator({ name: 'Ann', maxLoad: 2 })).operator!;
      const bob = (await t.admin.createOperator({ name: 'Bob', maxLoad: 1, active: false })).operator!;
      const tg = (await t.admin.createSource({ name: 'TelegramBot', code: 'tg', description: 'bot', strategy: DistributionStrategy.SMOOTH_WEIGHTED_ROUND_ROBIN, leadAffinity: false })).source!;
      await t.admin.setSourceOperators({ sourceId: tg.id, operators: [{ operatorId: ann.id, weight: 7 }, { operatorId: bob.id, weight: 2 }] });
      const c1 = await t.distribution.registerContact({ source: { case: 'sourceCode', value: 'tg' }, lead: { externalId: 'L1', phone: '+1 555 0100', name: 'Lee' }, message: 'hello' });
      const c2 = await t.distribution.registerContact({ source: { case: 'sourceCode', value: 'tg' }, lead: { email: 'kim@example.com' }, message: 'hi', requestId: 'req-2' });
      const c3 = await t.distribution.registerContact({ source: { case: 'sourceCode', value: 'tg' }, lead: { externalId: 'L1' }, message: 'again' });
      const c4 = await t.distribution.registerContact({ source: { case: 'sourceCode', value: 'tg' }, lead: { email: 'kim@example.com' }, message: 'queued' });
      expect([c1.outcome, c2.outcome, c4.outcome]).toEqual([AssignmentOutcome.ASSIGNED, AssignmentOutcome.ASSIGNED, AssignmentOutcome.QUEUED_NO_CAPACITY]);
      await t.distribution.updateContactStatus({ contactId: c1.contact!.id, status: ContactStatus.CLOSED });
      // c3 was queued behind c2 (Ann full) and took c1's place when it closed; c4 still waits.
      expect(c3.outcome).toBe(AssignmentOutcome.QUEUED_NO_CAPACITY);

      const snapshot = async (server: TestServer) => ({
        operators: (await server.query.listOperators({})).operators,
        ann: (await server.query.getOperator({ operatorId: ann.id })).operator,
        sources: (await server.query.listSources({})).sources,
        byCode: (await server.query.getSource({ source: { case: 'sourceCode', value: 'tg' } })).source,
        leads: (await server.query.listLeads({})).leads,
        lead: (await server.query.getLead({ lead: { case: 'identity', value: { phone: '15550100' } } })).lead,
        contacts: (await server.query.listContacts({})).contacts,
        queued: (await server.query.listContacts({ queuedOnly: true })).contacts,
        operatorStats: (await server.query.getOperatorStats({})).operators,
        distribution: await server.query.getDistributionStats({ sourceId: tg.id }),
      });
      const before = await snapshot(t);
      expect(before.operators.map((o) => [o.name, o.active, o.maxLoad, o.openLoad])).toEqual([['Ann', true, 2, 2], ['Bob', false, 1, 0]]);
      expect(before.byCode).toMatchObject({ name: 'TelegramBot', description: 'bot', strategy: DistributionStrategy.SMOOTH_WEIGHTED_ROUND_ROBIN, leadAffinity: false });
      expect(before.byCode!.operators.map((o) => [o.operatorName, o.weight])).toEqual([['Ann', 7], ['Bob', 2]]);
      expect(before.leads.map((l) => [l.externalId, l.phone, l.email, l.contacts.length])).toEqual([['L1', '+15550100', '', 2], ['', '', 'kim@example.com', 2]]);
      expect(before.contacts.map((c) => [c.message, c.status, c.operator?.name, c.requestId])).toEqual([
        ['hello', ContactStatus.CLOSED, 'Ann', ''],
        ['hi', ContactStatus.NEW, 'Ann', 'req-2'],
        ['again', ContactStatus.NEW, 'Ann', ''],
        ['queued', ContactStatus.NEW, undefined, ''],
      ]);
      expect(before.distribution.queued).toBe(1n);
      expect(before.operatorStats[0]).toMatchObject({ openLoad: 2, totalAssigned: 3n });

      await t.stop();
      restarted = await startTestServer({ database: t.database });
      const after = await snapshot(restarted);
      expect(after).toEqual(before);

      // The stored loads still bind: Ann is full, so a new contact queues; the
      // replayed request_id returns the original contact.
      const replay = await restarted.distribution.registerContact({ source: { case: 'sourceId', value: tg.id }, lead: { email: 'kim@example.com' }, message: 'hi', requestId: 'req-2' });
      expect(replay).toMatchObject({ replayed: true, contact: { id: c2.contact!.id } });
      const next = await restarted.distribution.registerContact({ source: { case: 'sourceId', value: tg.id }, lead: { externalId: 'L9' }, message: 'late' });
      expect(next.outcome).toBe(AssignmentOutcome.QUEUED_NO_CAPACITY);
      expect(next.contact!.id).toBeGreaterThan(c4.contact!.id);
    } finally {
      await restarted?.dispose();
      await t.dispose();
    }
  });
});
