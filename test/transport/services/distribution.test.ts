// Integration tests of DistributionService.RegisterContact and UpdateContactStatus
// against the real server over a real SQLite file (CONTRACT.md: "Behaviour of
// RegisterContact", "Queue", contact status transitions, "Errors").
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { status as grpcStatus, type ServiceError } from '@grpc/grpc-js';
import type { RegisterContactResponse } from '../../../gen/crm/v1/distribution_pb.js';
import type { MessageInitShape } from '@bufbuild/protobuf';
import { AssignmentOutcome, ContactStatus, type Contact, type LeadIdentitySchema, type Operator } from '../../../gen/crm/v1/resources_pb.js';
import { goodnessOfFit } from '../../support/chi-square.ts';
import { fieldViolations } from '../../support/status-details.ts';
import { startTestServer, type TestServer } from '../../support/test-server.ts';

// ---------------------------------------------------------------- helpers

let uniq = 0;
/** A name no other test in this file uses. */
function unique(prefix: string): string {
  uniq += 1;
  return `${prefix}-${uniq}`;
}

interface OperatorSpec {
  name?: string;
  maxLoad: number;
  /** Omitted: the operator is not configured for the source at all. */
  weight?: number;
  active?: boolean;
}

/** Creates operators and one source configured with their weights. */
async function setupSource(t: TestServer, operators: OperatorSpec[], options: { code?: string } = {}) {
  const ops: Operator[] = [];
  for (const spec of operators) {
    const { operator } = await t.admin.createOperator({
      name: spec.name ?? unique('op'),
      maxLoad: spec.maxLoad,
      ...(spec.active === undefined ? {} : { active: spec.active }),
    });
    expect(operator?.active).toBe(spec.active ?? true);
    ops.push(operator!);
  }
  const code = options.code ?? unique('src');
  const { source } = await t.admin.createSource({ name: unique('Source'), code });
  const configured = operators
    .map((spec, i) => ({ operatorId: ops[i]!.id, weight: spec.weight }))
    .filter((o): o is { operatorId: bigint; weight: number } => o.weight !== undefined);
  await t.admin.setSourceOperators({ sourceId: source!.id, operators: configured });
  return { source: source!, code, ops };
}

function register(t: TestServer, sourceId: bigint, lead: MessageInitShape<typeof LeadIdentitySchema>, extra: { message?: string; requestId?: string } = {}): Promise<RegisterContactResponse> {
  return t.distribution.registerContact({
    source: { case: 'sourceId', value: sourceId },
    lead,
    message: extra.message ?? 'hello',
    requestId: extra.requestId ?? '',
  });
}

/** Registers `n` contacts, each for a new lead; sequential, so ids are in call order. */
async function registerMany(t: TestServer, sourceId: bigint, n: number, prefix = unique('lead')): Promise<RegisterContactResponse[]> {
  const out: RegisterContactResponse[] = [];
  for (let i = 0; i < n; i++) out.push(await register(t, sourceId, { externalId: `${prefix}-${i}` }));
  return out;
}

/** The rejection of `call`, asserted to be a gRPC error with `code`. */
async function grpcError(call: Promise<unknown>, code: grpcStatus): Promise<ServiceError> {
  const outcome = await call.then(
    (value) => ({ ok: true as const, value }),
    (error: unknown) => ({ ok: false as const, error }),
  );
  if (outcome.ok) throw new Error(`expected gRPC status ${grpcStatus[code]}, but the call succeeded: ${JSON.stringify(outcome.value, (_k, v) => (typeof v === 'bigint' ? v.toString() : v))}`);
  const error = outcome.error as ServiceError;
  expect(error.code, `status code (details: ${error.details})`).toBe(code);
  return error;
}

type ContactFilter = { leadId?: bigint; sourceId?: bigint; operatorId?: bigint; status?: ContactStatus; queuedOnly?: boolean };

/** Every contact matching the filter, following page tokens. */
async function allContacts(t: TestServer, filter: ContactFilter = {}): Promise<Contact[]> {
  const out: Contact[] = [];
  let pageToken = '';
  for (;;) {
    const page = await t.query.listContacts({ ...filter, pageSize: 500, pageToken });
    out.push(...page.contacts);
    if (page.nextPageToken === '') return out;
    pageToken = page.nextPageToken;
  }
}

async function countLeads(t: TestServer): Promise<number> {
  let n = 0;
  let pageToken = '';
  for (;;) {
    const page = await t.query.listLeads({ pageSize: 500, pageToken });
    n += page.leads.length;
    if (page.nextPageToken === '') return n;
    pageToken = page.nextPageToken;
  }
}

async function openLoad(t: TestServer, operatorId: bigint): Promise<number> {
  const { operator } = await t.query.getOperator({ operatorId });
  return operator!.openLoad;
}

function ids(contacts: readonly (Contact | undefined)[]): bigint[] {
  return contacts.map((c) => c!.id);
}

const setStatus = (t: TestServer, contactId: bigint, status: ContactStatus) => t.distribution.updateContactStatus({ contactId, status });

// ---------------------------------------------------------------- tests

