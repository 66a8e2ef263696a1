// Calls made by hand over HTTP/1.1 (node:http, node:https), as a browser or
// plain curl makes them: Connect with JSON or binary, gRPC-Web with its
// enveloped messages and trailer frame. Nothing of Connect-ES's client is involved.
import http from 'node:http';
import https from 'node:https';
import { create, fromBinary, toBinary } from '@bufbuild/protobuf';
import { expect } from 'vitest';
import { ListOperatorsRequestSchema, ListOperatorsResponseSchema } from '../../gen/crm/v1/query_pb.js';

export interface Http1Response {
  status: number;
  httpVersion: string;
  headers: http.IncomingHttpHeaders;
  body: Buffer;
}

/**
 * One POST on a connection of its own (no keep-alive pool), the whole response
 * buffered. `tls`: CA, client certificate and the like for an https URL.
 */
export function http1Post(url: string, headers: http.OutgoingHttpHeaders, body: Uint8Array | string, tls: https.RequestOptions = {}): Promise<Http1Response> {
  const send = new URL(url).protocol === 'https:' ? https.request : http.request;
  return new Promise((resolve, reject) => {
    const request = send(url, { ...tls, method: 'POST', headers, agent: false }, (response) => {
      const chunks: Buffer[] = [];
      response.on('data', (chunk: Buffer) => chunks.push(chunk));
      response.once('error', reject);
      response.once('end', () => resolve({ status: response.statusCode!, httpVersion: response.httpVersion, headers: response.headers, body: Buffer.concat(chunks) }));
    });
    request.once('error', reject);
    request.end(typeof body === 'string' ? body : Buffer.from(body));
  });
}

/** A gRPC-Web (or Connect streaming) envelope: flags byte, 4-byte big-endian length, payload. */
export function envelope(flags: number, payload: Uint8Array): Buffer {
  const header = Buffer.alloc(5);
  header.writeUInt8(flags, 0);
  header.writeUInt32BE(payload.length, 1);
  return Buffer.concat([header, Buffer.from(payload)]);
}

/** Splits a body into its envelopes; throws on a truncated one. */
export function envelopes(body: Buffer): { flags: number; payload: Buffer }[] {
  const out: { flags: number; payload: Buffer }[] = [];
  for (let offset = 0; offset < body.length; ) {
    if (body.length - offset < 5) throw new Error(`truncated envelope header at byte ${offset} of ${body.length}`);
    const length = body.readUInt32BE(offset + 1);
    if (body.length - offset - 5 < length) throw new Error(`truncated envelope at byte ${offset}: ${length} bytes announced`);
    out.push({ flags: body.readUInt8(offset), payload: body.subarray(offset + 5, offset + 5 + length) });
    offset += 5 + length;
  }
  return out;
}

/** Flag of gRPC-Web's last envelope, which holds the trailers. */
export const GRPC_WEB_TRAILERS = 0x80;

/** gRPC-Web trailers ("name: value\r\n" lines) as a map with lower-cased names. */
export function grpcWebTrailers(payload: Buffer): Map<string, string> {
  const trailers = new Map<string, string>();
  for (const line of payload.toString('latin1').split('\r\n')) {
    const colon = line.indexOf(':');
    if (colon > 0) trailers.set(line.slice(0, colon).trim().toLowerCase(), line.slice(colon + 1).trim());
  }
  return trailers;
}

/** A gRPC-Web ListOperators request body (binary): one data envelope. */
export const grpcWebListOperators = (): Buffer => envelope(0, toBinary(ListOperatorsRequestSchema, create(ListOperatorsRequestSchema, { pageSize: 500 })));

/**
 * Checks a gRPC-Web ListOperators response body holds exactly a data envelope
 * and a trailer envelope with grpc-status 0; returns the operators' names.
 */
export function grpcWebOperatorNames(body: Buffer): string[] {
  const [message, trailers, ...rest] = envelopes(body);
  expect(rest).toEqual([]);
  expect(message!.flags).toBe(0);
  expect(trailers!.flags).toBe(GRPC_WEB_TRAILERS);
  expect(grpcWebTrailers(trailers!.payload).get('grpc-status')).toBe('0');
  return fromBinary(ListOperatorsResponseSchema, message!.payload).operators.map((operator) => operator.name);
}
