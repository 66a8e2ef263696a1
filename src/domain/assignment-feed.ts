import type { AssignmentEvent } from './views.ts';

export interface AssignmentFilter {
  operatorId?: number;
  sourceId?: number;
}

type Listener = (event: AssignmentEvent) => void;

/**
 * In-process fan-out of committed assignments. Publishing never waits for a
 * subscriber: each listener only queues the event, so slow or gone clients
 * cannot hold up an assignment.
 */
export class AssignmentFeed {
  readonly #listeners = new Set<{ filter: AssignmentFilter; listener: Listener }>();

  /** Returns the unsubscribe function. */
  subscribe(filter: AssignmentFilter, listener: Listener): () => void {
    const entry = { filter, listener };
    this.#listeners.add(entry);
    return () => this.#listeners.delete(entry);
  }

  get subscriberCount(): number {
    return this.#listeners.size;
  }

  publish(events: readonly AssignmentEvent[]): void {
    for (const event of events) {
      for (const { filter, listener } of this.#listeners) {
        if (matches(filter, event)) listener(event);
      }
    }
  }
}

function matches(filter: AssignmentFilter, event: AssignmentEvent): boolean {
  const { contact } = event;
  if (filter.sourceId !== undefined && contact.source.id !== filter.sourceId) return false;
  if (filter.operatorId !== undefined && contact.operator?.id !== filter.operatorId) return false;
  return true;
}
