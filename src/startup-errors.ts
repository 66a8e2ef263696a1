// Why the server did not start, in one line on stderr (README, "Start-up
// errors"): the setting at fault with its value (never a password), and an
// exit code that says what to fix. The one place that reads start-up failures.
import { getSystemErrorMessage } from 'node:util';
import type { Config } from './config.ts';
import { databaseFault } from './storage/database-faults.ts';
import { DEFAULT_SQLITE_PATH, redactDatabaseUrl } from './storage/database-url.ts';
import { DatabaseInUseError } from './storage/sqlite-ownership.ts';

/** A setting, or a file of tokens or certificates it names, is wrong: every start fails the same way until it is fixed. */
const EXIT_CONFIGURATION = 2;
/** The settings are valid, but what they name cannot be had now: a port another process holds, a database that cannot be reached or opened. */
const EXIT_UNAVAILABLE = 1;
type ExitCode = typeof EXIT_CONFIGURATION | typeof EXIT_UNAVAILABLE;

export class StartupError extends Error {
  override name = 'StartupError';
  readonly exitCode: ExitCode;

  constructor(message: string, exitCode: ExitCode, options: ErrorOptions) {
    super(message, options);
    this.exitCode = exitCode;
  }
}

/** configFromEnv's failures: each of its messages names the setting and the value at fault. */
export function configurationError(error: unknown): StartupError {
  return new StartupError(error instanceof Error ? error.message : String(error), EXIT_CONFIGURATION, { cause: error });
}

/** startServer's failures: a port, the database, or else a bug, whose stack LOG_LEVEL=debug prints. */
export function startupError(error: unknown, config: Config, env: NodeJS.ProcessEnv): StartupError {
  const options = { cause: error };
  if (error instanceof DatabaseInUseError) return new StartupError(error.message, EXIT_UNAVAILABLE, options);
  const setting = listeningSetting(error as SystemError, config) ?? databaseSetting(error, config, env);
  if (setting !== undefined) return new StartupError(`${setting}: ${reason(error)}`, EXIT_UNAVAILABLE, options);
  return new StartupError(`could not start: ${reason(error)} (LOG_LEVEL=debug shows where)`, EXIT_UNAVAILABLE, options);
}

/** Node's errors from sockets and files (https://nodejs.org/api/errors.html#class-systemerror). */
type SystemError = NodeJS.ErrnoException & { address?: string; port?: number; hostname?: string };

/** The setting behind a socket that could not listen, or whose host name did not resolve. */
function listeningSetting({ code, syscall, address, port, hostname }: SystemError, config: Config): string | undefined {
  const { host, metrics } = config;
  if (syscall === 'getaddrinfo') {
    if (hostname === host) return `HOST=${host}`;
    return hostname === metrics?.host ? `METRICS_HOST=${hostname}` : undefined;
  }
  if (syscall !== 'listen') return undefined;
  // Where the two are alike, the service port was the one tried: it listens first.
  if (code === 'EADDRNOTAVAIL') return metrics && address === metrics.host && address !== host ? `METRICS_HOST=${metrics.host}` : `HOST=${host}`;
  return metrics && port === metrics.port && port !== config.port ? `METRICS_PORT=${metrics.port}` : `PORT=${config.port}`;
}

/**
 * DATABASE_URL as it was given, if the error is the database's: one
 * database-faults.ts knows, or with SQLite one about a file, since the only
 * files the server touches at start are the database's (its directory, file,
 * lock and WAL).
 */
function databaseSetting(error: unknown, { database }: Config, env: NodeJS.ProcessEnv): string | undefined {
  const ours = databaseFault(error) !== undefined || (database.kind === 'sqlite' && (error as SystemError).path !== undefined);
  if (!ours) return undefined;
  return env.DATABASE_URL ? `DATABASE_URL=${redactDatabaseUrl(env.DATABASE_URL)}` : `DATABASE_URL=${DEFAULT_SQLITE_PATH} (the default)`;
}

/** An error in its own words, a system error's told by name ("connection refused", not ECONNREFUSED) with what it was about. */
function reason(error: unknown): string {
  // Node tries every address of a name (localhost: ::1, then 127.0.0.1); the first failure speaks for all.
  if (error instanceof AggregateError && error.errors.length > 0) return reason(error.errors[0]);
  const { errno, syscall, path, hostname, address, port } = error as SystemError;
  if (typeof errno === 'number' && syscall !== undefined) {
    const about = path ?? hostname ?? (address === undefined ? undefined : port === undefined ? address : `${address}:${port}`);
    return `${syscall}${about === undefined ? '' : ` ${about}`}: ${getSystemErrorMessage(errno)}`;
  }
  return error instanceof Error ? error.message : String(error);
}
