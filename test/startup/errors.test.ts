// Start-up failures of the real process (`node src/main.ts`, as `npm start`
// runs it): one line on stderr naming the setting and its value, never a
// password, no stack trace unless LOG_LEVEL=debug; exit 2 when the
// configuration is wrong, 1 when what it names cannot be had (README,
// "Start-up errors").
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import net from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { spawnServer, type ServerProcess } from '../support/child-server.ts';

const postgresServer = process.env.TEST_DATABASE_URL;
/** In the one password of these tests: it must never be printed. */
const PASSWORD = 'hunter2-secret';

interface FailureCase {
  name: string;
  env: () => Record<string, string>;
  exitCode: 1 | 2;
  /** The one line on stderr, after "crm-distributor: ". */
  line: () => RegExp;
  /** Needs a PostgreSQL server to answer (TEST_DATABASE_URL). */
  postgres?: boolean;
}

let dir: string;
/** A port this test holds, so the server cannot have it. */
let heldPort: number;
let holder: net.Server;
const children: ServerProcess[] = [];

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'crm-startup-'));
  holder = net.createServer();
  await new Promise<void>((resolve) => holder.listen(0, '127.0.0.1', resolve));
  heldPort = (holder.address() as net.AddressInfo).port;
});

afterEach(async () => {
  for (const child of children.splice(0)) await child.stop();
});

afterAll(async () => {
  await new Promise((resolve) => holder.close(resolve));
  rmSync(dir, { recursive: true, force: true });
});

/** Starts the server with only `env` (and PATH, HOME): nothing around the tests changes what it does. */
function start(env: Record<string, string>): ServerProcess {
  const child = spawnServer(env, { isolated: true });
  children.push(child);
  return child;
}

/** TEST_DATABASE_URL's server, with `change` applied (a database or role that does not exist). */
function postgresUrl(change: (url: URL) => void): string {
  const url = new URL(postgresServer!);
  change(url);
  return url.href;
}

const escape = (text: string | number) => String(text).replace(/[.*+?^${}()|[\]\\]/g, '\\$&');

const FAILURES: FailureCase[] = [
  {
    name: 'PORT held by another process',
    env: () => ({ DATABASE_URL: 'sqlite::memory:', PORT: String(heldPort) }),
    exitCode: 1,
    line: () => new RegExp(`^PORT=${heldPort}: listen 127\\.0\\.0\\.1:${heldPort}: address already in use$`),
  },
  {
    name: 'METRICS_PORT held by another process',
    env: () => ({ DATABASE_URL: 'sqlite::memory:', METRICS_PORT: String(heldPort) }),
    exitCode: 1,
    line: () => new RegExp(`^METRICS_PORT=${heldPort}: listen 127\\.0\\.0\\.1:${heldPort}: address already in use$`),
  },
  {
    name: 'a PostgreSQL database that does not exist',
    env: () => ({ DATABASE_URL: postgresUrl((url) => (url.pathname = '/crm_no_such_database')) }),
    exitCode: 1,
    line: () => /^DATABASE_URL=postgres:\/\/[^ ]+\/crm_no_such_database: database "crm_no_such_database" does not exist$/,
    postgres: true,
  },
  {
    // With trust authentication the role is looked up; with a password one, the password is checked first.
    name: 'a PostgreSQL role that does not exist, with a password',
    env: () => ({ DATABASE_URL: postgresUrl((url) => ((url.username = 'crm_no_such_role'), (url.password = PASSWORD))) }),
    exitCode: 1,
    line: () => /^DATABASE_URL=postgres:\/\/crm_no_such_role:\*\*\*@[^ ]+: (?:role "crm_no_such_role" does not exist|password authentication failed for user "crm_no_such_role")$/,
    postgres: true,
  },
  {
    name: 'a PostgreSQL server that refuses connections',
    env: () => ({ DATABASE_URL: `postgres://postgres:${PASSWORD}@127.0.0.1:1/crm` }),
    exitCode: 1,
    line: () => /^DATABASE_URL=postgres:\/\/postgres:\*\*\*@127\.0\.0\.1:1\/crm: connect 127\.0\.0\.1:1: connection refused$/,
  },
  {
    name: 'a PostgreSQL URL without a database',
    env: () => ({ DATABASE_URL: 'postgres://127.0.0.1:5432' }),
    exitCode: 2,
    line: () => /^DATABASE_URL=postgres:\/\/127\.0\.0\.1:5432 names no database: /,
  },
  {
    name: 'a SQLite file whose directory cannot be made (a bare path)',
    env: () => ({ DATABASE_URL: '/proc/forbidden/crm.sqlite' }),
    exitCode: 1,
    line: () => /^DATABASE_URL=\/proc\/forbidden\/crm\.sqlite: mkdir \/proc\/forbidden: no such file or directory$/,
  },
  {
    name: 'a SQLite file that cannot be created',
    env: () => ({ DATABASE_URL: 'sqlite:/proc/crm.sqlite' }),
    exitCode: 1,
    line: () => /^DATABASE_URL=sqlite:\/proc\/crm\.sqlite: unable to open database file$/,
  },
  {
    name: 'a LOG_LEVEL that is not a level',
    env: () => ({ DATABASE_URL: 'sqlite::memory:', LOG_LEVEL: 'verbose' }),
    exitCode: 2,
    line: () => /^LOG_LEVEL="verbose" is not a level: use fatal, error, warn, info, debug, trace or silent$/,
  },
  {
    name: 'a CRM_TOKENS_FILE that cannot be read',
    env: () => ({ DATABASE_URL: 'sqlite::memory:', CRM_TOKENS_FILE: join(dir, 'missing-tokens.txt') }),
    exitCode: 2,
    line: () => new RegExp(`^CRM_TOKENS_FILE\\b.*${escape(join(dir, 'missing-tokens.txt'))}`),
  },
];

