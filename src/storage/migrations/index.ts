import { Migration20261122232424_initial as PostgresInitial } from './postgresql/Migration20261122232424_initial.ts';
import { Migration20261122231451_initial as SqliteInitial } from './sqlite/Migration20261122231451_initial.ts';

/** Applied in order at start; listed here so the server never scans the disk for them. */
export const migrations = {
  sqlite: [SqliteInitial],
  postgresql: [PostgresInitial],
};
