// Where integration tests keep their data: a fresh SQLite file by default, or,
// with TEST_DATABASE_URL set (a PostgreSQL server URL), a fresh PostgreSQL
// database created for the test and dropped afterwards.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pg from 'pg';
import type { DatabaseTarget } from '../../src/storage/database-url.ts';

const postgresServer = process.env.TEST_DATABASE_URL;

/** The dialect the integration suite runs on. */
export const testDialect: DatabaseTarget['kind'] = postgresServer ? 'postgresql' : 'sqlite';

export interface TestDatabase {
  target: DatabaseTarget;
  /** As DATABASE_URL would name it, for child processes. */
  url: string;
  drop(): Promise<void>;
}

let sequence = 0;
/** Databases of this test file not dropped yet (a restarted server shares its database with the first). */
const undropped = new Set<() => Promise<void>>();

export async function createTestDatabase(): Promise<TestDatabase> {
  const database = await create();
  const drop = async () => {
    undropped.delete(drop);
    await database.drop();
  };
  undropped.add(drop);
  return { ...database, drop };
}

/** Drops what the file's tests left behind; run after each test file (see vitest.config.ts). */
export async function dropLeftoverDatabases(): Promise<void> {
  for (const drop of [...undropped]) await drop();
}

async function create(): Promise<TestDatabase> {
  if (!postgresServer) {
    const dir = mkdtempSync(join(tmpdir(), 'crm-test-'));
    const path = join(dir, 'crm.sqlite');
    return { target: { kind: 'sqlite', path }, url: `sqlite:${path}`, drop: async () => rmSync(dir, { recursive: true, force: true }) };
  }
  sequence += 1;
  const name = `crm_test_${process.pid}_${Date.now()}_${sequence}`;
  await administer(`create database ${name}`);
  const url = new URL(postgresServer);
  url.pathname = `/${name}`;
  return { target: { kind: 'postgresql', url: url.href }, url: url.href, drop: () => administer(`drop database if exists ${name} with (force)`) };
}

async function administer(statement: string): Promise<void> {
  const client = new pg.Client({ connectionString: postgresServer });
  await client.connect();
  try {
    await client.query(statement);
  } finally {
    await client.end();
  }
}
