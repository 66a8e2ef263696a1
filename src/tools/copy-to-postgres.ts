// `npm run copy-to-postgres -- <sqlite file> <postgres url>`: moves the data of
// a stopped SQLite server into an empty PostgreSQL database (README, "Moving
// from SQLite to PostgreSQL").
//
// Both sides are opened as the server opens them (openDatabase), so both have
// the current schema: the SQLite file gets any migrations it lacks, the
// PostgreSQL database is created from the migrations. Every table is then
// copied in batches of rows, ids included, in one PostgreSQL transaction: a
// failure leaves the target as empty as it was.
import { existsSync } from 'node:fs';
import type { EntityMetadata } from '@mikro-orm/core';
import type { SqlEntityManager } from '@mikro-orm/sql';
import Database from 'better-sqlite3';
import { entities } from '../domain/entities.ts';
import { openDatabase, type OpenDatabase, type Orm } from '../storage/orm.ts';
import { DatabaseInUseError } from '../storage/sqlite-ownership.ts';
import { commandLinePath, databaseTarget, runTool, UsageError } from './cli.ts';

const USAGE = 'usage: npm run copy-to-postgres -- <sqlite file> <postgres://user@host:port/database>';
/** Rows per INSERT: the widest table (contact, 14 columns) stays far below PostgreSQL's 65,535 parameters. */
const BATCH_ROWS = 1_000;

await runTool('copy-to-postgres', async (args) => {
  if (args.length !== 2) throw new UsageError(USAGE);
  const sqlitePath = commandLinePath(args[0]!);
  const target = databaseTarget(args[1]);
  if (target.kind !== 'postgresql') throw new UsageError(`the target must be a postgres:// URL; ${USAGE}`);
  if (!existsSync(sqlitePath)) throw new Error(`${sqlitePath} does not exist`);
  if (!isCrmDatabase(sqlitePath)) throw new UsageError(`${sqlitePath} is not a crm-distributor database`);

  const from = await openSqlite(sqlitePath);
  try {
    const to = await openDatabase(target).catch((error: unknown) => {
      throw new Error(`cannot open ${describeUrl(target.url)}: ${(error as Error).message}`, { cause: error });
    });
    try {
      const copied = await copyTables(from.orm, to.orm, describeUrl(target.url));
      return `copied ${sqlitePath} to ${describeUrl(target.url)}: ${copied.map(({ table, rows }) => `${table} ${rows}`).join(', ')} rows`;
    } finally {
      await to.close();
    }
  } finally {
    await from.close();
  }
});

/** Whether the file is a server's database, checked before openDatabase would migrate any other SQLite file into one. */
function isCrmDatabase(path: string): boolean {
  try {
    const database = new Database(path, { readonly: true, fileMustExist: true });
    try {
      return database.prepare("select 1 from sqlite_schema where type = 'table' and name = 'contact'").get() !== undefined;
    } finally {
      database.close();
    }
  } catch (error) {
    throw new Error(`cannot read ${path}: ${(error as Error).message}`, { cause: error });
  }
}

/** The SQLite file, taken from the server as the server would take it: it refuses while a server runs on it. */
async function openSqlite(path: string): Promise<OpenDatabase> {
  try {
    return await openDatabase({ kind: 'sqlite', path });
  } catch (error) {
    if (!(error instanceof DatabaseInUseError)) throw error;
    throw new Error(`${path} is in use by a running server: stop it first (what it writes after the copy would be lost), or copy a backup of it (npm run backup -- <file>)`, { cause: error });
  }
}

/** A column and how its SQLite value becomes the PostgreSQL one. */
interface Column {
  name: string;
  convert(value: unknown): unknown;
}

interface Table {
  name: string;
  columns: Column[];
  /** The tables its foreign keys point to. */
  references: Set<string>;
  /** Its generated id column, whose sequence must continue after the copied ids. */
  serialColumn: string | undefined;
}

