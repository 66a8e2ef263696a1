// grpc.health.v1.Health over grpc-js: Check, List and Watch on the real server,
// including the NOT_SERVING a watcher sees when the server closes.
import http2 from 'node:http2';
import type { AddressInfo } from 'node:net';
import { connectNodeAdapter } from '@connectrpc/connect-node';
import { status as grpcStatus, type ClientReadableStream, type ServiceError } from '@grpc/grpc-js';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { AdminService } from '../../../gen/crm/v1/admin_pb.js';
import { DistributionService } from '../../../gen/crm/v1/distribution_pb.js';
import { QueryService } from '../../../gen/crm/v1/query_pb.js';
import { Health, HealthCheckResponse_ServingStatus as ServingStatus, type HealthCheckResponse } from '../../../gen/grpc/health/v1/health_pb.js';
import { ServerReflection } from '../../../gen/grpc/reflection/v1/reflection_pb.js';
import { ServerReflection as ServerReflectionV1alpha } from '../../../gen/grpc/reflection/v1alpha/reflection_pb.js';
import { healthService, HealthStatus } from '../../../src/transport/services/health.ts';
import { grpcClient, type GrpcClient } from '../../support/grpc-client.ts';
import { StreamReader } from '../../support/stream-reader.ts';
import { startTestServer, type TestServer } from '../../support/test-server.ts';

const EXPOSED = [DistributionService, AdminService, QueryService, Health, ServerReflection, ServerReflectionV1alpha].map((s) => s.typeName);

/** A Watch call's statuses as they come, and how it ended. */
class Watch extends StreamReader<HealthCheckResponse, ServingStatus> {
  constructor(stream: ClientReadableStream<HealthCheckResponse>) {
    super(stream, (response) => response.status);
  }

  get statuses(): ServingStatus[] {
    return this.messages;
  }
}

describe('Health on the service port', () => {
  let t: TestServer;
  let health: GrpcClient<typeof Health>;
  beforeAll(async () => {
    t = await startTestServer();
    health = grpcClient(Health, t.address);
  });
  afterAll(async () => {
    health.close();
    await t.dispose();
  });

  it('reports SERVING for the server and for every exposed service', async () => {
    for (const service of ['', ...EXPOSED]) {
      expect((await health.check({ service })).status, service).toBe(ServingStatus.SERVING);
    }
  });

  it('answers Check for an unknown service with NOT_FOUND', async () => {
    const error = await health.check({ service: 'crm.v1.Nope' }).catch((e: ServiceError) => e);
    expect(error).toMatchObject({ code: grpcStatus.NOT_FOUND });
  });

  it('lists every status', async () => {
    const { statuses } = await health.list({});
    expect(Object.keys(statuses).sort()).toEqual(['', ...EXPOSED].sort());
    expect(Object.values(statuses).every((s) => s.status === ServingStatus.SERVING)).toBe(true);
  });

  it('Watch sends the current status at once and keeps the call open', async () => {
    const watch = new Watch(health.watch({ service: 'crm.v1.AdminService' }));
    expect(await watch.next()).toBe(ServingStatus.SERVING);
    expect(await watch.next(200)).toBeUndefined();
    watch.stream.cancel();
  });

  it('Watch of an unknown service sends SERVICE_UNKNOWN and keeps watching', async () => {
    const watch = new Watch(health.watch({ service: 'crm.v1.Nope' }));
    expect(await watch.next()).toBe(ServingStatus.SERVICE_UNKNOWN);
    const ended = await Promise.race([watch.ended, new Promise((resolve) => setTimeout(() => resolve('open'), 200))]);
    expect(ended).toBe('open');
    watch.stream.cancel();
  });
});

describe('Health when the server closes', () => {
  it('turns NOT_SERVING for watchers, then ends their calls cleanly', async () => {
    const t = await startTestServer();
    const health = grpcClient(Health, t.address);
    try {
      const watches = ['', 'crm.v1.QueryService', 'crm.v1.Nope'].map((service) => new Watch(health.watch({ service })));
      // The first message proves each handler is subscribed before the close.
      for (const watch of watches) expect(await watch.next()).toBeDefined();
      await t.stop();
      const ends = await Promise.all(watches.map((w) => w.ended));
      expect(ends.map((e) => e.code)).toEqual([grpcStatus.OK, grpcStatus.OK, grpcStatus.OK]);
      expect(watches.map((w) => w.statuses)).toEqual([
        [ServingStatus.SERVING, ServingStatus.NOT_SERVING],
        [ServingStatus.SERVING, ServingStatus.NOT_SERVING],
        [ServingStatus.SERVICE_UNKNOWN],
      ]);
    } finally {
      health.close();
      await t.dispose();
    }
  });
});

describe('HealthStatus behind the Health service', () => {
  let server: http2.Http2Server;
  let status: HealthStatus;
  let shutdown: AbortController;
  let health: GrpcClient<typeof Health>;

  beforeAll(async () => {
    status = new HealthStatus(['a.A', 'b.B']);
    shutdown = new AbortController();
    server = http2.createServer(connectNodeAdapter({ routes: (router) => router.service(Health, healthService(status, shutdown.signal)) }));
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    health = grpcClient(Health, `127.0.0.1:${(server.address() as AddressInfo).port}`);
  });
  afterEach(() => status.setAll(ServingStatus.NOT_SERVING));
  afterAll(async () => {
    health.close();
    shutdown.abort();
    await new Promise((resolve) => server.close(resolve));
  });

  const check = async (service: string) => (await health.check({ service })).status;

  it('Check follows the statuses: NOT_SERVING until ready, then per service', async () => {
    expect(await check('')).toBe(ServingStatus.NOT_SERVING);
    expect(await check('a.A')).toBe(ServingStatus.NOT_SERVING);
    status.setAll(ServingStatus.SERVING);
    status.set('a.A', ServingStatus.NOT_SERVING);
    expect([await check(''), await check('a.A'), await check('b.B')]).toEqual([ServingStatus.SERVING, ServingStatus.NOT_SERVING, ServingStatus.SERVING]);
  });

  it('Watch streams each change once', async () => {
    const watch = new Watch(health.watch({ service: 'a.A' }));
    expect(await watch.next()).toBe(ServingStatus.NOT_SERVING);
    status.set('a.A', ServingStatus.SERVING);
    expect(await watch.next()).toBe(ServingStatus.SERVING);
    status.set('a.A', ServingStatus.SERVING);
    status.set('b.B', ServingStatus.SERVING);
    status.set('a.A', ServingStatus.NOT_SERVING);
    expect(await watch.next()).toBe(ServingStatus.NOT_SERVING);
    expect(await watch.next(200)).toBeUndefined();
    expect(watch.statuses).toEqual([ServingStatus.NOT_SERVING, ServingStatus.SERVING, ServingStatus.NOT_SERVING]);
    watch.stream.cancel();
  });

  it('Watch of an unknown name reports it once it becomes known', async () => {
    const watch = new Watch(health.watch({ service: 'c.C' }));
    expect(await watch.next()).toBe(ServingStatus.SERVICE_UNKNOWN);
    status.set('c.C', ServingStatus.SERVING);
    expect(await watch.next()).toBe(ServingStatus.SERVING);
    watch.stream.cancel();
  });
});
