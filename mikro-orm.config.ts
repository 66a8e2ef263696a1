// Configuration for MikroORM tooling (schema diffs, new migrations) from
// DATABASE_URL; the server builds the same configuration in src/storage/orm.ts.
import { parseDatabaseUrl } from './src/storage/database-url.ts';
import { postgresConfig, sqliteConfig } from './src/storage/orm.ts';

const target = parseDatabaseUrl(process.env.DATABASE_URL);
export default target.kind === 'postgresql' ? postgresConfig(target.url) : sqliteConfig(target.path);
