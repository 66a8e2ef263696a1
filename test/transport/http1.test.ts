// The cleartext port answers HTTP/1.1 as well as HTTP/2, telling them apart
// by each connection's first bytes: Connect with JSON from the real curl
// (no HTTP/2 flag), Connect with binary protobuf and gRPC-Web from node:http,
// gRPC from grpc-js on the same port and data. The per-client limits hold for
// HTTP/1.1 connections too (handshake deadline, header, request and idle
// timeouts, pipelined requests, MAX_CONNECTIONS counting both protocols), and
// shutdown closes them, keep-alive ones included. A host reachable from other
// machines without TLS logs that bearer tokens travel in cleartext.
import { execFile } from 'node:child_process';
import http2 from 'node:http2';
import net from 'node:net';
import { promisify } from 'node:util';
import { create, fromBinary, toBinary } from '@bufbuild/protobuf';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ListOperatorsRequestSchema, ListOperatorsResponseSchema } from '../../gen/crm/v1/query_pb.js';
import { HealthCheckResponse_ServingStatus as ServingStatus } from '../../gen/grpc/health/v1/health_pb.js';
import { DEFAULT_CONNECTION_LIMITS, type ConnectionLimits } from '../../src/transport/service-port.ts';
import { startChildServer, type ChildServer } from '../support/child-server.ts';
import { which } from '../support/executables.ts';
import { sleep, within } from '../support/faults.ts';
import { unique } from '../support/fixtures.ts';
import { envelope, grpcWebListOperators, grpcWebOperatorNames, http1Post } from '../support/http1-calls.ts';
import { createTestDatabase, type TestDatabase } from '../support/test-database.ts';
import { startTestServer, type TestServer } from '../support/test-server.ts';

const execFileAsync = promisify(execFile);

const LIST_OPERATORS = '/crm.v1.QueryService/ListOperators';
const HEALTH_CHECK = '/grpc.health.v1.Health/Check';
const HEALTH_WATCH = '/grpc.health.v1.Health/Watch';
/** Connect's flag on the last envelope of a stream, which holds its end (an error, if any). */
const END_STREAM = 0x02;
/** Generous against the 1-2 s limits of the servers below: the bound only says "it does get closed". */
const CLOSE_BOUND_MS = 15_000;

/** A complete HTTP/1.1 request, as bytes on the wire. */
function rawRequest(path: string, contentType: string, body: Buffer | string): Buffer {
  const payload = Buffer.from(body);
  const head = `POST ${path} HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: ${contentType}\r\nContent-Length: ${payload.length}\r\n\r\n`;
  return Buffer.concat([Buffer.from(head, 'latin1'), payload]);
}

/** A Health/Watch request over Connect streaming with JSON: the server answers SERVING at once and keeps the stream open. */
const HEALTH_WATCH_REQUEST = rawRequest(HEALTH_WATCH, 'application/connect+json', envelope(0, Buffer.from('{"service":""}')));

/** A TCP connection to the port that keeps what the server sends and tells when it is closed. */
function rawConnection(port: number) {
  const socket = net.connect({ host: '127.0.0.1', port });
  socket.on('error', () => undefined);
  let received = '';
  const arrivals: (() => void)[] = [];
  socket.setEncoding('latin1').on('data', (chunk: string) => {
    received += chunk;
    arrivals.splice(0).forEach((wake) => wake());
  });
  const closed = new Promise<void>((resolve) => socket.once('close', () => resolve()));
  return {
    socket,
    closed,
    received: () => received,
    /** Resolves once what the server sent satisfies `test`. */
    async until(test: (received: string) => boolean, what: string): Promise<void> {
      const deadline = within(closed.then(() => Promise.reject(new Error(`closed before ${what}; received ${JSON.stringify(received)}`))), CLOSE_BOUND_MS, what);
      deadline.catch(() => undefined);
      while (!test(received)) await Promise.race([new Promise<void>((resolve) => arrivals.push(resolve)), deadline]);
    },
  };
}

/** The server stream's first message (SERVING) has arrived. */
const servingArrived = (received: string) => received.includes('"status":"SERVING"');