describe('RegisterContact: weighted choice', () => {
  let t: TestServer;
  beforeAll(async () => {
    t = await startTestServer();
  });
  afterAll(() => t.dispose());

  it('splits weights 10/30 as 25/75 over 1,200 distinct leads (chi-square p > 0.001) and GetDistributionStats agrees', async () => {
    const N = 1_200;
    const { source, ops } = await setupSource(t, [
      { maxLoad: 100_000, weight: 10 },
      { maxLoad: 100_000, weight: 30 },
    ]);
    const [a, b] = ops as [Operator, Operator];
    const responses = await registerMany(t, source.id, N);

    const observed = new Map<bigint, number>([[a.id, 0], [b.id, 0]]);
    for (const r of responses) {
      expect(r.outcome).toBe(AssignmentOutcome.ASSIGNED);
      expect(r.leadCreated).toBe(true);
      expect(r.replayed).toBe(false);
      const operatorId = r.contact!.operator!.id;
      expect(observed.has(operatorId)).toBe(true);
      observed.set(operatorId, observed.get(operatorId)! + 1);
    }
    const countA = observed.get(a.id)!;
    const countB = observed.get(b.id)!;
    expect(countA + countB).toBe(N);
    // Under H0 (P = 0.25 / 0.75) a p-value this small occurs once in 1,000 runs.
    const p = goodnessOfFit([countA, countB], [0.25, 0.75]);
    expect(p, `observed ${countA}/${countB}`).toBeGreaterThan(0.001);

    const stats = await t.query.getDistributionStats({ sourceId: source.id });
    expect(stats.sourceId).toBe(source.id);
    expect(stats.queued).toBe(0n);
    const byId = new Map(stats.operators.map((o) => [o.operatorId, o]));
    expect(stats.operators).toHaveLength(2);
    expect(byId.get(a.id)).toMatchObject({ weight: 10, assignedTotal: BigInt(countA) });
    expect(byId.get(b.id)).toMatchObject({ weight: 30, assignedTotal: BigInt(countB) });
    expect(byId.get(a.id)!.targetShare).toBeCloseTo(0.25, 12);
    expect(byId.get(b.id)!.targetShare).toBeCloseTo(0.75, 12);
    expect(byId.get(a.id)!.actualShare).toBeCloseTo(countA / N, 12);
    expect(byId.get(b.id)!.actualShare).toBeCloseTo(countB / N, 12);

    expect(await openLoad(t, a.id)).toBe(countA);
    expect(await openLoad(t, b.id)).toBe(countB);
    expect(await allContacts(t, { sourceId: source.id, operatorId: a.id })).toHaveLength(countA);
    expect(await allContacts(t, { sourceId: source.id, operatorId: b.id })).toHaveLength(countB);
  });
});

describe('RegisterContact: capacity, queue reasons, eligibility', () => {
  let t: TestServer;
  beforeAll(async () => {
    t = await startTestServer();
  });
  afterAll(() => t.dispose());

  it('never exceeds max_load: 2 operators x max_load 3, 10 registrations -> 6 assigned, 4 QUEUED_NO_CAPACITY', async () => {
    const { source, ops } = await setupSource(t, [
      { maxLoad: 3, weight: 1 },
      { maxLoad: 3, weight: 1 },
    ]);
    const responses = await registerMany(t, source.id, 10);

    const assigned = responses.slice(0, 6);
    const queued = responses.slice(6);
    for (const r of assigned) {
      expect(r.outcome).toBe(AssignmentOutcome.ASSIGNED);
      expect(r.contact!.operator).toBeDefined();
      expect(r.contact!.assignedAt).toBeDefined();
    }
    for (const r of queued) {
      expect(r.outcome).toBe(AssignmentOutcome.QUEUED_NO_CAPACITY);
      expect(r.contact!.operator).toBeUndefined();
      expect(r.contact!.assignedAt).toBeUndefined();
      expect(r.contact!.status).toBe(ContactStatus.NEW);
    }
    for (const op of ops) {
      expect(assigned.filter((r) => r.contact!.operator!.id === op.id)).toHaveLength(3);
      expect(await openLoad(t, op.id)).toBe(3);
    }
    const stats = await t.query.getOperatorStats({});
    for (const op of ops) {
      const s = stats.operators.find((o) => o.operatorId === op.id)!;
      expect(s).toMatchObject({ openLoad: 3, maxLoad: 3, totalAssigned: 3n });
    }

    const listed = await allContacts(t, { sourceId: source.id, queuedOnly: true });
    expect(ids(listed)).toEqual(ids(queued.map((r) => r.contact)));
    for (const c of listed) {
      expect(c.operator).toBeUndefined();
      expect(c.status).toBe(ContactStatus.NEW);
    }
    expect((await t.query.getDistributionStats({ sourceId: source.id })).queued).toBe(4n);
  });

  it('queues with QUEUED_NO_OPERATORS when the source has no operators, or only weight-0 ones', async () => {
    const empty = await setupSource(t, []);
    const zero = await setupSource(t, [{ maxLoad: 100, weight: 0 }, { maxLoad: 100, weight: 0 }]);
    expect((await t.query.getSource({ source: { case: 'sourceId', value: zero.source.id } })).source!.operators.map((o) => o.weight)).toEqual([0, 0]);

    for (const { source } of [empty, zero]) {
      const [r1, r2] = await registerMany(t, source.id, 2);
      for (const r of [r1!, r2!]) {
        expect(r.outcome).toBe(AssignmentOutcome.QUEUED_NO_OPERATORS);
        expect(r.contact!.operator).toBeUndefined();
        expect(r.contact!.status).toBe(ContactStatus.NEW);
      }
      expect(ids(await allContacts(t, { sourceId: source.id, queuedOnly: true }))).toEqual([r1!.contact!.id, r2!.contact!.id]);
      expect((await t.query.getDistributionStats({ sourceId: source.id })).queued).toBe(2n);
    }
    for (const op of zero.ops) expect(await openLoad(t, op.id)).toBe(0);
  });

  it('queues with QUEUED_NO_CAPACITY when the only weighted operators are inactive', async () => {
    const { source, ops } = await setupSource(t, [{ maxLoad: 100, weight: 5, active: false }]);
    const r = await register(t, source.id, { externalId: unique('inactive-only') });
    expect(r.outcome).toBe(AssignmentOutcome.QUEUED_NO_CAPACITY);
    expect(r.contact!.operator).toBeUndefined();
    expect(await openLoad(t, ops[0]!.id)).toBe(0);
  });

  it('gives nothing to inactive or weight-0 operators over 200 registrations', async () => {
    const { source, ops } = await setupSource(t, [
      { maxLoad: 1_000, weight: 1 }, // the only eligible one
      { maxLoad: 1_000, weight: 50, active: false }, // created inactive
      { maxLoad: 1_000, weight: 0 }, // configured with weight 0
      { maxLoad: 1_000, weight: 50 }, // deactivated below
    ]);
    const [a, inactive, zero, deactivated] = ops as [Operator, Operator, Operator, Operator];
    const { operator } = await t.admin.updateOperator({ operatorId: deactivated.id, active: false });
    expect(operator!.active).toBe(false);

    const responses = await registerMany(t, source.id, 200);
    for (const r of responses) {
      expect(r.outcome).toBe(AssignmentOutcome.ASSIGNED);
      expect(r.contact!.operator!.id).toBe(a.id);
    }
    expect(await openLoad(t, a.id)).toBe(200);
    for (const op of [inactive, zero, deactivated]) {
      expect(await openLoad(t, op.id)).toBe(0);
      expect(await allContacts(t, { operatorId: op.id })).toEqual([]);
    }
    const stats = await t.query.getDistributionStats({ sourceId: source.id });
    expect(stats.operators.map((o) => [o.operatorId, o.assignedTotal])).toEqual([
      [a.id, 200n],
      [inactive.id, 0n],
      [zero.id, 0n],
      [deactivated.id, 0n],
    ]);
  });
});

