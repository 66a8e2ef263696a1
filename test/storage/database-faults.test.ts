// The reading of database failures that decides retries and status codes:
// every driver's way of saying the same thing reads the same.
import { ConnectionException, DeadlockException, LockWaitTimeoutException, UniqueConstraintViolationException } from '@mikro-orm/core';
import { describe, expect, it } from 'vitest';
import { databaseFault, type DatabaseFault } from '../../src/storage/database-faults.ts';
import { parseNotices } from '../../src/storage/assignment-channel.ts';

/** An error as a driver raises it: a message and a code. */
function driverError(code: string | undefined, message = 'failed'): Error {
  return Object.assign(new Error(message), code === undefined ? {} : { code });
}

describe('databaseFault', () => {
  it.each<[string, string, DatabaseFault]>([
    ['23505', 'duplicate key value violates unique constraint "lead_external_id_unique"', 'unique'],
    ['40001', 'could not serialize access due to concurrent update', 'conflict'],
    ['40P01', 'deadlock detected', 'conflict'],
    ['55P03', 'canceling statement due to lock timeout', 'conflict'],
    ['57014', 'canceling statement due to statement timeout', 'busy'],
    ['53100', 'could not extend file: No space left on device', 'full'],
    ['53200', 'out of memory', 'full'],
    ['57P01', 'terminating connection due to administrator command', 'unreachable'],
    ['57P03', 'the database system is starting up', 'unreachable'],
    ['3D000', 'database "crm" does not exist', 'unreachable'],
    ['08006', 'connection failure', 'unreachable'],
    ['08001', 'could not connect', 'unreachable'],
    ['55000', 'database "crm" is not currently accepting connections', 'unreachable'],
  ])('PostgreSQL %s (%s) is %s', (code, message, fault) => {
    expect(databaseFault(driverError(code, message))).toBe(fault);
  });

  it.each<[string, DatabaseFault]>([
    ['SQLITE_CONSTRAINT_UNIQUE', 'unique'],
    ['SQLITE_CONSTRAINT_PRIMARYKEY', 'unique'],
    ['SQLITE_BUSY', 'busy'],
    ['SQLITE_BUSY_SNAPSHOT', 'busy'],
    ['SQLITE_LOCKED', 'busy'],
    ['SQLITE_FULL', 'full'],
    ['SQLITE_NOMEM', 'full'],
    ['SQLITE_IOERR', 'unreachable'],
    ['SQLITE_IOERR_WRITE', 'unreachable'],
    ['SQLITE_CANTOPEN', 'unreachable'],
    ['SQLITE_READONLY', 'unreachable'],
  ])('SQLite %s is %s', (code, fault) => {
    expect(databaseFault(driverError(code))).toBe(fault);
  });

  it.each(['ECONNREFUSED', 'ECONNRESET', 'ETIMEDOUT', 'EPIPE', 'EHOSTUNREACH', 'ENOTFOUND'])('the network error %s is unreachable', (code) => {
    expect(databaseFault(driverError(code))).toBe('unreachable');
  });

  it.each([
    'Connection terminated unexpectedly',
    'Connection terminated due to connection timeout',
    'timeout exceeded when trying to connect',
    'Client has encountered a connection error and is not queryable',
  ])('pg says %j without a code: unreachable', (message) => {
    expect(databaseFault(driverError(undefined, message))).toBe('unreachable');
  });

  it("reads MikroORM's wrappers by the driver's code first, then by their class", () => {
    // MikroORM reads SQLite's "database is locked" as a lock timeout; after our bounded wait it is busy.
    expect(databaseFault(new LockWaitTimeoutException(driverError('SQLITE_BUSY', 'database is locked')))).toBe('busy');
    expect(databaseFault(new UniqueConstraintViolationException(driverError('23505')))).toBe('unique');
    expect(databaseFault(new DeadlockException(driverError(undefined)))).toBe('conflict');
    expect(databaseFault(new LockWaitTimeoutException(driverError(undefined)))).toBe('conflict');
    expect(databaseFault(new ConnectionException(driverError(undefined)))).toBe('unreachable');
  });

  it('finds the fault behind an error that wraps it', () => {
    expect(databaseFault(new Error('batch failed', { cause: new Error('step failed', { cause: driverError('SQLITE_FULL') }) }))).toBe('full');
  });

  it.each([
    ['a bug', new TypeError("Cannot read properties of undefined (reading 'id')")],
    ['a syntax error', driverError('42601', 'syntax error at or near "selec"')],
    ['a NOT NULL violation', driverError('23502', 'null value in column "name"')],
    ['SQLite corruption', driverError('SQLITE_CORRUPT', 'database disk image is malformed')],
    ['not an error', 'a string'],
    ['nothing', undefined],
  ])('%s is no database fault (a bug: INTERNAL)', (_, error) => {
    expect(databaseFault(error)).toBeUndefined();
  });
});

describe('parseNotices (the crm_assignments NOTIFY payload: assignment ids)', () => {
  it('reads what our transactions send', () => {
    expect(parseNotices('[1,42,7]')).toEqual([1, 42, 7]);
    expect(parseNotices('[]')).toEqual([]);
  });

  it('takes the largest id a serial can hold, and nothing beyond it', () => {
    expect(parseNotices('[2147483647]')).toEqual([2147483647]);
    expect(parseNotices('[2147483648]')).toBeUndefined();
  });

  it.each(['not json', '', '{}', 'null', '[1', '[[1,0]]', '["1"]', '[0]', '[-5]', '[1.5]', '[1e300]', '[9007199254740993]', '"[1]"', '[1,null]'])(
    'refuses %j, which is not ours',
    (payload) => {
      expect(parseNotices(payload)).toBeUndefined();
    },
  );
});
