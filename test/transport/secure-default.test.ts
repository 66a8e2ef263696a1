// The real entry point (`node src/main.ts`) as a child process: it refuses to
// listen on a non-loopback host without tokens, runs open (with a warning) on
// loopback, and starts with tokens on any host.
import { existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as grpc from '@grpc/grpc-js';
import { afterEach, describe, expect, it } from 'vitest';
import { AdminService } from '../../gen/crm/v1/admin_pb.js';
import { QueryService } from '../../gen/crm/v1/query_pb.js';
import { Health, HealthCheckResponse_ServingStatus as ServingStatus } from '../../gen/grpc/health/v1/health_pb.js';
import { spawnServer, type ServerProcess } from '../support/child-server.ts';
import { grpcClient } from '../support/grpc-client.ts';
import { atLeast } from '../support/log-levels.ts';

const children: ServerProcess[] = [];
const dirs: string[] = [];
const clients: { close(): void }[] = [];

afterEach(async () => {
  for (const client of clients.splice(0)) client.close();
  for (const child of children.splice(0)) await child.stop();
  for (const dir of dirs.splice(0)) rmSync(dir, { recursive: true, force: true });
});

/** A fresh directory for the database; its file does not exist yet. */
function databasePath(): string {
  const dir = mkdtempSync(join(tmpdir(), 'crm-main-'));
  dirs.push(dir);
  return join(dir, 'crm.sqlite');
}

/** Runs `node src/main.ts` from the repository root with only the given environment (and PATH, HOME). */
function start(env: Record<string, string>): ServerProcess {
  const child = spawnServer(env, { isolated: true });
  children.push(child);
  return child;
}

describe('node src/main.ts', () => {
  it.each(['0.0.0.0', '::'])('refuses HOST=%s without tokens: non-zero exit, names CRM_TOKENS, opens nothing', async (host) => {
    const db = databasePath();
    const child = start({ HOST: host, DATABASE_URL: `sqlite:${db}` });
    const { code, signal } = await child.exitStatus;
    expect(signal).toBeNull();
    expect(code).not.toBe(0);
    expect(child.output()).toContain('CRM_TOKENS');
    expect(child.output()).toContain(`HOST=${host}`);
    expect(child.stdout()).not.toContain('listening');
    // A readable refusal, not an uncaught exception's stack trace.
    expect(child.output()).not.toMatch(/^\s+at /m);
    // Refused before the database is opened.
    expect(existsSync(db)).toBe(false);
  });

  it('refuses HOST=0.0.0.0 when CRM_TOKENS_FILE holds only comments', async () => {
    const db = databasePath();
    const file = join(db, '..', 'tokens.txt');
    writeFileSync(file, '# no tokens yet\n\n');
    const child = start({ HOST: '0.0.0.0', DATABASE_URL: `sqlite:${db}`, CRM_TOKENS_FILE: file });
    const { code } = await child.exitStatus;
    expect(code).not.toBe(0);
    expect(child.output()).toContain('CRM_TOKENS');
    expect(existsSync(db)).toBe(false);
  });

  it('refuses a CRM_TOKENS entry with an unknown role without echoing its secret', async () => {
    const db = databasePath();
    const child = start({ HOST: '127.0.0.1', DATABASE_URL: `sqlite:${db}`, CRM_TOKENS: 'admin:good-one,root:hunter2-secret' });
    const { code } = await child.exitStatus;
    expect(code).not.toBe(0);
    expect(child.output()).toContain('CRM_TOKENS');
    expect(child.output()).not.toContain('hunter2-secret');
    expect(child.output()).not.toContain('good-one');
    expect(existsSync(db)).toBe(false);
  });

  it('runs open on HOST=127.0.0.1 without tokens: warns, answers, exits 0 on SIGTERM', async () => {
    const db = databasePath();
    const child = start({ HOST: '127.0.0.1', DATABASE_URL: `sqlite:${db}` });
    const { port } = await child.listening();
    expect(port).toBeGreaterThan(0);

    const warning = child.logs().find((l) => l.level === 'warn');
    expect(warning, child.output()).toBeDefined();
    expect(String(warning!.msg)).toMatch(/no CRM_TOKENS/);
    expect(String(warning!.msg)).toMatch(/every call is allowed/);

    const admin = grpcClient(AdminService, `127.0.0.1:${port}`);
    const query = grpcClient(QueryService, `127.0.0.1:${port}`);
    clients.push(admin, query);
    const { operator } = await admin.createOperator({ name: 'Open Alice', maxLoad: 3 });
    expect((await query.getOperator({ operatorId: operator!.id })).operator?.name).toBe('Open Alice');

    child.process.kill('SIGTERM');
    const { code, signal } = await child.exitStatus;
    expect({ code, signal }).toEqual({ code: 0, signal: null });
    expect(child.logs().map((l) => l.msg)).toEqual(expect.arrayContaining(['shutting down', 'stopped']));
    expect(child.logs().filter((l) => atLeast(l, 'error'))).toEqual([]);
  });

  it('starts on HOST=0.0.0.0 with CRM_TOKENS, enforces them, never logs them, exits 0 on SIGTERM', async () => {
    const db = databasePath();
    const secret = 'admin-secret-5d1c9a';
    const child = start({ HOST: '0.0.0.0', DATABASE_URL: `sqlite:${db}`, CRM_TOKENS: `admin:${secret},bot:bot-secret-77ab` });
    const { port } = await child.listening();
    expect(child.logs().find((l) => typeof l.msg === 'string' && l.msg.startsWith('listening'))).toMatchObject({ host: '0.0.0.0', port });
    // The one warning: without TLS the tokens cross the network readable (test/transport/tls.test.ts runs with TLS).
    expect(child.logs().filter((l) => l.level === 'warn').map((l) => l.msg)).toEqual([expect.stringMatching(/bearer tokens travel in cleartext/)]);

    const address = `127.0.0.1:${port}`;
    const anonymous = grpcClient(QueryService, address);
    const bearer = new grpc.Metadata();
    bearer.set('authorization', `Bearer ${secret}`);
    const authorised = grpcClient(QueryService, address, bearer);
    const health = grpcClient(Health, address);
    clients.push(anonymous, authorised, health);

    const refused = await anonymous.listOperators({}).catch((error: grpc.ServiceError) => error);
    expect(refused).toMatchObject({ code: grpc.status.UNAUTHENTICATED });
    expect(await authorised.listOperators({})).toMatchObject({ operators: [], nextPageToken: '' });
    expect((await health.check({ service: '' })).status).toBe(ServingStatus.SERVING);

    child.process.kill('SIGTERM');
    const { code, signal } = await child.exitStatus;
    expect({ code, signal }).toEqual({ code: 0, signal: null });
    expect(child.output()).not.toContain(secret);
    expect(child.output()).not.toContain('bot-secret-77ab');
  });
});
