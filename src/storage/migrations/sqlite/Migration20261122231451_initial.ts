import { Migration } from '@mikro-orm/migrations';

export class Migration20261122231451_initial extends Migration {

  override name = 'Migration20261122231451_initial';

  override up(): void | Promise<void> {
    this.addSql(`create table \`lead\` (\`id\` integer not null primary key autoincrement, \`external_id\` text null, \`phone\` text null, \`email\` text null, \`name\` text not null default '', \`created_at\` datetime not null);`);
    this.addSql(`create unique index \`lead_external_id_unique\` on \`lead\` (\`external_id\`);`);
    this.addSql(`create unique index \`lead_phone_unique\` on \`lead\` (\`phone\`);`);
    this.addSql(`create unique index \`lead_email_unique\` on \`lead\` (\`email\`);`);

    this.addSql(`create table \`operator\` (\`id\` integer not null primary key autoincrement, \`name\` text not null, \`active\` integer not null default true, \`max_load\` integer not null, \`open_load\` integer not null default 0, \`created_at\` datetime not null);`);
    this.addSql(`create unique index \`operator_name_unique\` on \`operator\` (\`name\`);`);

    this.addSql(`create table \`source\` (\`id\` integer not null primary key autoincrement, \`name\` text not null, \`code\` text null, \`description\` text not null default '', \`strategy\` text check (\`strategy\` in ('WEIGHTED_RANDOM', 'SMOOTH_WEIGHTED_ROUND_ROBIN')) not null default 'WEIGHTED_RANDOM', \`lead_affinity\` integer not null default true, \`swrr_cycle\` text not null default '', \`created_at\` datetime not null);`);
    this.addSql(`create unique index \`source_name_unique\` on \`source\` (\`name\`);`);
    this.addSql(`create unique index \`source_code_unique\` on \`source\` (\`code\`);`);

    this.addSql(`create table \`contact\` (\`id\` integer not null primary key autoincrement, \`lead_id\` integer not null, \`source_id\` integer not null, \`operator_id\` integer null, \`status\` text check (\`status\` in ('NEW', 'IN_PROGRESS', 'CLOSED')) not null default 'NEW', \`message\` text not null default '', \`request_id\` text null, \`outcome\` text check (\`outcome\` in ('ASSIGNED', 'ASSIGNED_AFFINITY', 'QUEUED_NO_CAPACITY', 'QUEUED_NO_OPERATORS')) not null, \`created_at\` datetime not null, \`assigned_at\` datetime null, \`closed_at\` datetime null, constraint \`contact_lead_id_foreign\` foreign key (\`lead_id\`) references \`lead\` (\`id\`), constraint \`contact_source_id_foreign\` foreign key (\`source_id\`) references \`source\` (\`id\`), constraint \`contact_operator_id_foreign\` foreign key (\`operator_id\`) references \`operator\` (\`id\`) on delete set null);`);
    this.addSql(`create index \`contact_lead_id_index\` on \`contact\` (\`lead_id\`);`);
    this.addSql(`create index \`contact_source_id_index\` on \`contact\` (\`source_id\`);`);
    this.addSql(`create index \`contact_operator_id_index\` on \`contact\` (\`operator_id\`);`);
    this.addSql(`create index \`contact_operator_id_status_index\` on \`contact\` (\`operator_id\`, \`status\`);`);
    this.addSql(`create index \`contact_source_id_operator_id_index\` on \`contact\` (\`source_id\`, \`operator_id\`);`);
    this.addSql(`create unique index \`contact_source_id_request_id_unique\` on \`contact\` (\`source_id\`, \`request_id\`);`);

    this.addSql(`create table \`source_operator\` (\`source_id\` integer not null, \`operator_id\` integer not null, \`weight\` integer not null, \`swrr_current\` integer not null default 0, primary key (\`source_id\`, \`operator_id\`), constraint \`source_operator_source_id_foreign\` foreign key (\`source_id\`) references \`source\` (\`id\`) on update cascade on delete cascade, constraint \`source_operator_operator_id_foreign\` foreign key (\`operator_id\`) references \`operator\` (\`id\`) on update cascade on delete cascade);`);
    this.addSql(`create index \`source_operator_source_id_index\` on \`source_operator\` (\`source_id\`);`);
    this.addSql(`create index \`source_operator_operator_id_index\` on \`source_operator\` (\`operator_id\`);`);
  }

}
