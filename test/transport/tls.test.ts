// The port over TLS (TLS_CERT_FILE, TLS_KEY_FILE), against certificates of a
// test CA: gRPC with grpc-js, Connect over HTTP/1.1 (node:https) and HTTP/2
// (node:http2, ALPN h2), gRPC-Web over HTTP/1.1; a connection that dribbles
// its TLS hello is closed at the handshake deadline. With TLS_CLIENT_CA_FILE
// only clients holding a certificate from that CA get through. The settings
// are read and checked at start: a mistake stops it, naming the setting.
import http2 from 'node:http2';
import net from 'node:net';
import * as grpc from '@grpc/grpc-js';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { AdminService } from '../../gen/crm/v1/admin_pb.js';
import { QueryService } from '../../gen/crm/v1/query_pb.js';
import { configFromEnv } from '../../src/config.ts';
import { DEFAULT_CONNECTION_LIMITS, type TlsCredentials } from '../../src/transport/service-port.ts';
import { createCertificates, type KeyPair, type TestCertificates } from '../support/certificates.ts';
import { spawnServer, type ServerProcess } from '../support/child-server.ts';
import { within } from '../support/faults.ts';
import { unique } from '../support/fixtures.ts';
import { grpcClient } from '../support/grpc-client.ts';
import { grpcWebListOperators, grpcWebOperatorNames, http1Post } from '../support/http1-calls.ts';
import { createTestDatabase, type TestDatabase } from '../support/test-database.ts';
import { startTestServer, type TestServer } from '../support/test-server.ts';

const LIST_OPERATORS = '/crm.v1.QueryService/ListOperators';

let certs: TestCertificates;

beforeAll(() => {
  certs = createCertificates();
});

afterAll(() => {
  certs?.remove();
});

/** The server side of TLS as the environment gives it: the files are read by configFromEnv. */
function tlsFromFiles(env: Record<string, string> = {}): TlsCredentials {
  const { tls } = configFromEnv({ DATABASE_URL: 'sqlite::memory:', TLS_CERT_FILE: certs.server.certFile, TLS_KEY_FILE: certs.server.keyFile, ...env });
  expect(tls).toBeDefined();
  return tls!;
}

/**
 * grpc-js credentials trusting the test CA, presenting `client` if given.
 * (Their target names `localhost`: grpc-js would send an IP address as the TLS server name, which RFC 6066 forbids.)
 */
function sslCredentials(client?: KeyPair): grpc.ChannelCredentials {
  return client ? grpc.credentials.createSsl(certs.ca, client.key, client.cert) : grpc.credentials.createSsl(certs.ca);
}

/** Names of the operators ListOperators answers, from a Connect JSON body. */
function jsonOperatorNames(body: Buffer): string[] {
  // Proto3 JSON leaves an empty list out.
  return ((JSON.parse(body.toString('utf8')) as { operators?: { name: string }[] }).operators ?? []).map((operator) => operator.name);
}

