import { Migration } from '@mikro-orm/migrations';

export class Migration20261122232424_initial extends Migration {

  override name = 'Migration20261122232424_initial';

  override up(): void | Promise<void> {
    this.addSql(`create table "lead" ("id" serial primary key, "external_id" varchar(200) null, "phone" varchar(32) null, "email" varchar(320) null, "name" varchar(200) not null default '', "created_at" timestamptz not null);`);
    this.addSql(`alter table "lead" add constraint "lead_external_id_unique" unique ("external_id");`);
    this.addSql(`alter table "lead" add constraint "lead_phone_unique" unique ("phone");`);
    this.addSql(`alter table "lead" add constraint "lead_email_unique" unique ("email");`);

    this.addSql(`create table "operator" ("id" serial primary key, "name" varchar(200) not null, "active" boolean not null default true, "max_load" int not null, "open_load" int not null default 0, "created_at" timestamptz not null);`);
    this.addSql(`alter table "operator" add constraint "operator_name_unique" unique ("name");`);

    this.addSql(`create table "source" ("id" serial primary key, "name" varchar(200) not null, "code" varchar(64) null, "description" text not null default '', "strategy" text not null default 'WEIGHTED_RANDOM', "lead_affinity" boolean not null default true, "swrr_cycle" varchar(2000) not null default '', "created_at" timestamptz not null);`);
    this.addSql(`alter table "source" add constraint "source_name_unique" unique ("name");`);
    this.addSql(`alter table "source" add constraint "source_code_unique" unique ("code");`);
    this.addSql(`alter table "source" add constraint "source_strategy_check" check ("strategy" in ('WEIGHTED_RANDOM', 'SMOOTH_WEIGHTED_ROUND_ROBIN'));`);

    this.addSql(`create table "contact" ("id" serial primary key, "lead_id" int not null, "source_id" int not null, "operator_id" int null, "status" text not null default 'NEW', "message" text not null default '', "request_id" varchar(200) null, "outcome" text not null, "created_at" timestamptz not null, "assigned_at" timestamptz null, "closed_at" timestamptz null);`);
    this.addSql(`create index "contact_operator_id_status_index" on "contact" ("operator_id", "status");`);
    this.addSql(`create index "contact_source_id_operator_id_index" on "contact" ("source_id", "operator_id");`);
    this.addSql(`alter table "contact" add constraint "contact_source_id_request_id_unique" unique ("source_id", "request_id");`);
    this.addSql(`alter table "contact" add constraint "contact_status_check" check ("status" in ('NEW', 'IN_PROGRESS', 'CLOSED'));`);
    this.addSql(`alter table "contact" add constraint "contact_outcome_check" check ("outcome" in ('ASSIGNED', 'ASSIGNED_AFFINITY', 'QUEUED_NO_CAPACITY', 'QUEUED_NO_OPERATORS'));`);

    this.addSql(`create table "source_operator" ("source_id" int not null, "operator_id" int not null, "weight" int not null, "swrr_current" int not null default 0, primary key ("source_id", "operator_id"));`);

    this.addSql(`alter table "contact" add constraint "contact_lead_id_foreign" foreign key ("lead_id") references "lead" ("id");`);
    this.addSql(`alter table "contact" add constraint "contact_source_id_foreign" foreign key ("source_id") references "source" ("id");`);
    this.addSql(`alter table "contact" add constraint "contact_operator_id_foreign" foreign key ("operator_id") references "operator" ("id") on delete set null;`);

    this.addSql(`alter table "source_operator" add constraint "source_operator_source_id_foreign" foreign key ("source_id") references "source" ("id") on update cascade on delete cascade;`);
    this.addSql(`alter table "source_operator" add constraint "source_operator_operator_id_foreign" foreign key ("operator_id") references "operator" ("id") on update cascade on delete cascade;`);
  }

}
