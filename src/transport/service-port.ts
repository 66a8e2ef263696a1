// The service port: one listening socket, in cleartext or over TLS, whose
// connections speak HTTP/2 (gRPC, Connect, gRPC-Web) or HTTP/1.1 (Connect and
// gRPC-Web as browsers and plain curl send them), with limits on what one
// client may hold: streams per connection, time to finish the handshake, time
// to send a request, time to stay connected doing nothing, and connections in
// all. Without them a single client with no token could exhaust memory
// (headers on 20,000 streams that never send a body) or sockets (connections
// that never speak).
import http from 'node:http';
import http2 from 'node:http2';
import net from 'node:net';
import tls from 'node:tls';
import './abort-reason.ts';
import type { NodeRequest, NodeResponse } from './adapter.ts';

export interface ConnectionLimits {
  /** Open connections in all, of either protocol; more are closed as they arrive. */
  maxConnections: number;
  /** Concurrent streams a client may open on one HTTP/2 connection (SETTINGS_MAX_CONCURRENT_STREAMS), and requests it may pipeline on one HTTP/1.1 connection. */
  maxStreamsPerConnection: number;
  /**
   * A connection that has not shown its protocol by then (finished the TLS
   * handshake, or sent the bytes that tell HTTP/2 from HTTP/1.1) is closed;
   * then an HTTP/2 connection has as long to send its SETTINGS, and each
   * HTTP/1.1 request as long to send its headers.
   */
  handshakeTimeoutMs: number;
  /** A connection with no call in flight for this long is asked to close (HTTP/2: GOAWAY; HTTP/1.1: the keep-alive ends). */
  idleTimeoutMs: number;
  /**
   * A request (all its messages, for unary and server-streaming calls) must
   * arrive within this, or its HTTP/2 stream is reset; an HTTP/1.1 request
   * (which cannot be a client or bidi stream) gets 408 and its connection is closed.
   */
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

/** What the port is served with over TLS, in PEM. */
export interface TlsCredentials {
  cert: Buffer;
  key: Buffer;
  /** Set: every client must present a certificate signed by one of these CAs (mutual TLS). */
  clientCa?: Buffer;
}

/** Takes a request of either protocol, as Connect's Node adapter does. */
export type NodeRequestHandler = (req: NodeRequest, res: NodeResponse) => void;

export interface ServicePort {
  /** The listening socket, TCP or TLS; the callback of its `close` runs once every connection has ended. */
  server: net.Server;
  /**
   * Asks every connection to finish: an HTTP/2 one gets GOAWAY (streams in
   * flight complete, no new ones start), an HTTP/1.1 one is closed after its
   * response in flight (at once if it has none), one that has not shown its
   * protocol yet (so has no call) is closed.
   */
  closeConnections(): void;
  /** Cuts every connection at once. */
  destroyConnections(): void;
}

type Protocol = 'h2' | 'http/1.1';

/** What an HTTP/2 client sends first; an HTTP/1.1 request line departs from it within a few bytes. */
const HTTP2_PREFACE = Buffer.from('PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n', 'latin1');

/** How often HTTP/1.1 connections are checked against the header and request timeouts (Node's default is every 30 s). */
const HTTP1_TIMEOUT_CHECK_MS = 1_000;

/**
 * `sendsWholeRequest(path)`: whether the method at `path` takes one request
 * message and half-closes (unary, server streaming), so that the request
 * timeout applies; client and bidi streams send at their own pace.
 * With `credentials` the port speaks TLS, its ALPN offering `h2` and
 * `http/1.1`; without, it is cleartext and tells the two apart by the first
 * bytes of each connection.
 */
export function createServicePort(
  handler: NodeRequestHandler,
  limits: ConnectionLimits,
  sendsWholeRequest: (path: string) => boolean,
  credentials?: TlsCredentials,
): ServicePort {
  const http2Server = limitedHttp2Server(handler, limits, sendsWholeRequest);
  const http1Server = limitedHttp1Server(handler, limits);
  // Connections that have not shown their protocol, by peer address and port:
  // a TLS connection arrives as a TCP socket and is handed over as the TLS socket on it.
  const undecided = new Map<string, { socket: net.Socket; deadline: NodeJS.Timeout }>();
  const handOver = (socket: net.Socket, protocol: Protocol) => {
    const peer = peerOf(socket);
    clearTimeout(undecided.get(peer)?.deadline);
    undecided.delete(peer);
    (protocol === 'h2' ? http2Server : http1Server).server.emit('connection', socket);
  };
  const server = credentials
    ? tls.createServer(
        {
          cert: credentials.cert,
          key: credentials.key,
          ALPNProtocols: ['h2', 'http/1.1'],
          ...(credentials.clientCa && { ca: credentials.clientCa, requestCert: true, rejectUnauthorized: true }),
        },
        // A client that offers no ALPN (openssl s_client, older HTTP libraries) speaks HTTP/1.1.
        (socket) => handOver(socket, socket.alpnProtocol === 'h2' ? 'h2' : 'http/1.1'),
      )
    : net.createServer((socket) => readProtocol(socket, (protocol) => handOver(socket, protocol)));
  server.maxConnections = limits.maxConnections;
  server.on('connection', (socket: net.Socket) => {
    // A reset before the connection is handed over ends that connection only.
    socket.on('error', () => undefined);
    const peer = peerOf(socket);
    // A deadline counted from the connection: TLS's own handshakeTimeout starts over
    // with every byte, so a client that dribbles its hello would never meet it.
    const deadline = setTimeout(() => socket.destroy(), limits.handshakeTimeoutMs);
    undecided.set(peer, { socket, deadline });
    socket.once('close', () => {
      clearTimeout(deadline);
      if (undecided.get(peer)?.socket === socket) undecided.delete(peer);
    });
  });
  // Node's HTTP/1.1 server starts checking its header and request timeouts when it
  // listens, which this one never does: its connections come from `server`.
  server.on('listening', () => http1Server.server.emit('listening'));
  return {
    server,
    closeConnections() {
      for (const { socket } of undecided.values()) socket.destroy();
      http2Server.close();
      http1Server.close();
    },
    destroyConnections() {
      for (const { socket } of undecided.values()) socket.destroy();
      http2Server.destroy();
      http1Server.destroy();
    },
  };
}

/** The server of one protocol, fed connections by the port. */
interface ProtocolServer {
  server: net.Server;
  /** As ServicePort.closeConnections, for this protocol's connections. */
  close(): void;
  destroy(): void;
}

function limitedHttp2Server(handler: NodeRequestHandler, limits: ConnectionLimits, sendsWholeRequest: (path: string) => boolean): ProtocolServer {
  // A client that opens streams past the limit is cut off: nghttp2 answers GOAWAY
  // (PROTOCOL_ERROR, or INTERNAL_ERROR after ~1,000 refusals if it never
  // acknowledged our SETTINGS).
  const server = http2.createServer({ settings: { maxConcurrentStreams: limits.maxStreamsPerConnection } }, handler);
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
    close: () => sessions.forEach((session) => session.close()),
    destroy: () => sessions.forEach((session) => session.destroy()),
  };
}

