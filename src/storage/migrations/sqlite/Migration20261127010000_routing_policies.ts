import { Migration } from '@mikro-orm/migrations';

/**
 * Routing policies: two more strategies, an accept deadline per source, a
 * priority per contact, and a history of assignments.
 *
 * The strategy CHECK of `source` must take two more values. SQLite cannot
 * alter a CHECK, and rebuilding the table inside a transaction (where foreign
 * keys cannot be turned off) would cascade into source_operator or rewrite
 * the references to it; a wider CHECK does not change what is stored, so the
 * table's definition is edited in place, by SQLite's own procedure for such
 * changes (https://www.sqlite.org/lang_altertable.html#otheralter): edit
 * sqlite_schema with writable_schema on, bump schema_version (the migration
 * test runs integrity_check after). openDatabase allows the edit while
 * migrating only.
 */
export class Migration20261127010000_routing_policies extends Migration {

  override name = 'Migration20261127010000_routing_policies';

  override async up(): Promise<void> {
    const [version] = await this.execute('pragma schema_version');
    this.addSql('pragma writable_schema = on;');
    this.addSql(`update sqlite_schema set sql = replace(sql, '''SMOOTH_WEIGHTED_ROUND_ROBIN''))', '''SMOOTH_WEIGHTED_ROUND_ROBIN'', ''CAPACITY_WEIGHTED_RANDOM'', ''LEAST_LOADED''))')
      where type = 'table' and name = 'source';`);
    this.addSql(`pragma schema_version = ${Number(version!.schema_version) + 1};`);
    this.addSql('pragma writable_schema = off;');
    this.addSql('alter table `source` add column `accept_within_ms` integer not null default 0;');

    this.addSql('alter table `operator` add column `last_assigned_at` datetime null;');
    this.addSql('update `operator` set `last_assigned_at` = (select max(`assigned_at`) from `contact` where `contact`.`operator_id` = `operator`.`id`);');

    this.addSql('alter table `contact` add column `priority` integer not null default 2;');
    this.addSql('alter table `contact` add column `accept_by` datetime null;');
    this.addSql("create index `contact_queue_index` on `contact` (`source_id`, `priority` desc, `id`) where `operator_id` is null and `status` = 'NEW';");
    this.addSql('create index `contact_accept_by_index` on `contact` (`accept_by`) where `accept_by` is not null;');

    this.addSql(`create table \`assignment\` (\`id\` integer not null primary key autoincrement, \`contact_id\` integer not null, \`source_id\` integer not null, \`operator_id\` integer null, \`previous_operator_id\` integer null, \`reason\` text check (\`reason\` in ('NEW_CONTACT', 'AFFINITY', 'QUEUE', 'TRANSFER', 'ACCEPT_TIMEOUT')) not null, \`assigned_at\` datetime not null, constraint \`assignment_contact_id_foreign\` foreign key (\`contact_id\`) references \`contact\` (\`id\`), constraint \`assignment_source_id_foreign\` foreign key (\`source_id\`) references \`source\` (\`id\`), constraint \`assignment_operator_id_foreign\` foreign key (\`operator_id\`) references \`operator\` (\`id\`) on delete set null, constraint \`assignment_previous_operator_id_foreign\` foreign key (\`previous_operator_id\`) references \`operator\` (\`id\`) on delete set null);`);
    this.addSql('create index `assignment_source_id_operator_id_index` on `assignment` (`source_id`, `operator_id`);');
    // The history so far: every contact that has an operator got it once, as its outcome says.
    this.addSql(`insert into \`assignment\` (\`contact_id\`, \`source_id\`, \`operator_id\`, \`reason\`, \`assigned_at\`)
      select \`id\`, \`source_id\`, \`operator_id\`, case \`outcome\` when 'ASSIGNED' then 'NEW_CONTACT' when 'ASSIGNED_AFFINITY' then 'AFFINITY' else 'QUEUE' end, coalesce(\`assigned_at\`, \`created_at\`)
      from \`contact\` where \`operator_id\` is not null order by \`id\`;`);
  }

}