/** Resolves once the node:http2 session has the server's SETTINGS. */
function handshaken(session: http2.ClientHttp2Session): Promise<void> {
  return new Promise((resolve, reject) => {
    session.once('remoteSettings', () => resolve());
    session.once('close', () => reject(new Error('session closed before the handshake')));
  });
}

async function startLimitedServer(limits: Partial<ConnectionLimits>): Promise<TestServer> {
  return startTestServer({ config: { connections: { ...DEFAULT_CONNECTION_LIMITS, ...limits } } });
}

describe('HTTP/1.1 and HTTP/2 on one cleartext port', () => {
  let t: TestServer;
  let port: number;
  const operatorName = unique('http1-op');

  beforeAll(async () => {
    t = await startTestServer();
    port = t.server.port;
    // Over gRPC (HTTP/2): every HTTP/1.1 call below reads it back.
    await t.admin.createOperator({ name: operatorName, maxLoad: 2 });
  });

  afterAll(async () => {
    await t?.dispose();
  });

  it('Connect with JSON: the real curl, without any HTTP/2 flag, speaks HTTP/1.1 and gets the answer', async (context) => {
    const curl = which('curl');
    if (!curl) {
      context.skip('no executable curl on PATH');
      return;
    }
    // Asynchronous, so the in-process server keeps serving while curl waits.
    const { stdout } = await execFileAsync(
      curl,
      ['--silent', '--show-error', '--max-time', '20', '-H', 'content-type: application/json', '-d', '{}', '--write-out', '\n%{http_version} %{http_code}', `http://127.0.0.1:${port}${LIST_OPERATORS}`],
      { encoding: 'utf8' },
    );
    const newline = stdout.lastIndexOf('\n');
    expect(stdout.slice(newline + 1)).toBe('1.1 200');
    const { operators } = JSON.parse(stdout.slice(0, newline)) as { operators: { name: string }[] };
    expect(operators.map((operator) => operator.name)).toContain(operatorName);
  });

  it('Connect with binary protobuf over HTTP/1.1 (node:http)', async () => {
    const response = await http1Post(
      `http://127.0.0.1:${port}${LIST_OPERATORS}`,
      { 'content-type': 'application/proto' },
      toBinary(ListOperatorsRequestSchema, create(ListOperatorsRequestSchema, { pageSize: 500 })),
    );
    expect(response.httpVersion).toBe('1.1');
    expect(response.status).toBe(200);
    expect(response.headers['content-type']).toBe('application/proto');
    expect(fromBinary(ListOperatorsResponseSchema, response.body).operators.map((operator) => operator.name)).toContain(operatorName);
  });

  it('gRPC-Web over HTTP/1.1 (node:http): a data envelope and a trailer envelope with grpc-status 0', async () => {
    const response = await http1Post(
      `http://127.0.0.1:${port}${LIST_OPERATORS}`,
      { 'content-type': 'application/grpc-web+proto', 'x-grpc-web': '1' },
      grpcWebListOperators(),
    );
    expect(response.httpVersion).toBe('1.1');
    expect(response.status).toBe(200);
    expect(grpcWebOperatorNames(response.body)).toContain(operatorName);
  });

  it('gRPC (HTTP/2, grpc-js) on the same port sees what an HTTP/1.1 call wrote', async () => {
    const name = unique('http1-created');
    const response = await http1Post(`http://127.0.0.1:${port}/crm.v1.AdminService/CreateOperator`, { 'content-type': 'application/json' }, JSON.stringify({ name, maxLoad: 4 }));
    expect(response.status).toBe(200);
    const { operator } = JSON.parse(response.body.toString('utf8')) as { operator: { id: string } };
    expect((await t.query.getOperator({ operatorId: BigInt(operator.id) })).operator).toMatchObject({ name, maxLoad: 4 });
  });
});

