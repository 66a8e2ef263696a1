// Container health probe: grpc.health.v1.Health/Check over the service port,
// exit 0 when SERVING. Uses the server's own Connect stack, no extra tools.
// With TLS it speaks TLS to itself over loopback: the certificate names the
// service's public host, not 127.0.0.1, so it is not verified here; with
// TLS_CLIENT_CA_FILE it presents the server's own certificate, which the
// client CA must therefore have signed (or the probe reports unhealthy).
import { readFileSync } from 'node:fs';
import { createClient } from '@connectrpc/connect';
import { createGrpcTransport } from '@connectrpc/connect-node';
import { Health, HealthCheckResponse_ServingStatus as ServingStatus } from '../gen/grpc/health/v1/health_pb.js';

const port = process.env.PORT ?? '50051';
const tls = process.env.TLS_CERT_FILE && process.env.TLS_KEY_FILE
  ? { rejectUnauthorized: false, cert: readFileSync(process.env.TLS_CERT_FILE), key: readFileSync(process.env.TLS_KEY_FILE) }
  : undefined;
const client = createClient(Health, createGrpcTransport({ baseUrl: `${tls ? 'https' : 'http'}://127.0.0.1:${port}`, ...(tls ? { nodeOptions: tls } : {}) }));
try {
  const { status } = await client.check({ service: '' }, { timeoutMs: 2_000 });
  process.exit(status === ServingStatus.SERVING ? 0 : 1);
} catch {
  process.exit(1);
}
