// Starts the real server on an ephemeral port over a real database (see test-database.ts).
import type { Metadata } from '@grpc/grpc-js';
import { pino } from 'pino';
import { AdminService } from '../../gen/crm/v1/admin_pb.js';
import { DistributionService } from '../../gen/crm/v1/distribution_pb.js';
import { QueryService } from '../../gen/crm/v1/query_pb.js';
import type { Config } from '../../src/config.ts';
import { startServer, type RunningServer } from '../../src/server.ts';
import type { DatabaseTarget } from '../../src/storage/database-url.ts';
import { DEFAULT_CONNECTION_LIMITS } from '../../src/transport/service-port.ts';
import { createTestDatabase } from './test-database.ts';
import { grpcClient, type GrpcClient } from './grpc-client.ts';

export interface TestServer {
  address: string;
  database: DatabaseTarget;
  server: RunningServer;
  distribution: GrpcClient<typeof DistributionService>;
  admin: GrpcClient<typeof AdminService>;
  query: GrpcClient<typeof QueryService>;
  /** Stops the server (the database stays until `dispose`). */
  stop(): Promise<void>;
  /** Stops the server and deletes its database. */
  dispose(): Promise<void>;
}

export interface TestServerOptions {
  /** The database of a stopped server, to restart on it (it is then not dropped by `dispose`). */
  database?: DatabaseTarget;
  /** Settings other than the test defaults (no tokens, silent logs). */
  config?: Partial<Config>;
  /** Sent with every call of the returned clients, e.g. an authorization header. */
  metadata?: Metadata;
}

/** Starts a server on an ephemeral port over a new (or the given) database. */
export async function startTestServer(options: TestServerOptions = {}): Promise<TestServer> {
  const created = options.database ? undefined : await createTestDatabase();
  const database = options.database ?? created!.target;
  const server = await startServer(
    {
      host: '127.0.0.1',
      port: 0,
      database,
      sqliteSynchronous: 'FULL',
      logLevel: 'silent',
      tokens: [],
      maxMessageBytes: 1024 * 1024,
      metrics: { host: '127.0.0.1', port: 0 },
      connections: DEFAULT_CONNECTION_LIMITS,
      ...options.config,
    },
    pino({ level: 'silent' }),
  );
  const address = `127.0.0.1:${server.port}`;
  const clients = {
    distribution: grpcClient(DistributionService, address, options.metadata),
    admin: grpcClient(AdminService, address, options.metadata),
    query: grpcClient(QueryService, address, options.metadata),
  };
  let stopped = false;
  const stop = async () => {
    if (stopped) return;
    stopped = true;
    for (const client of Object.values(clients)) client.close();
    await server.close();
  };
  return {
    address,
    database,
    server,
    ...clients,
    stop,
    async dispose() {
      await stop();
      await created?.drop();
    },
  };
}
