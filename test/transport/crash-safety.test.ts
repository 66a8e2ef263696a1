// kill -9 in the middle of concurrent writes loses no acknowledged contact and
// leaves every stored load equal to the operator's real open contacts.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { afterAll, describe, expect, it } from 'vitest';
import { AdminService } from '../../gen/crm/v1/admin_pb.js';
import { DistributionService } from '../../gen/crm/v1/distribution_pb.js';
import { ContactStatus } from '../../gen/crm/v1/resources_pb.js';
import { startChildServer } from '../support/child-server.ts';
import { allContacts } from '../support/fixtures.ts';
import { grpcClient } from '../support/grpc-client.ts';
import { startTestServer } from '../support/test-server.ts';

const dir = mkdtempSync(join(tmpdir(), 'crm-crash-'));
const dbPath = join(dir, 'crm.sqlite');
afterAll(() => rmSync(dir, { recursive: true, force: true }));

describe('crash safety', () => {
  it('SIGKILL under concurrent load: acknowledged contacts survive, loads match open contacts', async () => {
    const child = await startChildServer({ DATABASE_URL: `sqlite:${dbPath}` });
    const admin = grpcClient(AdminService, child.address);
    const distribution = grpcClient(DistributionService, child.address);
    const operatorIds: bigint[] = [];
    for (let i = 0; i < 3; i++) operatorIds.push((await admin.createOperator({ name: `crash-op-${i}`, maxLoad: 40 })).operator!.id);
    const { source } = await admin.createSource({ name: 'crash-source' });
    await admin.setSourceOperators({ sourceId: source!.id, operators: operatorIds.map((operatorId, i) => ({ operatorId, weight: i + 1 })) });

    const acknowledged = new Map<bigint, 'open' | 'closed'>();
    let killed = false;
    let sent = 0;
    // Eight writers register contacts and close every third one they got, until the kill.
    const writer = async (w: number) => {
      for (let n = 0; !killed; n++) {
        sent += 1;
        try {
          const { contact } = await distribution.registerContact({ source: { case: 'sourceId', value: source!.id }, lead: { externalId: `crash-${w}-${n}` }, message: 'x' });
          acknowledged.set(contact!.id, 'open');
          if (n % 3 === 0 && contact!.operator) {
            await distribution.updateContactStatus({ contactId: contact!.id, status: ContactStatus.CLOSED });
            acknowledged.set(contact!.id, 'closed');
          }
        } catch {
          return; // the server is gone: only what it acknowledged counts
        }
      }
    };
    const writers = Array.from({ length: 8 }, (_, w) => writer(w));
    while (acknowledged.size < 400) await new Promise((resolve) => setImmediate(resolve));
    child.kill('SIGKILL');
    killed = true;
    expect(await child.exited).toBe('SIGKILL');
    await Promise.all(writers);
    admin.close();
    distribution.close();
    expect(sent).toBeGreaterThan(acknowledged.size);

    // The file as the crash left it, before any start-up repair could hide a mismatch.
    const db = new Database(dbPath, { readonly: true });
    const mismatches = db.prepare(`
      select o.id, o.open_load, (select count(*) from contact c where c.operator_id = o.id and c.status != 'CLOSED') as actual
      from operator o where o.open_load != actual or o.open_load > o.max_load`).all();
    db.close();
    expect(mismatches).toEqual([]);

    const t = await startTestServer({ database: { kind: 'sqlite', path: dbPath } });
    try {
      const stored = new Map((await allContacts(t, { sourceId: source!.id })).map((c) => [c.id, c]));
      for (const [id, state] of acknowledged) {
        expect(stored.has(id)).toBe(true);
        if (state === 'closed') expect(stored.get(id)!.status).toBe(ContactStatus.CLOSED);
      }
      for (const operatorId of operatorIds) {
        const { operator } = await t.query.getOperator({ operatorId });
        const open = [...stored.values()].filter((c) => c.operator?.id === operatorId && c.status !== ContactStatus.CLOSED);
        expect(operator!.openLoad).toBe(open.length);
        expect(operator!.openLoad).toBeLessThanOrEqual(40);
      }
    } finally {
      await t.stop();
    }
  });
});
