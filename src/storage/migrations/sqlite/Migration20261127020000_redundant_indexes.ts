import { Migration } from '@mikro-orm/migrations';

/**
 * Every contact insert (the hot path) maintained two indexes that others
 * already cover as a prefix: (operator_id) by (operator_id, status) and
 * (source_id) by (source_id, operator_id). SQLite finds the same rows through
 * the wider ones. (PostgreSQL never had them.)
 */
export class Migration20261127020000_redundant_indexes extends Migration {

  override name = 'Migration20261127020000_redundant_indexes';

  override up(): void | Promise<void> {
    this.addSql('drop index `contact_operator_id_index`;');
    this.addSql('drop index `contact_source_id_index`;');
  }

}