function limitedHttp1Server(handler: NodeRequestHandler, limits: ConnectionLimits): ProtocolServer {
  let draining = false;
  /** Requests in flight on each connection: Node answers pipelined requests all at once. */
  const inFlight = new WeakMap<net.Socket, number>();
  const server = http.createServer(
    {
      // Node refuses a header timeout longer than the request timeout.
      headersTimeout: Math.min(limits.handshakeTimeoutMs, limits.requestTimeoutMs),
      requestTimeout: limits.requestTimeoutMs,
      keepAliveTimeout: limits.idleTimeoutMs,
      connectionsCheckingInterval: HTTP1_TIMEOUT_CHECK_MS,
    },
    (req, res) => {
      const { socket } = req;
      const requests = (inFlight.get(socket) ?? 0) + 1;
      // Past the HTTP/2 stream limit a pipelining client is cut off, as an HTTP/2 one would be.
      if (requests > limits.maxStreamsPerConnection) {
        socket.destroy();
        return;
      }
      inFlight.set(socket, requests);
      res.once('close', () => inFlight.set(socket, inFlight.get(socket)! - 1));
      // At shutdown the response in flight is the connection's last.
      res.once('finish', () => {
        if (draining) socket.end();
      });
      handler(req, res);
    },
  );
  return {
    server,
    close() {
      draining = true;
      // Closes the idle keep-alive connections (and ends the timeout checks).
      server.close();
    },
    destroy: () => server.closeAllConnections(),
  };
}

/**
 * Reads the first bytes of a cleartext connection: the whole HTTP/2 client
 * preface means HTTP/2, anything that departs from it HTTP/1.1. What was read
 * is put back for the server the connection is handed to.
 */
function readProtocol(socket: net.Socket, decided: (protocol: Protocol) => void): void {
  let received = Buffer.alloc(0);
  const onReadable = () => {
    for (let chunk: Buffer | null; (chunk = socket.read() as Buffer | null) !== null; ) received = Buffer.concat([received, chunk]);
    const compared = Math.min(received.length, HTTP2_PREFACE.length);
    const followsPreface = received.subarray(0, compared).equals(HTTP2_PREFACE.subarray(0, compared));
    if (followsPreface && received.length < HTTP2_PREFACE.length) return;
    socket.off('readable', onReadable);
    socket.unshift(received);
    decided(followsPreface ? 'h2' : 'http/1.1');
  };
  socket.on('readable', onReadable);
}

/** Names a TCP connection on the port: the TLS socket on a connection has its TCP socket's peer. */
function peerOf(socket: net.Socket): string {
  return `${socket.remoteAddress} ${socket.remotePort}`;
}
