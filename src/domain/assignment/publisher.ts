import type { AssignmentFeed } from './feed.ts';
import type { Tx } from '../unit-of-work.ts';
import type { AssignmentEvent } from '../views.ts';

/** How committed assignments reach WatchAssignments streams. */
export interface AssignmentPublisher {
  /** Inside the transaction, once its work is done. */
  stage(tx: Tx, events: readonly AssignmentEvent[]): Promise<void>;
  /** After the transaction committed. */
  committed(events: readonly AssignmentEvent[]): void;
}

/** One process: publish to its own watchers after commit. */
export function localPublisher(feed: AssignmentFeed): AssignmentPublisher {
  return {
    stage: async () => undefined,
    committed: (events) => feed.publish(events),
  };
}
