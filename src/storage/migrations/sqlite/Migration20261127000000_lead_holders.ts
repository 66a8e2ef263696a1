import { Migration } from '@mikro-orm/migrations';

/** Affinity asks which operators hold a lead's open contacts: answered from this index alone, however many contacts the lead has. */
export class Migration20261127000000_lead_holders extends Migration {

  override name = 'Migration20261127000000_lead_holders';

  override up(): void | Promise<void> {
    this.addSql(`create index \`contact_lead_id_operator_id_status_index\` on \`contact\` (\`lead_id\`, \`operator_id\`, \`status\`);`);
  }

}
