// The Node.js request handler: Connect's own adapter (connectNodeAdapter), plus
// the check of request messages it lacks. Connect answers a request body that
// is not a valid protobuf message with INTERNAL, before any interceptor runs;
// the contract wants INVALID_ARGUMENT. And Connect reads JSON leniently: an unknown field or
// enum name is dropped, and the call goes on without it. So each request
// message is checked here as it streams in: a binary one must parse, a JSON one
// must pass strict-json.ts. A bad one is replaced by an empty message and
// flagged, and the refuseMalformed interceptor answers INVALID_ARGUMENT in
// whatever protocol the call speaks (for JSON, with a BadRequest detail naming
// each bad field).
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Http2ServerRequest, Http2ServerResponse } from 'node:http2';
import { fromBinary, type DescMessage, type JsonValue } from '@bufbuild/protobuf';
import { Code, ConnectError, createConnectRouter, createContextKey, createContextValues, type ConnectRouter, type Interceptor } from '@connectrpc/connect';
import { compressionBrotli, compressionGzip, universalRequestFromNodeRequest, universalResponseToNodeResponse } from '@connectrpc/connect-node';
import type { UniversalHandler } from '@connectrpc/connect/protocol';
import { InvalidArgumentError } from '../domain/errors.ts';
import { invalidArgument } from './interceptors/errors.ts';
import { strictJsonViolations } from './messages/strict-json.ts';

const refusedRequest = createContextKey<ConnectError | undefined>(undefined, { description: 'why the request message is refused before any interceptor sees it' });

/**
 * Resets the call's HTTP/2 stream with the given error code (over HTTP/1.1,
 * which has no streams, closes its connection). For a server stream whose
 * client stopped reading: its status can no longer be sent behind the data it
 * does not take, but a reset still reaches it.
 */
export const resetStream = createContextKey<(code: number) => void>(() => undefined, { description: 'resets the HTTP/2 stream of the call' });

/** HTTP/2 and HTTP/1.1 requests alike (the port serves both). */
export type NodeRequest = Http2ServerRequest | IncomingMessage;
export type NodeResponse = Http2ServerResponse | ServerResponse;

export interface AdapterOptions {
  routes: (router: ConnectRouter) => void;
  interceptors: Interceptor[];
  readMaxBytes: number;
}

export function nodeHandler(options: AdapterOptions): (req: NodeRequest, res: NodeResponse) => void {
  const router = createConnectRouter({
    interceptors: [refuseMalformed, ...options.interceptors],
    readMaxBytes: options.readMaxBytes,
    acceptCompression: [compressionGzip, compressionBrotli],
    // Strict as the protobuf JSON spec, for what the check below leaves to Connect (compressed bodies).
    jsonOptions: { ignoreUnknownFields: false },
  });
  options.routes(router);
  const handlers = new Map(router.handlers.map((h) => [h.requestPath, h]));
  return (req, res) => {
    const handler = handlers.get((req.url ?? '').split('?', 2)[0]!);
    if (!handler) {
      res.statusCode = 404;
      res.end();
      return;
    }
    const call = (body: AsyncIterable<Uint8Array>) => {
      const contextValues = createContextValues();
      contextValues.set(resetStream, (code) => {
        if (!('stream' in res)) res.destroy();
        else if (!res.stream.destroyed) res.stream.close(code);
      });
      const universal = universalRequestFromNodeRequest(req, res, undefined, contextValues);
      universal.body = body;
      const check = bodyCheck(req.headers['content-type'], req.headers['content-encoding'] ?? req.headers['connect-content-encoding']);
      if (check) {
        const refuse = (refusal: ConnectError) => contextValues.set(refusedRequest, refusal);
        const checkMessage = check.format === 'json' ? jsonChecker(handler.method.input, refuse) : binaryChecker(handler.method.input, refuse);
        universal.body = checkMessages(body, check.framing, checkMessage, options.readMaxBytes);
      }
      void serve(handler, universal, res);
    };
    const { methodKind } = handler.method;
    // The whole request of a unary or server-streaming call is read before
    // Connect builds the call (about 40 KB of closures and generators): a
    // client that sends headers and no body holds only an HTTP/2 stream, until
    // the request timeout resets it, however many streams it opens.
    if (methodKind === 'unary' || methodKind === 'server_streaming') whenRead(req, options.readMaxBytes + ENVELOPE_BYTES, call);
    else call(req);
  };
}

/** A gRPC frame's header: a flags byte and a 4-byte length. */
const ENVELOPE_BYTES = 5;

/**
 * Calls `call` with the request body once the client has sent all of it, or
 * as soon as it outgrows `limit` (Connect then refuses it as too large,
 * reading no more than it must).
 */
function whenRead(req: NodeRequest, limit: number, call: (body: AsyncIterable<Uint8Array>) => void): void {
  const chunks: Buffer[] = [];
  let size = 0;
  const onData = (chunk: Buffer) => {
    chunks.push(chunk);
    size += chunk.length;
    if (size <= limit) return;
    req.off('data', onData).off('end', onEnd).pause();
    call((async function* () {
      yield* chunks;
      yield* req;
    })());
  };
  const onEnd = () => {
    req.off('data', onData);
    call((async function* () {
      yield* chunks;
    })());
  };
  req.on('data', onData).once('end', onEnd);
}

