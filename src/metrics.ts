// Prometheus metrics, served on their own port (METRICS_PORT) so that scraping
// needs no gRPC and no token.
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { Counter, Gauge, Histogram, Registry } from 'prom-client';

export interface Metrics {
  registry: Registry;
  calls: Counter<'method' | 'code'>;
  duration: Histogram<'method'>;
  registered: Counter<'source_id' | 'outcome'>;
  batchSize: Histogram<never>;
  relayedAssignments: Counter<never>;
}

/** Figures read from the database at scrape time: always current, never double-counted. */
export interface LiveFigures {
  queueLength(): Promise<number>;
  operatorLoads(): Promise<OperatorLoad[]>;
}

export interface OperatorLoad {
  operatorId: number;
  name: string;
  openLoad: number;
  maxLoad: number;
}

export function createMetrics(live: LiveFigures): Metrics {
  const registry = new Registry();
  const calls = new Counter({ name: 'crm_rpc_calls_total', help: 'RPCs handled, by method and gRPC status code', labelNames: ['method', 'code'] as const, registers: [registry] });
  const duration = new Histogram({
    name: 'crm_rpc_duration_seconds',
    help: 'RPC duration (server streams: until they end)',
    labelNames: ['method'] as const,
    buckets: [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5],
    registers: [registry],
  });
  const registered = new Counter({
    name: 'crm_contacts_registered_total',
    help: 'Contacts registered (not replays), by source and assignment outcome',
    labelNames: ['source_id', 'outcome'] as const,
    registers: [registry],
  });
  new Gauge({
    name: 'crm_queue_length',
    help: 'Contacts waiting in the queue',
    registers: [registry],
    async collect() {
      this.set(await live.queueLength());
    },
  });
  const batchSize = new Histogram({
    name: 'crm_registration_batch_size',
    help: 'RegisterContact calls committed together in one transaction',
    buckets: [1, 2, 4, 8, 16, 32, 64, 128, 256],
    registers: [registry],
  });
  const relayedAssignments = new Counter({
    name: 'crm_assignments_relayed_total',
    help: "PostgreSQL: assignments (this replica's and others') read back from the database for this replica's WatchAssignments streams, which happens only while it has some",
    registers: [registry],
  });
  operatorGauge('crm_operator_open_load', 'Open contacts (NEW, IN_PROGRESS) per operator', (o) => o.openLoad);
  operatorGauge('crm_operator_max_load', 'max_load per operator', (o) => o.maxLoad);
  return { registry, calls, duration, registered, batchSize, relayedAssignments };

  function operatorGauge(name: string, help: string, value: (o: OperatorLoad) => number): void {
    new Gauge({
      name,
      help,
      labelNames: ['operator_id', 'operator'] as const,
      registers: [registry],
      async collect() {
        this.reset();
        for (const o of await live.operatorLoads()) this.set({ operator_id: String(o.operatorId), operator: o.name }, value(o));
      },
    });
  }
}

export interface MetricsServer {
  port: number;
  close(): Promise<void>;
}

export async function serveMetrics(registry: Registry, host: string, port: number): Promise<MetricsServer> {
  const server = http.createServer((req, res) => {
    if (req.url !== '/metrics') {
      res.writeHead(404).end();
      return;
    }
    registry.metrics().then(
      (body) => res.writeHead(200, { 'content-type': registry.contentType }).end(body),
      () => res.writeHead(500).end(),
    );
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, host, () => resolve());
  });
  return {
    port: (server.address() as AddressInfo).port,
    close: () => new Promise((resolve) => server.close(() => resolve())),
  };
}
