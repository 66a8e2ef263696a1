// SQLite under faults, on the real entry point (`node src/main.ts` as a child
// process): the disk filling up under load, another process holding the write
// lock, and a second server started on the same file.
import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync, statfsSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { status, type ServiceError } from '@grpc/grpc-js';
import Database from 'better-sqlite3';
import { afterAll, describe, expect, it } from 'vitest';
import { AdminService } from '../../gen/crm/v1/admin_pb.js';
import { DistributionService } from '../../gen/crm/v1/distribution_pb.js';
import { QueryService } from '../../gen/crm/v1/query_pb.js';
import { ContactStatus } from '../../gen/crm/v1/resources_pb.js';
import { Health, HealthCheckResponse_ServingStatus as ServingStatus } from '../../gen/grpc/health/v1/health_pb.js';
import { spawnServer, startChildServer, type ChildServer } from '../support/child-server.ts';
import { isRoot, sleep, withTmpfs } from '../support/faults.ts';
import { grpcClient } from '../support/grpc-client.ts';
import { testDialect } from '../support/test-database.ts';

const ROOT = new URL('../../', import.meta.url).pathname;

/** How a call ended: with a response, with a status, or not within the time we gave it. */
type Outcome<T> =
  | { kind: 'ok'; value: T }
  | { kind: 'failed'; code: status; details: string }
  | { kind: 'hung' };

/** Waits for `call` at most `limitMs`; a call still pending then is reported as hung (the client abandons it when closed). */
async function settle<T>(call: Promise<T>, limitMs: number): Promise<Outcome<T>> {
  let timer: NodeJS.Timeout | undefined;
  const hung = new Promise<Outcome<T>>((resolve) => {
    timer = setTimeout(() => resolve({ kind: 'hung' }), limitMs);
  });
  try {
    return await Promise.race([
      call.then(
        (value): Outcome<T> => ({ kind: 'ok', value }),
        (error: ServiceError): Outcome<T> => ({ kind: 'failed', code: error.code, details: error.details }),
      ),
      hung,
    ]);
  } finally {
    clearTimeout(timer);
  }
}

/** A status as a readable name, for failure messages. */
function describeOutcome(outcome: Outcome<unknown>): string {
  if (outcome.kind === 'failed') return `${status[outcome.code]}: ${outcome.details}`;
  return outcome.kind === 'ok' ? 'OK' : 'no answer (hung)';
}

function clients(address: string) {
  const all = {
    admin: grpcClient(AdminService, address),
    distribution: grpcClient(DistributionService, address),
    query: grpcClient(QueryService, address),
    health: grpcClient(Health, address),
  };
  return { ...all, close: () => Object.values(all).forEach((client) => client.close()) };
}
type Clients = ReturnType<typeof clients>;

/** An operator that can take every contact of the test, and a source sending it everything. */
async function operatorAndSource(c: Clients, name: string): Promise<{ operatorId: bigint; sourceId: bigint }> {
  const { operator } = await c.admin.createOperator({ name: `${name}-op`, maxLoad: 1_000_000 });
  const { source } = await c.admin.createSource({ name: `${name}-source` });
  await c.admin.setSourceOperators({ sourceId: source!.id, operators: [{ operatorId: operator!.id, weight: 1 }] });
  return { operatorId: operator!.id, sourceId: source!.id };
}

function register(c: Clients, sourceId: bigint, externalId: string, message = 'hello') {
  return c.distribution.registerContact({ source: { case: 'sourceId', value: sourceId }, lead: { externalId }, message });
}

/**
 * Another process (a backup, a `sqlite3` shell) holding SQLite's write lock
 * on `dbPath` with BEGIN IMMEDIATE for `holdMs` after it says "locked".
 */
