// The start-up check: stored loads that disagree with the open contacts (the
// database was changed behind the service's back) are repaired, and capacity
// the repair frees goes to the queue.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { afterAll, describe, expect, it } from 'vitest';
import { ContactStatus } from '../../gen/crm/v1/resources_pb.js';
import { allContacts, createOperators, createSource, register } from '../support/fixtures.ts';
import { startTestServer } from '../support/test-server.ts';

const dir = mkdtempSync(join(tmpdir(), 'crm-integrity-'));
const database = { kind: 'sqlite' as const, path: join(dir, 'crm.sqlite') };
afterAll(() => rmSync(dir, { recursive: true, force: true }));

describe('start-up load reconciliation', () => {
  it('repairs stored loads to the real open counts and drains what the repair frees', async () => {
    let t = await startTestServer({ database });
    const [operator] = await createOperators(t, 1, 2);
    const sourceId = await createSource(t, [[operator!, 1]]);
    const contacts = [];
    for (let i = 0; i < 3; i++) contacts.push((await register(t, sourceId)).contact!);
    expect(contacts.map((c) => c.operator?.id)).toEqual([operator, operator, undefined]);
    await t.stop();

    // Behind the service's back: one assigned contact closed without freeing its load.
    const db = new Database(database.path);
    db.prepare(`update contact set status = 'CLOSED' where id = ?`).run(Number(contacts[0]!.id));
    expect(db.prepare('select open_load from operator where id = ?').get(Number(operator))).toEqual({ open_load: 2 });
    db.close();

    t = await startTestServer({ database });
    try {
      const stored = await allContacts(t, { sourceId });
      expect(stored.map((c) => c.operator?.id)).toEqual([operator, operator, operator]);
      const { operator: repaired } = await t.query.getOperator({ operatorId: operator! });
      expect(repaired!.openLoad).toBe(2);
      expect(stored.filter((c) => c.operator?.id === operator && c.status !== ContactStatus.CLOSED)).toHaveLength(2);
    } finally {
      await t.stop();
    }
  });
});
