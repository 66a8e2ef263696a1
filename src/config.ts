// Settings from the environment (README, "Configuration").
import { X509Certificate } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { createSecureContext } from 'node:tls';
import { LOG_LEVELS, type LogLevel } from './log.ts';
import { checkDistinctRoles, isLoopbackHost, parseRoleTokens, type RoleToken } from './transport/interceptors/auth.ts';
import { parseDatabaseUrl, type DatabaseTarget } from './storage/database-url.ts';
import { DEFAULT_CONNECTION_LIMITS, type ConnectionLimits, type TlsCredentials } from './transport/service-port.ts';

export interface Config {
  host: string;
  port: number;
  database: DatabaseTarget;
  /** SQLite PRAGMA synchronous: FULL survives power loss, NORMAL only process crashes. */
  sqliteSynchronous: 'FULL' | 'NORMAL';
  logLevel: LogLevel;
  /** Empty: the server runs open, which is allowed on a loopback host only. */
  tokens: RoleToken[];
  /** Largest request message accepted; larger ones get RESOURCE_EXHAUSTED. */
  maxMessageBytes: number;
  /** Prometheus /metrics; null turns it off. */
  metrics: { host: string; port: number } | null;
  /** What one client may hold on the service port. */
  connections: ConnectionLimits;
  /** Serves the service port over TLS; absent, it is cleartext. */
  tls?: TlsCredentials;
}

export function configFromEnv(env: NodeJS.ProcessEnv): Config {
  const host = env.HOST ?? '127.0.0.1';
  const listed = parseRoleTokens(env.CRM_TOKENS ?? '', 'CRM_TOKENS');
  // Set, but nothing in it (" , ,", "#admin:x"): a mistake, not a wish to run open. (A file of comments only is a template.)
  if (listed.length === 0 && (env.CRM_TOKENS ?? '').trim() !== '') throw new Error('CRM_TOKENS is set but holds no role:token pair');
  const tokens = checkDistinctRoles([
    ...listed,
    ...(env.CRM_TOKENS_FILE ? parseRoleTokens(readSettingFile(env, 'CRM_TOKENS_FILE').toString('utf8'), 'CRM_TOKENS_FILE') : []),
  ]);
  if (tokens.length === 0 && !isLoopbackHost(host)) {
    throw new Error(`HOST=${host} is reachable from other machines, but no tokens are configured: set CRM_TOKENS (role:token,...) or CRM_TOKENS_FILE`);
  }
  const synchronous = (env.SQLITE_SYNCHRONOUS ?? 'FULL').toUpperCase();
  if (synchronous !== 'FULL' && synchronous !== 'NORMAL') throw new Error('SQLITE_SYNCHRONOUS must be FULL or NORMAL');
  return {
    host,
    port: integer(env, 'PORT', 50051, 0, 65535),
    database: parseDatabaseUrl(env.DATABASE_URL),
    sqliteSynchronous: synchronous,
    logLevel: logLevel(env),
    tokens,
    maxMessageBytes: integer(env, 'MAX_MESSAGE_BYTES', 1024 * 1024, 1024, 64 * 1024 * 1024),
    metrics: env.METRICS_PORT === 'off' ? null : { host: env.METRICS_HOST ?? '127.0.0.1', port: integer(env, 'METRICS_PORT', 9464, 0, 65535) },
    connections: {
      ...DEFAULT_CONNECTION_LIMITS,
      maxConnections: integer(env, 'MAX_CONNECTIONS', DEFAULT_CONNECTION_LIMITS.maxConnections, 1, 1_000_000),
      idleTimeoutMs: 1000 * integer(env, 'IDLE_TIMEOUT_SECONDS', DEFAULT_CONNECTION_LIMITS.idleTimeoutMs / 1000, 1, 86_400),
    },
    tls: tlsFromEnv(env),
  };
}

/** The files are read (and checked) now: a missing or unusable one stops the start, naming its setting. */
function tlsFromEnv(env: NodeJS.ProcessEnv): TlsCredentials | undefined {
  const serving = Boolean(env.TLS_CERT_FILE);
  if (serving !== Boolean(env.TLS_KEY_FILE)) throw new Error('TLS_CERT_FILE and TLS_KEY_FILE go together: set both to serve TLS, or neither');
  if (!serving) {
    if (env.TLS_CLIENT_CA_FILE) throw new Error('TLS_CLIENT_CA_FILE requires TLS: set TLS_CERT_FILE and TLS_KEY_FILE too');
    return undefined;
  }
  const cert = readSettingFile(env, 'TLS_CERT_FILE');
  const key = readSettingFile(env, 'TLS_KEY_FILE');
  try {
    createSecureContext({ cert, key });
  } catch (error) {
    throw new Error(`TLS_CERT_FILE and TLS_KEY_FILE are not a PEM certificate and its private key: ${(error as Error).message}`);
  }
  if (!env.TLS_CLIENT_CA_FILE) return { cert, key };
  const clientCa = readSettingFile(env, 'TLS_CLIENT_CA_FILE');
  // Node takes a file without a certificate in it as a CA list that trusts no one.
  try {
    new X509Certificate(clientCa);
  } catch {
    throw new Error('TLS_CLIENT_CA_FILE holds no PEM certificate');
  }
  return { cert, key, clientCa };
}

function readSettingFile(env: NodeJS.ProcessEnv, name: string): Buffer {
  const path = env[name]!;
  try {
    return readFileSync(path);
  } catch (error) {
    throw new Error(`${name}: cannot read ${path} (${(error as NodeJS.ErrnoException).code ?? (error as Error).message})`);
  }
}

function logLevel(env: NodeJS.ProcessEnv): LogLevel {
  const level = (env.LOG_LEVEL || 'info').toLowerCase();
  const known = LOG_LEVELS.find((name) => name === level);
  if (!known) throw new Error(`LOG_LEVEL=${JSON.stringify(env.LOG_LEVEL)} is not a level: use ${LOG_LEVELS.slice(0, -1).join(', ')} or ${LOG_LEVELS.at(-1)}`);
  return known;
}

function integer(env: NodeJS.ProcessEnv, name: string, fallback: number, min: number, max: number): number {
  const raw = env[name];
  if (raw === undefined || raw === '') return fallback;
  const value = Number(raw);
  if (!Number.isInteger(value) || value < min || value > max) throw new Error(`${name} must be a whole number from ${min} to ${max}, got ${JSON.stringify(raw)}`);
  return value;
}
