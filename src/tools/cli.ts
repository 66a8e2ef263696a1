// What the command-line tools (npm run backup, npm run copy-to-postgres) share:
// where paths are, exit codes, and errors as one readable line.
import { resolve } from 'node:path';
import { parseDatabaseUrl, type DatabaseTarget } from '../storage/database-url.ts';

/** The command as typed cannot work (arguments, configuration, a refusal): exit 2. Any other failure exits 1. */
export class UsageError extends Error {
  override name = 'UsageError';
}

/**
 * A path typed on the command line, relative to where it was typed: npm runs
 * scripts from the package root and says where it was called in INIT_CWD.
 */
export function commandLinePath(path: string): string {
  return resolve(process.env.INIT_CWD ?? process.cwd(), path);
}

/** The database a URL names (as DATABASE_URL would), a malformed one being the user's to fix. */
export function databaseTarget(url: string | undefined): DatabaseTarget {
  try {
    return parseDatabaseUrl(url);
  } catch (error) {
    throw new UsageError((error as Error).message, { cause: error });
  }
}

/**
 * Runs a tool on its arguments. `main` returns the one line saying what it did
 * (stdout, exit 0); an error is one line on stderr, exit 2 for a UsageError and
 * 1 for anything else (I/O, an unreachable database).
 */
export async function runTool(name: string, main: (args: string[]) => Promise<string>): Promise<never> {
  try {
    console.log(await main(process.argv.slice(2)));
    process.exit(0);
  } catch (error) {
    console.error(`crm-distributor ${name}: ${error instanceof Error ? error.message : String(error)}`);
    process.exit(error instanceof UsageError ? 2 : 1);
  }
}
