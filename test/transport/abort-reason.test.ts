// An abort without a reason still gives the reason the platform would: an AbortError.
import { describe, expect, it } from 'vitest';
import '../../src/transport/abort-reason.ts';

describe('AbortController.abort without a reason', () => {
  it('aborts with an AbortError DOMException, as the platform does, and wakes its listeners', () => {
    const controller = new AbortController();
    let heard: unknown;
    controller.signal.addEventListener('abort', () => (heard = controller.signal.reason));
    controller.abort();
    expect(controller.signal.aborted).toBe(true);
    expect(controller.signal.reason).toBeInstanceOf(DOMException);
    expect({ name: (controller.signal.reason as DOMException).name, message: (controller.signal.reason as DOMException).message }).toEqual({ name: 'AbortError', message: 'This operation was aborted' });
    expect(heard).toBe(controller.signal.reason);
    expect(() => controller.signal.throwIfAborted()).toThrow(DOMException);
  });

  it('keeps a reason that is given, and a second abort changes nothing', () => {
    const controller = new AbortController();
    const reason = new Error('deadline exceeded');
    controller.abort(reason);
    controller.abort();
    expect(controller.signal.reason).toBe(reason);
  });

  it('reaches signals that follow it (AbortSignal.any)', () => {
    const controller = new AbortController();
    const linked = AbortSignal.any([controller.signal]);
    controller.abort();
    expect(linked.aborted).toBe(true);
    expect((linked.reason as DOMException).name).toBe('AbortError');
  });
});
