/** Where the data lives, parsed from DATABASE_URL (see README, "Configuration"). */
export type DatabaseTarget =
  | { kind: 'sqlite'; path: string }
  | { kind: 'postgresql'; url: string };

export const DEFAULT_SQLITE_PATH = './data/crm.sqlite';

export function parseDatabaseUrl(url: string | undefined): DatabaseTarget {
  if (url === undefined || url === '') return { kind: 'sqlite', path: DEFAULT_SQLITE_PATH };
  if (url.startsWith('sqlite:')) {
    const path = url.slice('sqlite:'.length);
    if (path === '') throw new Error('DATABASE_URL "sqlite:" needs a path, e.g. sqlite:./data/crm.sqlite or sqlite::memory:');
    return { kind: 'sqlite', path };
  }
  if (url.startsWith('postgres://') || url.startsWith('postgresql://')) return { kind: 'postgresql', url };
  throw new Error(`DATABASE_URL must start with sqlite: or postgres://, got ${JSON.stringify(url.split(':')[0])}`);
}