describe('RegisterContact: leads', () => {
  let t: TestServer;
  beforeAll(async () => {
    t = await startTestServer();
  });
  afterAll(() => t.dispose());

  it('the same external_id from two sources is one lead with contacts from both', async () => {
    const s1 = await setupSource(t, [{ maxLoad: 10, weight: 1 }]);
    const s2 = await setupSource(t, [{ maxLoad: 10, weight: 1 }]);
    const externalId = unique('tg-user');

    const r1 = await register(t, s1.source.id, { externalId, name: 'Ivan' }, { message: 'from telegram' });
    const r2 = await register(t, s2.source.id, { externalId }, { message: 'from whatsapp' });
    expect(r1.leadCreated).toBe(true);
    expect(r2.leadCreated).toBe(false);
    expect(r2.contact!.lead!.id).toBe(r1.contact!.lead!.id);
    expect(r2.contact!.id).not.toBe(r1.contact!.id);

    const { lead } = await t.query.getLead({ lead: { case: 'leadId', value: r1.contact!.lead!.id } });
    expect(lead!.externalId).toBe(externalId);
    expect(lead!.name).toBe('Ivan');
    expect(lead!.contacts.map((c) => [c.id, c.source!.id, c.message])).toEqual([
      [r1.contact!.id, s1.source.id, 'from telegram'],
      [r2.contact!.id, s2.source.id, 'from whatsapp'],
    ]);
    const byIdentity = await t.query.getLead({ lead: { case: 'identity', value: { externalId } } });
    expect(byIdentity.lead!.id).toBe(lead!.id);
  });

  it('normalises phones: "+7 (999) 123-45-67" and "+79991234567" are one lead', async () => {
    const { source } = await setupSource(t, [{ maxLoad: 10, weight: 1 }]);
    const r1 = await register(t, source.id, { phone: '+7 (999) 123-45-67' });
    const r2 = await register(t, source.id, { phone: '+79991234567' });
    expect(r1.leadCreated).toBe(true);
    expect(r2.leadCreated).toBe(false);
    expect(r2.contact!.lead!.id).toBe(r1.contact!.lead!.id);
    const { lead } = await t.query.getLead({ lead: { case: 'leadId', value: r1.contact!.lead!.id } });
    expect(lead!.phone).toBe('+79991234567');
    expect(ids(lead!.contacts)).toEqual([r1.contact!.id, r2.contact!.id]);
  });

  it('matches email case-insensitively and trimmed', async () => {
    const { source } = await setupSource(t, [{ maxLoad: 10, weight: 1 }]);
    const r1 = await register(t, source.id, { email: '  Anna.Petrova@Example.COM ' });
    const r2 = await register(t, source.id, { email: 'anna.petrova@example.com' });
    const r3 = await register(t, source.id, { email: 'ANNA.PETROVA@EXAMPLE.COM' });
    expect([r1.leadCreated, r2.leadCreated, r3.leadCreated]).toEqual([true, false, false]);
    expect(r2.contact!.lead!.id).toBe(r1.contact!.lead!.id);
    expect(r3.contact!.lead!.id).toBe(r1.contact!.lead!.id);
    const { lead } = await t.query.getLead({ lead: { case: 'leadId', value: r1.contact!.lead!.id } });
    expect(lead!.email).toBe('anna.petrova@example.com');
    expect(lead!.contacts).toHaveLength(3);
  });

  it('fills in the phone and email a lead found by external_id lacked', async () => {
    const { source } = await setupSource(t, [{ maxLoad: 10, weight: 1 }]);
    const externalId = unique('ext-fill');
    const r1 = await register(t, source.id, { externalId });
    expect(r1.leadCreated).toBe(true);
    const before = await t.query.getLead({ lead: { case: 'leadId', value: r1.contact!.lead!.id } });
    expect(before.lead).toMatchObject({ externalId, phone: '', email: '' });

    const r2 = await register(t, source.id, { externalId, phone: '+7 (912) 000-11-22', email: ' Fill.Me@Example.COM ' });
    expect(r2.leadCreated).toBe(false);
    expect(r2.contact!.lead!.id).toBe(r1.contact!.lead!.id);
    const after = await t.query.getLead({ lead: { case: 'leadId', value: r1.contact!.lead!.id } });
    expect(after.lead).toMatchObject({ externalId, phone: '+79120001122', email: 'fill.me@example.com' });

    // The filled-in identifiers now find the lead on their own.
    const byPhone = await register(t, source.id, { phone: '7-912-000-11-22' });
    expect(byPhone.leadCreated).toBe(false);
    expect(byPhone.contact!.lead!.id).toBe(r1.contact!.lead!.id);
    const byEmail = await register(t, source.id, { email: 'FILL.ME@example.com' });
    expect(byEmail.leadCreated).toBe(false);
    expect(byEmail.contact!.lead!.id).toBe(r1.contact!.lead!.id);
    const found = await t.query.getLead({ lead: { case: 'identity', value: { phone: '+7 912 000 11 22' } } });
    expect(found.lead!.id).toBe(r1.contact!.lead!.id);
    expect(found.lead!.contacts).toHaveLength(4);
  });
});

