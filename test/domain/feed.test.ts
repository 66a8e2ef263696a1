import { describe, it, expect } from 'vitest';
import { AssignmentFeed, type FeedSubscriber, type RemoteAssignments } from '../../src/domain/assignment/feed.ts';
import { UnavailableError } from '../../src/domain/errors.ts';
import type { AssignmentEvent } from '../../src/domain/views.ts';

let nextId = 1;
function event(operatorId: number | null, sourceId: number, fromQueue = false, previousOperatorId: number | null = null): AssignmentEvent {
  const id = nextId++;
  return {
    assignmentId: id,
    contact: {
      id,
      lead: { id: 100 + id, externalId: `ext-${id}`, name: `Lead ${id}` },
      source: { id: sourceId, name: `Source ${sourceId}`, code: `s${sourceId}` },
      operator: operatorId === null ? null : { id: operatorId, name: `Operator ${operatorId}` },
      status: 'NEW',
      message: `hello ${id}`,
      requestId: null,
      createdAt: new Date(0),
      assignedAt: operatorId === null ? null : new Date(0),
      closedAt: null,
      priority: 'NORMAL',
    },
    fromQueue,
    reason: previousOperatorId === null ? (fromQueue ? 'QUEUE' : 'NEW_CONTACT') : 'TRANSFER',
    previousOperatorId,
  };
}

/** A subscriber that only takes events. */
function on(event: (e: AssignmentEvent) => void): FeedSubscriber {
  return { event, interrupted: () => undefined };
}

async function collect(feed: AssignmentFeed, filter: { operatorId?: number; sourceId?: number }) {
  const received: AssignmentEvent[] = [];
  const interruptions: string[] = [];
  const unsubscribe = await feed.subscribe(filter, { event: (e) => received.push(e), interrupted: (reason) => interruptions.push(reason) });
  return { received, interruptions, unsubscribe };
}

