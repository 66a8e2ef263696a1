import { Migration } from '@mikro-orm/migrations';

/**
 * A lead's contacts (GetLead, ListLeads: the newest, and how many) and the
 * operators holding its open ones (affinity), without reading the rest of
 * the table; PostgreSQL does not index foreign keys by itself.
 */
export class Migration20261127000000_lead_holders extends Migration {

  override name = 'Migration20261127000000_lead_holders';

  override up(): void | Promise<void> {
    this.addSql(`create index "contact_lead_id_index" on "contact" ("lead_id");`);
    this.addSql(`create index "contact_lead_id_operator_id_status_index" on "contact" ("lead_id", "operator_id", "status");`);
  }

}