describe('Queue: closing a contact drains the oldest eligible queued contact', () => {
  let t: TestServer;
  beforeAll(async () => {
    t = await startTestServer();
  });
  afterAll(() => t.dispose());

  it('hands the oldest queued contact of a source the operator serves to it in the same call, and skips sources where it has no weight', async () => {
    // Operator A serves S1 (weight 1, max_load 1). S2 is served only by X
    // (max_load 1); A is configured there with weight 0.
    const { operator: a } = await t.admin.createOperator({ name: unique('A'), maxLoad: 1 });
    const { operator: x } = await t.admin.createOperator({ name: unique('X'), maxLoad: 1 });
    const { source: s1 } = await t.admin.createSource({ name: unique('S1'), code: unique('s1') });
    const { source: s2 } = await t.admin.createSource({ name: unique('S2'), code: unique('s2') });
    await t.admin.setSourceOperators({ sourceId: s1!.id, operators: [{ operatorId: a!.id, weight: 1 }] });
    await t.admin.setSourceOperators({ sourceId: s2!.id, operators: [{ operatorId: a!.id, weight: 0 }, { operatorId: x!.id, weight: 1 }] });

    const held1 = await register(t, s1!.id, { externalId: unique('q') }); // -> A, A is full
    const held2 = await register(t, s2!.id, { externalId: unique('q') }); // -> X, X is full
    expect(held1.contact!.operator!.id).toBe(a!.id);
    expect(held2.contact!.operator!.id).toBe(x!.id);

    // Queue, oldest first: q0 (S2), q1 (S1), q2 (S1), q3 (S2).
    const q0 = await register(t, s2!.id, { externalId: unique('q') });
    const q1 = await register(t, s1!.id, { externalId: unique('q') });
    const q2 = await register(t, s1!.id, { externalId: unique('q') });
    const q3 = await register(t, s2!.id, { externalId: unique('q') });
    for (const r of [q0, q1, q2, q3]) expect(r.outcome).toBe(AssignmentOutcome.QUEUED_NO_CAPACITY);
    expect(ids(await allContacts(t, { queuedOnly: true }))).toEqual(ids([q0.contact, q1.contact, q2.contact, q3.contact]));

    // Closing A's contact: A takes q1 (the oldest of S1), not q0 (S2, weight 0).
    const closed = await setStatus(t, held1.contact!.id, ContactStatus.CLOSED);
    expect(closed.contact!.status).toBe(ContactStatus.CLOSED);
    expect(closed.contact!.closedAt).toBeDefined();
    expect(closed.contact!.operator!.id).toBe(a!.id);

    const [q1Now] = await allContacts(t, { leadId: q1.contact!.lead!.id });
    expect(q1Now!.id).toBe(q1.contact!.id);
    expect(q1Now!.operator?.id).toBe(a!.id);
    expect(q1Now!.status).toBe(ContactStatus.NEW);
    expect(q1Now!.assignedAt).toBeDefined();
    const q1Lead = await t.query.getLead({ lead: { case: 'leadId', value: q1.contact!.lead!.id } });
    expect(q1Lead.lead!.contacts[0]!.operator?.id).toBe(a!.id);

    expect(ids(await allContacts(t, { queuedOnly: true }))).toEqual(ids([q0.contact, q2.contact, q3.contact]));
    expect(await openLoad(t, a!.id)).toBe(1);
    expect(ids(await allContacts(t, { operatorId: a!.id, status: ContactStatus.NEW }))).toEqual([q1.contact!.id]);
    expect((await t.query.getDistributionStats({ sourceId: s1!.id })).queued).toBe(1n);
    expect((await t.query.getDistributionStats({ sourceId: s2!.id })).queued).toBe(2n);

    // Closing q1 (NEW -> CLOSED) hands A the next S1 contact, q2.
    await setStatus(t, q1.contact!.id, ContactStatus.CLOSED);
    expect(ids(await allContacts(t, { queuedOnly: true }))).toEqual(ids([q0.contact, q3.contact]));
    expect((await allContacts(t, { leadId: q2.contact!.lead!.id }))[0]!.operator?.id).toBe(a!.id);
    expect(await openLoad(t, a!.id)).toBe(1);

    // Closing A's q2 with only S2 contacts queued: A stays idle, S2 stays queued.
    await setStatus(t, q2.contact!.id, ContactStatus.IN_PROGRESS);
    await setStatus(t, q2.contact!.id, ContactStatus.CLOSED);
    expect(await openLoad(t, a!.id)).toBe(0);
    expect(ids(await allContacts(t, { queuedOnly: true }))).toEqual(ids([q0.contact, q3.contact]));
    expect(await allContacts(t, { operatorId: a!.id, status: ContactStatus.NEW })).toEqual([]);

    // Closing X's contact hands X the oldest S2 contact, q0.
    await setStatus(t, held2.contact!.id, ContactStatus.CLOSED);
    expect(ids(await allContacts(t, { queuedOnly: true }))).toEqual([q3.contact!.id]);
    const [q0Now] = await allContacts(t, { leadId: q0.contact!.lead!.id });
    expect(q0Now!.operator?.id).toBe(x!.id);
    expect(q0Now!.status).toBe(ContactStatus.NEW);
    expect(await openLoad(t, x!.id)).toBe(1);
  });

  it('takes the oldest queued contact across all the sources the operator serves', async () => {
    const { operator: a } = await t.admin.createOperator({ name: unique('A'), maxLoad: 1 });
    const { source: first } = await t.admin.createSource({ name: unique('First'), code: unique('f') });
    const { source: second } = await t.admin.createSource({ name: unique('Second'), code: unique('s') });
    await t.admin.setSourceOperators({ sourceId: first!.id, operators: [{ operatorId: a!.id, weight: 1 }] });
    await t.admin.setSourceOperators({ sourceId: second!.id, operators: [{ operatorId: a!.id, weight: 1 }] });
    const held = await register(t, first!.id, { externalId: unique('m') });
    expect(held.contact!.operator!.id).toBe(a!.id);
    // The newer source's contact waits longer.
    const older = await register(t, second!.id, { externalId: unique('m') });
    const newer = await register(t, first!.id, { externalId: unique('m') });
    expect([older.outcome, newer.outcome]).toEqual([AssignmentOutcome.QUEUED_NO_CAPACITY, AssignmentOutcome.QUEUED_NO_CAPACITY]);

    await setStatus(t, held.contact!.id, ContactStatus.CLOSED);
    expect((await allContacts(t, { leadId: older.contact!.lead!.id }))[0]!.operator?.id).toBe(a!.id);
    expect(ids(await allContacts(t, { operatorId: a!.id, status: ContactStatus.NEW }))).toEqual([older.contact!.id]);
    expect(ids(await allContacts(t, { sourceId: first!.id, queuedOnly: true }))).toEqual([newer.contact!.id]);
  });

  it('closing a queued contact (no operator) removes it from the queue and frees no load', async () => {
    const { source, ops } = await setupSource(t, [{ maxLoad: 1, weight: 1 }]);
    const held = await register(t, source.id, { externalId: unique('z') });
    const queued1 = await register(t, source.id, { externalId: unique('z') });
    const queued2 = await register(t, source.id, { externalId: unique('z') });
    expect(held.contact!.operator!.id).toBe(ops[0]!.id);

    const closed = await setStatus(t, queued1.contact!.id, ContactStatus.CLOSED);
    expect(closed.contact!.status).toBe(ContactStatus.CLOSED);
    expect(closed.contact!.operator).toBeUndefined();
    expect(await openLoad(t, ops[0]!.id)).toBe(1);
    expect(ids(await allContacts(t, { sourceId: source.id, queuedOnly: true }))).toEqual([queued2.contact!.id]);
    expect((await t.query.getDistributionStats({ sourceId: source.id })).queued).toBe(1n);
  });
});