describe('AssignmentFeed', () => {
  // a grid of events: operators 1, 2 x sources 10, 20, published in one batch
  const e1s10 = event(1, 10);
  const e2s10 = event(2, 10, true);
  const e1s20 = event(1, 20);
  const e2s20 = event(2, 20, true);
  const grid = [e1s10, e2s10, e1s20, e2s20];

  it('starts with no subscribers; publishing to nobody is fine', async () => {
    const feed = new AssignmentFeed();
    expect(feed.subscriberCount).toBe(0);
    expect(() => feed.publish(grid)).not.toThrow();
  });

  it('an empty filter receives every event, in order, as the same objects', async () => {
    const feed = new AssignmentFeed();
    const all = await collect(feed, {});
    feed.publish(grid);
    expect(all.received).toEqual(grid);
    all.received.forEach((e, i) => expect(e).toBe(grid[i]));
  });

  it('filters by operator', async () => {
    const feed = new AssignmentFeed();
    const op1 = await collect(feed, { operatorId: 1 });
    const op2 = await collect(feed, { operatorId: 2 });
    const op3 = await collect(feed, { operatorId: 3 });
    feed.publish(grid);
    expect(op1.received).toEqual([e1s10, e1s20]);
    expect(op2.received).toEqual([e2s10, e2s20]);
    expect(op3.received).toEqual([]);
  });

  it('filters by source', async () => {
    const feed = new AssignmentFeed();
    const s10 = await collect(feed, { sourceId: 10 });
    const s20 = await collect(feed, { sourceId: 20 });
    const s30 = await collect(feed, { sourceId: 30 });
    feed.publish(grid);
    expect(s10.received).toEqual([e1s10, e2s10]);
    expect(s20.received).toEqual([e1s20, e2s20]);
    expect(s30.received).toEqual([]);
  });

  it('operator and source together must both match', async () => {
    const feed = new AssignmentFeed();
    const both = await collect(feed, { operatorId: 2, sourceId: 10 });
    const mismatch = await collect(feed, { operatorId: 1, sourceId: 30 });
    feed.publish(grid);
    expect(both.received).toEqual([e2s10]);
    expect(mismatch.received).toEqual([]);
  });

  it('an operator filter does not match an event without an operator', async () => {
    const feed = new AssignmentFeed();
    const op1 = await collect(feed, { operatorId: 1 });
    const any = await collect(feed, {});
    const unassigned = event(null, 10);
    feed.publish([unassigned]);
    expect(op1.received).toEqual([]);
    expect(any.received).toEqual([unassigned]);
  });

  it('delivers across several publishes, keeping the order of publication', async () => {
    const feed = new AssignmentFeed();
    const s10 = await collect(feed, { sourceId: 10 });
    feed.publish([e1s10]);
    feed.publish([]);
    feed.publish([e1s20, e2s10]);
    expect(s10.received).toEqual([e1s10, e2s10]);
  });

  it('subscriberCount follows subscribe and unsubscribe', async () => {
    const feed = new AssignmentFeed();
    const a = await collect(feed, {});
    expect(feed.subscriberCount).toBe(1);
    const b = await collect(feed, { operatorId: 1 });
    const c = await collect(feed, { sourceId: 10 });
    expect(feed.subscriberCount).toBe(3);
    b.unsubscribe();
    expect(feed.subscriberCount).toBe(2);
    a.unsubscribe();
    c.unsubscribe();
    expect(feed.subscriberCount).toBe(0);
  });

  it('unsubscribe stops delivery to that subscriber only', async () => {
    const feed = new AssignmentFeed();
    const gone = await collect(feed, {});
    const stays = await collect(feed, {});
    feed.publish([e1s10]);
    gone.unsubscribe();
    feed.publish([e2s20]);
    expect(gone.received).toEqual([e1s10]);
    expect(stays.received).toEqual([e1s10, e2s20]);
  });

  it('unsubscribing twice is harmless and does not remove anyone else', async () => {
    const feed = new AssignmentFeed();
    const a = await collect(feed, {});
    const b = await collect(feed, {});
    a.unsubscribe();
    a.unsubscribe();
    expect(feed.subscriberCount).toBe(1);
    feed.publish([e1s10]);
    expect(a.received).toEqual([]);
    expect(b.received).toEqual([e1s10]);
  });

  it('the same listener subscribed twice is two subscriptions: two deliveries, each unsubscribed separately', async () => {
    const feed = new AssignmentFeed();
    const received: AssignmentEvent[] = [];
    const listener = on((e) => received.push(e));
    const first = await feed.subscribe({}, listener);
    await feed.subscribe({ sourceId: 10 }, listener);
    expect(feed.subscriberCount).toBe(2);
    feed.publish([e1s10, e1s20]);
    expect(received).toEqual([e1s10, e1s10, e1s20]);
    first();
    expect(feed.subscriberCount).toBe(1);
    received.length = 0;
    feed.publish([e1s10, e1s20]);
    expect(received).toEqual([e1s10]);
  });

  it('a subscriber that unsubscribes while handling an event gets no later event of the same batch', async () => {
    const feed = new AssignmentFeed();
    const received: AssignmentEvent[] = [];
    const unsubscribe = await feed.subscribe({}, on((e) => {
      received.push(e);
      unsubscribe();
    }));
    const other = await collect(feed, {});
    feed.publish(grid);
    expect(received).toEqual([e1s10]);
    expect(other.received).toEqual(grid);
    expect(feed.subscriberCount).toBe(1);
  });

  it('feeds are independent of each other', async () => {
    const a = new AssignmentFeed();
    const b = new AssignmentFeed();
    const onA = await collect(a, {});
    const onB = await collect(b, {});
    a.publish([e1s10]);
    expect(onA.received).toEqual([e1s10]);
    expect(onB.received).toEqual([]);
    expect(b.subscriberCount).toBe(1);
  });

  it('an operator filter matches the operator a contact went to and the one it was taken from', async () => {
    const feed = new AssignmentFeed();
    const op1 = await collect(feed, { operatorId: 1 });
    const op2 = await collect(feed, { operatorId: 2 });
    const op3 = await collect(feed, { operatorId: 3 });
    const movedFrom1To2 = event(2, 10, false, 1);
    const backToQueueFrom2 = event(null, 10, false, 2);
    feed.publish([movedFrom1To2, backToQueueFrom2]);
    expect(op1.received).toEqual([movedFrom1To2]);
    expect(op2.received).toEqual([movedFrom1To2, backToQueueFrom2]);
    expect(op3.received).toEqual([]);
  });

  it('an interruption ends every subscription, after the events published before it', async () => {
    const feed = new AssignmentFeed();
    const a = await collect(feed, {});
    const b = await collect(feed, { operatorId: 2 });
    feed.publish([e1s10, e2s10]);
    feed.interrupt('listener lost');
    feed.publish([e1s20]);
    expect(a.received).toEqual([e1s10, e2s10]);
    expect(b.received).toEqual([e2s10]);
    expect(a.interruptions).toEqual(['listener lost']);
    expect(b.interruptions).toEqual(['listener lost']);
    expect(feed.subscriberCount).toBe(0);
    // New subscriptions are taken at once: an interruption alone does not refuse them.
    const c = await collect(feed, {});
    feed.publish([e1s20]);
    expect(c.received).toEqual([e1s20]);
  });

  it('hears remote assignments only while somebody subscribes: from the first subscription until the last one leaves', async () => {
    const feed = new AssignmentFeed();
    const remote = new FakeRemote();
    feed.hearFrom(remote);
    const first = subscribing(feed);
    expect(remote.calls).toEqual(['hear']);
    remote.heard();
    const a = await first;
    const b = await subscribing(feed, remote);
    expect(remote.calls).toEqual(['hear', 'hear']);
    a.unsubscribe();
    expect(remote.calls).toEqual(['hear', 'hear']);
    b.unsubscribe();
    b.unsubscribe();
    expect(remote.calls).toEqual(['hear', 'hear', 'stop']);
  });

  it('a subscription waiting to be heard counts: the last other subscriber leaving meanwhile does not stop the hearing', async () => {
    const feed = new AssignmentFeed();
    const remote = new FakeRemote();
    feed.hearFrom(remote);
    const a = await subscribing(feed, remote);
    const waiting = subscribing(feed);
    a.unsubscribe();
    expect(remote.calls).toEqual(['hear', 'hear']);
    remote.heard();
    const b = await waiting;
    feed.publish([e1s10]);
    expect(b.received).toEqual([e1s10]);
    b.unsubscribe();
    expect(remote.calls).toEqual(['hear', 'hear', 'stop']);
  });

  it('refuses a subscription with UNAVAILABLE when remote assignments cannot be heard, and takes the next one', async () => {
    const feed = new AssignmentFeed();
    const remote = new FakeRemote();
    feed.hearFrom(remote);
    const refused = subscribing(feed);
    remote.cannotHear('database down');
    await expect(refused).rejects.toThrow(UnavailableError);
    await expect(refused).rejects.toThrow('database down');
    expect(feed.subscriberCount).toBe(0);
    expect(remote.calls).toEqual(['hear', 'stop']);
    const a = await subscribing(feed, remote);
    feed.publish([e1s10]);
    expect(a.received).toEqual([e1s10]);
  });

  it('an interruption stops hearing: nobody is left to hear for', async () => {
    const feed = new AssignmentFeed();
    const remote = new FakeRemote();
    feed.hearFrom(remote);
    const a = await subscribing(feed, remote);
    feed.interrupt('listener lost');
    expect(a.interruptions).toEqual(['listener lost']);
    expect(remote.calls).toEqual(['hear', 'stop']);
    // Its unsubscribe, when its stream ends, changes nothing.
    a.unsubscribe();
    expect(remote.calls).toEqual(['hear', 'stop']);
  });
});

/** Remote assignments whose hear() settles when the test says; records the calls. */
class FakeRemote implements RemoteAssignments {
  readonly calls: ('hear' | 'stop')[] = [];
  #waiting: { resolve(): void; reject(error: Error): void }[] = [];

  hear(): Promise<void> {
    this.calls.push('hear');
    return new Promise((resolve, reject) => this.#waiting.push({ resolve, reject }));
  }

  stopHearing(): void {
    this.calls.push('stop');
  }

  heard(): void {
    for (const waiting of this.#waiting.splice(0)) waiting.resolve();
  }

  cannotHear(reason: string): void {
    for (const waiting of this.#waiting.splice(0)) waiting.reject(new UnavailableError(reason));
  }
}

/** Subscribes to every event; when `remote` is given, it hears at once. */
function subscribing(feed: AssignmentFeed, remote?: FakeRemote): ReturnType<typeof collect> {
  const subscription = collect(feed, {});
  remote?.heard();
  return subscription;
}
