// Assignments across replicas on PostgreSQL: each transaction NOTIFYs the
// ids of the assignments it recorded (delivered only if it commits, in commit
// order), and a replica LISTENs, to feed its own watchers, only while it has
// some: every notification it hears costs it a database read.
import pg from 'pg';
import type { Logger } from 'pino';
import type { RemoteAssignments } from '../domain/assignment/feed.ts';
import type { AssignmentPublisher } from '../domain/assignment/publisher.ts';
import { MAX_ROW_ID } from '../domain/entities.ts';
import { UnavailableError } from '../domain/errors.ts';

const CHANNEL = 'crm_assignments';
/** The listening session's name in pg_stat_activity: which sessions of the database listen, and for what. */
export const LISTENER_APPLICATION_NAME = 'crm-distributor assignment listener';
/** NOTIFY payloads must stay under 8,000 bytes: 400 ids of up to 16 digits. */
const IDS_PER_NOTIFY = 400;

export function notifyPublisher(): AssignmentPublisher {
  return {
    async stage(tx, events) {
      for (let i = 0; i < events.length; i += IDS_PER_NOTIFY) {
        await tx.execute('select pg_notify(?, ?)', [CHANNEL, JSON.stringify(events.slice(i, i + IDS_PER_NOTIFY).map((e) => e.assignmentId))]);
      }
    },
    committed: () => undefined,
  };
}

/**
 * Reads a payload as our transactions write it: a JSON array of assignment
 * ids. Any session of the database may NOTIFY on the channel: anything else
 * is not ours, and undefined.
 */
export function parseNotices(payload: string): number[] | undefined {
  let value: unknown;
  try {
    value = JSON.parse(payload);
  } catch {
    return undefined;
  }
  if (!Array.isArray(value) || !value.every((id) => Number.isInteger(id) && id > 0 && id <= MAX_ROW_ID)) return undefined;
  return value as number[];
}

export interface AssignmentHandlers {
  /** Ids of committed assignments, in commit order. */
  deliver(assignmentIds: number[]): void;
  /** The connection is gone: notifications sent from now until the listener is asked to hear again are never heard. */
  lost(reason: string): void;
}

export interface AssignmentListener extends RemoteAssignments {
  /** Ends every connection it opened, and refuses to hear from now on: the server is shutting down. */
  close(): Promise<void>;
}

/** One connection of the listener. */
interface Connection {
  /** Resolves once it listens; rejects with UnavailableError if it could not connect or listen. */
  listening: Promise<void>;
  /** Ignores its notifications from now on and closes it; resolves once it is closed. */
  drop(): Promise<void>;
}

/**
 * Listens on a connection of its own, opened by `hear()` when there is none
 * and closed by `stopHearing()`. Closed rather than UNLISTENed: a replica
 * without watchers then holds no connection at all, so there is no idle
 * connection whose loss needs handling, and hearing again takes one path
 * whether the last connection was closed or lost. When a listening connection
 * is lost, `lost` says so at once; no timer reopens it: the next `hear()` (a
 * new watcher) listens on a new one, or is refused.
 */
export function assignmentListener(url: string, log: Logger, handlers: AssignmentHandlers): AssignmentListener {
  /** The connection that listens or is about to: undefined while nobody needs one. */
  let current: Connection | undefined;
  /** Every connection not closed yet, the dropped ones included, for close() to wait for. */
  const connections = new Set<Connection>();
  let closed = false;
  let failing = false;
  let warnedForeign = false;

  const open = (): Connection => {
    const client = new pg.Client({ connectionString: url, connectionTimeoutMillis: 5_000, keepAlive: true, application_name: LISTENER_APPLICATION_NAME });
    const connected = (async () => {
      await client.connect();
      await client.query(`listen ${CHANNEL}`);
    })();
    let listened = false;
    let dropped: Promise<void> | undefined;
    const connection: Connection = {
      listening: connected.then(
        () => {
          listened = true;
          if (failing) log.info('assignment listener listening again');
          failing = false;
        },
        (error: unknown) => {
          const reason = `could not listen for assignments (${(error as Error).message})`;
          // Once per outage, not once per watcher: a long outage stays readable.
          if (!failing) log.warn({ reason }, 'assignment listener cannot listen; watchers get UNAVAILABLE until it can');
          failing = true;
          void connection.drop();
          throw new UnavailableError(reason);
        },
      ),
      drop() {
        if (current === connection) current = undefined;
        // Ended after connecting, never mid-handshake (which would leave connect() unsettled); a failed one is ended without waiting.
        dropped ??= connected
          .then(() => client.end(), () => void client.end().catch(() => undefined))
          .catch(() => undefined)
          .finally(() => connections.delete(connection));
        return dropped;
      },
    };
    connections.add(connection);

    const onGone = (reason: string) => {
      // Before it listens, a failure rejects `listening` instead; once dropped, its end is ours.
      if (!listened || dropped) return;
      void connection.drop();
      handlers.lost(reason);
    };
    client.on('notification', (message) => {
      // What a dropped connection still hears is for nobody: a new subscriber listens on a new connection, and hears each assignment once.
      if (dropped || message.channel !== CHANNEL || !message.payload) return;
      const notices = parseNotices(message.payload);
      if (notices) return handlers.deliver(notices);
      // Another program's message on our channel: not an assignment, nothing to relay.
      if (!warnedForeign) log.warn({ channel: CHANNEL }, 'ignoring a notification that is not ours (logged once)');
      warnedForeign = true;
    });
    client.on('error', (error) => onGone(`lost the assignment listener's database connection (${error.message})`));
    client.on('end', () => onGone("the assignment listener's database connection ended"));
    return connection;
  };

  return {
    hear() {
      if (closed) return Promise.reject(new UnavailableError('the server is shutting down'));
      current ??= open();
      return current.listening;
    },
    stopHearing() {
      void current?.drop();
    },
    async close() {
      closed = true;
      await Promise.all([...connections].map((connection) => connection.drop()));
    },
  };
}
