// The database: MikroORM over embedded SQLite (default) or PostgreSQL, with
// the committed migrations applied at start.
import { mkdirSync } from 'node:fs';
import { dirname } from 'node:path';
import type { MikroORM, Options } from '@mikro-orm/core';
import { Migrator } from '@mikro-orm/migrations';
import { MikroORM as PostgresORM, defineConfig as definePostgresConfig } from '@mikro-orm/postgresql';
import { MikroORM as SqliteORM, defineConfig as defineSqliteConfig } from '@mikro-orm/sqlite';
import pg from 'pg';
import { entities } from '../domain/entities.ts';
import type { DatabaseTarget } from './database-url.ts';
import { migrations } from './migrations/index.ts';
import { ResilientPostgreSqlDriver } from './postgres-driver.ts';
import { sqliteDialect } from './sqlite-dialect.ts';
import { ownSqliteFile } from './sqlite-ownership.ts';
import { useSqliteStatements } from './prepared-statements.ts';

export type Orm = MikroORM;

/** An open database: the ORM, a cheap reachability check and the way to close it. */
export interface OpenDatabase {
  orm: Orm;
  /** How many units of work may use it at once (no limit on SQLite: its one connection serialises them). */
  connections: number;
  /** Resolves once the database answered a trivial query. */
  probe(): Promise<void>;
  close(): Promise<void>;
}

export interface SqliteOptions {
  /** PRAGMA synchronous: FULL (default) fsyncs the WAL on every commit. */
  synchronous: 'FULL' | 'NORMAL';
}

/** Any number that is ours alone: replicas starting together take turns migrating. */
const MIGRATION_LOCK = 0x43524d31;

function common(dialect: 'sqlite' | 'postgresql') {
  return {
    entities,
    extensions: [Migrator],
    migrations: {
      path: `src/storage/migrations/${dialect}`,
      migrationsList: migrations[dialect],
      // Every migration runs in one transaction with its bookkeeping.
      transactional: true,
      allOrNothing: true,
      // Applied migrations are reported through the server's own log.
      silent: true,
      snapshot: false,
    },
    // Requests fork their own EntityManager; the global one must never be used.
    allowGlobalContext: false,
    debug: false,
  } satisfies Partial<Options>;
}

/** `dialect`: the connection the server uses (see sqlite-dialect.ts); tooling goes without. */
export function sqliteConfig(path: string, dialect?: Options['driverOptions']) {
  return defineSqliteConfig({ ...common('sqlite'), dbName: path, ...(dialect ? { driverOptions: dialect } : {}) });
}

/**
 * Every wait is bounded, so a call without a deadline cannot hang on the
 * database: connecting, any one statement, and any lock (row or advisory).
 * A lock timeout is retried by the unit of work like a deadlock.
 */
const POSTGRES_TIMEOUTS = {
  connectionTimeoutMillis: 5_000,
  statement_timeout: 30_000,
  lock_timeout: 5_000,
  idle_in_transaction_session_timeout: 60_000,
  keepAlive: true,
};

/**
 * PostgreSQL connections per process. The unit of work lets no more units than
 * this run at once, so a burst of calls queues in the process rather than in
 * the pool, where waiting longer than connectionTimeoutMillis would read as
 * an unreachable database.
 */
export const POSTGRES_CONNECTIONS = 10;

export function postgresConfig(url: string) {
  return definePostgresConfig({
    ...common('postgresql'),
    clientUrl: url,
    driver: ResilientPostgreSqlDriver,
    driverOptions: POSTGRES_TIMEOUTS,
    pool: { min: 0, max: POSTGRES_CONNECTIONS },
  });
}

/** Opens the database, applies durability settings and pending migrations. */
export async function openDatabase(target: DatabaseTarget, options: SqliteOptions = { synchronous: 'FULL' }): Promise<OpenDatabase> {
  if (target.kind === 'postgresql') {
    const orm = await PostgresORM.init(postgresConfig(target.url));
    try {
      await migrateExclusively(target.url, () => orm.migrator.up());
    } catch (error) {
      // Its pool must not outlive a start that failed; the migration's error is the one to report.
      await orm.close().catch(() => undefined);
      throw error;
    }
    return { orm, connections: POSTGRES_CONNECTIONS, probe: () => selectOne(orm), close: () => orm.close() };
  }
  const file = target.path !== ':memory:';
  if (file) makeDirectories(dirname(target.path));
  const ownership = file ? ownSqliteFile(target.path) : undefined;
  try {
    const { dialect, database } = sqliteDialect(target.path);
    const orm = await SqliteORM.init(sqliteConfig(target.path, dialect));
    useSqliteStatements(orm.em.getDriver(), database);
    const connection = orm.em.getConnection();
    // WAL lets readers run beside the writer; synchronous=FULL makes every
    // acknowledged commit survive power loss, not just a process crash.
    await connection.execute('pragma journal_mode = wal');
    await connection.execute(`pragma synchronous = ${options.synchronous}`);
    await connection.execute('pragma foreign_keys = on');
    // Some migrations edit a table's definition in place (see the routing-policies one),
    // which better-sqlite3's defensive mode forbids: allowed while migrating, never after.
    database.unsafeMode(true);
    try {
      await orm.migrator.up();
    } finally {
      database.unsafeMode(false);
    }
    return {
      orm,
      connections: Number.POSITIVE_INFINITY,
      probe: () => selectOne(orm),
      async close() {
        await orm.close();
        ownership?.release();
      },
    };
  } catch (error) {
    ownership?.release();
    throw error;
  }
}

/**
 * `mkdir -p` that gives up. Node's recursive mkdirSync never returns when a
 * parent exists but cannot hold directories (a path under /proc): the child
 * answers ENOENT, the parent EEXIST, and it tries the child again, forever.
 */
function makeDirectories(path: string, parentMade = false): void {
  try {
    mkdirSync(path);
  } catch (error) {
    const { code } = error as NodeJS.ErrnoException;
    if (code === 'EEXIST') return;
    // Once the parent is there, ENOENT is the answer, not a reason to try again.
    if (code !== 'ENOENT' || parentMade || dirname(path) === path) throw error;
    makeDirectories(dirname(path));
    makeDirectories(path, true);
  }
}

async function selectOne(orm: Orm): Promise<void> {
  await orm.em.getConnection().execute('select 1');
}

/**
 * Holds a PostgreSQL advisory lock on a connection of its own while `migrate`
 * runs: replicas that start at once wait for each other, and each later one
 * finds nothing left to apply.
 */
async function migrateExclusively(url: string, migrate: () => Promise<unknown>): Promise<void> {
  const client = new pg.Client({ connectionString: url });
  await client.connect();
  try {
    await client.query('select pg_advisory_lock($1)', [MIGRATION_LOCK]);
    await migrate();
  } finally {
    await client.end();
  }
}
