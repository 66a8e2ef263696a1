// The one port speaks three protocols besides gRPC: Connect with JSON (what
// curl sends), Connect with binary protobuf, and gRPC-Web. Each is driven here
// by hand over node:http2 (and by the real curl binary), so that nothing of
// Connect-ES's client side is involved.
import { execFile } from 'node:child_process';
import { accessSync, constants } from 'node:fs';
import http2 from 'node:http2';
import { delimiter, join } from 'node:path';
import { promisify } from 'node:util';
import { create, fromBinary, toBinary } from '@bufbuild/protobuf';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { CreateOperatorRequestSchema, CreateOperatorResponseSchema } from '../../gen/crm/v1/admin_pb.js';
import { GetOperatorRequestSchema, GetOperatorResponseSchema } from '../../gen/crm/v1/query_pb.js';
import { BadRequestSchema } from '../../gen/google/rpc/error_details_pb.js';
import { StatusSchema } from '../../gen/google/rpc/status_pb.js';
import { anyUnpack } from '@bufbuild/protobuf/wkt';
import { unique } from '../support/fixtures.ts';
import { startTestServer, type TestServer } from '../support/test-server.ts';

const execFileAsync = promisify(execFile);

interface RawResponse {
  status: number;
  headers: http2.IncomingHttpHeaders;
  body: Buffer;
}

/** One POST over HTTP/2 cleartext (prior knowledge), the whole response buffered. */
async function post(port: number, path: string, contentType: string, body: Uint8Array | string, extraHeaders: http2.OutgoingHttpHeaders = {}): Promise<RawResponse> {
  const session = http2.connect(`http://127.0.0.1:${port}`);
  try {
    return await new Promise<RawResponse>((resolve, reject) => {
      session.once('error', reject);
      const request = session.request({ ':method': 'POST', ':path': path, 'content-type': contentType, ...extraHeaders });
      const chunks: Buffer[] = [];
      let headers: http2.IncomingHttpHeaders = {};
      request.once('response', (h) => {
        headers = h;
      });
      request.on('data', (chunk: Buffer) => chunks.push(chunk));
      request.once('error', reject);
      request.once('end', () => resolve({ status: Number(headers[':status']), headers, body: Buffer.concat(chunks) }));
      request.end(typeof body === 'string' ? body : Buffer.from(body));
    });
  } finally {
    session.close();
  }
}

/** Base64 as Connect writes it (unpadded, standard or URL alphabet) to bytes. */
function base64Bytes(text: string): Buffer {
  return Buffer.from(text.replace(/-/g, '+').replace(/_/g, '/'), 'base64');
}

/** The first executable `curl` on PATH, or undefined. */
function findCurl(): string | undefined {
  for (const dir of (process.env.PATH ?? '').split(delimiter)) {
    if (dir === '') continue;
    const candidate = join(dir, 'curl');
    try {
      accessSync(candidate, constants.X_OK);
      return candidate;
    } catch {
      // not here
    }
  }
  return undefined;
}

/** A gRPC / gRPC-Web frame: flags byte, 4-byte big-endian length, payload. */
function frame(flags: number, payload: Uint8Array): Buffer {
  const header = Buffer.alloc(5);
  header.writeUInt8(flags, 0);
  header.writeUInt32BE(payload.length, 1);
  return Buffer.concat([header, Buffer.from(payload)]);
}

/** Splits a gRPC-Web response body into its frames; fails on a truncated frame. */
function frames(body: Buffer): { flags: number; payload: Buffer }[] {
  const out: { flags: number; payload: Buffer }[] = [];
  let offset = 0;
  while (offset < body.length) {
    expect(body.length - offset, 'frame header').toBeGreaterThanOrEqual(5);
    const flags = body.readUInt8(offset);
    const length = body.readUInt32BE(offset + 1);
    expect(body.length - offset - 5, 'frame payload').toBeGreaterThanOrEqual(length);
    out.push({ flags, payload: body.subarray(offset + 5, offset + 5 + length) });
    offset += 5 + length;
  }
  return out;
}

/** gRPC-Web trailers ("name: value\r\n" lines) as a map with lower-cased names. */
function parseTrailers(payload: Buffer): Map<string, string> {
  const trailers = new Map<string, string>();
  for (const line of payload.toString('latin1').split('\r\n')) {
    if (line === '') continue;
    const colon = line.indexOf(':');
    expect(colon, `trailer line ${JSON.stringify(line)}`).toBeGreaterThan(0);
    trailers.set(line.slice(0, colon).trim().toLowerCase(), line.slice(colon + 1).trim());
  }
  return trailers;
}

