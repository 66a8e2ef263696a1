// Assignments across replicas on PostgreSQL: each transaction NOTIFYs the ids
// it assigned (delivered only if it commits, in commit order), and every
// replica LISTENs and feeds its own watchers.
import pg from 'pg';
import type { Logger } from 'pino';
import type { AssignmentPublisher } from '../domain/assignment-publisher.ts';

const CHANNEL = 'crm_assignments';
/** NOTIFY payloads must stay under 8,000 bytes. */
const IDS_PER_NOTIFY = 400;

export interface AssignmentNotice {
  contactId: number;
  fromQueue: boolean;
}

export function notifyPublisher(): AssignmentPublisher {
  return {
    async stage(tx, events) {
      for (let i = 0; i < events.length; i += IDS_PER_NOTIFY) {
        const notices = events.slice(i, i + IDS_PER_NOTIFY).map((e) => [e.contact.id, e.fromQueue ? 1 : 0]);
        await tx.execute('select pg_notify(?, ?)', [CHANNEL, JSON.stringify(notices)]);
      }
    },
    committed: () => undefined,
  };
}

export interface AssignmentListener {
  close(): Promise<void>;
}

/** Listens on a connection of its own, reconnecting if it drops. */
export async function listenForAssignments(url: string, log: Logger, deliver: (notices: AssignmentNotice[]) => void): Promise<AssignmentListener> {
  let client: pg.Client | undefined;
  let closed = false;
  const reconnectSoon = () => {
    if (closed) return;
    setTimeout(() => {
      connect().catch((error: unknown) => {
        log.error({ err: error }, 'assignment listener could not reconnect; trying again');
        reconnectSoon();
      });
    }, 1_000);
  };
  const connect = async (): Promise<void> => {
    const next = new pg.Client({ connectionString: url });
    next.on('notification', (message) => {
      if (message.channel !== CHANNEL || !message.payload) return;
      const notices = (JSON.parse(message.payload) as [number, number][]).map(([contactId, fromQueue]) => ({ contactId, fromQueue: fromQueue === 1 }));
      deliver(notices);
    });
    next.on('error', (error) => {
      log.error({ err: error }, 'assignment listener lost its connection; reconnecting');
      void next.end().catch(() => undefined);
      reconnectSoon();
    });
    await next.connect();
    await next.query(`listen ${CHANNEL}`);
    client = next;
  };
  await connect();
  return {
    async close() {
      closed = true;
      await client?.end();
    },
  };
}
