// The one reading of database failures: whatever raised them (better-sqlite3,
// pg, the network, MikroORM's wrappers or its query builder, which passes the
// driver's error through unconverted), they come out as one of a few faults.
import { ConnectionException, DeadlockException, LockWaitTimeoutException, UniqueConstraintViolationException } from '@mikro-orm/core';

export type DatabaseFault =
  /** Another transaction inserted the same key first. */
  | 'unique'
  /** A deadlock, a serialization failure or a lock wait that timed out: running again may succeed. */
  | 'conflict'
  /** Locked or slow beyond the bounded wait (a statement timeout, SQLite's write lock held elsewhere). */
  | 'busy'
  /** No working connection to the database. */
  | 'unreachable'
  /** The database is out of disk space (or memory). */
  | 'full';

/** PostgreSQL SQLSTATE codes (https://www.postgresql.org/docs/current/errcodes-appendix.html). */
const POSTGRES_CODES: Record<string, DatabaseFault> = {
  '23505': 'unique',
  '40001': 'conflict', // serialization_failure
  '40P01': 'conflict', // deadlock_detected
  '55P03': 'conflict', // lock_not_available (lock_timeout)
  '57014': 'busy', // query_canceled (statement_timeout)
  '53000': 'full', // insufficient_resources
  '53100': 'full', // disk_full
  '53200': 'full', // out_of_memory
  '53300': 'unreachable', // too_many_connections
  '57P01': 'unreachable', // admin_shutdown, also pg_terminate_backend
  '57P02': 'unreachable', // crash_shutdown
  '57P03': 'unreachable', // cannot_connect_now (starting up, shutting down)
  '3D000': 'unreachable', // invalid_catalog_name: the database is gone
  '25006': 'unreachable', // read_only_sql_transaction: a standby after a failover
  '28000': 'unreachable', // invalid_authorization_specification
  '28P01': 'unreachable', // invalid_password
};

/** SQLite result codes, extended ones included (SQLITE_IOERR_WRITE, SQLITE_BUSY_SNAPSHOT, ...). */
const SQLITE_PREFIXES: [string, DatabaseFault][] = [
  ['SQLITE_CONSTRAINT_UNIQUE', 'unique'],
  ['SQLITE_CONSTRAINT_PRIMARYKEY', 'unique'],
  ['SQLITE_BUSY', 'busy'],
  ['SQLITE_LOCKED', 'busy'],
  ['SQLITE_FULL', 'full'],
  ['SQLITE_NOMEM', 'full'],
  ['SQLITE_IOERR', 'unreachable'],
  ['SQLITE_CANTOPEN', 'unreachable'],
  ['SQLITE_READONLY', 'unreachable'],
];

const NETWORK_CODES = new Set(['ECONNREFUSED', 'ECONNRESET', 'ECONNABORTED', 'ETIMEDOUT', 'EPIPE', 'EHOSTUNREACH', 'ENETUNREACH', 'ENOTFOUND', 'EAI_AGAIN']);

/** What pg and pg-pool say, without a code, when a connection is gone or cannot be had. */
const LOST_CONNECTION = /connection terminated|terminating connection|not queryable|timeout exceeded when trying to connect|client was closed|connection (?:is )?closed|not currently accepting connections|connection ended/i;

/** The fault behind `error` (or any error it wraps), or undefined if it is not a database failure. */
export function databaseFault(error: unknown): DatabaseFault | undefined {
  for (let current = error, depth = 0; typeof current === 'object' && current !== null && depth < 5; current = (current as { cause?: unknown }).cause, depth++) {
    const fault = ownFault(current as { code?: unknown; message?: unknown });
    if (fault) return fault;
  }
  return undefined;
}

function ownFault(error: { code?: unknown; message?: unknown }): DatabaseFault | undefined {
  // Codes first: MikroORM's wrappers copy the driver's code, and read SQLite's
  // "database is locked" as a lock timeout to retry, which after our bounded
  // wait it is not.
  const code = typeof error.code === 'string' ? error.code : '';
  if (code in POSTGRES_CODES) return POSTGRES_CODES[code];
  if (code.startsWith('08')) return 'unreachable'; // connection_exception and its subclasses
  for (const [prefix, fault] of SQLITE_PREFIXES) if (code.startsWith(prefix)) return fault;
  if (NETWORK_CODES.has(code)) return 'unreachable';
  if (error instanceof UniqueConstraintViolationException) return 'unique';
  if (error instanceof DeadlockException || error instanceof LockWaitTimeoutException) return 'conflict';
  if (error instanceof ConnectionException) return 'unreachable';
  if (typeof error.message === 'string' && LOST_CONNECTION.test(error.message)) return 'unreachable';
  return undefined;
}