async function copyTables(from: Orm, to: Orm, targetName: string): Promise<{ table: string; rows: number }[]> {
  const tables = inDependencyOrder(entities.map((entity) => describeTable(to.getMetadata().getByClassName(entity.meta.className))));
  const reader = from.em.fork() as SqlEntityManager;
  const names = tables.map((table) => quote(table.name)).join(', ');
  return (to.em.fork() as SqlEntityManager).transactional(async (tx) => {
    // Nobody writes to the target until the copy is committed, and "empty" stays true until then.
    await tx.execute(`lock table ${names} in exclusive mode`);
    for (const table of tables) {
      const someRow = await tx.execute<unknown[]>(`select 1 from ${quote(table.name)} limit 1`);
      if (someRow.length > 0) throw new UsageError(`${targetName} is not empty (table ${table.name} has rows): copy into an empty database`);
    }
    const copied: { table: string; rows: number }[] = [];
    for (const table of tables) {
      const columnList = table.columns.map((column) => quote(column.name)).join(', ');
      // Read in rowid order, a batch at a time, so memory does not grow with the table.
      const select = `select rowid as copy_rowid, ${columnList} from ${quote(table.name)} where rowid > ? order by rowid limit ${BATCH_ROWS}`;
      const placeholders = `(${table.columns.map(() => '?').join(', ')})`;
      let rows = 0;
      for (let after = 0; ;) {
        const batch = await reader.execute<Record<string, unknown>[]>(select, [after]);
        if (batch.length === 0) break;
        await tx.execute(
          `insert into ${quote(table.name)} (${columnList}) values ${batch.map(() => placeholders).join(', ')}`,
          batch.flatMap((row) => table.columns.map((column) => column.convert(row[column.name]))),
        );
        rows += batch.length;
        after = Number(batch.at(-1)!.copy_rowid);
      }
      if (table.serialColumn) {
        // The next generated id follows the largest copied one (1 for an empty table).
        const column = quote(table.serialColumn);
        await tx.execute(`select setval(pg_get_serial_sequence(?, ?), coalesce(max(${column}), 0) + 1, false) from ${quote(table.name)}`, [table.name, table.serialColumn]);
      }
      copied.push({ table: table.name, rows });
    }
    return copied;
  });
}

/** The table of an entity, from the ORM's metadata, so that a new column is copied without a change here. */
function describeTable(meta: EntityMetadata): Table {
  const columns: Column[] = [];
  const references = new Set<string>();
  for (const prop of meta.props) {
    if (prop.kind !== 'scalar' && prop.kind !== 'm:1') continue;
    if (prop.kind === 'm:1') references.add(prop.targetMeta!.tableName);
    const convert = prop.runtimeType === 'Date' ? toDate : prop.runtimeType === 'boolean' ? toBoolean : (value: unknown) => value;
    for (const name of prop.fieldNames) {
      columns.push({ name, convert: (value) => (value === null ? null : convert(value, `${meta.tableName}.${name}`)) });
    }
  }
  const [primaryKey, ...more] = meta.primaryKeys.map((name) => meta.properties[name]!);
  return { name: meta.tableName, columns, references, serialColumn: more.length === 0 && primaryKey?.autoincrement ? primaryKey.fieldNames[0] : undefined };
}

/** Referenced tables first, so that every foreign key finds its row. */
function inDependencyOrder(tables: Table[]): Table[] {
  const ordered: Table[] = [];
  const placed = new Set<string>();
  for (let pending = tables; pending.length > 0;) {
    const ready = pending.filter((table) => [...table.references].every((name) => placed.has(name)));
    if (ready.length === 0) throw new Error(`the tables ${pending.map((table) => table.name).join(', ')} reference each other in a cycle`);
    for (const table of ready) placed.add(table.name);
    ordered.push(...ready);
    pending = pending.filter((table) => !placed.has(table.name));
  }
  return ordered;
}

/** SQLite stores a datetime as epoch milliseconds; PostgreSQL's timestamptz keeps them exactly (it has microseconds). */
function toDate(value: unknown, column: string): Date {
  if (typeof value !== 'number') throw new Error(`${column} holds ${JSON.stringify(value)}, not a datetime in epoch milliseconds`);
  return new Date(value);
}

/** SQLite stores a boolean as 0 or 1. */
function toBoolean(value: unknown, column: string): boolean {
  if (value !== 0 && value !== 1) throw new Error(`${column} holds ${JSON.stringify(value)}, not a boolean 0 or 1`);
  return value === 1;
}

function quote(identifier: string): string {
  return `"${identifier}"`;
}

/** The target without its password, for messages. */
function describeUrl(url: string): string {
  const { host, pathname } = new URL(url);
  return `postgres://${host}${pathname}`;
}
