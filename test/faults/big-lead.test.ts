// A lead with thousands of contacts (a bot in a loop, a very loyal client):
// reading it answers a bounded page, and registering for it costs what it costs
// for anyone else. Before, GetLead returned every contact (10 concurrent
// GetLead of a lead with 7,600 contacts took the server to ~1 GB) and every
// registration loaded all of the lead's open contacts for affinity.
import { readFileSync } from 'node:fs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { AdminService } from '../../gen/crm/v1/admin_pb.js';
import { DistributionService } from '../../gen/crm/v1/distribution_pb.js';
import { QueryService } from '../../gen/crm/v1/query_pb.js';
import { AssignmentOutcome } from '../../gen/crm/v1/resources_pb.js';
import { startChildServer, type ChildServer } from '../support/child-server.ts';
import { rssMb } from '../support/faults.ts';
import { unique } from '../support/fixtures.ts';
import { grpcClient, type GrpcClient } from '../support/grpc-client.ts';
import { createTestDatabase, type TestDatabase } from '../support/test-database.ts';

const CONTACTS = 5_000;

/** CPU time (user + system) the process has used, in ms. */
function cpuMs(pid: number): number {
  const fields = readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1]!.split(' ');
  // utime and stime are fields 14 and 15 of /proc/<pid>/stat, in clock ticks (100 a second).
  return (Number(fields[11]) + Number(fields[12])) * 10;
}

describe(`a lead with ${CONTACTS} contacts`, () => {
  let database: TestDatabase;
  let child: ChildServer;
  let admin: GrpcClient<typeof AdminService>;
  let distribution: GrpcClient<typeof DistributionService>;
  let query: GrpcClient<typeof QueryService>;
  let sourceId: bigint;
  const bigLead = unique('loyal');

  const registerFor = (externalId: string) =>
    distribution.registerContact({ source: { case: 'sourceId', value: sourceId }, lead: { externalId }, message: 'hello again' });

  beforeAll(async () => {
    database = await createTestDatabase();
    child = await startChildServer({ DATABASE_URL: database.url });
    admin = grpcClient(AdminService, child.address);
    distribution = grpcClient(DistributionService, child.address);
    query = grpcClient(QueryService, child.address);
    const operators = [];
    for (let i = 0; i < 3; i++) operators.push((await admin.createOperator({ name: unique('op'), maxLoad: 1_000_000 })).operator!.id);
    const { source } = await admin.createSource({ name: unique('source') });
    sourceId = source!.id;
    await admin.setSourceOperators({ sourceId, operators: operators.map((operatorId) => ({ operatorId, weight: 1 })) });
    // Every contact stays open, so affinity has all of them to consider.
    let made = 0;
    await Promise.all(Array.from({ length: 32 }, async () => {
      while (made < CONTACTS) {
        made += 1;
        await registerFor(bigLead);
      }
    }));
  }, 120_000);

  afterAll(async () => {
    for (const client of [admin, distribution, query]) client?.close();
    await child?.stop();
    await database?.drop();
  });

  it('GetLead answers its 100 newest contacts, oldest first among them, and contact_count; ListContacts pages through all', async () => {
    const { lead } = await query.getLead({ lead: { case: 'identity', value: { externalId: bigLead } } });
    expect(lead!.contactCount).toBe(BigInt(CONTACTS));
    expect(lead!.contacts).toHaveLength(100);
    const ids = lead!.contacts.map((c) => c.id);
    expect(ids).toEqual([...ids].sort((a, b) => (a < b ? -1 : 1)));
    let all = 0;
    let newest = 0n;
    let pageToken = '';
    do {
      const page = await query.listContacts({ leadId: lead!.id, pageSize: 500, pageToken });
      all += page.contacts.length;
      for (const c of page.contacts) if (c.id > newest) newest = c.id;
      pageToken = page.nextPageToken;
    } while (pageToken !== '');
    expect(all).toBe(CONTACTS);
    expect(ids[ids.length - 1]).toBe(newest);
    const { leads } = await query.listLeads({ pageSize: 10 });
    const listed = leads.find((l) => l.id === lead!.id)!;
    expect(listed.contactCount).toBe(BigInt(CONTACTS));
    expect(listed.contacts.map((c) => c.id)).toEqual(ids);
  });

  it('10 concurrent GetLead keep the server under 400 MB', async () => {
    let peak = rssMb(child.process.pid!);
    const sampler = setInterval(() => (peak = Math.max(peak, rssMb(child.process.pid!))), 20);
    try {
      for (let round = 0; round < 3; round++) {
        const answers = await Promise.all(Array.from({ length: 10 }, () => query.getLead({ lead: { case: 'identity', value: { externalId: bigLead } } })));
        for (const { lead } of answers) expect(lead!.contacts).toHaveLength(100);
      }
    } finally {
      clearInterval(sampler);
    }
    expect(peak).toBeGreaterThan(0);
    expect(peak).toBeLessThan(400);
  });

  it("a registration for it costs about what one for a new lead costs (server CPU, one call at a time)", async () => {
    // CPU time, not wall time: steadier on shared cores. Measured one call at
    // a time, so each call is a batch of its own and pays affinity's lookup alone.
    const cost = async (externalId: () => string) => {
      const before = cpuMs(child.process.pid!);
      for (let i = 0; i < 200; i++) {
        const { outcome } = await registerFor(externalId());
        expect([AssignmentOutcome.ASSIGNED, AssignmentOutcome.ASSIGNED_AFFINITY]).toContain(outcome);
      }
      return cpuMs(child.process.pid!) - before;
    };
    await cost(() => unique('warm-up'));
    const fresh = await cost(() => unique('new'));
    const loyal = await cost(() => bigLead);
    // Loading the lead's open contacts made this tens of times dearer; a
    // generous bound, since both figures are a few hundred ms of noisy CPU time.
    expect(loyal).toBeLessThan(2.5 * fresh + 100);
  });
});
