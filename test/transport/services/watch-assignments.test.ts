// WatchAssignments: committed assignments stream to watchers, filtered, and a
// watcher that leaves does not disturb the server.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { AssignmentEvent } from '../../../gen/crm/v1/distribution_pb.js';
import { ContactStatus } from '../../../gen/crm/v1/resources_pb.js';
import { createOperators, createSource, register } from '../../support/fixtures.ts';
import { StreamReader } from '../../support/stream-reader.ts';
import { startTestServer, type TestServer } from '../../support/test-server.ts';

let t: TestServer;
beforeAll(async () => {
  t = await startTestServer();
});
afterAll(() => t.dispose());

/** Collects a stream's events; `next()` waits for the next one not yet taken. */
class Watcher extends StreamReader<AssignmentEvent> {
  get events(): AssignmentEvent[] {
    return this.messages;
  }

  /**
   * A stream is subscribed only once the server has run its handler, which no
   * response header tells: send matching probe contacts until one comes back,
   * then skip every probe event.
   */
  async ready(probe: () => Promise<bigint>): Promise<void> {
    const probes = new Set<bigint>();
    for (let attempt = 0; attempt < 100; attempt++) {
      probes.add(await probe());
      const event = await this.next(100);
      if (event) break;
    }
    expect(this.events.length).toBeGreaterThan(0);
    // Probes still in flight arrive before anything the test does next.
    for (const id of probes) await this.skipUntil(id);
  }

  async skipUntil(contactId: bigint): Promise<void> {
    if (this.events.slice(0, this.taken).some((e) => e.contact?.id === contactId)) return;
    for (let event = await this.next(); event; event = await this.next()) if (event.contact?.id === contactId) return;
  }
}

describe('WatchAssignments', () => {
  it('streams direct assignments and queue drains, marking those from the queue', async () => {
    const [operator] = await createOperators(t, 1, 1);
    const sourceId = await createSource(t, [[operator!, 1]]);
    const [probeOperator] = await createOperators(t, 1, 1000);
    const probeSource = await createSource(t, [[probeOperator!, 1]]);
    const watcher = new Watcher(t.distribution.watchAssignments({}));
    await watcher.ready(async () => (await register(t, probeSource)).contact!.id);

    const direct = await register(t, sourceId);
    const queued = await register(t, sourceId);
    expect(queued.contact!.operator).toBeUndefined();
    const first = await watcher.next();
    expect(first).toMatchObject({ fromQueue: false, contact: { id: direct.contact!.id, operator: { id: operator } } });
    expect(first!.contact!.source!.id).toBe(sourceId);
    expect(first!.contact!.lead!.id).toBe(direct.contact!.lead!.id);

    await t.distribution.updateContactStatus({ contactId: direct.contact!.id, status: ContactStatus.CLOSED });
    const drained = await watcher.next();
    expect(drained).toMatchObject({ fromQueue: true, contact: { id: queued.contact!.id, operator: { id: operator } } });
    watcher.stream.cancel();
  });

  it('filters by operator and by source', async () => {
    const [a, b] = await createOperators(t, 2, 1000);
    const sourceX = await createSource(t, [[a!, 1]]);
    const sourceY = await createSource(t, [[b!, 1]]);
    const sourceAB = await createSource(t, [[a!, 1], [b!, 1]], { leadAffinity: false });
    const byOperator = new Watcher(t.distribution.watchAssignments({ operatorId: b! }));
    await byOperator.ready(async () => (await register(t, sourceY)).contact!.id);
    const bySource = new Watcher(t.distribution.watchAssignments({ sourceId: sourceX }));
    await bySource.ready(async () => (await register(t, sourceX)).contact!.id);

    const registered = [];
    for (const source of [sourceX, sourceY, sourceAB, sourceAB, sourceAB, sourceAB, sourceX]) registered.push((await register(t, source)).contact!);
    const last = await register(t, sourceY);
    await byOperator.skipUntil(last.contact!.id);
    const seenByOperator = byOperator.events.map((e) => e.contact!.operator!.id);
    expect(new Set(seenByOperator)).toEqual(new Set([b]));
    const expectedForB = registered.filter((c) => c.operator!.id === b).map((c) => c.id);
    expect(byOperator.events.map((e) => e.contact!.id)).toEqual(expect.arrayContaining(expectedForB));

    const lastX = registered[registered.length - 1]!;
    await bySource.skipUntil(lastX.id);
    expect(new Set(bySource.events.map((e) => e.contact!.source!.id))).toEqual(new Set([sourceX]));
    byOperator.stream.cancel();
    bySource.stream.cancel();
  });

  it('a watcher that disconnects does not disturb assignments or other watchers', async () => {
    const [operator] = await createOperators(t, 1, 1000);
    const sourceId = await createSource(t, [[operator!, 1]]);
    const leaving = new Watcher(t.distribution.watchAssignments({ sourceId }));
    await leaving.ready(async () => (await register(t, sourceId)).contact!.id);
    const staying = new Watcher(t.distribution.watchAssignments({ sourceId }));
    await staying.ready(async () => (await register(t, sourceId)).contact!.id);
    leaving.stream.cancel();

    const results = await Promise.all(Array.from({ length: 50 }, () => register(t, sourceId)));
    expect(results.every((r) => r.contact!.operator!.id === operator)).toBe(true);
    const ids = new Set(results.map((r) => r.contact!.id));
    const received = new Set<bigint>();
    while (received.size < ids.size) {
      const event = await staying.next();
      if (!event) break;
      if (ids.has(event.contact!.id)) received.add(event.contact!.id);
    }
    expect(received).toEqual(ids);
    staying.stream.cancel();
  });
});