function holdWriteLock(dbPath: string, holdMs: number) {
  const script = `
    const Database = require('better-sqlite3');
    const [path, holdMs] = process.argv.slice(1);
    const db = new Database(path, { timeout: 10000 });
    db.exec('begin immediate');
    console.log('locked');
    setTimeout(() => {
      db.exec('commit');
      db.close();
      console.log('released');
    }, Number(holdMs));
  `;
  const child = spawn(process.execPath, ['-e', script, dbPath, String(holdMs)], { cwd: ROOT, stdio: ['ignore', 'pipe', 'pipe'] });
  let stdout = '';
  let stderr = '';
  const waiters: (() => void)[] = [];
  child.stdout.setEncoding('utf8').on('data', (chunk: string) => {
    stdout += chunk;
    waiters.splice(0).forEach((wake) => wake());
  });
  child.stderr.setEncoding('utf8').on('data', (chunk: string) => (stderr += chunk));
  const exited = new Promise<number | null>((resolve) => child.once('close', (code) => {
    waiters.splice(0).forEach((wake) => wake());
    resolve(code);
  }));
  let closed = false;
  void exited.then(() => (closed = true));
  const said = async (word: string): Promise<void> => {
    while (!stdout.split('\n').includes(word)) {
      if (closed) throw new Error(`the lock holder exited without saying "${word}"; stderr:\n${stderr}`);
      await new Promise<void>((resolve) => waiters.push(resolve));
    }
  };
  return {
    locked: () => said('locked'),
    released: () => said('released'),
    exited,
    stop: async () => {
      if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
      await exited;
    },
  };
}

const tempDirs: string[] = [];
function tempDbPath(prefix: string): string {
  const dir = mkdtempSync(join(tmpdir(), prefix));
  tempDirs.push(dir);
  return join(dir, 'crm.sqlite');
}
afterAll(() => tempDirs.forEach((dir) => rmSync(dir, { recursive: true, force: true })));

