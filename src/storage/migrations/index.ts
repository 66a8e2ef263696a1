import { Migration20261122231451_initial } from './sqlite/Migration20261122231451_initial.ts';

/** Applied in order at start; listed here so the server never scans the disk for them. */
export const migrations = {
  sqlite: [Migration20261122231451_initial],
  postgresql: [],
};
