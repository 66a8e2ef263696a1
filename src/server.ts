// Wires storage, domain and transport into one HTTP/2 server that speaks gRPC,
// gRPC-Web and Connect on one port.
import http2 from 'node:http2';
import type { AddressInfo } from 'node:net';
import type { Logger } from 'pino';
import { HealthCheckResponse_ServingStatus as ServingStatus } from '../gen/grpc/health/v1/health_pb.js';
import type { Config } from './config.ts';
import { createMetrics, serveMetrics, type MetricsServer } from './metrics.ts';
import { Admin } from './domain/admin.ts';
import { AssignmentFeed } from './domain/assignment-feed.ts';
import { localPublisher } from './domain/assignment-publisher.ts';
import { ContactLifecycle } from './domain/contact-lifecycle.ts';
import { findContactViews } from './domain/contact-views.ts';
import { reconcileLoads } from './domain/integrity.ts';
import { Registrations } from './domain/registration.ts';
import { Queries } from './domain/queries.ts';
import { UnitOfWork } from './domain/unit-of-work.ts';
import { listenForAssignments, notifyPublisher, type AssignmentNotice } from './storage/assignment-channel.ts';
import { openDatabase } from './storage/orm.ts';
import { nodeHandler } from './transport/adapter.ts';
import { authInterceptor } from './transport/auth.ts';
import { errorInterceptor } from './transport/errors.ts';
import { HealthStatus } from './transport/health.ts';
import { observeCalls } from './transport/observability.ts';
import { routes, SERVICES } from './transport/routes.ts';

/** How long calls in flight may take to finish at shutdown before their connections are cut. */
const DRAIN_MS = 8_000;

export interface RunningServer {
  port: number;
  /** Port of the Prometheus endpoint, if it is on. */
  metricsPort: number | null;
  /** Stops accepting calls, lets calls in flight finish, ends streams, closes the database. */
  close(): Promise<void>;
}

export async function startServer(config: Config, log: Logger): Promise<RunningServer> {
  const orm = await openDatabase(config.database, { synchronous: config.sqliteSynchronous });
  const feed = new AssignmentFeed();
  let relaying = Promise.resolve();
  const uow = new UnitOfWork(orm, config.database.kind === 'postgresql' ? notifyPublisher() : localPublisher(feed));
  // Several replicas may share a PostgreSQL database: watchers hear of every replica's assignments.
  const listener = config.database.kind === 'postgresql'
    ? await listenForAssignments(config.database.url, log, (notices) => {
      // One after another, so watchers see assignments in commit order.
      relaying = relaying.then(() => relayAssignments(uow, feed, notices, log));
    })
    : undefined;
  const queries = new Queries(uow);
  const metrics = createMetrics(queries);
  const registrations = new Registrations(uow, {
    observer: {
      committed: (size) => metrics.batchSize.observe(size),
      split: (size, error) => log.warn({ err: error, size }, 'registration batch failed as a whole; retrying its calls one by one'),
    },
  });
  const domain = { registrations, lifecycle: new ContactLifecycle(uow), admin: new Admin(uow), queries, feed };
  for (const repair of await reconcileLoads(uow)) log.warn(repair, 'repaired an operator load that did not match its open contacts');
  const shutdown = new AbortController();
  const health = new HealthStatus(SERVICES.map((service) => service.typeName));
  const handler = nodeHandler({
    routes: routes(domain, health, metrics, shutdown.signal),
    // Outermost first: observe the final status, then authenticate, then map domain errors.
    interceptors: [observeCalls(log, metrics), ...(config.tokens.length > 0 ? [authInterceptor(config.tokens)] : []), errorInterceptor(log)],
    readMaxBytes: config.maxMessageBytes,
  });
  const server = http2.createServer(handler);
  const sessions = new Set<http2.ServerHttp2Session>();
  server.on('session', (session) => {
    sessions.add(session);
    session.once('close', () => sessions.delete(session));
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(config.port, config.host, () => {
      server.off('error', reject);
      resolve();
    });
  });
  const { port } = server.address() as AddressInfo;
  const metricsServer: MetricsServer | null = config.metrics && (await serveMetrics(metrics.registry, config.metrics.host, config.metrics.port));
  health.setAll(ServingStatus.SERVING);
  if (config.tokens.length === 0) log.warn({ host: config.host }, 'no CRM_TOKENS configured: every call is allowed (loopback host only)');
  log.info(
    { host: config.host, port, metricsPort: metricsServer?.port ?? null, database: config.database.kind },
    `listening on ${config.host}:${port}`,
  );

  let closing: Promise<void> | undefined;
  return {
    port,
    metricsPort: metricsServer?.port ?? null,
    close() {
      closing ??= (async () => {
        // Health first, while calls are still accepted: watchers see NOT_SERVING before their streams end.
        health.setAll(ServingStatus.NOT_SERVING);
        shutdown.abort();
        const closed = new Promise<void>((resolve) => server.close(() => resolve()));
        // Ask every client to finish: GOAWAY, then each session closes when its streams are done.
        for (const session of sessions) session.close();
        const cut = setTimeout(() => sessions.forEach((session) => session.destroy()), DRAIN_MS);
        await closed;
        clearTimeout(cut);
        await metricsServer?.close();
        await listener?.close();
        await orm.close();
        log.info('stopped');
      })();
      return closing;
    },
  };
}

/** Loads the contacts another transaction (of any replica) assigned and hands them to this replica's watchers. */
async function relayAssignments(uow: UnitOfWork, feed: AssignmentFeed, notices: readonly AssignmentNotice[], log: Logger): Promise<void> {
  try {
    const contacts = await findContactViews(uow.reader(), { id: { $in: notices.map((n) => n.contactId) } });
    const byId = new Map(contacts.map((c) => [c.id, c]));
    feed.publish(notices.flatMap((n) => {
      const contact = byId.get(n.contactId);
      return contact ? [{ contact, fromQueue: n.fromQueue }] : [];
    }));
  } catch (error) {
    log.error({ err: error }, 'could not relay assignments to watchers');
  }
}
