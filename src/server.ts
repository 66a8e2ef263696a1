// Wires storage, domain and transport into one server that speaks gRPC,
// gRPC-Web and Connect on one port (HTTP/2 and HTTP/1.1, cleartext or TLS).
import type { AddressInfo } from 'node:net';
import type { Logger } from 'pino';
import { HealthCheckResponse_ServingStatus as ServingStatus } from '../gen/grpc/health/v1/health_pb.js';
import type { Config } from './config.ts';
import { createMetrics, serveMetrics, type Metrics, type MetricsServer } from './metrics.ts';
import { Admin } from './domain/admin.ts';
import { AssignmentFeed } from './domain/assignment/feed.ts';
import { localPublisher } from './domain/assignment/publisher.ts';
import { AcceptDeadlines } from './domain/contacts/accept-deadlines.ts';
import { ContactLifecycle } from './domain/contacts/lifecycle.ts';
import { Transfers } from './domain/contacts/transfer.ts';
import { StorageFullError, UnavailableError } from './domain/errors.ts';
import { findAssignmentEvents } from './domain/assignment/history.ts';
import { reconcileLoads } from './domain/integrity.ts';
import { Registrations } from './domain/contacts/registration.ts';
import { Queries } from './domain/queries.ts';
import { UnitOfWork } from './domain/unit-of-work.ts';
import { assignmentListener, notifyPublisher, type AssignmentHandlers } from './storage/assignment-channel.ts';
import { DatabaseHealth } from './storage/database-health.ts';
import { openDatabase } from './storage/orm.ts';
import { nodeHandler } from './transport/adapter.ts';
import { authInterceptor, isLoopbackHost } from './transport/interceptors/auth.ts';
import { errorInterceptor } from './transport/interceptors/errors.ts';
import { HealthStatus } from './transport/services/health.ts';
import { createServicePort } from './transport/service-port.ts';
import { observeCalls } from './transport/interceptors/observability.ts';
import { validationInterceptor } from './transport/interceptors/validation.ts';
import { routes, SERVICES } from './transport/services/routes.ts';

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
  const database = await openDatabase(config.database, { synchronous: config.sqliteSynchronous });
  const health = new HealthStatus(SERVICES.map((service) => service.typeName));
  let listening = false;
  const databaseHealth = new DatabaseHealth({
    probe: database.probe,
    changed(reachable, error) {
      if (reachable) log.info('the database answers again');
      else log.error({ reason: error instanceof Error ? error.message : String(error) }, 'the database cannot be reached; calls get UNAVAILABLE until it answers');
      if (listening) health.setAll(reachable ? ServingStatus.SERVING : ServingStatus.NOT_SERVING);
    },
  });
  const feed = new AssignmentFeed();
  const uow = new UnitOfWork(
    database.orm,
    config.database.kind === 'postgresql' ? notifyPublisher() : localPublisher(feed),
    { unreachable: (error) => databaseHealth.suspect(error), concurrency: database.connections },
  );
  const queries = new Queries(uow);
  const metrics = createMetrics(queries);
  // Several replicas may share a PostgreSQL database: watchers hear of every replica's assignments, which this replica listens for only while it has watchers.
  const listener = config.database.kind === 'postgresql' ? assignmentListener(config.database.url, log, feedFromNotices(uow, feed, metrics, log)) : undefined;
  if (listener) feed.hearFrom(listener);
  const registrations = new Registrations(uow, {
    isolateExclusiveSources: config.database.kind === 'postgresql',
    observer: {
      committed: (size) => metrics.batchSize.observe(size),
      split: (size, error) => log.warn({ err: error, size }, 'registration batch failed as a whole; retrying its calls one by one'),
    },
  });
  const domain = { registrations, lifecycle: new ContactLifecycle(uow), transfers: new Transfers(uow), admin: new Admin(uow), queries, feed };
  for (const repair of await reconcileLoads(uow)) log.warn(repair, 'repaired an operator load that did not match its open contacts');
  const shutdown = new AbortController();
  const handler = nodeHandler({
    routes: routes(domain, health, metrics, shutdown.signal),
    // Outermost first: observe the final status, then authenticate, then map domain errors, then check the request against its rules.
    interceptors: [observeCalls(log, metrics), ...(config.tokens.length > 0 ? [authInterceptor(config.tokens)] : []), errorInterceptor(log), validationInterceptor()],
    readMaxBytes: config.maxMessageBytes,
  });
  const { server, closeConnections, destroyConnections } = createServicePort(handler, config.connections, (path) => !STREAMING_REQUESTS.has(path), config.tls);
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(config.port, config.host, () => {
      server.off('error', reject);
      resolve();
    });
  });
  const { port } = server.address() as AddressInfo;
  const metricsServer: MetricsServer | null = config.metrics && (await serveMetrics(metrics.registry, config.metrics.host, config.metrics.port));
  listening = true;
  health.setAll(databaseHealth.reachable ? ServingStatus.SERVING : ServingStatus.NOT_SERVING);
  databaseHealth.start();
  // At once, then on a timer: deadlines that passed while the service was down are honoured now.
  const stopDeadlines = watchAcceptDeadlines(new AcceptDeadlines(uow), log);
  if (config.tokens.length === 0) log.warn({ host: config.host }, 'no CRM_TOKENS configured: every call is allowed (loopback host only)');
  if (!config.tls && !isLoopbackHost(config.host)) {
    log.warn({ host: config.host }, 'no TLS on a host reachable from other machines: bearer tokens travel in cleartext (set TLS_CERT_FILE and TLS_KEY_FILE)');
  }
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
        databaseHealth.stop();
        health.setAll(ServingStatus.NOT_SERVING);
        shutdown.abort();
        await stopDeadlines();
        const closed = new Promise<void>((resolve) => server.close(() => resolve()));
        // Ask every client to finish: each connection closes when its calls are done (GOAWAY on HTTP/2).
        closeConnections();
        const cut = setTimeout(destroyConnections, DRAIN_MS);
        await closed;
        clearTimeout(cut);
        await metricsServer?.close();
        await listener?.close();
        await database.close();
        log.info('stopped');
      })();
      return closing;
    },
  };
}

