// PostgreSQL under MikroORM, with one change to how a transaction ends when
// its connection is gone (the backend was terminated, the database restarted,
// the network dropped): Kysely gives a transaction's connection back to the
// pool only after a successful ROLLBACK, which a dead connection cannot run,
// so each such transaction kept one pooled connection forever, and after ten
// of them (the pool's size) every call waited for a connection that never came.
// (A BEGIN that failed did the same.) It also sets up the pool for the hot
// path's prepared statements (prepared-statements.ts).
import type { Configuration } from '@mikro-orm/core';
import { PostgreSqlConnection, PostgreSqlDriver } from '@mikro-orm/postgresql';
import type { DatabaseConnection, Driver, PostgresDialect } from 'kysely';
import type { Pool, PoolConfig } from 'pg';
import { databaseFault } from './database-faults.ts';
import { usePostgresStatements } from './prepared-statements.ts';

class LostConnectionsReleasedConnection extends PostgreSqlConnection {
  /** The driver the prepared statements are kept for; set before anything connects. */
  driver: object | undefined;

  override createKyselyDialect(overrides: PoolConfig & { onPoolCreated?: (pool: Pool) => unknown }): PostgresDialect {
    const dialect = super.createKyselyDialect({
      ...overrides,
      onPoolCreated: (pool: Pool) => {
        usePostgresStatements(this.driver!, pool);
        return overrides.onPoolCreated?.(pool);
      },
      // MikroORM takes onPoolCreated beside the pool's options, but types only the latter.
    } as PoolConfig);
    const createDriver = dialect.createDriver.bind(dialect);
    dialect.createDriver = () => releasingLostConnections(createDriver());
    return dialect;
  }
}

export class ResilientPostgreSqlDriver extends PostgreSqlDriver {
  constructor(config: Configuration) {
    super(config);
    // PostgreSqlDriver names its connection class inside its constructor: swap the instance before anything connects.
    const connection = new LostConnectionsReleasedConnection(this.config);
    connection.driver = this;
    (this as unknown as { connection: PostgreSqlConnection }).connection = connection;
  }
}

/**
 * A ROLLBACK that fails because the connection is gone counts as done: the
 * server ended the transaction with the connection, and the pool, given the
 * dead client back, drops it instead of lending it again. A BEGIN that fails
 * gives its connection back itself, since Kysely never does
 * (kysely-org/kysely#1990).
 */
function releasingLostConnections(driver: Driver): Driver {
  const overrides: Partial<Driver> = {
    async beginTransaction(connection, settings) {
      try {
        await driver.beginTransaction(connection, settings);
      } catch (error) {
        await driver.releaseConnection(connection);
        throw error;
      }
    },
    async rollbackTransaction(connection: DatabaseConnection) {
      try {
        await driver.rollbackTransaction(connection);
      } catch (error) {
        if (databaseFault(error) !== 'unreachable') throw error;
      }
    },
  };
  // The driver keeps its state in private fields: every other method runs on the driver itself.
  return new Proxy(driver, {
    get(target, property) {
      if (property in overrides) return overrides[property as keyof Driver];
      const value: unknown = Reflect.get(target, property);
      return typeof value === 'function' ? value.bind(target) : value;
    },
  });
}