describe('limits on HTTP/1.1 connections (in-process: handshake 1 s, request 2 s, idle 1 s, 2 requests per connection)', () => {
  let t: TestServer;
  let port: number;

  beforeAll(async () => {
    t = await startLimitedServer({ handshakeTimeoutMs: 1_000, requestTimeoutMs: 2_000, idleTimeoutMs: 1_000, maxStreamsPerConnection: 2 });
    port = t.server.port;
  });

  afterAll(async () => {
    await t?.dispose();
  });

  it('a connection that sends nothing, one that stops in its request line, and one whose headers never end are closed', async () => {
    const silent = rawConnection(port);
    const halfLine = rawConnection(port);
    halfLine.socket.write('POST /crm.v1.Query');
    const endlessHeaders = rawConnection(port);
    endlessHeaders.socket.write(`POST ${LIST_OPERATORS} HTTP/1.1\r\nHost: 127.0.0.1\r\n`);
    // Headers keep coming, slower than the header timeout allows for all of them.
    const drip = setInterval(() => endlessHeaders.socket.write('X-More: yes\r\n'), 200);
    try {
      await within(Promise.all([silent.closed, halfLine.closed, endlessHeaders.closed]), CLOSE_BOUND_MS, 'the three connections being closed');
      // None of them got an answer to a request: there was none.
      expect(silent.received()).toBe('');
      expect(halfLine.received()).not.toMatch(/^HTTP\/1\.1 200/);
      expect(endlessHeaders.received()).not.toMatch(/^HTTP\/1\.1 200/);
    } finally {
      clearInterval(drip);
      for (const connection of [silent, halfLine, endlessHeaders]) connection.socket.destroy();
    }
  });

  it('a request whose body never completes gets 408 and its connection is closed', async () => {
    const stalled = rawConnection(port);
    try {
      stalled.socket.write(`POST ${LIST_OPERATORS} HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\nContent-Length: 10\r\n\r\n{`);
      await within(stalled.closed, CLOSE_BOUND_MS, 'the stalled request being closed');
      expect(stalled.received()).toMatch(/^HTTP\/1\.1 408 /);
    } finally {
      stalled.socket.destroy();
    }
  });

  it('a keep-alive connection serves requests one after another, and is closed once idle; one with a server stream open is not', async () => {
    const streaming = rawConnection(port);
    const keptAlive = rawConnection(port);
    try {
      streaming.socket.write(HEALTH_WATCH_REQUEST);
      await streaming.until(servingArrived, 'the first message of the health watch');

      // More requests than the connection may have in flight, one after another: each is counted down as it finishes.
      const check = rawRequest(HEALTH_CHECK, 'application/json', '{"service":""}');
      for (let answered = 1; answered <= 3; answered++) {
        keptAlive.socket.write(check);
        await keptAlive.until((received) => received.split('{"status":"SERVING"}').length - 1 === answered, `answer ${answered} on the keep-alive connection`);
      }
      expect(keptAlive.received().match(/HTTP\/1\.1 200 /g)).toHaveLength(3);
      await within(keptAlive.closed, CLOSE_BOUND_MS, 'the idle keep-alive connection being closed');

      // Past the idle timeout again, the open server stream's connection is still there.
      await sleep(2_500);
      expect(streaming.socket.destroyed).toBe(false);
      expect(streaming.received()).toMatch(/^HTTP\/1\.1 200 /);
    } finally {
      streaming.socket.destroy();
      keptAlive.socket.destroy();
    }
  });

  it('pipelining more requests than a connection may have in flight cuts it off; the server still answers', async () => {
    const pipelining = rawConnection(port);
    try {
      // Three server streams that stay open, sent at once: the third is one too many.
      pipelining.socket.write(Buffer.concat([HEALTH_WATCH_REQUEST, HEALTH_WATCH_REQUEST, HEALTH_WATCH_REQUEST]));
      await within(pipelining.closed, CLOSE_BOUND_MS, 'the pipelining connection being cut off');
    } finally {
      pipelining.socket.destroy();
    }
    const response = await http1Post(`http://127.0.0.1:${port}${LIST_OPERATORS}`, { 'content-type': 'application/json' }, '{}');
    expect(response.status).toBe(200);
  });
});

