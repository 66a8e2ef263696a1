import { Migration20261122232424_initial as PostgresInitial } from './postgresql/Migration20261122232424_initial.ts';
import { Migration20261127000000_lead_holders as PostgresLeadHolders } from './postgresql/Migration20261127000000_lead_holders.ts';
import { Migration20261127010000_routing_policies as PostgresRoutingPolicies } from './postgresql/Migration20261127010000_routing_policies.ts';
import { Migration20261122231451_initial as SqliteInitial } from './sqlite/Migration20261122231451_initial.ts';
import { Migration20261127000000_lead_holders as SqliteLeadHolders } from './sqlite/Migration20261127000000_lead_holders.ts';
import { Migration20261127010000_routing_policies as SqliteRoutingPolicies } from './sqlite/Migration20261127010000_routing_policies.ts';
import { Migration20261127020000_redundant_indexes as SqliteRedundantIndexes } from './sqlite/Migration20261127020000_redundant_indexes.ts';

/** Applied in order at start; listed here so the server never scans the disk for them. */
export const migrations = {
  sqlite: [SqliteInitial, SqliteLeadHolders, SqliteRoutingPolicies, SqliteRedundantIndexes],
  postgresql: [PostgresInitial, PostgresLeadHolders, PostgresRoutingPolicies],
};
