import { UnavailableError } from '../errors.ts';
import type { AssignmentEvent } from '../views.ts';

export interface AssignmentFilter {
  operatorId?: number;
  sourceId?: number;
}

export interface FeedSubscriber {
  /** A committed assignment that matches the filter. */
  event(event: AssignmentEvent): void;
  /** The feed lost events (its source of them failed): this subscription is over. */
  interrupted(reason: string): void;
}

/**
 * In-process fan-out of committed assignments. Publishing never waits for a
 * subscriber: each one only queues the event, so slow or gone clients cannot
 * hold up an assignment. The feed never drops an event silently: when events
 * may have been lost (another replica's events could not be heard or read),
 * every subscription is interrupted, and while they cannot be heard at all,
 * new subscriptions are refused.
 */
export class AssignmentFeed {
  readonly #subscribers = new Set<{ filter: AssignmentFilter; subscriber: FeedSubscriber }>();
  #unavailable: string | undefined;

  /** Returns the unsubscribe function; throws UnavailableError while events cannot be heard. */
  subscribe(filter: AssignmentFilter, subscriber: FeedSubscriber): () => void {
    if (this.#unavailable !== undefined) throw new UnavailableError(this.#unavailable);
    const entry = { filter, subscriber };
    this.#subscribers.add(entry);
    return () => this.#subscribers.delete(entry);
  }

  get subscriberCount(): number {
    return this.#subscribers.size;
  }

  publish(events: readonly AssignmentEvent[]): void {
    for (const event of events) {
      for (const { filter, subscriber } of this.#subscribers) {
        if (matches(filter, event)) subscriber.event(event);
      }
    }
  }

  /** Ends every current subscription: events may have been missed since the last one published. */
  interrupt(reason: string): void {
    const subscribers = [...this.#subscribers];
    this.#subscribers.clear();
    for (const { subscriber } of subscribers) subscriber.interrupted(reason);
  }

  /** Refuses new subscriptions with `reason` until called with undefined. */
  setUnavailable(reason: string | undefined): void {
    this.#unavailable = reason;
  }
}

function matches(filter: AssignmentFilter, event: AssignmentEvent): boolean {
  const { contact } = event;
  if (filter.sourceId !== undefined && contact.source.id !== filter.sourceId) return false;
  // An operator hears of contacts it gets and of contacts taken from it.
  if (filter.operatorId !== undefined && contact.operator?.id !== filter.operatorId && event.previousOperatorId !== filter.operatorId) return false;
  return true;
}