describe('UpdateContactStatus', () => {
  let t: TestServer;
  let sourceId: bigint;
  let operatorId: bigint;
  beforeAll(async () => {
    t = await startTestServer();
    const { source, ops } = await setupSource(t, [{ maxLoad: 10, weight: 1 }]);
    sourceId = source.id;
    operatorId = ops[0]!.id;
  });
  afterAll(() => t.dispose());

  async function newContact(): Promise<Contact> {
    const r = await register(t, sourceId, { externalId: unique('status') });
    expect(r.contact!.operator!.id).toBe(operatorId);
    expect(r.contact!.status).toBe(ContactStatus.NEW);
    return r.contact!;
  }

  async function currentStatus(contactId: bigint): Promise<ContactStatus> {
    const contacts = await allContacts(t, { sourceId });
    return contacts.find((c) => c.id === contactId)!.status;
  }

  it('NEW -> IN_PROGRESS -> CLOSED; closing frees one unit of load', async () => {
    const c = await newContact();
    const load = await openLoad(t, operatorId);
    const inProgress = await setStatus(t, c.id, ContactStatus.IN_PROGRESS);
    expect(inProgress.contact).toMatchObject({ id: c.id, status: ContactStatus.IN_PROGRESS });
    expect(inProgress.contact!.closedAt).toBeUndefined();
    expect(await openLoad(t, operatorId)).toBe(load);
    const closed = await setStatus(t, c.id, ContactStatus.CLOSED);
    expect(closed.contact).toMatchObject({ id: c.id, status: ContactStatus.CLOSED });
    expect(closed.contact!.closedAt).toBeDefined();
    expect(closed.contact!.operator!.id).toBe(operatorId);
    expect(await openLoad(t, operatorId)).toBe(load - 1);
    expect(await currentStatus(c.id)).toBe(ContactStatus.CLOSED);
  });

  it('NEW -> CLOSED is allowed and frees one unit of load', async () => {
    const c = await newContact();
    const load = await openLoad(t, operatorId);
    const closed = await setStatus(t, c.id, ContactStatus.CLOSED);
    expect(closed.contact!.status).toBe(ContactStatus.CLOSED);
    expect(await openLoad(t, operatorId)).toBe(load - 1);
  });

  it('setting the same status is a successful no-op (NEW, IN_PROGRESS, CLOSED) and never frees load twice', async () => {
    const c = await newContact();
    const load = await openLoad(t, operatorId);
    expect((await setStatus(t, c.id, ContactStatus.NEW)).contact!.status).toBe(ContactStatus.NEW);
    expect(await openLoad(t, operatorId)).toBe(load);
    await setStatus(t, c.id, ContactStatus.IN_PROGRESS);
    expect((await setStatus(t, c.id, ContactStatus.IN_PROGRESS)).contact!.status).toBe(ContactStatus.IN_PROGRESS);
    expect(await openLoad(t, operatorId)).toBe(load);
    const closed = await setStatus(t, c.id, ContactStatus.CLOSED);
    expect(await openLoad(t, operatorId)).toBe(load - 1);
    const again = await setStatus(t, c.id, ContactStatus.CLOSED);
    expect(again.contact!.status).toBe(ContactStatus.CLOSED);
    expect(again.contact!.closedAt).toEqual(closed.contact!.closedAt);
    expect(await openLoad(t, operatorId)).toBe(load - 1);
  });

  it('CLOSED is final: any other status is FAILED_PRECONDITION and changes nothing', async () => {
    const c = await newContact();
    await setStatus(t, c.id, ContactStatus.CLOSED);
    const load = await openLoad(t, operatorId);
    await grpcError(setStatus(t, c.id, ContactStatus.NEW), grpcStatus.FAILED_PRECONDITION);
    await grpcError(setStatus(t, c.id, ContactStatus.IN_PROGRESS), grpcStatus.FAILED_PRECONDITION);
    expect(await currentStatus(c.id)).toBe(ContactStatus.CLOSED);
    expect(await openLoad(t, operatorId)).toBe(load);
  });

  it('IN_PROGRESS -> NEW is FAILED_PRECONDITION', async () => {
    const c = await newContact();
    await setStatus(t, c.id, ContactStatus.IN_PROGRESS);
    await grpcError(setStatus(t, c.id, ContactStatus.NEW), grpcStatus.FAILED_PRECONDITION);
    expect(await currentStatus(c.id)).toBe(ContactStatus.IN_PROGRESS);
  });

  it('an unknown contact is NOT_FOUND', async () => {
    await grpcError(setStatus(t, 9_999_999n, ContactStatus.CLOSED), grpcStatus.NOT_FOUND);
  });

  it('status UNSPECIFIED is INVALID_ARGUMENT naming "status"', async () => {
    const c = await newContact();
    const error = await grpcError(setStatus(t, c.id, ContactStatus.UNSPECIFIED), grpcStatus.INVALID_ARGUMENT);
    expect(fieldViolations(error).map((v) => v.field)).toEqual(['status']);
    expect(error.details).toContain('status');
    expect(await currentStatus(c.id)).toBe(ContactStatus.NEW);
  });
});