describe('protocols on the service port', () => {
  let t: TestServer;
  let port: number;
  const names = [unique('json-op'), unique('json-op')];
  let operatorIds: bigint[];

  beforeAll(async () => {
    t = await startTestServer();
    port = t.server.port;
    operatorIds = [];
    for (const [i, name] of names.entries()) {
      const { operator } = await t.admin.createOperator({ name, maxLoad: 3 + i });
      operatorIds.push(operator!.id);
    }
  });
  afterAll(() => t.dispose());

  describe('Connect with JSON', () => {
    it('ListOperators with body {} answers 200 with proto3 JSON, int64 ids as strings', async () => {
      const response = await post(port, '/crm.v1.QueryService/ListOperators', 'application/json', '{}');
      expect(response.status).toBe(200);
      expect(response.headers['content-type']).toMatch(/^application\/json/);
      const json = JSON.parse(response.body.toString('utf8')) as { operators: Record<string, unknown>[]; nextPageToken?: string };
      // Other tests here add operators later; those made in beforeAll come first (ordered by id).
      const ours = json.operators.filter((o) => names.includes(o.name as string));
      expect(ours).toHaveLength(2);
      expect(ours[0]).toMatchObject({ id: String(operatorIds[0]), name: names[0], active: true, maxLoad: 3 });
      expect(ours[1]).toMatchObject({ id: String(operatorIds[1]), name: names[1], active: true, maxLoad: 4 });
      for (const operator of json.operators) {
        expect(typeof operator.id).toBe('string');
        // google.protobuf.Timestamp in proto3 JSON is an RFC 3339 string.
        expect(operator.createdAt).toMatch(/^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?Z$/);
      }
    });

    it('GetOperator with an unknown id answers the Connect error JSON with code not_found (HTTP 404)', async () => {
      const response = await post(port, '/crm.v1.QueryService/GetOperator', 'application/json', JSON.stringify({ operatorId: '987654321' }));
      expect(response.status).toBe(404);
      expect(response.headers['content-type']).toMatch(/^application\/json/);
      const error = JSON.parse(response.body.toString('utf8')) as { code: string; message: string };
      expect(error.code).toBe('not_found');
      expect(typeof error.message).toBe('string');
      expect(error.message.length).toBeGreaterThan(0);
    });

    it('INVALID_ARGUMENT carries the google.rpc.BadRequest detail (HTTP 400)', async () => {
      const response = await post(port, '/crm.v1.AdminService/CreateOperator', 'application/json', JSON.stringify({ name: ' ', maxLoad: -1 }));
      expect(response.status).toBe(400);
      const error = JSON.parse(response.body.toString('utf8')) as { code: string; message: string; details?: { type: string; value: string }[] };
      expect(error.code).toBe('invalid_argument');
      expect(error.details).toBeDefined();
      const badRequests = error.details!.filter((d) => d.type === 'google.rpc.BadRequest');
      expect(badRequests).toHaveLength(1);
      const detail = fromBinary(BadRequestSchema, base64Bytes(badRequests[0]!.value));
      expect(detail.fieldViolations.map((v) => v.field)).toEqual(['name', 'max_load']);
      for (const violation of detail.fieldViolations) expect(violation.description.length).toBeGreaterThan(0);
    });

    it('the real curl --http2-prior-knowledge binary gets the JSON answer', async (context) => {
      const curl = findCurl();
      if (!curl) {
        context.skip('no executable curl on PATH');
        return;
      }
      // Asynchronous, so the in-process server keeps serving while curl waits.
      const { stdout } = await execFileAsync(
        curl,
        [
          '--silent',
          '--show-error',
          '--http2-prior-knowledge',
          '--max-time',
          '20',
          '-H',
          'content-type: application/json',
          '-d',
          '{}',
          '--write-out',
          '\n%{http_version} %{http_code}',
          `http://127.0.0.1:${port}/crm.v1.QueryService/ListOperators`,
        ],
        { encoding: 'utf8' },
      );
      const newline = stdout.lastIndexOf('\n');
      expect(stdout.slice(newline + 1)).toBe('2 200');
      const json = JSON.parse(stdout.slice(0, newline)) as { operators: { id: unknown; name: unknown }[] };
      expect(json.operators.filter((o) => names.includes(o.name as string)).map((o) => [o.id, o.name])).toEqual([
        [String(operatorIds[0]), names[0]],
        [String(operatorIds[1]), names[1]],
      ]);
    });
  });

  describe('gRPC-Web', () => {
    it('CreateOperator with a framed protobuf message answers a data frame and a trailer frame with grpc-status 0', async () => {
      const name = unique('web-op');
      const request = toBinary(CreateOperatorRequestSchema, create(CreateOperatorRequestSchema, { name, maxLoad: 7, active: false }));
      const response = await post(port, '/crm.v1.AdminService/CreateOperator', 'application/grpc-web+proto', frame(0, request), { 'x-grpc-web': '1' });
      expect(response.status).toBe(200);
      expect(response.headers['content-type']).toBe('application/grpc-web+proto');
      const parts = frames(response.body);
      expect(parts.map((p) => p.flags)).toEqual([0x00, 0x80]);
      const trailers = parseTrailers(parts[1]!.payload);
      expect(trailers.get('grpc-status')).toBe('0');
      const { operator } = fromBinary(CreateOperatorResponseSchema, parts[0]!.payload);
      expect(operator).toMatchObject({ name, maxLoad: 7, active: false, openLoad: 0 });
      expect(operator!.id).toBeGreaterThan(0n);
      // The operator really exists: read it back over gRPC.
      const stored = await t.query.getOperator({ operatorId: operator!.id });
      expect(stored.operator).toMatchObject({ id: operator!.id, name, maxLoad: 7, active: false });
    });

    it('an error is reported in the trailer frame: NOT_FOUND, and INVALID_ARGUMENT with BadRequest details', async () => {
      const notFound = toBinary(GetOperatorRequestSchema, create(GetOperatorRequestSchema, { operatorId: 987654321n }));
      const missing = await post(port, '/crm.v1.QueryService/GetOperator', 'application/grpc-web+proto', frame(0, notFound), { 'x-grpc-web': '1' });
      expect(missing.status).toBe(200);
      const missingParts = frames(missing.body);
      expect(missingParts.map((p) => p.flags)).toEqual([0x80]);
      const missingTrailers = parseTrailers(missingParts[0]!.payload);
      expect(missingTrailers.get('grpc-status')).toBe('5');
      expect(decodeURIComponent(missingTrailers.get('grpc-message') ?? '').length).toBeGreaterThan(0);

      const invalid = toBinary(CreateOperatorRequestSchema, create(CreateOperatorRequestSchema, { name: ' ', maxLoad: -1 }));
      const bad = await post(port, '/crm.v1.AdminService/CreateOperator', 'application/grpc-web+proto', frame(0, invalid), { 'x-grpc-web': '1' });
      expect(bad.status).toBe(200);
      const badParts = frames(bad.body);
      expect(badParts.map((p) => p.flags)).toEqual([0x80]);
      const badTrailers = parseTrailers(badParts[0]!.payload);
      expect(badTrailers.get('grpc-status')).toBe('3');
      const details = badTrailers.get('grpc-status-details-bin');
      expect(details).toBeDefined();
      const status = fromBinary(StatusSchema, base64Bytes(details!));
      expect(status.code).toBe(3);
      const fields = status.details.flatMap((any) => anyUnpack(any, BadRequestSchema)?.fieldViolations.map((v) => v.field) ?? []);
      expect(fields).toEqual(['name', 'max_load']);
    });
  });

  describe('Connect with binary protobuf', () => {
    it('GetOperator as application/proto answers the protobuf response', async () => {
      const request = toBinary(GetOperatorRequestSchema, create(GetOperatorRequestSchema, { operatorId: operatorIds[1]! }));
      const response = await post(port, '/crm.v1.QueryService/GetOperator', 'application/proto', request);
      expect(response.status).toBe(200);
      expect(response.headers['content-type']).toBe('application/proto');
      const { operator } = fromBinary(GetOperatorResponseSchema, response.body);
      expect(operator).toMatchObject({ id: operatorIds[1], name: names[1], maxLoad: 4, active: true, openLoad: 0 });
    });

    it('CreateOperator as application/proto creates the operator', async () => {
      const name = unique('proto-op');
      const request = toBinary(CreateOperatorRequestSchema, create(CreateOperatorRequestSchema, { name, maxLoad: 2 }));
      const response = await post(port, '/crm.v1.AdminService/CreateOperator', 'application/proto', request);
      expect(response.status).toBe(200);
      const { operator } = fromBinary(CreateOperatorResponseSchema, response.body);
      expect(operator).toMatchObject({ name, maxLoad: 2, active: true });
      expect((await t.query.getOperator({ operatorId: operator!.id })).operator?.name).toBe(name);
    });
  });
});
