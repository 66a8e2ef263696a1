// DATABASE_URL: which database it names, and how it is shown in messages.
import { describe, expect, it } from 'vitest';
import { DEFAULT_SQLITE_PATH, parseDatabaseUrl, redactDatabaseUrl } from '../../src/storage/database-url.ts';

describe('parseDatabaseUrl', () => {
  it.each([
    [undefined, DEFAULT_SQLITE_PATH],
    ['', DEFAULT_SQLITE_PATH],
    ['./data/crm.sqlite', './data/crm.sqlite'],
    ['/var/lib/crm/crm.sqlite', '/var/lib/crm/crm.sqlite'],
    ['crm.sqlite', 'crm.sqlite'],
    ['sqlite:./data/crm.sqlite', './data/crm.sqlite'],
    ['sqlite::memory:', ':memory:'],
  ])('%j is the SQLite file %j', (url, path) => {
    expect(parseDatabaseUrl(url)).toEqual({ kind: 'sqlite', path });
  });

  it.each(['postgres://crm@db:5432/crm', 'postgresql://crm:pw@db/crm?sslmode=require', 'postgres://crm@/crm?host=/var/run/postgresql'])('%s is PostgreSQL, as given', (url) => {
    expect(parseDatabaseUrl(url)).toEqual({ kind: 'postgresql', url });
  });

  it.each(['postgres://127.0.0.1:5432', 'postgres://crm:pw@127.0.0.1:5432/', 'postgresql://db?sslmode=require'])('%s names no database: refused, without its password', (url) => {
    expect(() => parseDatabaseUrl(url)).toThrow(/^DATABASE_URL=\S+ names no database/);
    expect(() => parseDatabaseUrl(url)).not.toThrow(/pw/);
  });

  it('refuses another scheme, naming it but not the rest', () => {
    expect(() => parseDatabaseUrl('mysql://crm:pw@db/crm')).toThrow('got a "mysql:" URL');
    expect(() => parseDatabaseUrl('mysql://crm:pw@db/crm')).not.toThrow(/pw/);
    expect(() => parseDatabaseUrl('sqlite:')).toThrow(/needs a path/);
  });
});

describe('redactDatabaseUrl', () => {
  it.each([
    ['postgres://crm:s3cret@db:5432/crm', 'postgres://crm:***@db:5432/crm'],
    // The last @ before the path ends the user part, as in WHATWG URLs.
    ['postgres://crm:s3c@ret@db/crm', 'postgres://crm:***@db/crm'],
    ['postgres://:s3cret@db/crm', 'postgres://:***@db/crm'],
    ['postgres://crm@db/crm?sslpassword=s3cret&sslmode=require', 'postgres://crm@db/crm?sslpassword=***&sslmode=require'],
    ['postgres://crm@db/crm?application_name=a@b', 'postgres://crm@db/crm?application_name=a@b'],
    ['/var/lib/crm/crm.sqlite', '/var/lib/crm/crm.sqlite'],
  ])('%s is shown as %s', (url, shown) => {
    expect(redactDatabaseUrl(url)).toBe(shown);
  });
});