describe('RegisterContact: errors write nothing', () => {
  let t: TestServer;
  let sourceId: bigint;
  let code: string;
  beforeAll(async () => {
    t = await startTestServer();
    ({ source: { id: sourceId }, code } = await setupSource(t, [{ maxLoad: 10, weight: 1 }]));
    await register(t, sourceId, { externalId: 'existing' });
  });
  afterAll(() => t.dispose());

  /** Runs a failing call and checks that no lead or contact appeared. */
  async function failsWithoutWriting(call: () => Promise<unknown>, code: grpcStatus): Promise<ServiceError> {
    const leadsBefore = await countLeads(t);
    const contactsBefore = (await allContacts(t)).length;
    const error = await grpcError(call(), code);
    expect(await countLeads(t)).toBe(leadsBefore);
    expect(await allContacts(t)).toHaveLength(contactsBefore);
    return error;
  }

  it('an unknown source id is NOT_FOUND', async () => {
    await failsWithoutWriting(() => register(t, 9_999_999n, { externalId: 'new-lead-1' }, { requestId: 'r-1' }), grpcStatus.NOT_FOUND);
    await grpcError(t.query.getLead({ lead: { case: 'identity', value: { externalId: 'new-lead-1' } } }), grpcStatus.NOT_FOUND);
  });

  it('an unknown source code is NOT_FOUND', async () => {
    await failsWithoutWriting(
      () => t.distribution.registerContact({ source: { case: 'sourceCode', value: 'no-such-code' }, lead: { phone: '+1 555 000 0001' }, message: 'x' }),
      grpcStatus.NOT_FOUND,
    );
    await grpcError(t.query.getLead({ lead: { case: 'identity', value: { phone: '+15550000001' } } }), grpcStatus.NOT_FOUND);
  });

  it('a known source code works (control for the NOT_FOUND cases)', async () => {
    const r = await t.distribution.registerContact({ source: { case: 'sourceCode', value: code }, lead: { externalId: 'by-code' }, message: 'x' });
    expect(r.contact!.source!.id).toBe(sourceId);
    expect(r.outcome).toBe(AssignmentOutcome.ASSIGNED);
  });

  it('a missing source is INVALID_ARGUMENT naming "source"', async () => {
    const error = await failsWithoutWriting(
      () => t.distribution.registerContact({ lead: { externalId: 'new-lead-2' }, message: 'x' }),
      grpcStatus.INVALID_ARGUMENT,
    );
    expect(fieldViolations(error).map((v) => v.field)).toEqual(['source']);
    expect(error.details).toContain('source');
  });

  it('an empty lead identity (no external_id, phone or email) is INVALID_ARGUMENT naming "lead"', async () => {
    const error = await failsWithoutWriting(
      () => register(t, sourceId, { name: 'Nobody' }),
      grpcStatus.INVALID_ARGUMENT,
    );
    expect(fieldViolations(error).map((v) => v.field)).toEqual(['lead']);
    expect(error.details).toContain('lead');

    const blank = await failsWithoutWriting(
      () => register(t, sourceId, { externalId: '   ', phone: ' ', email: '  ', name: 'Blank' }),
      grpcStatus.INVALID_ARGUMENT,
    );
    expect(fieldViolations(blank).map((v) => v.field)).toEqual(['lead']);
  });

  it('a missing lead is INVALID_ARGUMENT naming "lead"', async () => {
    const error = await failsWithoutWriting(
      () => t.distribution.registerContact({ source: { case: 'sourceId', value: sourceId }, message: 'x' }),
      grpcStatus.INVALID_ARGUMENT,
    );
    expect(fieldViolations(error).map((v) => v.field)).toEqual(['lead']);
    expect(error.details).toContain('lead');
  });

  it('names every bad field at once (missing source and missing lead)', async () => {
    const error = await failsWithoutWriting(() => t.distribution.registerContact({ message: 'x' }), grpcStatus.INVALID_ARGUMENT);
    expect(fieldViolations(error).map((v) => v.field).sort()).toEqual(['lead', 'source']);
  });
});

