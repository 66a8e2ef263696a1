// HTTP/2 written by hand over a plain TCP socket, for clients that break the
// rules a real HTTP/2 client keeps. node:http2 never opens more streams than
// the server's SETTINGS_MAX_CONCURRENT_STREAMS (it queues the rest), so it
// cannot play a client that floods a connection with streams; this can.
import net from 'node:net';

/** The client connection preface (RFC 9113, 3.4). */
export const CLIENT_PREFACE = Buffer.from('PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n', 'latin1');

export const FrameType = { DATA: 0x0, HEADERS: 0x1, RST_STREAM: 0x3, SETTINGS: 0x4, PING: 0x6, GOAWAY: 0x7, WINDOW_UPDATE: 0x8 } as const;
export const Flag = { END_STREAM: 0x1, ACK: 0x1, END_HEADERS: 0x4 } as const;
/** HTTP/2 error codes (RFC 9113, 7) the server may use to defend itself. */
export const ErrorCode = { NO_ERROR: 0x0, PROTOCOL_ERROR: 0x1, REFUSED_STREAM: 0x7, CANCEL: 0x8, ENHANCE_YOUR_CALM: 0xb } as const;

/** One frame: 24-bit length, type, flags, 31-bit stream id, payload. */
export function frame(type: number, flags: number, streamId: number, payload: Buffer = Buffer.alloc(0)): Buffer {
  const header = Buffer.alloc(9);
  header.writeUIntBE(payload.length, 0, 3);
  header.writeUInt8(type, 3);
  header.writeUInt8(flags, 4);
  header.writeUInt32BE(streamId & 0x7fff_ffff, 5);
  return Buffer.concat([header, payload]);
}

/** An HPACK integer with an N-bit prefix (RFC 7541, 5.1); the prefix's high bits are `first`. */
function hpackInteger(value: number, prefixBits: number, first = 0): Buffer {
  const max = (1 << prefixBits) - 1;
  if (value < max) return Buffer.from([first | value]);
  const bytes = [first | max];
  let rest = value - max;
  while (rest >= 0x80) {
    bytes.push((rest & 0x7f) | 0x80);
    rest >>>= 7;
  }
  bytes.push(rest);
  return Buffer.from(bytes);
}

/** An HPACK string literal, not Huffman-coded (H bit 0, 7-bit length prefix). */
function hpackString(text: string): Buffer {
  const bytes = Buffer.from(text, 'latin1');
  return Buffer.concat([hpackInteger(bytes.length, 7), bytes]);
}

/**
 * A header block of "literal header field without indexing, new name" entries
 * (RFC 7541, 6.2.2): no dynamic table, so the same block is valid on every
 * stream of a connection, in any order.
 */
export function literalHeaderBlock(headers: readonly (readonly [name: string, value: string])[]): Buffer {
  return Buffer.concat(headers.flatMap(([name, value]) => [Buffer.from([0x00]), hpackString(name), hpackString(value)]));
}

/** The request headers of a gRPC call to `path`, without authorization. */
export function grpcRequestHeaders(path: string, authority: string): [string, string][] {
  return [
    [':method', 'POST'],
    [':scheme', 'http'],
    [':path', path],
    [':authority', authority],
    ['content-type', 'application/grpc'],
    ['te', 'trailers'],
  ];
}

export interface ReceivedFrame {
  type: number;
  flags: number;
  streamId: number;
  payload: Buffer;
}

/** What the server sent on a flooded connection, and how the connection ended. */
export interface FloodResult {
  /** HEADERS frames handed to the socket (each opening a new stream). */
  headersWritten: number;
  /** Whether the server closed the connection before the test did. */
  closedByServer: boolean;
  /** RST_STREAM frames received, by error code. */
  resets: Map<number, number>;
  /** The GOAWAY the server sent, if any. */
  goaway?: { lastStreamId: number; errorCode: number };
  /** A socket error (ECONNRESET, EPIPE), if the connection ended with one. */
  socketError?: string;
}

/**
 * A hand-written HTTP/2 client connection: sends the preface and an empty
 * SETTINGS, acknowledges the server's SETTINGS, and records the frames the
 * server sends (never answering anything else: no WINDOW_UPDATE, no PING ACK).
 */
export class RawHttp2Connection {
  readonly socket: net.Socket;
  readonly received: ReceivedFrame[] = [];
  readonly resets = new Map<number, number>();
  goaway?: { lastStreamId: number; errorCode: number };
  socketError?: string;
  /** Resolves once the socket is closed, by either side. */
  readonly closed: Promise<void>;
  /** Resolves once the server's first SETTINGS frame has arrived (and, unless told not to, been acknowledged). */
  readonly serverSettings: Promise<void>;
  #closing = false;
  #closedByServer = false;
  #pending = Buffer.alloc(0);

