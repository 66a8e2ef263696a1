import { Migration } from '@mikro-orm/migrations';

/** Routing policies: two more strategies, an accept deadline per source, a priority per contact, and a history of assignments. */
export class Migration20261127010000_routing_policies extends Migration {

  override name = 'Migration20261127010000_routing_policies';

  override up(): void | Promise<void> {
    this.addSql(`alter table "source" add column "accept_within_ms" int not null default 0;`);
    this.addSql(`alter table "source" drop constraint "source_strategy_check";`);
    this.addSql(`alter table "source" add constraint "source_strategy_check" check ("strategy" in ('WEIGHTED_RANDOM', 'SMOOTH_WEIGHTED_ROUND_ROBIN', 'CAPACITY_WEIGHTED_RANDOM', 'LEAST_LOADED'));`);

    this.addSql(`alter table "operator" add column "last_assigned_at" timestamptz null;`);
    this.addSql(`update "operator" set "last_assigned_at" = (select max("assigned_at") from "contact" where "contact"."operator_id" = "operator"."id");`);

    this.addSql(`alter table "contact" add column "priority" smallint not null default 2;`);
    this.addSql(`alter table "contact" add column "accept_by" timestamptz null;`);
    this.addSql(`create index "contact_queue_index" on "contact" ("source_id", "priority" desc, "id") where "operator_id" is null and "status" = 'NEW';`);
    this.addSql(`create index "contact_accept_by_index" on "contact" ("accept_by") where "accept_by" is not null;`);

    this.addSql(`create table "assignment" ("id" serial primary key, "contact_id" int not null, "source_id" int not null, "operator_id" int null, "previous_operator_id" int null, "reason" text not null, "assigned_at" timestamptz not null);`);
    this.addSql(`alter table "assignment" add constraint "assignment_reason_check" check ("reason" in ('NEW_CONTACT', 'AFFINITY', 'QUEUE', 'TRANSFER', 'ACCEPT_TIMEOUT'));`);
    this.addSql(`create index "assignment_source_id_operator_id_index" on "assignment" ("source_id", "operator_id");`);
    this.addSql(`alter table "assignment" add constraint "assignment_contact_id_foreign" foreign key ("contact_id") references "contact" ("id");`);
    this.addSql(`alter table "assignment" add constraint "assignment_source_id_foreign" foreign key ("source_id") references "source" ("id");`);
    this.addSql(`alter table "assignment" add constraint "assignment_operator_id_foreign" foreign key ("operator_id") references "operator" ("id") on delete set null;`);
    this.addSql(`alter table "assignment" add constraint "assignment_previous_operator_id_foreign" foreign key ("previous_operator_id") references "operator" ("id") on delete set null;`);
    // The history so far: every contact that has an operator got it once, as its outcome says.
    this.addSql(`insert into "assignment" ("contact_id", "source_id", "operator_id", "reason", "assigned_at")
      select "id", "source_id", "operator_id", case "outcome" when 'ASSIGNED' then 'NEW_CONTACT' when 'ASSIGNED_AFFINITY' then 'AFFINITY' else 'QUEUE' end, coalesce("assigned_at", "created_at")
      from "contact" where "operator_id" is not null order by "id";`);
  }

}