describe('RegisterContact: request_id idempotency', () => {
  let t: TestServer;
  beforeAll(async () => {
    t = await startTestServer();
  });
  afterAll(() => t.dispose());

  it('the same request_id twice for one source returns the same contact, replayed, with no load change', async () => {
    const { source, ops } = await setupSource(t, [{ maxLoad: 10, weight: 1 }]);
    const lead = { externalId: unique('idem'), phone: '+7 900 111 22 33' };
    const first = await register(t, source.id, lead, { requestId: 'req-42', message: 'first' });
    expect(first.replayed).toBe(false);
    expect(first.leadCreated).toBe(true);
    expect(first.outcome).toBe(AssignmentOutcome.ASSIGNED);
    expect(first.contact!.requestId).toBe('req-42');
    expect(await openLoad(t, ops[0]!.id)).toBe(1);
    const leads = await countLeads(t);

    const second = await register(t, source.id, lead, { requestId: 'req-42', message: 'first' });
    expect(second.replayed).toBe(true);
    expect(second.leadCreated).toBe(false);
    expect(second.outcome).toBe(first.outcome);
    expect(second.contact!.id).toBe(first.contact!.id);
    expect(second.contact!.operator!.id).toBe(first.contact!.operator!.id);
    expect(second.contact!.lead!.id).toBe(first.contact!.lead!.id);
    expect(second.contact!.status).toBe(ContactStatus.NEW);
    expect(second.contact!.message).toBe('first');
    expect(second.contact!.requestId).toBe('req-42');
    expect(await openLoad(t, ops[0]!.id)).toBe(1);
    expect(ids(await allContacts(t, { sourceId: source.id }))).toEqual([first.contact!.id]);
    expect(await countLeads(t)).toBe(leads);
  });

  it('a replayed queued contact stays one queued contact', async () => {
    const { source } = await setupSource(t, []);
    const lead = { externalId: unique('idem-q') };
    const first = await register(t, source.id, lead, { requestId: 'req-q' });
    const second = await register(t, source.id, lead, { requestId: 'req-q' });
    expect(first.outcome).toBe(AssignmentOutcome.QUEUED_NO_OPERATORS);
    expect(second).toMatchObject({ replayed: true, outcome: AssignmentOutcome.QUEUED_NO_OPERATORS });
    expect(second.contact!.id).toBe(first.contact!.id);
    expect(ids(await allContacts(t, { sourceId: source.id, queuedOnly: true }))).toEqual([first.contact!.id]);
  });

  it('the same request_id on a different source is a new contact', async () => {
    const s1 = await setupSource(t, [{ maxLoad: 10, weight: 1 }]);
    const s2 = await setupSource(t, [{ maxLoad: 10, weight: 1 }]);
    const lead = { externalId: unique('idem-2') };
    const r1 = await register(t, s1.source.id, lead, { requestId: 'shared-req' });
    const r2 = await register(t, s2.source.id, lead, { requestId: 'shared-req' });
    expect(r1.replayed).toBe(false);
    expect(r2.replayed).toBe(false);
    expect(r2.contact!.id).not.toBe(r1.contact!.id);
    expect(r2.contact!.source!.id).toBe(s2.source.id);
    expect(r2.contact!.lead!.id).toBe(r1.contact!.lead!.id);
    expect(r2.contact!.requestId).toBe('shared-req');
    expect(await openLoad(t, s1.ops[0]!.id)).toBe(1);
    expect(await openLoad(t, s2.ops[0]!.id)).toBe(1);
    const { lead: stored } = await t.query.getLead({ lead: { case: 'leadId', value: r1.contact!.lead!.id } });
    expect(ids(stored!.contacts)).toEqual([r1.contact!.id, r2.contact!.id]);
  });
});