describe.skipIf(testDialect !== 'sqlite')('SQLite faults', () => {
  it.skipIf(!isRoot)('disk full under load: only RESOURCE_EXHAUSTED/UNAVAILABLE, acknowledged contacts kept, file intact, recovery without restart', async () => {
    await withTmpfs(8, async (dir) => {
      const dbPath = join(dir, 'crm.sqlite');
      const filler = join(dir, 'filler');
      let child: ChildServer | undefined;
      let c: Clients | undefined;
      try {
        child = await startChildServer({ DATABASE_URL: `sqlite:${dbPath}` });
        c = clients(child.address);
        const { operatorId, sourceId } = await operatorAndSource(c, 'full');

        // Leave about 1.5 MiB: room for some contacts, then SQLITE_FULL.
        const { bavail, bsize } = statfsSync(dir);
        writeFileSync(filler, Buffer.alloc(bavail * bsize - 1536 * 1024, 1));

        // Sixteen bots register contacts with messages of 5,000 to 10,000
        // characters until forty calls have failed (or 20 s have passed).
        const acknowledged = new Map<bigint, number>();
        const failures: Outcome<unknown>[] = [];
        const hung: string[] = [];
        let calls = 0;
        const stopAt = Date.now() + 20_000;
        const done = () => failures.length >= 40 || hung.length > 0 || Date.now() > stopAt;
        const bot = async (b: number) => {
          for (let n = 0; !done(); n++) {
            const length = 5_000 + Math.floor(Math.random() * 5_001);
            const message = `${b}-${n}-`.padEnd(length, 'abcdefghijklmnopqrstuvwxyz');
            calls += 1;
            const outcome = await settle(register(c!, sourceId, `full-${b}-${n}`, message), 15_000);
            if (outcome.kind === 'ok') acknowledged.set(outcome.value.contact!.id, length);
            else if (outcome.kind === 'failed') failures.push(outcome);
            else hung.push(`full-${b}-${n}`);
          }
        };
        await Promise.all(Array.from({ length: 16 }, (_, b) => bot(b)));

        expect(hung, 'calls that never answered').toEqual([]);
        expect(acknowledged.size, 'contacts stored before the disk filled up').toBeGreaterThan(0);
        expect(failures.length, `failed calls among ${calls}`).toBeGreaterThan(0);
        const codes = new Set(failures.map((f) => (f.kind === 'failed' ? status[f.code] : f.kind)));
        expect([...codes].filter((code) => code !== 'RESOURCE_EXHAUSTED' && code !== 'UNAVAILABLE'), failures.map(describeOutcome).join('\n')).toEqual([]);

        // Reads need no space: they answer while the disk is still full.
        const whileFull = await settle(c.query.getOperator({ operatorId }), 10_000);
        expect(describeOutcome(whileFull)).toBe('OK');
        if (whileFull.kind === 'ok') expect(whileFull.value.operator!.openLoad).toBe(acknowledged.size);

        // Space comes back: writes and reads work again within 10 s, on the same process.
        rmSync(filler);
        const recoverBy = Date.now() + 10_000;
        let recovered: bigint | undefined;
        const meanwhile: string[] = [];
        for (let attempt = 0; recovered === undefined && Date.now() < recoverBy; attempt++) {
          const outcome = await settle(register(c, sourceId, `full-after-${attempt}`, 'y'.repeat(10_000)), Math.max(recoverBy - Date.now(), 1));
          if (outcome.kind === 'ok') recovered = outcome.value.contact!.id;
          else if (outcome.kind === 'failed') {
            meanwhile.push(describeOutcome(outcome));
            await sleep(200);
          } else meanwhile.push('no answer (hung)');
        }
        expect(recovered, `no registration succeeded within 10 s of freeing space: ${meanwhile.join('; ')}`).toBeDefined();
        expect(meanwhile.filter((m) => !m.startsWith('RESOURCE_EXHAUSTED') && !m.startsWith('UNAVAILABLE'))).toEqual([]);
        acknowledged.set(recovered!, 10_000);
        const read = await settle(c.query.getOperator({ operatorId }), Math.max(recoverBy - Date.now(), 1_000));
        expect(describeOutcome(read)).toBe('OK');
        const listed = await settle(c.query.listContacts({ sourceId, pageSize: 10 }), Math.max(recoverBy - Date.now(), 1_000));
        expect(describeOutcome(listed)).toBe('OK');
        expect(child.running).toBe(true);

        // The file as the server left it: intact, every acknowledged contact in it, whole.
        c.close();
        c = undefined;
        child.kill('SIGTERM');
        expect(await Promise.race([child.exited, sleep(15_000).then(() => 'still running 15 s after SIGTERM')])).toBe(0);
        const db = new Database(dbPath, { readonly: true });
        try {
          expect(db.pragma('integrity_check', { simple: true })).toBe('ok');
          const stored = new Map((db.prepare('select id, length(message) as length from contact where source_id = ?').all(sourceId) as { id: number; length: number }[])
            .map((row) => [BigInt(row.id), row.length]));
          const missing = [...acknowledged].filter(([id, length]) => stored.get(id) !== length);
          expect(missing, `acknowledged contacts missing or cut short, of ${acknowledged.size}`).toEqual([]);
          // And nothing of the failed calls: a client may send them again without a duplicate.
          expect([...stored.keys()].filter((id) => !acknowledged.has(id)), 'contacts stored for failed calls').toEqual([]);
          // Nothing half-done by the failed transactions: the stored load is the open contacts'.
          const load = db.prepare(`select open_load, (select count(*) from contact where operator_id = operator.id and status != 'CLOSED') as actual from operator where id = ?`).get(operatorId) as { open_load: number; actual: number };
          expect(load.open_load).toBe(load.actual);
        } finally {
          db.close();
        }
      } finally {
        c?.close();
        await child?.stop();
      }
    });
  });

  it('another process holding the write lock for 3 s: calls wait and succeed, health keeps answering', async () => {
    const dbPath = tempDbPath('crm-lock-');
    const child = await startChildServer({ DATABASE_URL: `sqlite:${dbPath}` });
    const c = clients(child.address);
    let holder: ReturnType<typeof holdWriteLock> | undefined;
    try {
      const { operatorId, sourceId } = await operatorAndSource(c, 'lock');
      const { contact: toClose } = await register(c, sourceId, 'lock-before');
      expect(toClose!.operator?.id).toBe(operatorId);

      holder = holdWriteLock(dbPath, 3_000);
      await holder.locked();
      // Writes while another process holds the lock: registrations and a close.
      const writes = [
        ...Array.from({ length: 20 }, (_, i) => settle(register(c, sourceId, `lock-during-${i}`), 15_000)),
        settle(c.distribution.updateContactStatus({ contactId: toClose!.id, status: ContactStatus.CLOSED }), 15_000),
      ];
      let pendingWrites = writes.length;
      for (const write of writes) void write.then(() => (pendingWrites -= 1));
      // The health check answers while they wait (it does not queue behind the database).
      const checks: { status: ServingStatus; pendingWrites: number }[] = [];
      for (let i = 0; i < 5; i++) {
        await sleep(200);
        const { status: serving } = await c.health.check({ service: '' });
        checks.push({ status: serving, pendingWrites });
      }

      const outcomes = await Promise.all(writes);
      await holder.released();
      expect(await holder.exited).toBe(0);
      expect(checks.every((check) => check.status === ServingStatus.SERVING), JSON.stringify(checks)).toBe(true);
      expect(checks.every((check) => check.pendingWrites > 0), 'health answered only once the writes were done').toBe(true);
      // Nothing is INTERNAL; the server waits up to 5 s for the lock, so all of them succeed.
      expect(outcomes.map(describeOutcome)).toEqual(outcomes.map(() => 'OK'));

      // After the release: writes and reads as usual, the close counted once.
      const after = await settle(register(c, sourceId, 'lock-after'), 10_000);
      expect(describeOutcome(after)).toBe('OK');
      const { operator } = await c.query.getOperator({ operatorId });
      expect(operator!.openLoad).toBe(21);
      expect((await c.health.check({ service: '' })).status).toBe(ServingStatus.SERVING);
    } finally {
      await holder?.stop();
      c.close();
      await child.stop();
    }
  });

  // Giving up on BEGIN IMMEDIATE must not keep the connection: Kysely releases
  // it only after a successful BEGIN (kysely-org/kysely#1990), and a kept
  // connection makes every later call wait forever.
  it('another process holding the write lock beyond the 5 s wait: UNAVAILABLE, then the server serves again', async () => {
    const dbPath = tempDbPath('crm-lock-long-');
    const child = await startChildServer({ DATABASE_URL: `sqlite:${dbPath}` });
    const c = clients(child.address);
    let holder: ReturnType<typeof holdWriteLock> | undefined;
    try {
      const { operatorId, sourceId } = await operatorAndSource(c, 'long-lock');
      holder = holdWriteLock(dbPath, 6_500);
      await holder.locked();
      const during = await settle(register(c, sourceId, 'long-lock-during'), 15_000);
      expect(describeOutcome(during)).toMatch(/^UNAVAILABLE/);
      await holder.released();

      // The lock is gone: the next calls are served, with no restart.
      const after = await settle(register(c, sourceId, 'long-lock-after'), 10_000);
      expect(describeOutcome(after)).toBe('OK');
      const read = await settle(c.query.getOperator({ operatorId }), 10_000);
      expect(describeOutcome(read)).toBe('OK');
      if (read.kind === 'ok') expect(read.value.operator!.openLoad).toBe(1);
    } finally {
      await holder?.stop();
      c.close();
      await child.stop();
    }
  });

  it('a second server on the same file exits 1 naming the file, and the first keeps serving', async () => {
    const dbPath = tempDbPath('crm-owner-');
    const first = await startChildServer({ DATABASE_URL: `sqlite:${dbPath}` });
    const c = clients(first.address);
    const second = spawnServer({ DATABASE_URL: `sqlite:${dbPath}` });
    try {
      const { sourceId: before } = await operatorAndSource(c, 'owner-before');
      await register(c, before, 'owner-before');

      const exit = await second.exitStatus;
      expect(exit.code, second.output()).toBe(1);
      expect(second.stderr()).toContain(dbPath);
      expect(second.stderr()).toMatch(/in use by another crm-distributor process/);
      expect(second.lines.some((line) => line.includes('listening'))).toBe(false);

      expect(first.running).toBe(true);
      const { operatorId, sourceId } = await operatorAndSource(c, 'owner-after');
      const { contact } = await register(c, sourceId, 'owner-after');
      expect(contact!.operator?.id).toBe(operatorId);
      expect((await c.query.getOperator({ operatorId })).operator!.openLoad).toBe(1);
      expect((await c.health.check({ service: '' })).status).toBe(ServingStatus.SERVING);
    } finally {
      await second.stop();
      c.close();
      await first.stop();
    }
  });
});
