import { mkdirSync } from 'node:fs';
import { dirname } from 'node:path';
import { defineConfig, MikroORM } from '@mikro-orm/sqlite';
import { Migrator } from '@mikro-orm/migrations';
import { entities } from '../domain/entities.ts';
import type { DatabaseTarget } from './database-url.ts';
import { migrations } from './migrations/index.ts';

export type Orm = MikroORM;

export interface SqliteOptions {
  /** PRAGMA synchronous: FULL (default) fsyncs the WAL on every commit. */
  synchronous: 'FULL' | 'NORMAL';
}

export function sqliteConfig(path: string) {
  return defineConfig({
    dbName: path,
    entities,
    extensions: [Migrator],
    migrations: {
      path: 'src/storage/migrations/sqlite',
      migrationsList: migrations,
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
  });
}

/** Opens the database, applies durability settings and pending migrations. */
export async function openDatabase(target: DatabaseTarget, options: SqliteOptions = { synchronous: 'FULL' }): Promise<Orm> {
  if (target.kind !== 'sqlite') {
    throw new Error('PostgreSQL support is not available yet: use DATABASE_URL=sqlite:<path>');
  }
  if (target.path !== ':memory:') mkdirSync(dirname(target.path), { recursive: true });
  const orm = await MikroORM.init(sqliteConfig(target.path));
  const connection = orm.em.getConnection();
  // WAL lets readers run beside the writer; synchronous=FULL makes every
  // acknowledged commit survive power loss, not just a process crash.
  await connection.execute('pragma journal_mode = wal');
  await connection.execute(`pragma synchronous = ${options.synchronous}`);
  await connection.execute('pragma foreign_keys = on');
  await orm.migrator.up();
  return orm;
}
