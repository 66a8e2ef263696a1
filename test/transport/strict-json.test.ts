// Strict JSON requests, over Connect with JSON and gRPC with JSON messages: an
// unknown field, or an enum value that is none of the enum's names, is
// INVALID_ARGUMENT naming the field by its proto path (in the message and as a
// google.rpc.BadRequest violation), and the call writes nothing; valid JSON
// (proto or lowerCamelCase field names, enum names or numbers) still works.
import { status } from '@grpc/grpc-js';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ContactPriority, ContactStatus, DistributionStrategy } from '../../gen/crm/v1/resources_pb.js';
import { createOperators, createSource, register, unique } from '../support/fixtures.ts';
import { connectJson, grpcJson, type JsonCallResult } from '../support/json-client.ts';
import { startTestServer, type TestServer } from '../support/test-server.ts';

const ADMIN = '/crm.v1.AdminService';
const DISTRIBUTION = '/crm.v1.DistributionService';

/** The id of `resource` in a successful call's response (an int64, so a JSON string). */
function idIn(result: JsonCallResult, resource: 'operator' | 'source' | 'contact'): bigint {
  return BigInt((result.response![resource] as { id: string }).id);
}

describe('strict JSON requests', () => {
  let t: TestServer;

  beforeAll(async () => {
    t = await startTestServer();
  });
  afterAll(() => t.dispose());

  /** Everything the service stores, read over gRPC (each list fits one page here). */
  async function stored() {
    const [operators, sources, leads, contacts] = await Promise.all([
      t.query.listOperators({ pageSize: 500 }),
      t.query.listSources({ pageSize: 500 }),
      t.query.listLeads({ pageSize: 500 }),
      t.query.listContacts({ pageSize: 500 }),
    ]);
    for (const page of [operators, sources, leads, contacts]) expect(page.nextPageToken).toBe('');
    return { operators: operators.operators, sources: sources.sources, leads: leads.leads, contacts: contacts.contacts };
  }

  describe.each([
    ['Connect with JSON', connectJson],
    ['gRPC with JSON messages', grpcJson],
  ])('over %s', (_, call) => {
    const send = (path: string, body: object) => call(t.server.port, path, JSON.stringify(body));

    /** Asserts INVALID_ARGUMENT naming exactly `fields` (in the message and in BadRequest), and that nothing changed. */
    async function expectRefused(path: string, body: object, fields: string[]): Promise<JsonCallResult> {
      const before = await stored();
      const result = await send(path, body);
      expect({ code: result.code, message: result.message }).toMatchObject({ code: status.INVALID_ARGUMENT });
      expect(result.violations.map((v) => v.field)).toEqual(fields);
      for (const violation of result.violations) expect(result.message).toContain(`${violation.field} ${violation.description}`);
      expect(await stored()).toEqual(before);
      return result;
    }

    it('CreateOperator with a misspelled field ("actve") is refused naming it, and creates no operator', async () => {
      const { violations } = await expectRefused(`${ADMIN}/CreateOperator`, { name: unique('op'), maxLoad: 3, actve: false }, ['actve']);
      expect(violations[0]!.description).toMatch(/^is not a field of crm\.v1\.CreateOperatorRequest \(its fields are .*\bactive\b.*\)$/);
    });

    it('CreateSource with a short enum name is refused listing the enum\'s wire names, and creates no source', async () => {
      const { message } = await expectRefused(`${ADMIN}/CreateSource`, { name: unique('src'), strategy: 'SMOOTH_WEIGHTED_ROUND_ROBIN' }, ['strategy']);
      expect(message).toBe(
        'strategy must be one of DISTRIBUTION_STRATEGY_WEIGHTED_RANDOM | DISTRIBUTION_STRATEGY_SMOOTH_WEIGHTED_ROUND_ROBIN' +
          ' | DISTRIBUTION_STRATEGY_CAPACITY_WEIGHTED_RANDOM | DISTRIBUTION_STRATEGY_LEAST_LOADED (got "SMOOTH_WEIGHTED_ROUND_ROBIN")',
      );
    });

    it('UpdateSource with a misspelled enum name is refused, and changes nothing (not even its valid fields)', async () => {
      const sourceId = await createSource(t, []);
      const { message } = await expectRefused(`${ADMIN}/UpdateSource`, { sourceId: String(sourceId), name: unique('renamed'), strategy: 'DISTRIBUTION_STRATEGY_LEAST_LOADD' }, ['strategy']);
      expect(message).toContain('(got "DISTRIBUTION_STRATEGY_LEAST_LOADD")');
    });

    it('RegisterContact with a misspelled field and an unknown field in lead is refused naming both, and stores no lead or contact', async () => {
      const [operatorId] = await createOperators(t, 1, 10);
      const sourceId = await createSource(t, [[operatorId!, 1]]);
      const { violations } = await expectRefused(
        `${DISTRIBUTION}/RegisterContact`,
        { sourceId: String(sourceId), lead: { externalId: unique('lead'), external_idd: 'typo' }, mesage: 'hello' },
        ['lead.external_idd', 'mesage'],
      );
      expect(violations[0]!.description).toMatch(/^is not a field of crm\.v1\.LeadIdentity \(its fields are external_id \| phone \| email \| name\)$/);
    });

    it('UpdateContactStatus with the short name "CLOSED" is refused listing CONTACT_STATUS_* names, and the contact stays NEW', async () => {
      const [operatorId] = await createOperators(t, 1, 10);
      const { contact } = await register(t, await createSource(t, [[operatorId!, 1]]));
      const { message } = await expectRefused(`${DISTRIBUTION}/UpdateContactStatus`, { contactId: String(contact!.id), status: 'CLOSED' }, ['status']);
      expect(message).toBe('status must be one of CONTACT_STATUS_NEW | CONTACT_STATUS_IN_PROGRESS | CONTACT_STATUS_CLOSED (got "CLOSED")');
      expect((await t.query.listContacts({ sourceId: contact!.source!.id })).contacts.map((c) => c.status)).toEqual([ContactStatus.NEW]);
    });

    it('SetSourceOperators names the item of a repeated field: a wrong type and an unknown field', async () => {
      const [first, second] = await createOperators(t, 2, 10);
      const sourceId = await createSource(t, [[first!, 1]]);
      await expectRefused(
        `${ADMIN}/SetSourceOperators`,
        {
          sourceId: String(sourceId),
          operators: [
            { operatorId: String(first), weight: 2 },
            { operatorId: String(second), weight: 'heavy' },
            { operatorId: String(second), wieght: 3 },
          ],
        },
        ['operators[1].weight', 'operators[2].wieght'],
      );
    });

    it('refuses a field given by both its names, two members of a oneof, and a Duration that is not a string', async () => {
      await expectRefused(`${ADMIN}/CreateOperator`, { name: unique('op'), max_load: 1, maxLoad: 2 }, ['max_load']);
      const [operatorId] = await createOperators(t, 1, 10);
      const sourceId = await createSource(t, [[operatorId!, 1]]);
      await expectRefused(`${DISTRIBUTION}/RegisterContact`, { sourceId: String(sourceId), sourceCode: 'x', lead: { externalId: unique('lead') } }, ['source_code']);
      await expectRefused(`${ADMIN}/CreateSource`, { name: unique('src'), acceptWithin: 90 }, ['accept_within']);
    });

    it('a compressed body, left to Connect\'s own parse (strict too), is refused without field details, and creates nothing', async () => {
      const before = await stored();
      const body = JSON.stringify({ name: unique('op'), maxLoad: 3, actve: false });
      const result = await call(t.server.port, `${ADMIN}/CreateOperator`, body, { gzip: true });
      expect(result).toMatchObject({ code: status.INVALID_ARGUMENT, violations: [] });
      expect(result.message).toContain('"actve" is unknown');
      expect(await stored()).toEqual(before);
      // With the mistake fixed, the same compressed call succeeds: compression itself is not refused.
      const fixed = await call(t.server.port, `${ADMIN}/CreateOperator`, body.replace('actve', 'active'), { gzip: true });
      expect(fixed.code).toBe(status.OK);
      const operatorId = idIn(fixed, 'operator');
      expect((await t.query.getOperator({ operatorId })).operator).toMatchObject({ maxLoad: 3, active: false });
    });

    it('accepts proto field names, lowerCamelCase names, enum names and enum numbers, and Duration strings', async () => {
      const operatorName = unique('op');
      const created = await send(`${ADMIN}/CreateOperator`, { name: operatorName, max_load: 4, active: false });
      expect(created).toMatchObject({ code: status.OK, response: { operator: { name: operatorName, maxLoad: 4 } } });
      const operatorId = idIn(created, 'operator');
      expect((await t.query.getOperator({ operatorId })).operator).toMatchObject({ name: operatorName, maxLoad: 4, active: false });

      const code = unique('code');
      const source = await send(`${ADMIN}/CreateSource`, { name: unique('src'), code, strategy: 2, leadAffinity: false, acceptWithin: '90s' });
      expect(source.code).toBe(status.OK);
      const sourceId = idIn(source, 'source');
      const read = async () => (await t.query.getSource({ source: { case: 'sourceId', value: sourceId } })).source!;
      expect(await read()).toMatchObject({ code, strategy: DistributionStrategy.SMOOTH_WEIGHTED_ROUND_ROBIN, leadAffinity: false, acceptWithin: { seconds: 90n } });

      expect((await send(`${ADMIN}/UpdateSource`, { source_id: String(sourceId), strategy: 'DISTRIBUTION_STRATEGY_LEAST_LOADED' })).code).toBe(status.OK);
      expect((await read()).strategy).toBe(DistributionStrategy.LEAST_LOADED);
      expect((await send(`${ADMIN}/SetOperatorWeight`, { sourceId: String(sourceId), operator_id: String(operatorId), weight: '3' })).code).toBe(status.OK);
      expect((await read()).operators.map((o) => [o.operatorId, o.weight])).toEqual([[operatorId, 3]]);

      // Active, so the contact below is assigned (not queued).
      expect((await send(`${ADMIN}/UpdateOperator`, { operator_id: String(operatorId), active: true })).code).toBe(status.OK);
      const externalId = unique('lead');
      const registered = await send(`${DISTRIBUTION}/RegisterContact`, {
        source_code: code,
        lead: { external_id: externalId, name: 'Zoe' },
        message: 'hi',
        priority: 'CONTACT_PRIORITY_HIGH',
        request_id: null,
      });
      expect(registered.code).toBe(status.OK);
      const contactId = idIn(registered, 'contact');
      const closed = await send(`${DISTRIBUTION}/UpdateContactStatus`, { contact_id: String(contactId), status: ContactStatus.CLOSED });
      expect(closed).toMatchObject({ code: status.OK, response: { contact: { status: 'CONTACT_STATUS_CLOSED' } } });
      const [contact] = (await t.query.listContacts({ sourceId })).contacts;
      expect(contact).toMatchObject({ id: contactId, message: 'hi', priority: ContactPriority.HIGH, status: ContactStatus.CLOSED, lead: { externalId, name: 'Zoe' } });
    });
  });
});