async function serve(handler: UniversalHandler, request: Parameters<UniversalHandler>[0], res: NodeResponse): Promise<void> {
  try {
    await universalResponseToNodeResponse(await handler(request), res);
  } catch (error) {
    // The client went away mid-call; nothing is left to answer.
    if (ConnectError.from(error).code !== Code.Aborted) res.destroy();
  }
}

/** First in the chain: a flagged request never reaches auth, logging of its fields, or a handler. */
const refuseMalformed: Interceptor = (next) => async (request) => {
  const refuse = () => {
    const refusal = request.contextValues.get(refusedRequest);
    if (refusal !== undefined) throw refusal;
  };
  if (!request.stream) {
    refuse();
    return next(request);
  }
  // Streaming calls reach interceptors before their messages are read: check each as it arrives.
  const messages = request.message;
  return next({
    ...request,
    message: (async function* () {
      for await (const message of messages) {
        refuse();
        yield message;
      }
    })(),
  });
};

interface BodyCheck {
  /** Enveloped protocols frame each message; Connect unary sends it bare. */
  framing: 'enveloped' | 'bare';
  format: 'binary' | 'json';
}

/** How to check a request body of this type; compressed bodies are left to Connect. */
function bodyCheck(contentType: string | undefined, encoding: string | string[] | undefined): BodyCheck | undefined {
  if (encoding !== undefined && encoding !== 'identity') return undefined;
  const type = (contentType ?? '').split(';')[0]!.trim();
  const enveloped = /^application\/(?:grpc|grpc-web|connect)(?:\+(proto|json))?$/.exec(type);
  if (enveloped) return { framing: 'enveloped', format: enveloped[1] === 'json' ? 'json' : 'binary' };
  if (type === 'application/proto') return { framing: 'bare', format: 'binary' };
  if (type === 'application/json') return { framing: 'bare', format: 'json' };
  return undefined;
}

async function* checkMessages(
  body: AsyncIterable<Uint8Array>,
  framing: BodyCheck['framing'],
  check: (message: Uint8Array) => Uint8Array,
  maxBytes: number,
): AsyncGenerator<Uint8Array> {
  let pending: Uint8Array = new Uint8Array(0);
  let passThrough = false;
  for await (const chunk of body) {
    if (passThrough) {
      yield chunk;
      continue;
    }
    pending = concat(pending, chunk);
    if (framing === 'bare') {
      // Too large to be valid: Connect refuses it with RESOURCE_EXHAUSTED.
      if (pending.length > maxBytes) {
        passThrough = true;
        yield pending;
      }
      continue;
    }
    for (;;) {
      if (pending.length < 5) break;
      const length = new DataView(pending.buffer, pending.byteOffset + 1, 4).getUint32(0);
      const compressed = (pending[0]! & 0x01) !== 0;
      if (compressed || length > maxBytes) {
        passThrough = true;
        yield pending;
        break;
      }
      if (pending.length < 5 + length) break;
      const message = pending.subarray(5, 5 + length);
      const kept = check(message);
      // A valid frame goes on as it came; only a malformed one is rebuilt (empty).
      yield kept === message ? pending.subarray(0, 5 + length) : envelope(pending[0]!, kept);
      pending = pending.subarray(5 + length);
    }
  }
  if (passThrough) return;
  if (framing === 'bare') yield check(pending);
  else if (pending.length > 0) yield pending;
}

/** Passes a binary message that parses; refuses any other, leaving an empty one in its place. */
function binaryChecker(schema: DescMessage, refuse: (refusal: ConnectError) => void): (message: Uint8Array) => Uint8Array {
  return (message) => {
    try {
      fromBinary(schema, message);
      return message;
    } catch (error) {
      // Plain words only (see domain/errors.ts): grpc-js leaves a percent-encoded ':' as is.
      const reason = (error instanceof Error ? error.message : String(error)).replace(/[:;,]/g, '');
      refuse(new ConnectError(`the request is not a valid ${schema.typeName} message (${reason})`, Code.InvalidArgument));
      return new Uint8Array(0);
    }
  };
}

const EMPTY_JSON_MESSAGE = new TextEncoder().encode('{}');
const utf8 = new TextDecoder();

/**
 * Passes a JSON message strict-json.ts finds nothing wrong with; refuses any
 * other, leaving `{}` in its place. Text that is not JSON at all is passed on
 * for Connect to refuse. A valid message is parsed twice (here and by
 * Connect): handing Connect the parsed value instead would skip protobuf-es's
 * check for duplicate keys, which only its own parse of the text makes.
 */
function jsonChecker(schema: DescMessage, refuse: (refusal: ConnectError) => void): (message: Uint8Array) => Uint8Array {
  return (message) => {
    let json: JsonValue;
    try {
      json = JSON.parse(utf8.decode(message)) as JsonValue;
    } catch {
      return message;
    }
    const violations = strictJsonViolations(schema, json);
    if (violations.length === 0) return message;
    refuse(invalidArgument(new InvalidArgumentError(violations), []));
    return EMPTY_JSON_MESSAGE;
  };
}

function envelope(flags: number, data: Uint8Array): Uint8Array {
  const out = new Uint8Array(5 + data.length);
  out[0] = flags;
  new DataView(out.buffer).setUint32(1, data.length);
  out.set(data, 5);
  return out;
}

function concat(a: Uint8Array, b: Uint8Array): Uint8Array {
  if (a.length === 0) return b;
  const out = new Uint8Array(a.length + b.length);
  out.set(a);
  out.set(b, a.length);
  return out;
}
