// The hot path's SQL as prepared statements, reused across calls. MikroORM's
// own execute() inlines every value into the SQL text, so each statement it
// sends is new to the database and is parsed and planned again (on SQLite
// about a fifth of a registration's CPU). Here the text keeps its
// placeholders, and each text is prepared once per database connection:
// better-sqlite3 statements on SQLite, pg's named statements on PostgreSQL.
// They run on the connection of the unit of work's transaction, and their
// errors go through MikroORM's exception converter like any other statement's,
// so the unit of work's retries read them as before.
import type { Database, Statement } from 'better-sqlite3';
import { CompiledQuery, type DatabaseConnection } from 'kysely';
import type { Pool, PoolClient } from 'pg';
import type { SqlEntityManager } from '@mikro-orm/sql';

/** A value as the statements take it; dates are converted for the database at hand. */
export type SqlValue = string | number | boolean | Date | null;

export interface StatementResult<Row> {
  rows: Row[];
  /** Rows changed by an INSERT, UPDATE or DELETE. */
  affected: number;
}

/** One database's statements; `execute` finds them from a transaction. */
interface StatementRunner {
  execute<Row>(tx: SqlEntityManager, sql: string, params: readonly SqlValue[]): Promise<StatementResult<Row>>;
  /** How many distinct SQL texts are prepared (for tests). */
  readonly size: number;
}

/** Keyed by the ORM's driver: every EntityManager fork of one database shares it. */
const runners = new WeakMap<object, StatementRunner>();

/**
 * Runs `sql` (with `?` placeholders) inside `tx`'s transaction as a prepared
 * statement of `tx`'s database. Only inside a unit of work: on SQLite the
 * statement runs on the one connection, which must be this transaction's.
 */
export async function execute<Row = Record<string, unknown>>(tx: SqlEntityManager, sql: string, params: readonly SqlValue[] = []): Promise<StatementResult<Row>> {
  const runner = runners.get(tx.getDriver());
  if (!runner) throw new Error('prepared statements are not set up for this database (see openDatabase)');
  if (!tx.isInTransaction()) throw new Error('prepared statements run only inside a unit of work');
  try {
    return await runner.execute<Row>(tx, sql, params);
  } catch (error) {
    throw tx.getDriver().convertException(error as Error);
  }
}

/** A stored time as a statement returns it: ms on SQLite (as MikroORM stores them), a Date on PostgreSQL. */
export type StoredTime = number | Date;

export function storedDate(value: StoredTime): Date {
  return value instanceof Date ? value : new Date(value);
}

/** How many SQL texts `tx`'s database has prepared so far. */
export function preparedCount(tx: SqlEntityManager): number {
  return runners.get(tx.getDriver())?.size ?? 0;
}

/**
 * `?, ?, ...` for an IN-list of `values`, padded to a power of two by
 * repeating the last value, so IN-lists make few distinct texts. An empty
 * list is `(null)`, which matches nothing.
 */
export function inList<T extends SqlValue>(values: readonly T[]): { sql: string; params: (T | null)[] } {
  const padded: (T | null)[] = values.length === 0 ? [null] : [...values];
  while (padded.length < paddedLength(values.length)) padded.push(values[values.length - 1]!);
  return { sql: padded.map(() => '?').join(', '), params: padded };
}

/** The power of two at or above `n` (1 for 0). */
export function paddedLength(n: number): number {
  return n <= 1 ? 1 : 2 ** Math.ceil(Math.log2(n));
}

/** Splits `n` rows into chunks whose sizes are powers of two, largest first: 13 is 8 + 4 + 1. */
export function powerOfTwoChunks(n: number): number[] {
  const chunks: number[] = [];
  for (let rest = n; rest > 0;) {
    const size = 2 ** Math.floor(Math.log2(rest));
    chunks.push(size);
    rest -= size;
  }
  return chunks;
}

/** SQLite: better-sqlite3 statements on the server's one connection. */
export function useSqliteStatements(driver: object, database: Database): void {
  const cache = new Map<string, Statement>();
  runners.set(driver, {
    get size() {
      return cache.size;
    },
    async execute<Row>(_tx: SqlEntityManager, sql: string, params: readonly SqlValue[]): Promise<StatementResult<Row>> {
      let statement = cache.get(sql);
      if (!statement) cache.set(sql, (statement = database.prepare(sql)));
      const values = params.map(sqliteValue);
      if (statement.reader) return { rows: statement.all(values) as Row[], affected: 0 };
      return { rows: [], affected: statement.run(values).changes };
    },
  });
}

/** How MikroORM stores these in SQLite: dates as ms, booleans as 0/1. */
function sqliteValue(value: SqlValue): string | number | null {
  if (value instanceof Date) return value.getTime();
  if (typeof value === 'boolean') return value ? 1 : 0;
  return value;
}

/**
 * PostgreSQL: the statement goes through Kysely on the transaction's pooled
 * connection; `pool` names the texts we prepared, so pg parses each once per
 * connection and then only binds (a name is prepared lazily on each connection
 * that first runs it, and lives as long as that connection).
 */
export function usePostgresStatements(driver: object, pool: Pool): void {
  const texts = new Map<string, { text: string; name: string }>();
  const names = new Map<string, string>();
  pool.on('connect', (client) => nameKnownTexts(client, names));
  runners.set(driver, {
    get size() {
      return texts.size;
    },
    async execute<Row>(tx: SqlEntityManager, sql: string, params: readonly SqlValue[]): Promise<StatementResult<Row>> {
      let known = texts.get(sql);
      if (!known) {
        let n = 0;
        known = { text: sql.replace(/\?/g, () => `$${++n}`), name: `crm_${texts.size + 1}` };
        texts.set(sql, known);
        names.set(known.text, known.name);
      }
      const compiled = CompiledQuery.raw(known.text, [...params]);
      const result = await tx.getTransactionContext<KyselyTransaction>()!.getExecutor().provideConnection((connection) => connection.executeQuery<Row>(compiled));
      return { rows: result.rows, affected: Number(result.numAffectedRows ?? 0) };
    },
  });
}

/** What MikroORM keeps as a transaction's context on PostgreSQL: a Kysely transaction, bound to one pooled connection. */
interface KyselyTransaction {
  getExecutor(): { provideConnection<T>(consumer: (connection: DatabaseConnection) => Promise<T>): Promise<T> };
}

/** Kysely passes (text, values): a text we prepared goes to pg with its name, so pg reuses the parsed statement. */
function nameKnownTexts(client: PoolClient, names: ReadonlyMap<string, string>): void {
  const query = client.query.bind(client) as (...args: unknown[]) => unknown;
  (client as { query: unknown }).query = (config: unknown, values?: unknown, callback?: unknown) => {
    const name = typeof config === 'string' ? names.get(config) : undefined;
    if (name === undefined) return callback === undefined ? (values === undefined ? query(config) : query(config, values)) : query(config, values, callback);
    return query({ name, text: config, values });
  };
}
