// AdminService over real gRPC: every RPC, its defaults, its errors (exact codes
// and google.rpc.BadRequest field names), and "a failed call writes nothing".
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { status } from '@grpc/grpc-js';
import type { Operator, Source } from '../../../gen/crm/v1/resources_pb.js';
import { AssignmentOutcome, ContactStatus, DistributionStrategy } from '../../../gen/crm/v1/resources_pb.js';
import { expectCode, expectInvalid } from '../../support/expect-status.ts';
import { startTestServer, type TestServer } from '../../support/test-server.ts';

/** A source's operator list as plain data. */
function weights(source: Source | undefined): { operatorId: bigint; operatorName: string; weight: number }[] {
  return (source?.operators ?? []).map(({ operatorId, operatorName, weight }) => ({ operatorId, operatorName, weight }));
}

describe('AdminService', () => {
  let t: TestServer;
  let counter = 0;
  /** A name no other test uses. */
  const unique = (prefix: string) => `${prefix}-${++counter}`;

  beforeAll(async () => {
    t = await startTestServer();
  });
  afterAll(() => t.dispose());

  async function operator(input: { name?: string; maxLoad?: number; active?: boolean } = {}): Promise<Operator> {
    const { operator: created } = await t.admin.createOperator({ name: input.name ?? unique('op'), maxLoad: input.maxLoad ?? 5, ...(input.active === undefined ? {} : { active: input.active }) });
    return created!;
  }

  async function source(input: { name?: string; code?: string } = {}): Promise<Source> {
    const { source: created } = await t.admin.createSource({ name: input.name ?? unique('src'), code: input.code ?? '' });
    return created!;
  }

  async function getSource(id: bigint): Promise<Source> {
    return (await t.query.getSource({ source: { case: 'sourceId', value: id } })).source!;
  }

  async function allOperators(): Promise<Operator[]> {
    return (await t.query.listOperators({ pageSize: 500 })).operators;
  }

  async function allSources(): Promise<Source[]> {
    return (await t.query.listSources({ pageSize: 500 })).sources;
  }

  describe('CreateOperator', () => {
    it('defaults active to true, trims the name and returns what GetOperator reads back', async () => {
      const name = unique('Ann');
      const { operator: created } = await t.admin.createOperator({ name: `  ${name}  `, maxLoad: 3 });
      expect(created).toMatchObject({ name, active: true, maxLoad: 3, openLoad: 0 });
      expect(created!.id).toBeGreaterThan(0n);
      expect(created!.createdAt).toBeDefined();
      const { operator: read } = await t.query.getOperator({ operatorId: created!.id });
      expect(read).toEqual(created);
    });

    it('stores active = false when given', async () => {
      const created = await operator({ active: false, maxLoad: 2 });
      expect(created).toMatchObject({ active: false, maxLoad: 2, openLoad: 0 });
      expect((await t.query.getOperator({ operatorId: created.id })).operator).toMatchObject({ active: false, maxLoad: 2 });
    });

    it('stores active = true when given explicitly', async () => {
      const created = await operator({ active: true });
      expect((await t.query.getOperator({ operatorId: created.id })).operator?.active).toBe(true);
    });

    it('rejects an empty name with INVALID_ARGUMENT naming name', async () => {
      await expectInvalid(t.admin.createOperator({ name: '', maxLoad: 1 }), ['name']);
    });

    it('rejects a blank name with INVALID_ARGUMENT naming name', async () => {
      await expectInvalid(t.admin.createOperator({ name: ' \t ', maxLoad: 1 }), ['name']);
    });

    it('rejects a negative max_load with INVALID_ARGUMENT naming max_load', async () => {
      await expectInvalid(t.admin.createOperator({ name: unique('neg'), maxLoad: -1 }), ['max_load']);
    });

    it('rejects a name over 200 characters and a max_load over 1,000,000, naming each field', async () => {
      await expectInvalid(t.admin.createOperator({ name: 'n'.repeat(201), maxLoad: 1_000_001 }), ['name', 'max_load']);
      const longest = (await t.admin.createOperator({ name: unique('long').padStart(200, 'n'), maxLoad: 1_000_000 })).operator!;
      expect(longest.name).toHaveLength(200);
      expect(longest.maxLoad).toBe(1_000_000);
    });

    it('rejects a duplicate name with ALREADY_EXISTS naming it, also when it differs only by surrounding spaces', async () => {
      const name = unique('Dup');
      await operator({ name });
      for (const given of [name, ` ${name} `]) {
        const error = await expectCode(t.admin.createOperator({ name: given, maxLoad: 1 }), status.ALREADY_EXISTS);
        expect(error.details).toBe(`an operator named "${name}" already exists`);
      }
    });

    it('a rejected CreateOperator creates nothing', async () => {
      const name = unique('Taken');
      await operator({ name });
      const before = await allOperators();
      await expectInvalid(t.admin.createOperator({ name: unique('bad'), maxLoad: -5 }), ['max_load']);
      await expectInvalid(t.admin.createOperator({ name: '   ', maxLoad: 5 }), ['name']);
      await expectCode(t.admin.createOperator({ name, maxLoad: 7, active: false }), status.ALREADY_EXISTS);
      expect(await allOperators()).toEqual(before);
    });
  });

  describe('UpdateOperator', () => {
    it('changes only the fields that are set and leaves unset ones unchanged', async () => {
      const created = await operator({ maxLoad: 5 });
      const operatorId = created.id;

      const r1 = (await t.admin.updateOperator({ operatorId, maxLoad: 7 })).operator!;
      expect(r1).toMatchObject({ id: operatorId, name: created.name, active: true, maxLoad: 7 });

      const r2 = (await t.admin.updateOperator({ operatorId, active: false })).operator!;
      expect(r2).toMatchObject({ name: created.name, active: false, maxLoad: 7 });

      const renamed = unique('Renamed');
      const r3 = (await t.admin.updateOperator({ operatorId, name: ` ${renamed} ` })).operator!;
      expect(r3).toMatchObject({ name: renamed, active: false, maxLoad: 7 });

      const r4 = (await t.admin.updateOperator({ operatorId })).operator!;
      expect(r4).toMatchObject({ name: renamed, active: false, maxLoad: 7, openLoad: 0 });
      expect(r4.createdAt).toEqual(created.createdAt);

      expect((await t.query.getOperator({ operatorId })).operator).toEqual(r4);
    });

    it('can set active back to true and max_load to 0', async () => {
      const created = await operator({ active: false, maxLoad: 4 });
      const updated = (await t.admin.updateOperator({ operatorId: created.id, active: true, maxLoad: 0 })).operator!;
      expect(updated).toMatchObject({ name: created.name, active: true, maxLoad: 0 });
    });

    it('keeping its own name is not a conflict', async () => {
      const created = await operator();
      const updated = (await t.admin.updateOperator({ operatorId: created.id, name: created.name, maxLoad: 9 })).operator!;
      expect(updated).toMatchObject({ name: created.name, maxLoad: 9 });
    });

    it('rejects operator_id 0, a blank name and a negative max_load, naming each field', async () => {
      await expectInvalid(t.admin.updateOperator({ operatorId: 0n, maxLoad: 1 }), ['operator_id']);
      const created = await operator();
      await expectInvalid(t.admin.updateOperator({ operatorId: created.id, name: '  ' }), ['name']);
      await expectInvalid(t.admin.updateOperator({ operatorId: created.id, name: '' }), ['name']);
      await expectInvalid(t.admin.updateOperator({ operatorId: created.id, maxLoad: -1 }), ['max_load']);
    });

    it('a rejected update writes nothing, not even its valid fields', async () => {
      const created = await operator({ maxLoad: 5 });
      await expectInvalid(t.admin.updateOperator({ operatorId: created.id, name: unique('valid'), active: false, maxLoad: -3 }), ['max_load']);
      expect((await t.query.getOperator({ operatorId: created.id })).operator).toEqual(created);
    });

    it('returns NOT_FOUND for an unknown operator', async () => {
      await expectCode(t.admin.updateOperator({ operatorId: 999_999n, maxLoad: 1 }), status.NOT_FOUND);
    });

    it('returns ALREADY_EXISTS when renamed to a taken name, and writes nothing', async () => {
      const taken = await operator();
      const created = await operator({ maxLoad: 5 });
      const error = await expectCode(t.admin.updateOperator({ operatorId: created.id, name: taken.name, maxLoad: 8, active: false }), status.ALREADY_EXISTS);
      expect(error.details).toBe(`an operator named "${taken.name}" already exists`);
      expect((await t.query.getOperator({ operatorId: created.id })).operator).toEqual(created);
      expect((await t.query.getOperator({ operatorId: taken.id })).operator).toEqual(taken);
    });

    it('raising max_load assigns queued contacts at once', async () => {
      const op = await operator({ maxLoad: 1 });
      const src = await source();
      await t.admin.setSourceOperators({ sourceId: src.id, operators: [{ operatorId: op.id, weight: 1 }] });
      const first = await t.distribution.registerContact({ source: { case: 'sourceId', value: src.id }, lead: { externalId: unique('lead') } });
      const second = await t.distribution.registerContact({ source: { case: 'sourceId', value: src.id }, lead: { externalId: unique('lead') } });
      expect(first.outcome).toBe(AssignmentOutcome.ASSIGNED);
      expect(second.outcome).toBe(AssignmentOutcome.QUEUED_NO_CAPACITY);

      const updated = (await t.admin.updateOperator({ operatorId: op.id, maxLoad: 2 })).operator!;
      expect(updated).toMatchObject({ maxLoad: 2, openLoad: 2 });
      const { contacts } = await t.query.listContacts({ sourceId: src.id });
      expect(contacts.map((c) => [c.id, c.operator?.id])).toEqual([[first.contact!.id, op.id], [second.contact!.id, op.id]]);
      expect((await t.query.listContacts({ sourceId: src.id, queuedOnly: true })).contacts).toEqual([]);
    });

    it('activating an operator assigns queued contacts at once', async () => {
      const op = await operator({ maxLoad: 3, active: false });
      const src = await source();
      await t.admin.setSourceOperators({ sourceId: src.id, operators: [{ operatorId: op.id, weight: 1 }] });
      const queued = await t.distribution.registerContact({ source: { case: 'sourceId', value: src.id }, lead: { externalId: unique('lead') } });
      expect(queued.outcome).toBe(AssignmentOutcome.QUEUED_NO_CAPACITY);

      const updated = (await t.admin.updateOperator({ operatorId: op.id, active: true })).operator!;
      expect(updated).toMatchObject({ active: true, openLoad: 1 });
      const { contacts } = await t.query.listContacts({ sourceId: src.id });
      expect(contacts.map((c) => c.operator?.id)).toEqual([op.id]);
    });
  });

  describe('CreateSource', () => {
    it('defaults: lead_affinity true, strategy WEIGHTED_RANDOM, empty code and description, no operators', async () => {
      const name = unique('Telegram');
      const { source: created } = await t.admin.createSource({ name: ` ${name} ` });
      expect(created).toMatchObject({
        name,
        code: '',
        description: '',
        strategy: DistributionStrategy.WEIGHTED_RANDOM,
        leadAffinity: true,
        operators: [],
      });
      expect(created!.id).toBeGreaterThan(0n);
      expect(created!.createdAt).toBeDefined();
      expect(await getSource(created!.id)).toEqual(created);
    });

    it('maps an explicit UNSPECIFIED strategy to WEIGHTED_RANDOM', async () => {
      const { source: created } = await t.admin.createSource({ name: unique('src'), strategy: DistributionStrategy.UNSPECIFIED });
      expect(created?.strategy).toBe(DistributionStrategy.WEIGHTED_RANDOM);
    });

    it('stores every setting given', async () => {
      const name = unique('WhatsApp');
      const code = unique('wa');
      const { source: created } = await t.admin.createSource({
        name,
        code,
        description: 'WhatsApp business bot',
        strategy: DistributionStrategy.SMOOTH_WEIGHTED_ROUND_ROBIN,
        leadAffinity: false,
      });
      expect(created).toMatchObject({ name, code, description: 'WhatsApp business bot', strategy: DistributionStrategy.SMOOTH_WEIGHTED_ROUND_ROBIN, leadAffinity: false });
      expect((await t.query.getSource({ source: { case: 'sourceCode', value: code } })).source).toEqual(created);
    });

    it('allows many sources without a code', async () => {
      const a = await source();
      const b = await source();
      expect(a.code).toBe('');
      expect(b.code).toBe('');
      expect(b.id).not.toBe(a.id);
    });

    it('rejects an empty or blank name naming name', async () => {
      await expectInvalid(t.admin.createSource({ name: '' }), ['name']);
      await expectInvalid(t.admin.createSource({ name: '   ', code: unique('c') }), ['name']);
    });

    it('rejects an unknown strategy naming strategy', async () => {
      await expectInvalid(t.admin.createSource({ name: unique('src'), strategy: 99 as DistributionStrategy }), ['strategy']);
    });

    it('rejects a duplicate name with ALREADY_EXISTS', async () => {
      const existing = await source();
      const error = await expectCode(t.admin.createSource({ name: existing.name, code: unique('code') }), status.ALREADY_EXISTS);
      expect(error.details).toBe(`a source named "${existing.name}" already exists`);
    });

    it('rejects a duplicate code with ALREADY_EXISTS', async () => {
      const code = unique('tg');
      await source({ code });
      const error = await expectCode(t.admin.createSource({ name: unique('other'), code }), status.ALREADY_EXISTS);
      expect(error.details).toBe(`a source with code "${code}" already exists`);
    });

    it('rejects a code over 64 characters and a description over 2,000, naming each field', async () => {
      await expectInvalid(t.admin.createSource({ name: unique('src'), code: 'c'.repeat(65), description: 'd'.repeat(2_001) }), ['code', 'description']);
    });

    it('a rejected CreateSource creates nothing', async () => {
      const code = unique('taken');
      const existing = await source({ code });
      const before = await allSources();
      await expectInvalid(t.admin.createSource({ name: ' ', code: unique('fresh') }), ['name']);
      await expectCode(t.admin.createSource({ name: existing.name, code: unique('fresh') }), status.ALREADY_EXISTS);
      await expectCode(t.admin.createSource({ name: unique('fresh'), code }), status.ALREADY_EXISTS);
      expect(await allSources()).toEqual(before);
    });
  });

  describe('UpdateSource', () => {
    it('changes only the fields that are set and keeps the operator list', async () => {
      const code = unique('code');
      const { source: created } = await t.admin.createSource({ name: unique('src'), code, description: 'first' });
      const op = await operator();
      const configured = (await t.admin.setSourceOperators({ sourceId: created!.id, operators: [{ operatorId: op.id, weight: 4 }] })).source!;
      const sourceId = created!.id;

      const s1 = (await t.admin.updateSource({ sourceId, description: 'second' })).source!;
      expect(s1).toMatchObject({ name: created!.name, code, description: 'second', strategy: DistributionStrategy.WEIGHTED_RANDOM, leadAffinity: true });
      expect(weights(s1)).toEqual(weights(configured));

      const s2 = (await t.admin.updateSource({ sourceId, strategy: DistributionStrategy.SMOOTH_WEIGHTED_ROUND_ROBIN })).source!;
      expect(s2).toMatchObject({ name: created!.name, code, description: 'second', strategy: DistributionStrategy.SMOOTH_WEIGHTED_ROUND_ROBIN, leadAffinity: true });

      const s3 = (await t.admin.updateSource({ sourceId, leadAffinity: false })).source!;
      expect(s3).toMatchObject({ code, description: 'second', strategy: DistributionStrategy.SMOOTH_WEIGHTED_ROUND_ROBIN, leadAffinity: false });

      const newName = unique('renamed');
      const newCode = unique('newcode');
      const s4 = (await t.admin.updateSource({ sourceId, name: newName, code: newCode })).source!;
      expect(s4).toMatchObject({ name: newName, code: newCode, description: 'second', strategy: DistributionStrategy.SMOOTH_WEIGHTED_ROUND_ROBIN, leadAffinity: false });

      const s5 = (await t.admin.updateSource({ sourceId })).source!;
      expect(s5).toEqual(s4);
      expect(s5.createdAt).toEqual(created!.createdAt);
      expect(weights(s5)).toEqual([{ operatorId: op.id, operatorName: op.name, weight: 4 }]);
      expect(await getSource(sourceId)).toEqual(s5);
      await expectCode(t.query.getSource({ source: { case: 'sourceCode', value: code } }), status.NOT_FOUND);
    });

    it('an empty code clears it, and the old code becomes free', async () => {
      const code = unique('clear');
      const created = await source({ code });
      const cleared = (await t.admin.updateSource({ sourceId: created.id, code: '' })).source!;
      expect(cleared).toMatchObject({ name: created.name, code: '' });
      await expectCode(t.query.getSource({ source: { case: 'sourceCode', value: code } }), status.NOT_FOUND);
      const reuse = await source({ code });
      expect(reuse.code).toBe(code);
    });

    it('an explicit UNSPECIFIED strategy means WEIGHTED_RANDOM', async () => {
      const { source: created } = await t.admin.createSource({ name: unique('src'), strategy: DistributionStrategy.SMOOTH_WEIGHTED_ROUND_ROBIN });
      const updated = (await t.admin.updateSource({ sourceId: created!.id, strategy: DistributionStrategy.UNSPECIFIED })).source!;
      expect(updated.strategy).toBe(DistributionStrategy.WEIGHTED_RANDOM);
    });

    it('rejects source_id 0 and a blank name naming the fields', async () => {
      await expectInvalid(t.admin.updateSource({ sourceId: 0n, description: 'x' }), ['source_id']);
      const created = await source();
      await expectInvalid(t.admin.updateSource({ sourceId: created.id, name: '   ' }), ['name']);
      await expectInvalid(t.admin.updateSource({ sourceId: created.id, name: '' }), ['name']);
    });

    it('returns NOT_FOUND for an unknown source', async () => {
      await expectCode(t.admin.updateSource({ sourceId: 999_999n, description: 'x' }), status.NOT_FOUND);
    });

    it('returns ALREADY_EXISTS for a taken name or code, and writes nothing', async () => {
      const takenCode = unique('busy');
      const taken = await source({ code: takenCode });
      const { source: created } = await t.admin.createSource({ name: unique('src'), code: unique('mine'), description: 'keep me' });
      const nameTaken = await expectCode(t.admin.updateSource({ sourceId: created!.id, name: taken.name, description: 'changed' }), status.ALREADY_EXISTS);
      expect(nameTaken.details).toBe(`a source named "${taken.name}" already exists`);
      const codeTaken = await expectCode(t.admin.updateSource({ sourceId: created!.id, code: takenCode, description: 'changed', leadAffinity: false }), status.ALREADY_EXISTS);
      expect(codeTaken.details).toBe(`a source with code "${takenCode}" already exists`);
      expect(await getSource(created!.id)).toEqual(created);
      expect(await getSource(taken.id)).toEqual(taken);
    });
  });

  describe('SetSourceOperators', () => {
    it('replaces the whole list, keeping weight-0 entries, ordered by operator id', async () => {
      const [a, b, c] = [await operator(), await operator(), await operator()];
      const src = await source();

      const first = (await t.admin.setSourceOperators({ sourceId: src.id, operators: [{ operatorId: b!.id, weight: 1 }, { operatorId: a!.id, weight: 3 }] })).source!;
      expect(weights(first)).toEqual([
        { operatorId: a!.id, operatorName: a!.name, weight: 3 },
        { operatorId: b!.id, operatorName: b!.name, weight: 1 },
      ]);
      expect(first).toMatchObject({ id: src.id, name: src.name });

      const second = (await t.admin.setSourceOperators({ sourceId: src.id, operators: [{ operatorId: c!.id, weight: 0 }, { operatorId: b!.id, weight: 5 }] })).source!;
      expect(weights(second)).toEqual([
        { operatorId: b!.id, operatorName: b!.name, weight: 5 },
        { operatorId: c!.id, operatorName: c!.name, weight: 0 },
      ]);
      expect(weights(await getSource(src.id))).toEqual(weights(second));

      const cleared = (await t.admin.setSourceOperators({ sourceId: src.id, operators: [] })).source!;
      expect(cleared.operators).toEqual([]);
      expect((await getSource(src.id)).operators).toEqual([]);
      // The operators themselves are untouched.
      expect((await t.query.getOperator({ operatorId: a!.id })).operator).toEqual(a);
    });

    it('with one unknown operator returns NOT_FOUND and leaves the old list intact', async () => {
      const [a, b] = [await operator(), await operator()];
      const src = await source();
      await t.admin.setSourceOperators({ sourceId: src.id, operators: [{ operatorId: a!.id, weight: 2 }] });
      await expectCode(
        t.admin.setSourceOperators({ sourceId: src.id, operators: [{ operatorId: b!.id, weight: 7 }, { operatorId: 987_654n, weight: 1 }] }),
        status.NOT_FOUND,
      );
      expect(weights(await getSource(src.id))).toEqual([{ operatorId: a!.id, operatorName: a!.name, weight: 2 }]);
    });

    it('returns NOT_FOUND for an unknown source', async () => {
      const a = await operator();
      await expectCode(t.admin.setSourceOperators({ sourceId: 999_999n, operators: [{ operatorId: a.id, weight: 1 }] }), status.NOT_FOUND);
    });

    it('rejects an operator listed twice naming the second entry, and leaves the old list intact', async () => {
      const [a, b] = [await operator(), await operator()];
      const src = await source();
      await t.admin.setSourceOperators({ sourceId: src.id, operators: [{ operatorId: b!.id, weight: 1 }] });
      await expectInvalid(
        t.admin.setSourceOperators({ sourceId: src.id, operators: [{ operatorId: a!.id, weight: 1 }, { operatorId: a!.id, weight: 2 }] }),
        ['operators[1].operator_id'],
      );
      expect(weights(await getSource(src.id))).toEqual([{ operatorId: b!.id, operatorName: b!.name, weight: 1 }]);
    });

    it('rejects a weight over 1,000,000 naming the entry', async () => {
      const a = await operator();
      const src = await source();
      await expectInvalid(t.admin.setSourceOperators({ sourceId: src.id, operators: [{ operatorId: a.id, weight: 1 }, { operatorId: (await operator()).id, weight: 1_000_001 }] }), ['operators[1].weight']);
      expect((await getSource(src.id)).operators).toEqual([]);
    });

    it('rejects a negative weight, operator_id 0 and source_id 0 naming each field', async () => {
      const a = await operator();
      const src = await source();
      await expectInvalid(t.admin.setSourceOperators({ sourceId: src.id, operators: [{ operatorId: a.id, weight: -1 }] }), ['operators[0].weight']);
      await expectInvalid(t.admin.setSourceOperators({ sourceId: src.id, operators: [{ operatorId: a.id, weight: 1 }, { operatorId: 0n, weight: 1 }] }), ['operators[1].operator_id']);
      await expectInvalid(t.admin.setSourceOperators({ sourceId: 0n, operators: [] }), ['source_id']);
      expect((await getSource(src.id)).operators).toEqual([]);
    });

    it('assigns the source\'s queued contacts at once', async () => {
      const op = await operator({ maxLoad: 5 });
      const src = await source();
      const queued = await t.distribution.registerContact({ source: { case: 'sourceId', value: src.id }, lead: { externalId: unique('lead') } });
      expect(queued.outcome).toBe(AssignmentOutcome.QUEUED_NO_OPERATORS);
      await t.admin.setSourceOperators({ sourceId: src.id, operators: [{ operatorId: op.id, weight: 1 }] });
      const { contacts } = await t.query.listContacts({ sourceId: src.id });
      expect(contacts).toHaveLength(1);
      expect(contacts[0]).toMatchObject({ id: queued.contact!.id, status: ContactStatus.NEW, operator: { id: op.id, name: op.name } });
      expect((await t.query.getOperator({ operatorId: op.id })).operator?.openLoad).toBe(1);
    });
  });

  describe('SetOperatorWeight', () => {
    it('adds an entry, then changes its weight, leaving the other entries alone', async () => {
      const [a, b] = [await operator(), await operator()];
      const src = await source();
      await t.admin.setSourceOperators({ sourceId: src.id, operators: [{ operatorId: a!.id, weight: 2 }] });

      const added = (await t.admin.setOperatorWeight({ sourceId: src.id, operatorId: b!.id, weight: 3 })).source!;
      expect(weights(added)).toEqual([
        { operatorId: a!.id, operatorName: a!.name, weight: 2 },
        { operatorId: b!.id, operatorName: b!.name, weight: 3 },
      ]);

      const changed = (await t.admin.setOperatorWeight({ sourceId: src.id, operatorId: b!.id, weight: 0 })).source!;
      expect(weights(changed)).toEqual([
        { operatorId: a!.id, operatorName: a!.name, weight: 2 },
        { operatorId: b!.id, operatorName: b!.name, weight: 0 },
      ]);
      expect(weights(await getSource(src.id))).toEqual(weights(changed));
    });

    it('returns NOT_FOUND for an unknown operator and leaves the list intact', async () => {
      const a = await operator();
      const src = await source();
      await t.admin.setSourceOperators({ sourceId: src.id, operators: [{ operatorId: a.id, weight: 2 }] });
      await expectCode(t.admin.setOperatorWeight({ sourceId: src.id, operatorId: 987_654n, weight: 1 }), status.NOT_FOUND);
      expect(weights(await getSource(src.id))).toEqual([{ operatorId: a.id, operatorName: a.name, weight: 2 }]);
    });

    it('returns NOT_FOUND for an unknown source', async () => {
      const a = await operator();
      await expectCode(t.admin.setOperatorWeight({ sourceId: 999_999n, operatorId: a.id, weight: 1 }), status.NOT_FOUND);
    });

    it('rejects a negative weight and zero ids naming each field, writing nothing', async () => {
      const a = await operator();
      const src = await source();
      await t.admin.setSourceOperators({ sourceId: src.id, operators: [{ operatorId: a.id, weight: 2 }] });
      await expectInvalid(t.admin.setOperatorWeight({ sourceId: src.id, operatorId: a.id, weight: -1 }), ['weight']);
      await expectInvalid(t.admin.setOperatorWeight({ sourceId: 0n, operatorId: 0n, weight: 1 }), ['source_id', 'operator_id']);
      expect(weights(await getSource(src.id))).toEqual([{ operatorId: a.id, operatorName: a.name, weight: 2 }]);
    });

    it('raising a weight from 0 assigns queued contacts at once', async () => {
      const op = await operator();
      const src = await source();
      await t.admin.setSourceOperators({ sourceId: src.id, operators: [{ operatorId: op.id, weight: 0 }] });
      const queued = await t.distribution.registerContact({ source: { case: 'sourceId', value: src.id }, lead: { externalId: unique('lead') } });
      expect(queued.outcome).toBe(AssignmentOutcome.QUEUED_NO_OPERATORS);
      await t.admin.setOperatorWeight({ sourceId: src.id, operatorId: op.id, weight: 1 });
      const { contacts } = await t.query.listContacts({ sourceId: src.id });
      expect(contacts.map((c) => c.operator?.id)).toEqual([op.id]);
    });
  });

  describe('RemoveSourceOperator', () => {
    it('removes one entry and leaves the others and the operator itself', async () => {
      const [a, b] = [await operator(), await operator()];
      const src = await source();
      await t.admin.setSourceOperators({ sourceId: src.id, operators: [{ operatorId: a!.id, weight: 2 }, { operatorId: b!.id, weight: 3 }] });
      const after = (await t.admin.removeSourceOperator({ sourceId: src.id, operatorId: a!.id })).source!;
      expect(weights(after)).toEqual([{ operatorId: b!.id, operatorName: b!.name, weight: 3 }]);
      expect(weights(await getSource(src.id))).toEqual(weights(after));
      expect((await t.query.getOperator({ operatorId: a!.id })).operator).toEqual(a);
    });

    it('returns NOT_FOUND for an operator not configured for the source, or an unknown one', async () => {
      const [a, b] = [await operator(), await operator()];
      const src = await source();
      await t.admin.setSourceOperators({ sourceId: src.id, operators: [{ operatorId: a!.id, weight: 2 }] });
      await expectCode(t.admin.removeSourceOperator({ sourceId: src.id, operatorId: b!.id }), status.NOT_FOUND);
      await expectCode(t.admin.removeSourceOperator({ sourceId: src.id, operatorId: 987_654n }), status.NOT_FOUND);
      expect(weights(await getSource(src.id))).toEqual([{ operatorId: a!.id, operatorName: a!.name, weight: 2 }]);
    });

    it('returns NOT_FOUND for an unknown source', async () => {
      const a = await operator();
      await expectCode(t.admin.removeSourceOperator({ sourceId: 999_999n, operatorId: a.id }), status.NOT_FOUND);
    });

    it('rejects zero ids naming each field', async () => {
      await expectInvalid(t.admin.removeSourceOperator({ sourceId: 0n, operatorId: 0n }), ['source_id', 'operator_id']);
    });
  });
});
