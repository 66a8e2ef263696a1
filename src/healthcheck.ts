// Container health probe: grpc.health.v1.Health/Check over the service port,
// exit 0 when SERVING. Uses the server's own Connect stack, no extra tools.
import { createClient } from '@connectrpc/connect';
import { createGrpcTransport } from '@connectrpc/connect-node';
import { Health, HealthCheckResponse_ServingStatus as ServingStatus } from '../gen/grpc/health/v1/health_pb.js';

const port = process.env.PORT ?? '50051';
const client = createClient(Health, createGrpcTransport({ baseUrl: `http://127.0.0.1:${port}` }));
try {
  const { status } = await client.check({ service: '' }, { timeoutMs: 2_000 });
  process.exit(status === ServingStatus.SERVING ? 0 : 1);
} catch {
  process.exit(1);
}
