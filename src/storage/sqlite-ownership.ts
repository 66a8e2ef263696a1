// One server per SQLite file. Two servers on one file would each believe
// their in-memory batching is the only writer, and SQLite would fail their
// calls with SQLITE_BUSY at random; so the second one refuses to start.
import Database from 'better-sqlite3';

export class DatabaseInUseError extends Error {
  override name = 'DatabaseInUseError';
}

export interface SqliteOwnership {
  release(): void;
}

/**
 * Holds an exclusive lock on `<path>.lock` (a small SQLite file of its own)
 * for as long as the server runs. The lock is the operating system's: it goes
 * with the process, even on `kill -9`, so no stale lock ever needs clearing.
 * Other tools (a backup, a `sqlite3` shell) open the database itself, not this
 * file, and are not refused.
 */
export function ownSqliteFile(path: string): SqliteOwnership {
  const lockPath = `${path}.lock`;
  const lock = new Database(lockPath, { timeout: 0 });
  try {
    lock.pragma('locking_mode = exclusive');
    lock.exec('begin exclusive');
  } catch (error) {
    lock.close();
    if (String((error as { code?: unknown }).code).startsWith('SQLITE_BUSY')) {
      throw new DatabaseInUseError(`${path} is in use by another crm-distributor process (it holds ${lockPath}); one SQLite file serves one process, use PostgreSQL for several`);
    }
    throw error;
  }
  return { release: () => lock.close() };
}
