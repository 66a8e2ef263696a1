/** Where the data lives, parsed from DATABASE_URL (see README, "Configuration"). */
export type DatabaseTarget =
  | { kind: 'sqlite'; path: string }
  | { kind: 'postgresql'; url: string };

export const DEFAULT_SQLITE_PATH = './data/crm.sqlite';

/** `postgres:`, `sqlite:`, `mysql:`...: what a file's path does not start with. */
const SCHEME = /^([a-z][a-z0-9+.-]*):/i;
/** The database is the path after the host: postgres://user@host:5432/crm?sslmode=require. */
const POSTGRES_DATABASE = /^postgres(?:ql)?:\/\/[^/?#]*\/[^?#]+/;

export function parseDatabaseUrl(url: string | undefined): DatabaseTarget {
  if (url === undefined || url === '') return { kind: 'sqlite', path: DEFAULT_SQLITE_PATH };
  if (url.startsWith('sqlite:')) {
    const path = url.slice('sqlite:'.length);
    if (path === '') throw new Error('DATABASE_URL "sqlite:" needs a path, e.g. sqlite:./data/crm.sqlite or sqlite::memory:');
    return { kind: 'sqlite', path };
  }
  if (url.startsWith('postgres://') || url.startsWith('postgresql://')) {
    // Without one, pg would quietly use a database named after the user.
    if (!POSTGRES_DATABASE.test(url)) throw new Error(`DATABASE_URL=${redactDatabaseUrl(url)} names no database: add it after the host, e.g. postgres://user@host:5432/crm`);
    return { kind: 'postgresql', url };
  }
  const scheme = SCHEME.exec(url)?.[1];
  // ./data/crm.sqlite, /var/lib/crm/crm.sqlite, crm.sqlite: a file, as sqlite:<path> would say.
  if (scheme === undefined) return { kind: 'sqlite', path: url };
  throw new Error(`DATABASE_URL must be a SQLite file (a path, or sqlite:<path>) or a postgres:// URL, got a ${JSON.stringify(`${scheme}:`)} URL`);
}

/** `url` for messages: the password in its user part, or in a password parameter, becomes ***. */
export function redactDatabaseUrl(url: string): string {
  return url
    .replace(/^([a-z][a-z0-9+.-]*:\/\/)([^/?#]*)@/i, (_, scheme: string, userInfo: string) => {
      const colon = userInfo.indexOf(':');
      return `${scheme}${colon < 0 ? userInfo : `${userInfo.slice(0, colon)}:***`}@`;
    })
    .replace(/([?&][^=&#]*password=)[^&#]*/gi, '$1***');
}
