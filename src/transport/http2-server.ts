// The HTTP/2 server with limits on what one client may hold: streams per
// connection, time to finish the handshake, time to send a request, time to
// stay connected doing nothing, and connections in all. Without them a single
// client with no token could exhaust memory (headers on 20,000 streams that
// never send a body) or sockets (connections that never speak).
import http2 from 'node:http2';

export interface ConnectionLimits {
  /** Open connections in all; more are closed as they arrive. */
  maxConnections: number;
  /** Concurrent streams a client may open on one connection (SETTINGS_MAX_CONCURRENT_STREAMS). */
  maxStreamsPerConnection: number;
  /** A connection that has not sent the HTTP/2 preface and its SETTINGS by then is closed. */
  handshakeTimeoutMs: number;
  /** A connection with no open stream for this long is asked to close (GOAWAY). */
  idleTimeoutMs: number;
  /** A request (all its messages, for unary and server-streaming calls) must arrive within this, or its stream is reset. */
  requestTimeoutMs: number;
}

/**
 * A stream held open with its request unsent costs about 9 KB (see
 * adapter.ts: no call is built for it), so the defaults bound what clients
 * can hold to 256 x 100 streams, ~230 MB, within the server's memory.
 */
export const DEFAULT_CONNECTION_LIMITS: ConnectionLimits = {
  maxConnections: 256,
  maxStreamsPerConnection: 100,
  handshakeTimeoutMs: 10_000,
  idleTimeoutMs: 300_000,
  requestTimeoutMs: 30_000,
};

export interface LimitedHttp2Server {
  server: http2.Http2Server;
  /** Asks every connection to finish (GOAWAY): streams in flight complete, no new ones start. */
  closeSessions(): void;
  /** Cuts every connection at once. */
  destroySessions(): void;
}

/**
 * `sendsWholeRequest(path)`: whether the method at `path` takes one request
 * message and half-closes (unary, server streaming), so that the request
 * timeout applies; client and bidi streams send at their own pace.
 */
export function createLimitedHttp2Server(
  handler: (req: http2.Http2ServerRequest, res: http2.Http2ServerResponse) => void,
  limits: ConnectionLimits,
  sendsWholeRequest: (path: string) => boolean,
): LimitedHttp2Server {
  // A client that opens streams past the limit is cut off: nghttp2 answers GOAWAY
  // (PROTOCOL_ERROR, or INTERNAL_ERROR after ~1,000 refusals if it never
  // acknowledged our SETTINGS).
  const server = http2.createServer({ settings: { maxConcurrentStreams: limits.maxStreamsPerConnection } }, handler);
  server.maxConnections = limits.maxConnections;
  const sessions = new Set<http2.ServerHttp2Session>();

  server.on('session', (session) => {
    sessions.add(session);
    let openStreams = 0;
    let idle: NodeJS.Timeout | undefined;
    const becomeIdle = () => {
      clearTimeout(idle);
      idle = setTimeout(() => session.close(), limits.idleTimeoutMs);
    };
    const handshake = setTimeout(() => session.destroy(), limits.handshakeTimeoutMs);
    session.once('remoteSettings', () => clearTimeout(handshake));
    becomeIdle();
    session.on('stream', (stream, headers) => {
      openStreams += 1;
      clearTimeout(idle);
      const path = String(headers[http2.constants.HTTP2_HEADER_PATH] ?? '').split('?', 1)[0]!;
      const request = sendsWholeRequest(path)
        ? setTimeout(() => stream.close(http2.constants.NGHTTP2_CANCEL), limits.requestTimeoutMs)
        : undefined;
      stream.once('end', () => clearTimeout(request));
      stream.once('close', () => {
        clearTimeout(request);
        openStreams -= 1;
        if (openStreams === 0 && !session.closed) becomeIdle();
      });
    });
    session.once('close', () => {
      clearTimeout(handshake);
      clearTimeout(idle);
      sessions.delete(session);
    });
  });
  // A protocol violation or a reset socket ends that connection only.
  server.on('sessionError', () => undefined);

  return {
    server,
    closeSessions: () => sessions.forEach((session) => session.close()),
    destroySessions: () => sessions.forEach((session) => session.destroy()),
  };
}
