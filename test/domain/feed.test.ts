import { describe, it, expect } from 'vitest';
import { AssignmentFeed, type FeedSubscriber } from '../../src/domain/assignment/feed.ts';
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

function collect(feed: AssignmentFeed, filter: { operatorId?: number; sourceId?: number }) {
  const received: AssignmentEvent[] = [];
  const interruptions: string[] = [];
  const unsubscribe = feed.subscribe(filter, { event: (e) => received.push(e), interrupted: (reason) => interruptions.push(reason) });
  return { received, interruptions, unsubscribe };
}

describe('AssignmentFeed', () => {
  // a grid of events: operators 1, 2 x sources 10, 20, published in one batch
  const e1s10 = event(1, 10);
  const e2s10 = event(2, 10, true);
  const e1s20 = event(1, 20);
  const e2s20 = event(2, 20, true);
  const grid = [e1s10, e2s10, e1s20, e2s20];

  it('starts with no subscribers; publishing to nobody is fine', () => {
    const feed = new AssignmentFeed();
    expect(feed.subscriberCount).toBe(0);
    expect(() => feed.publish(grid)).not.toThrow();
  });

  it('an empty filter receives every event, in order, as the same objects', () => {
    const feed = new AssignmentFeed();
    const all = collect(feed, {});
    feed.publish(grid);
    expect(all.received).toEqual(grid);
    all.received.forEach((e, i) => expect(e).toBe(grid[i]));
  });

  it('filters by operator', () => {
    const feed = new AssignmentFeed();
    const op1 = collect(feed, { operatorId: 1 });
    const op2 = collect(feed, { operatorId: 2 });
    const op3 = collect(feed, { operatorId: 3 });
    feed.publish(grid);
    expect(op1.received).toEqual([e1s10, e1s20]);
    expect(op2.received).toEqual([e2s10, e2s20]);
    expect(op3.received).toEqual([]);
  });

  it('filters by source', () => {
    const feed = new AssignmentFeed();
    const s10 = collect(feed, { sourceId: 10 });
    const s20 = collect(feed, { sourceId: 20 });
    const s30 = collect(feed, { sourceId: 30 });
    feed.publish(grid);
    expect(s10.received).toEqual([e1s10, e2s10]);
    expect(s20.received).toEqual([e1s20, e2s20]);
    expect(s30.received).toEqual([]);
  });

  it('operator and source together must both match', () => {
    const feed = new AssignmentFeed();
    const both = collect(feed, { operatorId: 2, sourceId: 10 });
    const mismatch = collect(feed, { operatorId: 1, sourceId: 30 });
    feed.publish(grid);
    expect(both.received).toEqual([e2s10]);
    expect(mismatch.received).toEqual([]);
  });

  it('an operator filter does not match an event without an operator', () => {
    const feed = new AssignmentFeed();
    const op1 = collect(feed, { operatorId: 1 });
    const any = collect(feed, {});
    const unassigned = event(null, 10);
    feed.publish([unassigned]);
    expect(op1.received).toEqual([]);
    expect(any.received).toEqual([unassigned]);
  });

  it('delivers across several publishes, keeping the order of publication', () => {
    const feed = new AssignmentFeed();
    const s10 = collect(feed, { sourceId: 10 });
    feed.publish([e1s10]);
    feed.publish([]);
    feed.publish([e1s20, e2s10]);
    expect(s10.received).toEqual([e1s10, e2s10]);
  });

  it('subscriberCount follows subscribe and unsubscribe', () => {
    const feed = new AssignmentFeed();
    const a = collect(feed, {});
    expect(feed.subscriberCount).toBe(1);
    const b = collect(feed, { operatorId: 1 });
    const c = collect(feed, { sourceId: 10 });
    expect(feed.subscriberCount).toBe(3);
    b.unsubscribe();
    expect(feed.subscriberCount).toBe(2);
    a.unsubscribe();
    c.unsubscribe();
    expect(feed.subscriberCount).toBe(0);
  });

  it('unsubscribe stops delivery to that subscriber only', () => {
    const feed = new AssignmentFeed();
    const gone = collect(feed, {});
    const stays = collect(feed, {});
    feed.publish([e1s10]);
    gone.unsubscribe();
    feed.publish([e2s20]);
    expect(gone.received).toEqual([e1s10]);
    expect(stays.received).toEqual([e1s10, e2s20]);
  });

  it('unsubscribing twice is harmless and does not remove anyone else', () => {
    const feed = new AssignmentFeed();
    const a = collect(feed, {});
    const b = collect(feed, {});
    a.unsubscribe();
    a.unsubscribe();
    expect(feed.subscriberCount).toBe(1);
    feed.publish([e1s10]);
    expect(a.received).toEqual([]);
    expect(b.received).toEqual([e1s10]);
  });

  it('the same listener subscribed twice is two subscriptions: two deliveries, each unsubscribed separately', () => {
    const feed = new AssignmentFeed();
    const received: AssignmentEvent[] = [];
    const listener = on((e) => received.push(e));
    const first = feed.subscribe({}, listener);
    feed.subscribe({ sourceId: 10 }, listener);
    expect(feed.subscriberCount).toBe(2);
    feed.publish([e1s10, e1s20]);
    expect(received).toEqual([e1s10, e1s10, e1s20]);
    first();
    expect(feed.subscriberCount).toBe(1);
    received.length = 0;
    feed.publish([e1s10, e1s20]);
    expect(received).toEqual([e1s10]);
  });

  it('a subscriber that unsubscribes while handling an event gets no later event of the same batch', () => {
    const feed = new AssignmentFeed();
    const received: AssignmentEvent[] = [];
    const unsubscribe = feed.subscribe({}, on((e) => {
      received.push(e);
      unsubscribe();
    }));
    const other = collect(feed, {});
    feed.publish(grid);
    expect(received).toEqual([e1s10]);
    expect(other.received).toEqual(grid);
    expect(feed.subscriberCount).toBe(1);
  });

  it('feeds are independent of each other', () => {
    const a = new AssignmentFeed();
    const b = new AssignmentFeed();
    const onA = collect(a, {});
    const onB = collect(b, {});
    a.publish([e1s10]);
    expect(onA.received).toEqual([e1s10]);
    expect(onB.received).toEqual([]);
    expect(b.subscriberCount).toBe(1);
  });

  it('an operator filter matches the operator a contact went to and the one it was taken from', () => {
    const feed = new AssignmentFeed();
    const op1 = collect(feed, { operatorId: 1 });
    const op2 = collect(feed, { operatorId: 2 });
    const op3 = collect(feed, { operatorId: 3 });
    const movedFrom1To2 = event(2, 10, false, 1);
    const backToQueueFrom2 = event(null, 10, false, 2);
    feed.publish([movedFrom1To2, backToQueueFrom2]);
    expect(op1.received).toEqual([movedFrom1To2]);
    expect(op2.received).toEqual([movedFrom1To2, backToQueueFrom2]);
    expect(op3.received).toEqual([]);
  });

  it('an interruption ends every subscription, after the events published before it', () => {
    const feed = new AssignmentFeed();
    const a = collect(feed, {});
    const b = collect(feed, { operatorId: 2 });
    feed.publish([e1s10, e2s10]);
    feed.interrupt('listener lost');
    feed.publish([e1s20]);
    expect(a.received).toEqual([e1s10, e2s10]);
    expect(b.received).toEqual([e2s10]);
    expect(a.interruptions).toEqual(['listener lost']);
    expect(b.interruptions).toEqual(['listener lost']);
    expect(feed.subscriberCount).toBe(0);
    // New subscriptions are taken at once: an interruption alone does not refuse them.
    const c = collect(feed, {});
    feed.publish([e1s20]);
    expect(c.received).toEqual([e1s20]);
  });

  it('refuses new subscriptions with UNAVAILABLE while unavailable, and takes them again after', () => {
    const feed = new AssignmentFeed();
    feed.setUnavailable('not listening');
    expect(() => collect(feed, {})).toThrow(UnavailableError);
    expect(() => collect(feed, {})).toThrow('not listening');
    expect(feed.subscriberCount).toBe(0);
    feed.setUnavailable(undefined);
    const a = collect(feed, {});
    feed.publish([e1s10]);
    expect(a.received).toEqual([e1s10]);
  });
});