/** The process exits with `exitCode` and one line on stderr that matches `line`, without a stack trace or the password. */
async function expectRefusal({ env, exitCode, line }: FailureCase): Promise<void> {
  const child = start(env());
  expect(await child.exitStatus).toEqual({ code: exitCode, signal: null });
  const stderr = child.stderr();
  expect(stderr, child.output()).toMatch(/^crm-distributor: [^\n]*\n$/);
  expect(stderr.slice('crm-distributor: '.length, -1)).toMatch(line());
  expect(child.output()).not.toMatch(/^\s+at /m);
  expect(child.output()).not.toContain(PASSWORD);
  expect(child.stdout()).not.toContain('listening');
}

const TITLE = '$name: exit $exitCode, one line naming the setting and its value, no stack';

describe('a server that cannot start', () => {
  it.each(FAILURES.filter((failure) => !failure.postgres))(TITLE, expectRefusal);

  describe.skipIf(!postgresServer)('on a PostgreSQL server that answers (TEST_DATABASE_URL; skipped without it)', () => {
    it.each(FAILURES.filter((failure) => failure.postgres))(TITLE, expectRefusal);
  });

  it('with LOG_LEVEL=debug, prints the failure with its stack after the line', async () => {
    const child = start({ DATABASE_URL: 'sqlite::memory:', PORT: String(heldPort), LOG_LEVEL: 'debug' });
    expect(await child.exitStatus).toEqual({ code: 1, signal: null });
    const [first, ...rest] = child.stderr().split('\n');
    expect(first).toBe(`crm-distributor: PORT=${heldPort}: listen 127.0.0.1:${heldPort}: address already in use`);
    expect(rest.join('\n')).toMatch(/EADDRINUSE/);
    expect(rest.join('\n')).toMatch(/^\s+at /m);
  });
});

describe('DATABASE_URL as a bare path', () => {
  it('is a SQLite file: the server starts on it and stops with exit 0', async () => {
    const path = join(dir, 'bare', 'crm.sqlite');
    const child = start({ DATABASE_URL: path });
    await child.listening();
    expect(existsSync(path)).toBe(true);
    child.kill('SIGTERM');
    expect(await child.exitStatus).toEqual({ code: 0, signal: null });
    expect(child.stderr()).toBe('');
  });
});
