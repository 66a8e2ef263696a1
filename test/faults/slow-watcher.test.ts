// A WatchAssignments client that never reads: its events cannot be sent, so
// they would pile up in the server without end. The server keeps at most
// 1,000 for it and then ends the stream with RESOURCE_EXHAUSTED; since a
// status cannot be sent behind data the client does not take, the stream is
// reset with ENHANCE_YOUR_CALM, which gRPC clients read as RESOURCE_EXHAUSTED.
import http2 from 'node:http2';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { AdminService } from '../../gen/crm/v1/admin_pb.js';
import { DistributionService } from '../../gen/crm/v1/distribution_pb.js';
import { startChildServer, type ChildServer } from '../support/child-server.ts';
import { rssMb, sleep } from '../support/faults.ts';
import { unique } from '../support/fixtures.ts';
import { grpcClient, type GrpcClient } from '../support/grpc-client.ts';
import { createTestDatabase, type TestDatabase } from '../support/test-database.ts';

const ASSIGNMENTS = 3_000;

describe('a watcher that never reads', () => {
  let database: TestDatabase;
  let child: ChildServer;
  let admin: GrpcClient<typeof AdminService>;
  let distribution: GrpcClient<typeof DistributionService>;

  beforeAll(async () => {
    database = await createTestDatabase();
    child = await startChildServer({ DATABASE_URL: database.url });
    admin = grpcClient(AdminService, child.address);
    distribution = grpcClient(DistributionService, child.address);
  });

  afterAll(async () => {
    admin?.close();
    distribution?.close();
    await child?.stop();
    await database?.drop();
  });

  it(`is reset with ENHANCE_YOUR_CALM once it falls 1,000 behind, while ${ASSIGNMENTS} assignments happen; the server's memory stays bounded`, async () => {
    const { operator } = await admin.createOperator({ name: unique('op'), maxLoad: 1_000_000 });
    const { source } = await admin.createSource({ name: unique('source'), leadAffinity: false });
    await admin.setSourceOperators({ sourceId: source!.id, operators: [{ operatorId: operator!.id, weight: 1 }] });

    // A raw HTTP/2 client: its stream is never read, so Node stops granting the
    // server flow-control window once a few KB have arrived.
    const session = http2.connect(`http://${child.address}`);
    const stream = session.request({
      ':method': 'POST',
      ':path': '/crm.v1.DistributionService/WatchAssignments',
      'content-type': 'application/grpc',
      te: 'trailers',
    });
    // An empty WatchAssignmentsRequest in one gRPC frame: no filter.
    stream.end(Buffer.from([0, 0, 0, 0, 0]));
    const closed = new Promise<number>((resolve) => stream.once('close', () => resolve(stream.rstCode ?? -1)));
    stream.on('error', () => undefined);
    session.on('error', () => undefined);
    // The server sends response headers with the first event: register until they come, so the watch is live.
    let subscribed = false;
    stream.once('response', () => (subscribed = true));
    for (let attempt = 0; attempt < 100 && !subscribed; attempt++) {
      await distribution.registerContact({ source: { case: 'sourceId', value: source!.id }, lead: { externalId: unique('probe') } });
      await sleep(50);
    }
    expect(subscribed).toBe(true);

    let peakRss = 0;
    const sampler = setInterval(() => (peakRss = Math.max(peakRss, rssMb(child.process.pid!))), 100);
    try {
      let registered = 0;
      const registerAll = async () => {
        while (registered < ASSIGNMENTS) {
          registered += 1;
          await distribution.registerContact({ source: { case: 'sourceId', value: source!.id }, lead: { externalId: unique('lead') }, message: 'x'.repeat(200) });
        }
      };
      await Promise.all(Array.from({ length: 32 }, registerAll));
      const done = Date.now();
      const rstCode = await Promise.race([closed, sleep(30_000).then(() => 'still open after 30 s')]);
      expect(rstCode).toBe(http2.constants.NGHTTP2_ENHANCE_YOUR_CALM);
      // The reset came within 30 s of the last assignment, so within 30 s of falling behind.
      expect(Date.now() - done).toBeLessThan(30_000);
    } finally {
      clearInterval(sampler);
      session.destroy();
    }
    expect(peakRss).toBeGreaterThan(0);
    expect(peakRss).toBeLessThan(400);
    // The server has let go of it: it logged the stream's end as RESOURCE_EXHAUSTED, and serves on.
    await expect.poll(() => child.logs().some((l) => l.method === 'crm.v1.DistributionService/WatchAssignments' && l.code === 'resource_exhausted'), { timeout: 10_000 }).toBe(true);
    const again = await distribution.registerContact({ source: { case: 'sourceId', value: source!.id }, lead: { externalId: unique('lead') } });
    expect(again.contact!.operator!.id).toBe(operator!.id);
  });
});
