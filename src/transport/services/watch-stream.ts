// One WatchAssignments stream: committed assignments, as they come, until the
// client leaves, the server shuts down, or the stream must end with a status.
import { constants as http2 } from 'node:http2';
import { create } from '@bufbuild/protobuf';
import { Code, ConnectError } from '@connectrpc/connect';
import { AssignmentEventSchema, type AssignmentEvent } from '../../../gen/crm/v1/distribution_pb.js';
import { AssignmentReason } from '../../../gen/crm/v1/resources_pb.js';
import type { AssignmentFeed, AssignmentFilter } from '../../domain/assignment/feed.ts';
import type { AssignmentEvent as AssignmentView } from '../../domain/views.ts';
import { encodeContact } from '../messages/encode.ts';

/** Events a watcher may fall behind by before its stream is ended. */
export const WATCH_BUFFER = 1_000;
/**
 * A watcher that fell behind gets this long to take its RESOURCE_EXHAUSTED
 * status; one that does not read at all never will (the status waits behind
 * the data it does not take), so its stream is reset with ENHANCE_YOUR_CALM,
 * which gRPC clients report as RESOURCE_EXHAUSTED too.
 */
const STATUS_GRACE_MS = 2_000;

export interface WatchControls {
  /** The call's end: the client left, its deadline passed, or the server is shutting down. */
  signal: AbortSignal;
  /** Resets the HTTP/2 stream (see adapter.ts). */
  reset(code: number): void;
}

export async function* watchAssignments(feed: AssignmentFeed, filter: AssignmentFilter, controls: WatchControls): AsyncGenerator<AssignmentEvent> {
  const pending: AssignmentView[] = [];
  let ending: ConnectError | undefined;
  let wake: (() => void) | undefined;
  let resetTimer: NodeJS.Timeout | undefined;
  const end = (error: ConnectError) => {
    ending ??= error;
    wake?.();
  };
  // Subscribed (on PostgreSQL, once this replica listens): every assignment committed from here on reaches this stream, or it ends with a status.
  const unsubscribe = await feed.subscribe(filter, {
    event(event) {
      if (ending) return;
      if (pending.length < WATCH_BUFFER) {
        pending.push(event);
        wake?.();
        return;
      }
      // What it has not taken is dropped: the status tells it to resubscribe and read again.
      pending.length = 0;
      end(new ConnectError(`watcher fell more than ${WATCH_BUFFER} events behind; resubscribe`, Code.ResourceExhausted));
      resetTimer = setTimeout(() => controls.reset(http2.NGHTTP2_ENHANCE_YOUR_CALM), STATUS_GRACE_MS);
    },
    interrupted(reason) {
      end(new ConnectError(`${reason}; resubscribe`, Code.Unavailable));
    },
  });
  // Unsubscribed as soon as the call ends, even while the stream is stuck on a write that will never finish.
  const onAbort = () => {
    unsubscribe();
    pending.length = 0;
    wake?.();
  };
  controls.signal.addEventListener('abort', onAbort);
  // It may have ended while this replica started listening for it.
  if (controls.signal.aborted) onAbort();
  try {
    for (;;) {
      while (pending.length > 0) {
        const event = pending.shift()!;
        yield create(AssignmentEventSchema, {
          contact: encodeContact(event.contact),
          fromQueue: event.fromQueue,
          reason: AssignmentReason[event.reason],
          previousOperatorId: BigInt(event.previousOperatorId ?? 0),
        });
      }
      if (ending) throw ending;
      if (controls.signal.aborted) return;
      await new Promise<void>((resolve) => {
        wake = resolve;
      });
      wake = undefined;
    }
  } finally {
    clearTimeout(resetTimer);
    onAbort();
    controls.signal.removeEventListener('abort', onAbort);
  }
}
