// Unary calls with JSON messages, written by hand over node:http2 (cleartext,
// prior knowledge) so that nothing of Connect-ES's client side is involved:
// Connect with JSON (what curl sends) and gRPC with JSON messages
// (application/grpc+json). Both answer alike: a gRPC status code, its message,
// the google.rpc.BadRequest field violations, and the response message.
import http2 from 'node:http2';
import { gzipSync } from 'node:zlib';
import { fromBinary, type JsonObject } from '@bufbuild/protobuf';
import { status as grpcStatus } from '@grpc/grpc-js';
import { BadRequestSchema, type BadRequest_FieldViolation } from '../../gen/google/rpc/error_details_pb.js';
import { statusFieldViolations } from './status-details.ts';

export interface JsonCallResult {
  code: grpcStatus;
  message: string;
  violations: Pick<BadRequest_FieldViolation, 'field' | 'description'>[];
  /** The response message, when the call succeeded. */
  response?: JsonObject;
}

/** `gzip`: the request message is sent compressed (content-encoding, or a compressed gRPC frame). */
export type JsonCall = (port: number, path: string, body: string, options?: { gzip?: boolean }) => Promise<JsonCallResult>;

interface RawResponse {
  headers: http2.IncomingHttpHeaders;
  trailers: http2.IncomingHttpHeaders;
  body: Buffer;
}

/** One POST, the whole response (headers, body, trailers) buffered. */
async function post(port: number, path: string, headers: http2.OutgoingHttpHeaders, body: Buffer): Promise<RawResponse> {
  const session = http2.connect(`http://127.0.0.1:${port}`);
  try {
    return await new Promise<RawResponse>((resolve, reject) => {
      session.once('error', reject);
      const request = session.request({ ':method': 'POST', ':path': path, ...headers });
      const response: RawResponse = { headers: {}, trailers: {}, body: Buffer.alloc(0) };
      const chunks: Buffer[] = [];
      request.once('response', (h) => (response.headers = h));
      request.once('trailers', (t) => (response.trailers = t));
      request.on('data', (chunk: Buffer) => chunks.push(chunk));
      request.once('error', reject);
      request.once('end', () => resolve({ ...response, body: Buffer.concat(chunks) }));
      request.end(body);
    });
  } finally {
    session.close();
  }
}

function header(headers: http2.IncomingHttpHeaders, name: string): string | undefined {
  const value = headers[name];
  return Array.isArray(value) ? value[0] : value;
}

/** Connect unary with JSON: the error is a JSON body whose details hold base64 messages. */
export const connectJson: JsonCall = async (port, path, body, { gzip = false } = {}) => {
  const headers = { 'content-type': 'application/json', ...(gzip ? { 'content-encoding': 'gzip' } : {}) };
  const response = await post(port, path, headers, gzip ? gzipSync(body) : Buffer.from(body));
  const json = JSON.parse(response.body.toString('utf8')) as JsonObject;
  if (Number(response.headers[':status']) === 200) return { code: grpcStatus.OK, message: '', violations: [], response: json };
  const error = json as { code: string; message?: string; details?: { type: string; value: string }[] };
  const violations = (error.details ?? [])
    .filter((detail) => detail.type === 'google.rpc.BadRequest')
    .flatMap((detail) => fromBinary(BadRequestSchema, Buffer.from(detail.value, 'base64')).fieldViolations);
  return { code: grpcStatus[error.code.toUpperCase() as keyof typeof grpcStatus], message: error.message ?? '', violations };
};

/** gRPC with JSON messages: one frame whose payload is the JSON text; the status in the trailers (or trailers-only headers). */
export const grpcJson: JsonCall = async (port, path, body, { gzip = false } = {}) => {
  const payload = gzip ? gzipSync(body) : Buffer.from(body);
  const frame = Buffer.alloc(5);
  frame.writeUInt8(gzip ? 1 : 0, 0);
  frame.writeUInt32BE(payload.length, 1);
  const headers = { 'content-type': 'application/grpc+json', te: 'trailers', ...(gzip ? { 'grpc-encoding': 'gzip' } : {}) };
  const response = await post(port, path, headers, Buffer.concat([frame, payload]));
  const status = { ...response.headers, ...response.trailers };
  const code = Number(header(status, 'grpc-status')) as grpcStatus;
  const details = header(status, 'grpc-status-details-bin');
  const result = {
    code,
    message: decodeURIComponent(header(status, 'grpc-message') ?? ''),
    violations: details === undefined ? [] : statusFieldViolations(Buffer.from(details, 'base64')),
  };
  if (code !== grpcStatus.OK) return result;
  const length = response.body.readUInt32BE(1);
  return { ...result, response: JSON.parse(response.body.subarray(5, 5 + length).toString('utf8')) as JsonObject };
};
