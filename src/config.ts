// Settings from the environment (README, "Configuration").
import { parseDatabaseUrl, type DatabaseTarget } from './storage/database-url.ts';

export interface Config {
  host: string;
  port: number;
  database: DatabaseTarget;
  /** SQLite PRAGMA synchronous: FULL survives power loss, NORMAL only process crashes. */
  sqliteSynchronous: 'FULL' | 'NORMAL';
  logLevel: string;
}

export function configFromEnv(env: NodeJS.ProcessEnv): Config {
  const port = Number(env.PORT ?? 50051);
  if (!Number.isInteger(port) || port < 0 || port > 65535) throw new Error(`PORT must be a port number, got ${JSON.stringify(env.PORT)}`);
  const synchronous = (env.SQLITE_SYNCHRONOUS ?? 'FULL').toUpperCase();
  if (synchronous !== 'FULL' && synchronous !== 'NORMAL') throw new Error('SQLITE_SYNCHRONOUS must be FULL or NORMAL');
  return {
    host: env.HOST ?? '127.0.0.1',
    port,
    database: parseDatabaseUrl(env.DATABASE_URL),
    sqliteSynchronous: synchronous,
    logLevel: env.LOG_LEVEL ?? 'info',
  };
}
