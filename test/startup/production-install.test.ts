// The production install of the README, `npm ci --omit=dev && npm start`, on
// a machine whose own Node is 20, which cannot run TypeScript: the project
// brings Node 24 (the `node` package, a production dependency), and npm runs
// its scripts on it. What `npm start` needs is copied to a temporary directory,
// installed from the npm registry (a few minutes when npm's cache is cold),
// started with the machine's Node first on PATH, called, and stopped.
import { execFile, execFileSync } from 'node:child_process';
import { cpSync, existsSync, mkdtempSync, readlinkSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { AssignmentOutcome } from '../../gen/crm/v1/resources_pb.js';
import { HealthCheckResponse_ServingStatus as ServingStatus } from '../../gen/grpc/health/v1/health_pb.js';
import { spawnServer, type ServerProcess } from '../support/child-server.ts';
import { serviceClients } from '../support/grpc-client.ts';

const run = promisify(execFile);
const ROOT = new URL('../../', import.meta.url).pathname;
/** The machine's own Node (Debian's), the one `npm` runs on. */
const SYSTEM_NODE = '/usr/bin/node';
/** What `npm start` needs: the manifest and lock, the sources (migrations included), the generated code. */
const SHIPPED = ['package.json', 'package-lock.json', 'src', 'gen'];
const INSTALL_TIMEOUT_MS = 8 * 60_000;

const systemNodeVersion = existsSync(SYSTEM_NODE) ? execFileSync(SYSTEM_NODE, ['--version'], { encoding: 'utf8' }).trim() : 'absent';

describe.skipIf(!systemNodeVersion.startsWith('v20.'))(`npm ci --omit=dev && npm start with ${SYSTEM_NODE} (${systemNodeVersion}) first on PATH; skipped without a Node 20 there`, () => {
  let dir: string;
  /** The machine's Node first on PATH, and nothing of this repository's node_modules. */
  let env: Record<string, string>;
  let child: ServerProcess | undefined;

  beforeAll(() => {
    dir = mkdtempSync(join(tmpdir(), 'crm-production-'));
    for (const entry of SHIPPED) cpSync(join(ROOT, entry), join(dir, entry), { recursive: true });
    const others = (process.env.PATH ?? '').split(':').filter((entry) => entry !== '' && !entry.includes('node_modules'));
    env = { PATH: [dirname(SYSTEM_NODE), ...others].join(':'), HOME: process.env.HOME ?? '' };
  });

  afterAll(async () => {
    await child?.stop();
    rmSync(dir, { recursive: true, force: true });
  });

  it('installs the production dependencies only, serves on the bundled Node 24 and exits 0 on SIGTERM', { timeout: INSTALL_TIMEOUT_MS + 120_000 }, async () => {
    // What proves the point: `node` (and so npm) here is the machine's Node 20, which cannot run src/main.ts.
    expect((await run('node', ['--version'], { env })).stdout.trim()).toMatch(/^v20\./);

    await run('npm', ['ci', '--omit=dev'], { cwd: dir, env, timeout: INSTALL_TIMEOUT_MS, maxBuffer: 16 * 1024 * 1024 });
    for (const devDependency of ['vitest', 'typescript', '@grpc/grpc-js', '@bufbuild/buf']) {
      expect(existsSync(join(dir, 'node_modules', devDependency)), `${devDependency} was installed`).toBe(false);
    }

    child = spawnServer({ ...env, DATABASE_URL: `sqlite:${join(dir, 'crm.sqlite')}` }, { isolated: true, npmStartIn: dir });
    const { port } = await child.listening();
    const listening = child.logs().find((line) => typeof line.msg === 'string' && line.msg.startsWith('listening'))!;
    // The server under npm is the Node the install brought.
    expect(readlinkSync(`/proc/${String(listening.pid)}/exe`)).toMatch(new RegExp(`^${dir}/node_modules/`));

    const clients = serviceClients(`127.0.0.1:${port}`);
    try {
      expect((await clients.health.check({ service: '' })).status).toBe(ServingStatus.SERVING);
      const { operator } = await clients.admin.createOperator({ name: 'Anna', maxLoad: 5 });
      const { source } = await clients.admin.createSource({ name: 'TelegramBot', code: 'tg' });
      await clients.admin.setSourceOperators({ sourceId: source!.id, operators: [{ operatorId: operator!.id, weight: 10 }] });
      const registered = await clients.distribution.registerContact({ source: { case: 'sourceCode', value: 'tg' }, lead: { externalId: 'tg-42' }, message: 'Hello!' });
      expect(registered.outcome).toBe(AssignmentOutcome.ASSIGNED);
      expect(registered.contact?.operator?.name).toBe('Anna');
    } finally {
      clients.close();
    }

    child.kill('SIGTERM');
    expect(await child.exitStatus).toEqual({ code: 0, signal: null });
    expect(child.logs().map((line) => line.msg)).toEqual(expect.arrayContaining(['shutting down', 'stopped']));
  });
});
