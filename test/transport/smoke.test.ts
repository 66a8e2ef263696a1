import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { status, type ServiceError } from '@grpc/grpc-js';
import { AssignmentOutcome } from '../../gen/crm/v1/resources_pb.js';
import { fieldViolations } from '../support/status-details.ts';
import { startTestServer, type TestServer } from '../support/test-server.ts';

describe('smoke', () => {
  let t: TestServer;
  beforeAll(async () => {
    t = await startTestServer();
  });
  afterAll(() => t.dispose());

  it('registers a contact end to end', async () => {
    const { operator } = await t.admin.createOperator({ name: 'Alice', maxLoad: 2 });
    const { source } = await t.admin.createSource({ name: 'TelegramBot', code: 'tg' });
    await t.admin.setSourceOperators({ sourceId: source!.id, operators: [{ operatorId: operator!.id, weight: 10 }] });
    const r = await t.distribution.registerContact({ source: { case: 'sourceCode', value: 'tg' }, lead: { phone: '+7 (999) 123-45-67' }, message: 'hi' });
    expect(r.outcome).toBe(AssignmentOutcome.ASSIGNED);
    expect(r.contact?.operator?.name).toBe('Alice');
    const stats = await t.query.getOperatorStats({});
    expect(stats.operators[0]?.openLoad).toBe(1);
    const dist = await t.query.getDistributionStats({ sourceId: source!.id });
    expect(dist.operators[0]?.assignedTotal).toBe(1n);
    const lead = await t.query.getLead({ lead: { case: 'identity', value: { phone: '+79991234567' } } });
    expect(lead.lead?.contacts).toHaveLength(1);
  });

  it('names bad fields in google.rpc.BadRequest details', async () => {
    const error = await t.admin.createOperator({ name: ' ', maxLoad: -1 }).catch((e: ServiceError) => e);
    expect(error).toMatchObject({ code: status.INVALID_ARGUMENT });
    expect(fieldViolations(error as ServiceError).map((v) => v.field)).toEqual(['name', 'max_load']);
  });
});
