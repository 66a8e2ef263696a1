// Configuration for MikroORM tooling (schema diffs, new migrations); the server
// builds the same configuration in src/storage/orm.ts.
import { parseDatabaseUrl } from './src/storage/database-url.ts';
import { sqliteConfig } from './src/storage/orm.ts';

const target = parseDatabaseUrl(process.env.DATABASE_URL);
if (target.kind !== 'sqlite') throw new Error('mikro-orm.config.ts: only SQLite is configured');
export default sqliteConfig(target.path);
