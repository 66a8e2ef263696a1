// The SQLite connection under MikroORM: better-sqlite3 through Kysely's
// SqliteDialect, with two changes to how transactions begin and end.
import { setTimeout as sleep } from 'node:timers/promises';
import Database from 'better-sqlite3';
import { CompiledQuery, SqliteDialect, SqliteDriver, type DatabaseConnection, type Driver } from 'kysely';

/** How long a write transaction waits for another process's write lock (a backup, a `sqlite3` shell) before it gives up. */
export const WRITE_LOCK_WAIT_MS = 5_000;
/**
 * SQLite's own busy handler sleeps inside the call and so blocks the event
 * loop: it only covers the short locks a reader may meet (a checkpoint); the
 * long wait for the write lock is done below, asynchronously.
 */
const BUSY_TIMEOUT_MS = 100;

export function sqliteDialect(path: string): { dialect: SqliteDialect; database: Database.Database } {
  const database = new Database(path, { timeout: BUSY_TIMEOUT_MS });
  return { dialect: new TransactionSafeSqliteDialect(database), database };
}

class TransactionSafeSqliteDialect extends SqliteDialect {
  readonly #database: Database.Database;

  constructor(database: Database.Database) {
    super({ database });
    this.#database = database;
  }

  override createDriver(): Driver {
    return new TransactionSafeSqliteDriver(this.#database);
  }
}

class TransactionSafeSqliteDriver extends SqliteDriver {
  readonly #database: Database.Database;

  constructor(database: Database.Database) {
    super({ database });
    this.#database = database;
  }

  /**
   * BEGIN IMMEDIATE takes the write lock up front. A plain (deferred) BEGIN
   * takes it at the first write, and if another process holds it then, SQLite
   * answers SQLITE_BUSY at once without waiting, since the transaction has
   * already read. While the lock is held elsewhere we wait here, off the event
   * loop, up to WRITE_LOCK_WAIT_MS.
   *
   * Then we must not fail: Kysely never releases the connection when BEGIN
   * fails (kysely-org/kysely#1990), and every later query would wait for it.
   * So the transaction begins deferred instead; its first write meets the
   * lock (SQLITE_BUSY, so UNAVAILABLE for the call, or it succeeds if the lock
   * is gone by then), and the ROLLBACK that follows releases the connection.
   */
  override async beginTransaction(connection: DatabaseConnection): Promise<void> {
    const giveUpAt = Date.now() + WRITE_LOCK_WAIT_MS;
    for (let pause = 5; ; pause = Math.min(pause * 2, 100)) {
      try {
        await connection.executeQuery(CompiledQuery.raw('begin immediate'));
        return;
      } catch (error) {
        if (!isBusy(error) || Date.now() + pause > giveUpAt) break;
      }
      await sleep(pause);
    }
    await connection.executeQuery(CompiledQuery.raw('begin'));
  }

  /**
   * A COMMIT that fails with SQLITE_FULL, SQLITE_IOERR or SQLITE_NOMEM makes
   * SQLite roll the transaction back on its own. A ROLLBACK then fails ("no
   * transaction is active"), and Kysely, which releases the connection only
   * after a successful ROLLBACK, would keep it forever: every later query
   * would wait for it. So roll back only what is still open.
   */
  override async rollbackTransaction(connection: DatabaseConnection): Promise<void> {
    if (this.#database.inTransaction) await super.rollbackTransaction(connection);
  }
}

function isBusy(error: unknown): boolean {
  return typeof error === 'object' && error !== null && String((error as { code?: unknown }).code).startsWith('SQLITE_BUSY');
}