describe('restart on the same database file', () => {
  it('keeps leads, contacts, loads and the queue', async () => {
    const first = await startTestServer();
    let second: TestServer | undefined;
    try {
      const { source, code, ops } = await setupSource(first, [{ maxLoad: 2, weight: 1 }]);
      const op = ops[0]!;
      const rs = await registerMany(first, source.id, 4, 'persist');
      const withRequestId = await register(first, source.id, { email: 'Persist@Example.com' }, { requestId: 'persist-req' });
      await setStatus(first, rs[0]!.contact!.id, ContactStatus.IN_PROGRESS);
      expect(rs.map((r) => r.outcome)).toEqual([
        AssignmentOutcome.ASSIGNED,
        AssignmentOutcome.ASSIGNED,
        AssignmentOutcome.QUEUED_NO_CAPACITY,
        AssignmentOutcome.QUEUED_NO_CAPACITY,
      ]);
      expect(withRequestId.outcome).toBe(AssignmentOutcome.QUEUED_NO_CAPACITY);
      const contactsBefore = await allContacts(first);
      const leadsBefore = await countLeads(first);
      expect(contactsBefore).toHaveLength(5);
      expect(leadsBefore).toBe(5);

      await first.stop();
      second = await startTestServer({ database: first.database });

      expect(await countLeads(second)).toBe(leadsBefore);
      const contactsAfter = await allContacts(second);
      expect(contactsAfter.map((c) => [c.id, c.lead!.id, c.source!.id, c.operator?.id, c.status, c.requestId])).toEqual(
        contactsBefore.map((c) => [c.id, c.lead!.id, c.source!.id, c.operator?.id, c.status, c.requestId]),
      );
      expect(contactsAfter[0]!.status).toBe(ContactStatus.IN_PROGRESS);
      expect(await openLoad(second, op.id)).toBe(2);
      expect(ids(await allContacts(second, { queuedOnly: true }))).toEqual(ids([rs[2]!.contact, rs[3]!.contact, withRequestId.contact]));
      expect((await second.query.getDistributionStats({ sourceId: source.id })).queued).toBe(3n);
      expect((await second.query.getSource({ source: { case: 'sourceCode', value: code } })).source!.operators).toMatchObject([{ operatorId: op.id, weight: 1 }]);

      // Identities and request ids still match after the restart.
      const again = await register(second, source.id, { externalId: 'persist-1' });
      expect(again.leadCreated).toBe(false);
      expect(again.contact!.lead!.id).toBe(rs[1]!.contact!.lead!.id);
      const replay = await register(second, source.id, { email: 'persist@example.com' }, { requestId: 'persist-req' });
      expect(replay.replayed).toBe(true);
      expect(replay.contact!.id).toBe(withRequestId.contact!.id);

      // The persisted queue still drains: closing frees a slot for the oldest queued contact.
      await setStatus(second, rs[0]!.contact!.id, ContactStatus.CLOSED);
      const [drained] = await allContacts(second, { leadId: rs[2]!.contact!.lead!.id });
      expect(drained!.operator?.id).toBe(op.id);
      expect(await openLoad(second, op.id)).toBe(2);
      expect(ids(await allContacts(second, { queuedOnly: true }))).toEqual(ids([rs[3]!.contact, withRequestId.contact, again.contact]));
    } finally {
      await second?.dispose();
      await first.dispose();
    }
  });
});