/** How often contacts past their accept deadline are looked for: they move at most this long (plus the move) after it. */
const ACCEPT_CHECK_MS = 500;

/**
 * Moves contacts past their accept deadline now and every ACCEPT_CHECK_MS, one
 * pass at a time. Returns the function that stops it, waiting for a pass in progress.
 */
function watchAcceptDeadlines(deadlines: AcceptDeadlines, log: Logger): () => Promise<void> {
  let pass: Promise<void> | undefined;
  const run = () => {
    pass ??= deadlines.moveDue().then(
      () => undefined,
      (error: unknown) => {
        // An outage is the health check's to report; anything else is a bug.
        if (!(error instanceof UnavailableError || error instanceof StorageFullError)) log.error({ err: error }, 'could not move contacts past their accept deadline');
      },
    ).finally(() => (pass = undefined));
  };
  run();
  const timer = setInterval(run, ACCEPT_CHECK_MS);
  return async () => {
    clearInterval(timer);
    await pass;
  };
}

/** Client and bidi streams: their requests come at the client's pace, so no request timeout applies. */
const STREAMING_REQUESTS = new Set(SERVICES.flatMap((service) => service.methods
  .filter((method) => method.methodKind === 'client_streaming' || method.methodKind === 'bidi_streaming')
  .map((method) => `/${service.typeName}/${method.name}`)));

/**
 * Feeds this replica's watchers from the assignment channel, in commit order.
 * When the channel is lost its notifications are lost too, so the watchers are
 * ended (after what was heard before): the next one listens again.
 */
function feedFromNotices(uow: UnitOfWork, feed: AssignmentFeed, metrics: Metrics, log: Logger): AssignmentHandlers {
  let relaying = Promise.resolve();
  const then = (step: () => void | Promise<void>) => {
    relaying = relaying.then(step);
  };
  return {
    deliver: (assignmentIds) => then(() => relayAssignments(uow, feed, metrics, assignmentIds, log)),
    lost(reason) {
      log.warn({ reason }, 'assignment listener lost; ending watch streams (the next one listens again)');
      then(() => feed.interrupt(reason));
    },
  };
}

/** Loads the assignments another transaction (of any replica) recorded and hands them to this replica's watchers. */
async function relayAssignments(uow: UnitOfWork, feed: AssignmentFeed, metrics: Metrics, assignmentIds: readonly number[], log: Logger): Promise<void> {
  // Heard before the last watcher left: there is nobody to read them for.
  if (feed.subscriberCount === 0) return;
  try {
    // In a unit of work, where the hot path's prepared statements run.
    const events = await uow.run((tx) => findAssignmentEvents(tx, assignmentIds));
    metrics.relayedAssignments.inc(events.length);
    feed.publish(events);
  } catch (error) {
    // Never a silent gap: the watchers are told, and resubscribe.
    log.warn({ reason: error instanceof Error ? error.message : String(error) }, 'could not read assignments to relay; ending watch streams');
    feed.interrupt('could not read the latest assignments');
  }
}