  private constructor(socket: net.Socket, ackSettings: boolean) {
    this.socket = socket;
    let settled: () => void;
    this.serverSettings = new Promise((resolve) => (settled = resolve));
    this.closed = new Promise((resolve) =>
      socket.once('close', () => {
        if (!this.#closing) this.#closedByServer = true;
        resolve();
      }),
    );
    socket.on('error', (error: NodeJS.ErrnoException) => (this.socketError = error.code ?? error.message));
    socket.on('data', (chunk: Buffer) => {
      this.#pending = Buffer.concat([this.#pending, chunk]);
      while (this.#pending.length >= 9) {
        const length = this.#pending.readUIntBE(0, 3);
        if (this.#pending.length < 9 + length) break;
        const received: ReceivedFrame = {
          type: this.#pending.readUInt8(3),
          flags: this.#pending.readUInt8(4),
          streamId: this.#pending.readUInt32BE(5) & 0x7fff_ffff,
          payload: this.#pending.subarray(9, 9 + length),
        };
        this.#pending = this.#pending.subarray(9 + length);
        this.received.push(received);
        if (received.type === FrameType.SETTINGS && (received.flags & Flag.ACK) === 0) {
          if (ackSettings && !socket.destroyed) socket.write(frame(FrameType.SETTINGS, Flag.ACK, 0));
          settled!();
        } else if (received.type === FrameType.RST_STREAM) {
          const code = received.payload.readUInt32BE(0);
          this.resets.set(code, (this.resets.get(code) ?? 0) + 1);
        } else if (received.type === FrameType.GOAWAY) {
          this.goaway = { lastStreamId: received.payload.readUInt32BE(0) & 0x7fff_ffff, errorCode: received.payload.readUInt32BE(4) };
        }
      }
    });
  }

  /**
   * Connects to `host:port` and sends the preface and an empty SETTINGS frame.
   * With `ackSettings: false` the server's SETTINGS are never acknowledged, so
   * (nghttp2) its stream limit is only pending: streams past it are refused one
   * by one (RST_STREAM REFUSED_STREAM) rather than ending the connection.
   */
  static async open(host: string, port: number, { ackSettings = true }: { ackSettings?: boolean } = {}): Promise<RawHttp2Connection> {
    const socket = net.connect({ host, port });
    const connection = new RawHttp2Connection(socket, ackSettings);
    await new Promise<void>((resolve, reject) => {
      socket.once('connect', resolve);
      socket.once('error', reject);
    });
    socket.setNoDelay(true);
    socket.write(Buffer.concat([CLIENT_PREFACE, frame(FrameType.SETTINGS, 0, 0)]));
    return connection;
  }

  get closedByServer(): boolean {
    return this.#closedByServer;
  }

  /**
   * Opens `count` streams (ids 1, 3, 5, ...) with `headerBlock`, HEADERS with
   * END_HEADERS but no END_STREAM, so each waits for a body that never comes.
   * Writes as fast as the socket takes them (waiting for 'drain' when its
   * buffer is full) and stops early if the server closes the connection.
   * `onProgress` is called after each batch with the number written so far.
   */
  async floodHeaders(count: number, headerBlock: Buffer, onProgress: (written: number) => void = () => undefined): Promise<FloodResult> {
    const batch = 256;
    let written = 0;
    let closed = this.socket.destroyed;
    void this.closed.then(() => (closed = true));
    while (written < count && !closed) {
      const frames: Buffer[] = [];
      for (let i = 0; i < batch && written + i < count; i++) frames.push(frame(FrameType.HEADERS, Flag.END_HEADERS, 2 * (written + i) + 1, headerBlock));
      const ok = this.socket.write(Buffer.concat(frames));
      written += frames.length;
      onProgress(written);
      if (!ok) await Promise.race([new Promise((resolve) => this.socket.once('drain', resolve)), this.closed]);
      // Lets the test's other work (its RSS sampling, its well-behaved call) run between batches.
      else await new Promise((resolve) => setImmediate(resolve));
    }
    return this.result(written);
  }

  result(headersWritten: number): FloodResult {
    return { headersWritten, closedByServer: this.#closedByServer, resets: new Map(this.resets), goaway: this.goaway, socketError: this.socketError };
  }

  /** Closes the connection from this side (does nothing if it is already gone). */
  destroy(): void {
    this.#closing = true;
    this.socket.destroy();
  }
}