describe('MAX_CONNECTIONS counts HTTP/1.1 and HTTP/2 connections together (in-process, 2)', () => {
  let t: TestServer;
  let port: number;

  beforeAll(async () => {
    t = await startLimitedServer({ maxConnections: 2 });
    port = t.server.port;
  });

  afterAll(async () => {
    await t?.dispose();
  });

  it('with one HTTP/2 and one HTTP/1.1 connection open, a third is closed unanswered; once one leaves, a newcomer is served', async () => {
    const session = http2.connect(`http://127.0.0.1:${port}`);
    session.on('error', () => undefined);
    const keptOpen = rawConnection(port);
    const third = rawConnection(port);
    try {
      await within(handshaken(session), 5_000, 'the HTTP/2 handshake');
      keptOpen.socket.write(HEALTH_WATCH_REQUEST);
      await keptOpen.until(servingArrived, 'the first message on the HTTP/1.1 connection');

      third.socket.write(rawRequest(LIST_OPERATORS, 'application/json', '{}'));
      await within(third.closed, CLOSE_BOUND_MS, 'the third connection being closed');
      expect(third.received()).toBe('');

      await new Promise<void>((resolve) => session.close(resolve));
      // Time for the server to see the leaver's FIN (milliseconds on loopback).
      await sleep(1_000);
      const response = await http1Post(`http://127.0.0.1:${port}${LIST_OPERATORS}`, { 'content-type': 'application/json' }, '{}');
      expect(response.status).toBe(200);
      expect(keptOpen.socket.destroyed).toBe(false);
    } finally {
      session.destroy();
      keptOpen.socket.destroy();
      third.socket.destroy();
    }
  });
});

describe('shutdown with HTTP/1.1 connections open (in-process)', () => {
  let t: TestServer;

  afterAll(async () => {
    await t?.dispose();
  });

  it('closes an idle keep-alive connection, ends a server stream in flight cleanly, and stops long before the drain cut-off', async () => {
    t = await startTestServer();
    const idle = rawConnection(t.server.port);
    const streaming = rawConnection(t.server.port);
    try {
      idle.socket.write(rawRequest(LIST_OPERATORS, 'application/json', '{}'));
      await idle.until((received) => /^HTTP\/1\.1 200 [\s\S]*\r\n\r\n\{/.test(received), 'the response on the keep-alive connection');
      expect(idle.received()).toMatch(/\r\nConnection: keep-alive\r\n/i);
      streaming.socket.write(HEALTH_WATCH_REQUEST);
      await streaming.until(servingArrived, 'the first message of the health watch');

      // Connections left open at shutdown are cut after 8 s: well before that, these were closed, not cut.
      await within(t.stop(), 5_000, 'the server stopping');
      await within(Promise.all([idle.closed, streaming.closed]), 5_000, 'both connections being closed');
      // The stream told NOT_SERVING, then ended without an error: an end-of-stream envelope holding {}.
      const body = Buffer.from(streaming.received(), 'latin1');
      const chunked = body.subarray(body.indexOf('\r\n\r\n') + 4);
      expect(streaming.received()).toContain(`"status":"${ServingStatus[ServingStatus.NOT_SERVING]}"`);
      expect(chunked.toString('latin1')).toContain(envelope(END_STREAM, Buffer.from('{}')).toString('latin1'));
    } finally {
      idle.socket.destroy();
      streaming.socket.destroy();
    }
  });
});

describe('node src/main.ts on HOST=0.0.0.0 without TLS', () => {
  let db: TestDatabase;
  let child: ChildServer;
  const token = 'http1-admin-token';

  beforeAll(async () => {
    db = await createTestDatabase();
    child = await startChildServer({ DATABASE_URL: db.url, HOST: '0.0.0.0', CRM_TOKENS: `admin:${token}` }, { isolated: true });
  });

  afterAll(async () => {
    await child?.stop();
    await db?.drop();
  });

  it('warns that bearer tokens travel in cleartext, and enforces them over HTTP/1.1', async () => {
    const warnings = child.logs().filter((line) => line.level === 'warn' && /cleartext/.test(String(line.msg)));
    expect(warnings, child.output()).toHaveLength(1);
    expect(warnings[0]).toMatchObject({ host: '0.0.0.0' });
    expect(String(warnings[0]!.msg)).toMatch(/bearer tokens/);
    expect(String(warnings[0]!.msg)).toMatch(/TLS_CERT_FILE/);

    const url = `http://127.0.0.1:${child.port}${LIST_OPERATORS}`;
    expect((await http1Post(url, { 'content-type': 'application/json' }, '{}')).status).toBe(401);
    const authorised = await http1Post(url, { 'content-type': 'application/json', authorization: `Bearer ${token}` }, '{}');
    expect(authorised.status).toBe(200);
    expect(authorised.httpVersion).toBe('1.1');
    expect(child.output()).not.toContain(token);
  });
});
