import type { Interceptor, StreamRequest, UnaryRequest } from '@connectrpc/connect';

/**
 * Called when a call starts; returns what to do when it ends: with undefined
 * on success, or with the error, returning the error to raise in its place.
 */
export type CallEnd = (request: UnaryRequest | StreamRequest) => (error: unknown) => unknown;

/**
 * An interceptor that sees how each call ends: a unary call when it returns,
 * a server stream when its last message is sent or it fails mid-way.
 */
export function atCallEnd(start: CallEnd): Interceptor {
  return (next) => async (request) => {
    const end = start(request);
    let response;
    try {
      response = await next(request);
    } catch (error) {
      throw end(error);
    }
    if (!response.stream) {
      end(undefined);
      return response;
    }
    const messages = response.message;
    return {
      ...response,
      message: (async function* () {
        try {
          yield* messages;
        } catch (error) {
          throw end(error);
        }
        end(undefined);
      })(),
    };
  };
}