describe('the port over TLS', () => {
  let t: TestServer;
  let port: number;
  const operatorName = unique('tls-op');

  beforeAll(async () => {
    t = await startTestServer({ config: { tls: tlsFromFiles(), connections: { ...DEFAULT_CONNECTION_LIMITS, handshakeTimeoutMs: 1_000 } } });
    port = t.server.port;
    const admin = grpcClient(AdminService, `localhost:${port}`, undefined, sslCredentials());
    try {
      await admin.createOperator({ name: operatorName, maxLoad: 2 });
    } finally {
      admin.close();
    }
  });

  afterAll(async () => {
    await t?.dispose();
  });

  it('gRPC: grpc-js trusting the CA is answered; a cleartext client is not', async () => {
    const query = grpcClient(QueryService, `localhost:${port}`, undefined, sslCredentials());
    try {
      const { operators } = await query.listOperators({ pageSize: 500 });
      expect(operators.map((operator) => operator.name)).toContain(operatorName);
    } finally {
      query.close();
    }
    // The test server's own clients speak cleartext.
    await expect(t.query.listOperators({})).rejects.toMatchObject({ code: grpc.status.UNAVAILABLE });
  });

  it('Connect with JSON over HTTP/1.1 (node:https trusting the CA)', async () => {
    const response = await http1Post(`https://127.0.0.1:${port}${LIST_OPERATORS}`, { 'content-type': 'application/json' }, '{}', { ca: certs.ca });
    expect(response.httpVersion).toBe('1.1');
    expect(response.status).toBe(200);
    expect(response.headers['content-type']).toMatch(/^application\/json/);
    expect(jsonOperatorNames(response.body)).toContain(operatorName);
  });

  it('Connect with JSON over HTTP/2 (node:http2 trusting the CA, ALPN h2, server name localhost)', async () => {
    const session = http2.connect(`https://localhost:${port}`, { ca: certs.ca });
    try {
      const { status, body } = await new Promise<{ status: number; body: Buffer }>((resolve, reject) => {
        session.once('error', reject);
        const request = session.request({ ':method': 'POST', ':path': LIST_OPERATORS, 'content-type': 'application/json' });
        const chunks: Buffer[] = [];
        let status = 0;
        request.once('response', (headers) => (status = Number(headers[':status'])));
        request.on('data', (chunk: Buffer) => chunks.push(chunk));
        request.once('error', reject);
        request.once('end', () => resolve({ status, body: Buffer.concat(chunks) }));
        request.end('{}');
      });
      expect(session.alpnProtocol).toBe('h2');
      expect(status).toBe(200);
      expect(jsonOperatorNames(body)).toContain(operatorName);
    } finally {
      session.destroy();
    }
  });

  it('gRPC-Web over HTTP/1.1: a data envelope and a trailer envelope with grpc-status 0', async () => {
    const response = await http1Post(`https://127.0.0.1:${port}${LIST_OPERATORS}`, { 'content-type': 'application/grpc-web+proto', 'x-grpc-web': '1' }, grpcWebListOperators(), { ca: certs.ca });
    expect(response.httpVersion).toBe('1.1');
    expect(response.status).toBe(200);
    expect(response.headers['content-type']).toMatch(/^application\/grpc-web/);
    expect(grpcWebOperatorNames(response.body)).toContain(operatorName);
  });

  it('presents the configured certificate: a client that does not trust the test CA refuses it', async () => {
    await expect(http1Post(`https://127.0.0.1:${port}${LIST_OPERATORS}`, { 'content-type': 'application/json' }, '{}')).rejects.toMatchObject({
      code: expect.stringMatching(/SELF_SIGNED|UNABLE_TO_VERIFY|UNABLE_TO_GET_ISSUER/),
    });
  });

  it('a connection that dribbles its TLS hello (never finishing it) is closed at the handshake deadline; others are still served', async () => {
    // The deadline is 1 s here. TLS's own handshake timeout would start over with every byte.
    const CLOSE_BOUND_MS = 10_000;
    const socket = net.connect({ host: '127.0.0.1', port });
    socket.on('error', () => undefined);
    socket.resume();
    const closed = new Promise<void>((resolve) => socket.once('close', () => resolve()));
    // A handshake record announcing 512 bytes, then one byte of it every 100 ms.
    socket.write(Buffer.from([0x16, 0x03, 0x01, 0x02, 0x00]));
    let dribbled = 0;
    const drip = setInterval(() => {
      if (!socket.destroyed && dribbled < 512) socket.write(Buffer.from([++dribbled]));
    }, 100);
    try {
      await within(closed, CLOSE_BOUND_MS, 'the server closing the dribbling connection');
      // Closed while still speaking: the bytes kept coming, never the whole hello.
      expect(dribbled).toBeGreaterThan(0);
      expect(dribbled).toBeLessThan(512);
    } finally {
      clearInterval(drip);
      socket.destroy();
    }
    const response = await http1Post(`https://127.0.0.1:${port}${LIST_OPERATORS}`, { 'content-type': 'application/json' }, '{}', { ca: certs.ca });
    expect(response.status).toBe(200);
  });
});

describe('TLS_CLIENT_CA_FILE: client certificates required (mTLS)', () => {
  let t: TestServer;
  let port: number;

  beforeAll(async () => {
    t = await startTestServer({ config: { tls: tlsFromFiles({ TLS_CLIENT_CA_FILE: certs.caFile }) } });
    port = t.server.port;
  });

  afterAll(async () => {
    await t?.dispose();
  });

  it('gRPC: a client certificate from the CA gets through; none, or one from another CA, is refused', async () => {
    const clients = {
      trusted: grpcClient(QueryService, `localhost:${port}`, undefined, sslCredentials(certs.client)),
      anonymous: grpcClient(QueryService, `localhost:${port}`, undefined, sslCredentials()),
      stranger: grpcClient(QueryService, `localhost:${port}`, undefined, sslCredentials(certs.stranger)),
    };
    try {
      expect(await clients.trusted.listOperators({})).toMatchObject({ operators: [] });
      // The handshake (TLS 1.2) or the first read after it (TLS 1.3) fails: the call never reaches the server.
      await expect(clients.anonymous.listOperators({})).rejects.toMatchObject({ code: grpc.status.UNAVAILABLE });
      await expect(clients.stranger.listOperators({})).rejects.toMatchObject({ code: grpc.status.UNAVAILABLE });
    } finally {
      Object.values(clients).forEach((client) => client.close());
    }
  });

  it('HTTP/1.1: Connect with the client certificate answers; without one the connection is refused', async () => {
    const url = `https://127.0.0.1:${port}${LIST_OPERATORS}`;
    const headers = { 'content-type': 'application/json' };
    const response = await http1Post(url, headers, '{}', { ca: certs.ca, cert: certs.client.cert, key: certs.client.key });
    expect(response.status).toBe(200);
    expect(jsonOperatorNames(response.body)).toEqual([]);
    await expect(http1Post(url, headers, '{}', { ca: certs.ca })).rejects.toThrow();
    await expect(http1Post(url, headers, '{}', { ca: certs.ca, cert: certs.stranger.cert, key: certs.stranger.key })).rejects.toThrow();
  });
});

