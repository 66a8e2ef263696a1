// npm run backup: a consistent copy of a live SQLite database, taken while
// registrations keep arriving; and what it refuses.
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { afterAll, describe, expect, it } from 'vitest';
import { ContactStatus } from '../../gen/crm/v1/resources_pb.js';
import { startChildServer } from '../support/child-server.ts';
import { allContacts, unique } from '../support/fixtures.ts';
import { serviceClients } from '../support/grpc-client.ts';
import { runNpmScript, type ScriptResult } from '../support/npm-script.ts';
import { startTestServer } from '../support/test-server.ts';

const dir = mkdtempSync(join(tmpdir(), 'crm-backup-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

/** The tool's error: one line on stderr, nothing on stdout. */
function refusal(result: ScriptResult): string {
  expect(result.stdout).toBe('');
  const lines = result.stderr.trim().split('\n');
  expect(lines).toHaveLength(1);
  return lines[0]!;
}

describe('npm run backup', () => {
  it('copies a live database under load: every contact acknowledged before it began, consistent loads; the server serves throughout', async () => {
    const dbPath = join(dir, 'live.sqlite');
    const copyPath = join(dir, 'copy.sqlite');
    const databaseUrl = `sqlite:${dbPath}`;
    const child = await startChildServer({ DATABASE_URL: databaseUrl });
    const clients = serviceClients(child.address);
    let stopping = false;
    const acknowledged: bigint[] = [];
    const failures: unknown[] = [];
    // Eight writers register contacts and close every third one they got (which drains the queue), until told to stop.
    const writer = async (w: number, sourceId: bigint) => {
      for (let n = 0; !stopping; n++) {
        try {
          const { contact } = await clients.distribution.registerContact({ source: { case: 'sourceId', value: sourceId }, lead: { externalId: `backup-${w}-${n}` }, message: 'x' });
          acknowledged.push(contact!.id);
          if (n % 3 === 0 && contact!.operator) await clients.distribution.updateContactStatus({ contactId: contact!.id, status: ContactStatus.CLOSED });
        } catch (error) {
          failures.push(error);
          return;
        }
      }
    };
    let writers: Promise<void>[] = [];
    try {
      const operatorIds: bigint[] = [];
      for (let i = 0; i < 3; i++) operatorIds.push((await clients.admin.createOperator({ name: unique('backup-op'), maxLoad: 40 })).operator!.id);
      const { source } = await clients.admin.createSource({ name: unique('backup-source') });
      await clients.admin.setSourceOperators({ sourceId: source!.id, operators: operatorIds.map((operatorId, i) => ({ operatorId, weight: i + 1 })) });

      writers = Array.from({ length: 8 }, (_, w) => writer(w, source!.id));
      while (acknowledged.length < 200 && failures.length === 0) await new Promise((resolve) => setTimeout(resolve, 10));
      // Every call answered before the backup starts was committed before it starts.
      const acknowledgedBefore = [...acknowledged];
      const backup = await runNpmScript('backup', [copyPath], { DATABASE_URL: databaseUrl });
      const acknowledgedDuring = acknowledged.length - acknowledgedBefore.length;
      stopping = true;
      await Promise.all(writers);

      expect(failures).toEqual([]);
      expect(acknowledgedDuring).toBeGreaterThan(0);
      const after = await clients.distribution.registerContact({ source: { case: 'sourceId', value: source!.id }, lead: { externalId: 'backup-after' } });
      expect(after.contact!.id).toBeGreaterThan(acknowledged.at(-1)!);
      expect(child.running).toBe(true);

      expect(backup.stderr).toBe('');
      expect(backup.code).toBe(0);
      const copy = new Database(copyPath, { readonly: true });
      let copiedContacts: number;
      try {
        expect(copy.pragma('integrity_check', { simple: true })).toBe('ok');
        const copiedIds = new Set(copy.prepare('select id from contact').pluck().all() as number[]);
        expect(acknowledgedBefore.filter((id) => !copiedIds.has(Number(id)))).toEqual([]);
        const mismatchedLoads = copy.prepare(`
          select o.id, o.open_load, (select count(*) from contact c where c.operator_id = o.id and c.status in ('NEW', 'IN_PROGRESS')) as open
          from operator o where o.open_load != open`).all();
        expect(mismatchedLoads).toEqual([]);
        copiedContacts = copiedIds.size;
        const leads = copy.prepare('select count(*) from lead').pluck().get() as number;
        expect(backup.stdout).toBe(`copied ${dbPath} to ${copyPath}: ${copiedContacts} contacts, ${leads} leads, 3 operators, 1 sources\n`);
      } finally {
        copy.close();
      }

      // A second backup to the same file is refused and leaves the first untouched.
      const first = readFileSync(copyPath);
      const again = await runNpmScript('backup', [copyPath], { DATABASE_URL: databaseUrl });
      expect(again.code).toBe(2);
      expect(refusal(again)).toBe(`crm-distributor backup: ${copyPath} already exists: a backup never overwrites a file, name a new one`);
      expect(readFileSync(copyPath).equals(first)).toBe(true);

      // Restoring is starting a server on the copy.
      const restored = await startTestServer({ database: { kind: 'sqlite', path: copyPath } });
      try {
        expect(await allContacts(restored)).toHaveLength(copiedContacts);
      } finally {
        await restored.stop();
      }
    } finally {
      stopping = true;
      await Promise.all(writers);
      clients.close();
      await child.stop();
    }
  });

  it('refuses PostgreSQL, pointing to pg_dump, and reports a missing database as an I/O failure', async () => {
    const copyPath = join(dir, 'never.sqlite');
    const postgres = await runNpmScript('backup', [copyPath], { DATABASE_URL: 'postgres://crm@db.invalid:5432/crm' });
    expect(postgres.code).toBe(2);
    expect(refusal(postgres)).toMatch(/^crm-distributor backup: DATABASE_URL is a PostgreSQL database: back it up with pg_dump /);

    const missing = await runNpmScript('backup', [copyPath], { DATABASE_URL: `sqlite:${join(dir, 'missing.sqlite')}` });
    expect(missing.code).toBe(1);
    expect(refusal(missing)).toBe(`crm-distributor backup: ${join(dir, 'missing.sqlite')} does not exist: nothing to back up (is DATABASE_URL the server's?)`);

    const usage = await runNpmScript('backup', [], { DATABASE_URL: `sqlite:${join(dir, 'missing.sqlite')}` });
    expect(usage.code).toBe(2);
    expect(refusal(usage)).toMatch(/^crm-distributor backup: usage: npm run backup -- <new file>/);
    expect(existsSync(copyPath)).toBe(false);
  });
});
