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

interface Subscription {
  filter: AssignmentFilter;
  subscriber: FeedSubscriber;
}

/**
 * Where a feed hears of the assignments other processes (other replicas)
 * commit. Hearing them costs this process a database read per commit, so the
 * feed hears them only while it has subscribers.
 */
export interface RemoteAssignments {
  /**
   * Resolves once every assignment committed from now on will be published;
   * rejects with UnavailableError when they cannot be heard. Called for each
   * new subscription, so it resolves at once when they are heard already.
   */
  hear(): Promise<void>;
  /** The feed has no subscriber left: nothing needs to be heard until `hear` is called again. */
  stopHearing(): void;
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
  readonly #subscribers = new Set<Subscription>();
  #remote: RemoteAssignments | undefined;

  /** Hears other processes' assignments from `remote`, while somebody subscribes. */
  hearFrom(remote: RemoteAssignments): void {
    this.#remote = remote;
  }

  /**
   * Resolves with the unsubscribe function once every assignment committed
   * from then on reaches the subscriber (some committed a little earlier may
   * too). Rejects with UnavailableError when they cannot be heard.
   */
  async subscribe(filter: AssignmentFilter, subscriber: FeedSubscriber): Promise<() => void> {
    const entry: Subscription = { filter, subscriber };
    // Counted while it waits to be heard: the last other subscriber leaving meanwhile must not stop the hearing it waits for.
    this.#subscribers.add(entry);
    try {
      await this.#remote?.hear();
    } catch (error) {
      this.#unsubscribe(entry);
      throw error;
    }
    return () => this.#unsubscribe(entry);
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
    this.#remote?.stopHearing();
    for (const { subscriber } of subscribers) subscriber.interrupted(reason);
  }

  #unsubscribe(entry: Subscription): void {
    if (this.#subscribers.delete(entry) && this.#subscribers.size === 0) this.#remote?.stopHearing();
  }
}

function matches(filter: AssignmentFilter, event: AssignmentEvent): boolean {
  const { contact } = event;
  if (filter.sourceId !== undefined && contact.source.id !== filter.sourceId) return false;
  // An operator hears of contacts it gets and of contacts taken from it.
  if (filter.operatorId !== undefined && contact.operator?.id !== filter.operatorId && event.previousOperatorId !== filter.operatorId) return false;
  return true;
}