describe('node src/main.ts with TLS on HOST=0.0.0.0', () => {
  let db: TestDatabase;
  let child: ServerProcess;

  afterAll(async () => {
    await child?.stop();
    await db?.drop();
  });

  it('reads the files named in the environment, serves gRPC over TLS, and does not warn of cleartext tokens', async () => {
    db = await createTestDatabase();
    const token = 'tls-admin-token';
    child = spawnServer(
      { DATABASE_URL: db.url, HOST: '0.0.0.0', CRM_TOKENS: `admin:${token}`, TLS_CERT_FILE: certs.server.certFile, TLS_KEY_FILE: certs.server.keyFile },
      { isolated: true },
    );
    const { port } = await child.listening();
    const bearer = new grpc.Metadata();
    bearer.set('authorization', `Bearer ${token}`);
    const query = grpcClient(QueryService, `localhost:${port}`, bearer, sslCredentials());
    try {
      expect(await query.listOperators({})).toMatchObject({ operators: [] });
    } finally {
      query.close();
    }
    expect(child.logs().filter((line) => /cleartext/.test(String(line.msg)))).toEqual([]);
  });
});

describe('TLS settings are checked at start', () => {
  const env = () => ({ DATABASE_URL: 'sqlite::memory:', TLS_CERT_FILE: certs.server.certFile, TLS_KEY_FILE: certs.server.keyFile });

  it.each<[string, () => Record<string, string | undefined>, RegExp]>([
    ['a missing certificate file', () => ({ ...env(), TLS_CERT_FILE: '/nonexistent/server.pem' }), /^TLS_CERT_FILE: cannot read \/nonexistent\/server\.pem \(ENOENT\)$/],
    ['a missing key file', () => ({ ...env(), TLS_KEY_FILE: '/nonexistent/server.key' }), /^TLS_KEY_FILE: cannot read/],
    ['a missing client CA file', () => ({ ...env(), TLS_CLIENT_CA_FILE: '/nonexistent/ca.pem' }), /^TLS_CLIENT_CA_FILE: cannot read/],
    ['a certificate without a key', () => ({ ...env(), TLS_KEY_FILE: undefined }), /TLS_CERT_FILE and TLS_KEY_FILE go together/],
    ['a key without a certificate', () => ({ ...env(), TLS_CERT_FILE: '' }), /TLS_CERT_FILE and TLS_KEY_FILE go together/],
    ['a client CA without TLS', () => ({ DATABASE_URL: 'sqlite::memory:', TLS_CLIENT_CA_FILE: certs.caFile }), /TLS_CLIENT_CA_FILE requires TLS/],
    ['a key that does not belong to the certificate', () => ({ ...env(), TLS_KEY_FILE: certs.client.keyFile }), /^TLS_CERT_FILE and TLS_KEY_FILE are not a PEM certificate and its private key/],
    ['a client CA file without a certificate', () => ({ ...env(), TLS_CLIENT_CA_FILE: certs.client.keyFile }), /^TLS_CLIENT_CA_FILE holds no PEM certificate$/],
  ])('%s stops the start with a message naming the setting', (_, environment, message) => {
    expect(() => configFromEnv(environment())).toThrow(message);
  });

  it('node src/main.ts says so in one line and exits 2, listening on nothing', async () => {
    const child = spawnServer({ ...env(), TLS_KEY_FILE: '/nonexistent/server.key' }, { isolated: true });
    try {
      const { code, signal } = await within(child.exitStatus, 20_000, 'the refusal to start');
      expect({ code, signal }).toEqual({ code: 2, signal: null });
      expect(child.stderr().trim().split('\n')).toEqual(['crm-distributor: TLS_KEY_FILE: cannot read /nonexistent/server.key (ENOENT)']);
      expect(child.stdout()).not.toContain('listening');
    } finally {
      await child.stop();
    }
  });
});
