// `npm run backup -- <file>`: a consistent copy of the SQLite database that
// DATABASE_URL names, taken while the server runs (README, "Backups").
//
// A plain `cp` of a live file is not a backup: committed transactions may
// still be in the -wal file beside it. VACUUM INTO copies what one read
// transaction sees, WAL included; in WAL mode a reader never blocks the
// server's writes, so the server only sees one more reader for a moment.
// The server's ownership lock (<file>.lock) is not taken: the server keeps it.
import { closeSync, existsSync, fsyncSync, openSync, renameSync, rmSync } from 'node:fs';
import { dirname } from 'node:path';
import Database from 'better-sqlite3';
import { commandLinePath, databaseTarget, runTool, UsageError } from './cli.ts';

const USAGE = 'usage: npm run backup -- <new file>  (copies the SQLite database of DATABASE_URL, by default ./data/crm.sqlite)';
/** How long to wait for the short locks a reader may meet (a checkpoint, WAL recovery); this process may block while it waits. */
const BUSY_TIMEOUT_MS = 5_000;

await runTool('backup', async (args) => {
  if (args.length !== 1 || args[0]!.startsWith('-')) throw new UsageError(USAGE);
  const source = sqlitePath(process.env.DATABASE_URL);
  const destination = commandLinePath(args[0]!);
  if (existsSync(destination)) throw new UsageError(`${destination} already exists: a backup never overwrites a file, name a new one`);
  if (!existsSync(source)) throw new Error(`${source} does not exist: nothing to back up (is DATABASE_URL the server's?)`);

  // Written beside the destination and renamed once complete and on disk, so
  // the destination never names a half-written copy.
  const partial = `${destination}.${process.pid}.partial`;
  try {
    try {
      vacuumInto(source, partial);
    } catch (error) {
      throw new Error(`cannot copy ${source} to ${destination}: ${(error as Error).message}`, { cause: error });
    }
    // VACUUM INTO does not fsync what it wrote.
    syncToDisk(partial);
    const summary = describe(partial, source);
    renameSync(partial, destination);
    syncToDisk(dirname(destination));
    return `copied ${source} to ${destination}: ${summary}`;
  } finally {
    rmSync(partial, { force: true });
  }
});

function sqlitePath(databaseUrl: string | undefined): string {
  const target = databaseTarget(databaseUrl);
  if (target.kind === 'postgresql') {
    throw new UsageError('DATABASE_URL is a PostgreSQL database: back it up with pg_dump (README, "Backups"), e.g. pg_dump --format=custom --file=crm.dump "$DATABASE_URL"');
  }
  if (target.path === ':memory:') throw new UsageError('DATABASE_URL is sqlite::memory:, which keeps nothing to back up');
  return target.path;
}

/** One read transaction of `source`, written to the new file `copyPath`. */
function vacuumInto(source: string, copyPath: string): void {
  const database = new Database(source, { readonly: true, fileMustExist: true, timeout: BUSY_TIMEOUT_MS });
  try {
    database.prepare('vacuum into ?').run(copyPath);
  } finally {
    database.close();
  }
}

/** What the copy of `source` holds, read from the copy itself. */
function describe(copyPath: string, source: string): string {
  const copy = new Database(copyPath, { readonly: true, fileMustExist: true });
  try {
    const count = (table: string) => (copy.prepare(`select count(*) as n from "${table}"`).get() as { n: number }).n;
    return `${count('contact')} contacts, ${count('lead')} leads, ${count('operator')} operators, ${count('source')} sources`;
  } catch (error) {
    throw new Error(`${source} is not a crm-distributor database (${(error as Error).message})`, { cause: error });
  } finally {
    copy.close();
  }
}

function syncToDisk(path: string): void {
  const descriptor = openSync(path, 'r');
  try {
    fsyncSync(descriptor);
  } finally {
    closeSync(descriptor);
  }
}
