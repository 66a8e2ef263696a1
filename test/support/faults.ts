// Fault injection for the tests in test/faults: a disk that fills up, a
// PostgreSQL database that refuses connections, a process's memory. Each
// fault is undone in a `finally`, whatever the test did.
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pg from 'pg';

/** Mounting a tmpfs needs root (CI has it); tests that need it are skipped elsewhere. */
export const isRoot = process.getuid?.() === 0;

/** Runs `work` with a fresh tmpfs of `sizeMb` MiB mounted at a new directory; unmounts and removes it after. */
export async function withTmpfs<T>(sizeMb: number, work: (dir: string) => Promise<T>): Promise<T> {
  const dir = mkdtempSync(join(tmpdir(), 'crm-tmpfs-'));
  execFileSync('mount', ['-t', 'tmpfs', '-o', `size=${sizeMb}m`, 'tmpfs', dir]);
  try {
    return await work(dir);
  } finally {
    execFileSync('umount', ['-l', dir]);
    rmSync(dir, { recursive: true, force: true });
  }
}

/** Resident memory of a process in MiB (VmRSS), or 0 once it is gone. */
export function rssMb(pid: number): number {
  try {
    const match = /^VmRSS:\s+(\d+) kB$/m.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
    return match ? Number(match[1]) / 1024 : 0;
  } catch {
    return 0;
  }
}

/** Runs one statement on the PostgreSQL server of `databaseUrl`, connected to its maintenance database. */
function administer<T extends pg.QueryResultRow>(databaseUrl: string, statement: string, params: unknown[] = []): Promise<T[]> {
  const url = new URL(databaseUrl);
  url.pathname = '/postgres';
  return queryOnce<T>(url.href, statement, params);
}

/** Runs one statement on a connection of its own, to the database `databaseUrl` names (an outage ends every other connection). */
export async function queryOnce<T extends pg.QueryResultRow>(databaseUrl: string, statement: string, params: unknown[] = []): Promise<T[]> {
  const client = new pg.Client({ connectionString: databaseUrl });
  await client.connect();
  try {
    return (await client.query<T>(statement, params)).rows;
  } finally {
    await client.end();
  }
}

function databaseName(databaseUrl: string): string {
  return decodeURIComponent(new URL(databaseUrl).pathname.slice(1));
}

/**
 * Ends the given backends of the database (all of them by default) as an
 * administrator would, without touching the shared cluster.
 */
export async function terminateBackends(databaseUrl: string, where = 'true'): Promise<number> {
  const rows = await administer<{ pid: number }>(
    databaseUrl,
    `select pid from pg_stat_activity where datname = $1 and pid <> pg_backend_pid() and (${where})`,
    [databaseName(databaseUrl)],
  );
  for (const { pid } of rows) await administer(databaseUrl, 'select pg_terminate_backend($1)', [pid]);
  return rows.length;
}

/**
 * Makes the database unreachable for the duration of `work` (no new
 * connections, every existing one ended), and reachable again after it,
 * even if it fails. The rest of the cluster is untouched.
 */
export async function withDatabaseOutage<T>(databaseUrl: string, work: () => Promise<T>): Promise<T> {
  const name = databaseName(databaseUrl);
  await administer(databaseUrl, `alter database "${name}" allow_connections false`);
  try {
    await terminateBackends(databaseUrl);
    return await work();
  } finally {
    await administer(databaseUrl, `alter database "${name}" allow_connections true`);
  }
}

export function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

/** Rejects with `what` if `promise` has not settled within `ms`: a generous bound for a fault test, not a speed check. */
export async function within<T>(promise: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  try {
    return await Promise.race([
      promise,
      new Promise<never>((_, reject) => {
        timer = setTimeout(() => reject(new Error(`${what} did not happen within ${ms} ms`)), ms);
      }),
    ]);
  } finally {
    clearTimeout(timer);
  }
}
