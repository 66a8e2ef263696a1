// Assignments across replicas on PostgreSQL: each transaction NOTIFYs the
// ids of the assignments it recorded (delivered only if it commits, in commit
// order), and every replica LISTENs and feeds its own watchers.
import pg from 'pg';
import type { Logger } from 'pino';
import type { AssignmentPublisher } from '../domain/assignment/publisher.ts';

const CHANNEL = 'crm_assignments';
/** NOTIFY payloads must stay under 8,000 bytes: 400 ids of up to 16 digits. */
const IDS_PER_NOTIFY = 400;
/** Assignment ids are PostgreSQL `serial`s: a larger number is not one of ours (and would fail the query that relays it). */
const MAX_SERIAL = 2 ** 31 - 1;
/** Between attempts to listen again after the connection was lost. */
const RECONNECT_MS = 1_000;

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
  if (!Array.isArray(value) || !value.every((id) => Number.isInteger(id) && id > 0 && id <= MAX_SERIAL)) return undefined;
  return value as number[];
}

export interface AssignmentHandlers {
  /** Ids of committed assignments, in commit order. */
  deliver(assignmentIds: number[]): void;
  /** The connection is gone: notifications sent from now until `listening` are never heard. */
  lost(reason: string): void;
  /** Listening (again): every notification from now on is heard. */
  listening(): void;
}

export interface AssignmentListener {
  close(): Promise<void>;
}

/**
 * Listens on a connection of its own, and when that connection is lost
 * (terminated, the database restarted, the network gone), says so at once and
 * connects again every RECONNECT_MS until it listens again.
 */
export async function listenForAssignments(url: string, log: Logger, handlers: AssignmentHandlers): Promise<AssignmentListener> {
  let client: pg.Client | undefined;
  let closed = false;
  let retry: NodeJS.Timeout | undefined;
  let warnedForeign = false;

  const connect = async (): Promise<void> => {
    const next = new pg.Client({ connectionString: url, connectionTimeoutMillis: 5_000, keepAlive: true });
    let ready = false;
    let gone = false;
    const onGone = (reason: string) => {
      // Before it listens, a failure rejects connect() instead.
      if (!ready || gone) return;
      gone = true;
      if (client === next) client = undefined;
      void next.end().catch(() => undefined);
      if (closed) return;
      handlers.lost(reason);
      scheduleReconnect();
    };
    next.on('notification', (message) => {
      if (message.channel !== CHANNEL || !message.payload) return;
      const notices = parseNotices(message.payload);
      if (notices) return handlers.deliver(notices);
      // Another program's message on our channel: not an assignment, nothing to relay.
      if (!warnedForeign) log.warn({ channel: CHANNEL }, 'ignoring a notification that is not ours (logged once)');
      warnedForeign = true;
    });
    next.on('error', (error) => onGone(`lost the assignment listener's database connection (${error.message})`));
    next.on('end', () => onGone("the assignment listener's database connection ended"));
    try {
      await next.connect();
      await next.query(`listen ${CHANNEL}`);
    } catch (error) {
      void next.end().catch(() => undefined);
      throw error;
    }
    if (closed) {
      await next.end();
      return;
    }
    client = next;
    ready = true;
    handlers.listening();
  };

  let failedAttempts = 0;
  const scheduleReconnect = () => {
    clearTimeout(retry);
    retry = setTimeout(() => {
      connect().then(
        () => {
          if (failedAttempts > 0) log.info({ failedAttempts }, 'assignment listener listening again');
          failedAttempts = 0;
        },
        (error: unknown) => {
          // Once per outage, not once a second: a long outage stays readable.
          if (failedAttempts === 0) log.warn({ reason: (error as Error).message }, `assignment listener could not reconnect yet; trying every ${RECONNECT_MS} ms`);
          failedAttempts += 1;
          scheduleReconnect();
        },
      );
    }, RECONNECT_MS);
  };

  await connect();
  return {
    async close() {
      closed = true;
      clearTimeout(retry);
      await client?.end();
    },
  };
}
