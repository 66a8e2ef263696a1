// grpc.health.v1.Health (https://github.com/grpc/grpc/blob/master/doc/health-checking.md):
// load balancers and orchestrators ask it whether to send traffic here.
import { Code, ConnectError, type ServiceImpl } from '@connectrpc/connect';
import { Health, HealthCheckResponse_ServingStatus as ServingStatus } from '../../../gen/grpc/health/v1/health_pb.js';

type Status = ServingStatus.SERVING | ServingStatus.NOT_SERVING;

/** The serving status of the whole server ("") and of each service it exposes. */
export class HealthStatus {
  readonly #statuses = new Map<string, Status>();
  readonly #listeners = new Set<() => void>();

  /** Every name starts NOT_SERVING: the server is not ready until it says so. */
  constructor(services: Iterable<string>) {
    for (const service of ['', ...services]) this.#statuses.set(service, ServingStatus.NOT_SERVING);
  }

  /** Sets one name's status, adding the name if it is new. */
  set(service: string, status: Status): void {
    if (this.#statuses.get(service) === status) return;
    this.#statuses.set(service, status);
    for (const listener of this.#listeners) listener();
  }

  setAll(status: Status): void {
    for (const service of this.#statuses.keys()) this.set(service, status);
  }

  /** Undefined for a name the server does not know. */
  get(service: string): Status | undefined {
    return this.#statuses.get(service);
  }

  entries(): IterableIterator<[string, Status]> {
    return this.#statuses.entries();
  }

  /** Calls `listener` after every change; returns the unsubscribe function. */
  subscribe(listener: () => void): () => void {
    this.#listeners.add(listener);
    return () => this.#listeners.delete(listener);
  }
}

export function healthService(health: HealthStatus, shutdown: AbortSignal): ServiceImpl<typeof Health> {
  return {
    check({ service }) {
      const status = health.get(service);
      if (status === undefined) throw new ConnectError(`unknown service ${JSON.stringify(service)}`, Code.NotFound);
      return { status };
    },

    list() {
      return { statuses: Object.fromEntries([...health.entries()].map(([service, status]) => [service, { status }])) };
    },

    async *watch({ service }, context) {
      const signal = AbortSignal.any([context.signal, shutdown]);
      let wake: (() => void) | undefined;
      const onChange = () => wake?.();
      const unsubscribe = health.subscribe(onChange);
      signal.addEventListener('abort', onChange);
      try {
        let sent: ServingStatus | undefined;
        for (;;) {
          // An unknown name is not an error here: it may become known later.
          const status = health.get(service) ?? ServingStatus.SERVICE_UNKNOWN;
          if (status !== sent) {
            sent = status;
            yield { status };
            // Changes made while the client was taking that one are read again first.
            continue;
          }
          // Shutdown first turns everything NOT_SERVING, which is sent above before the stream ends (OK);
          // a stream its client ended (Ctrl-C on grpcurl, a deadline) ends as CANCELLED or DEADLINE_EXCEEDED.
          if (signal.aborted) {
            context.signal.throwIfAborted();
            return;
          }
          await new Promise<void>((resolve) => {
            wake = resolve;
          });
        }
      } finally {
        unsubscribe();
        signal.removeEventListener('abort', onChange);
      }
    },
  };
}
