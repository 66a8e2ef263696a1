// Clients in other languages, generated from proto/ with the commands of the
// README ("Clients in other languages") by the machine's own toolchain, then
// run against a real server. A language whose toolchain is absent is skipped.
import { execFile, execFileSync } from 'node:child_process';
import { copyFileSync, mkdirSync, mkdtempSync, readdirSync, rmSync, symlinkSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { basename, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll } from 'vitest';
import { startTestServer, type TestServer } from '../support/test-server.ts';

export { which } from '../support/executables.ts';

const root = fileURLToPath(new URL('../../', import.meta.url));

/** What every client prints: the one operator of `serveOneOperator`, then the field its BadRequest names for page_size 1000. */
export const CLIENT_OUTPUT = ['operator Ann', 'bad field page_size'];

/** A compile or a client run may take a while on a busy machine, never this long. */
export const STEP_TIMEOUT = 110_000;

/** Whether the program exits 0: probes a runtime's libraries when the test file loads, before any server runs. */
export function succeeds(program: string, args: string[]): boolean {
  try {
    execFileSync(program, args, { stdio: 'ignore', timeout: 20_000 });
    return true;
  } catch {
    return false;
  }
}

export interface Workspace {
  /** Where the README's commands run: `proto` here is a link to the repository's proto/. */
  cwd: string;
  /** The README's `proto/crm/v1/*.proto`, as the shell expands it. */
  crmProtos: string[];
  /** A file of test/clients/, copied into cwd; returns its name. */
  copy(fixture: string): string;
  dispose(): void;
}

/** A temporary directory for one client; `subdirectory` (e.g. a GOPATH package) becomes its cwd. */
export function workspace(language: string, subdirectory = '.'): Workspace {
  const dir = mkdtempSync(join(tmpdir(), `crm-${language}-client-`));
  const cwd = join(dir, subdirectory);
  mkdirSync(cwd, { recursive: true });
  symlinkSync(join(root, 'proto'), join(cwd, 'proto'));
  return {
    cwd,
    crmProtos: readdirSync(join(root, 'proto/crm/v1'))
      .filter((name) => name.endsWith('.proto'))
      .sort()
      .map((name) => `proto/crm/v1/${name}`),
    copy(fixture) {
      const name = basename(fixture);
      copyFileSync(join(root, 'test/clients', fixture), join(cwd, name));
      return name;
    },
    dispose: () => rmSync(dir, { recursive: true, force: true }),
  };
}

export interface Run {
  code: number | null;
  stdout: string;
  stderr: string;
}

/** Runs a program without blocking the event loop (the server shares it); resolves whatever the exit status. */
export function run(program: string, args: string[], options: { cwd: string; env?: NodeJS.ProcessEnv }): Promise<Run> {
  return new Promise((resolve) => {
    execFile(program, args, { ...options, timeout: STEP_TIMEOUT, killSignal: 'SIGKILL', maxBuffer: 16 * 1024 * 1024 }, (error, stdout, stderr) => {
      const code = error === null ? 0 : typeof error.code === 'number' ? error.code : null;
      resolve({ code, stdout, stderr: error !== null && code === null ? `${error.message}\n${stderr}` : stderr });
    });
  });
}

/** stdout as lines, without the final newline. */
export const lines = (output: string): string[] => output.trimEnd().split('\n');

/** A server with one operator, Ann, for the clients to list. */
async function serveOneOperator(): Promise<TestServer> {
  const t = await startTestServer();
  await t.admin.createOperator({ name: 'Ann', maxLoad: 3 });
  return t;
}

export interface ClientFixture {
  w: Workspace;
  t: TestServer;
}

/**
 * For the surrounding describe: a workspace for `language` and a server with
 * one operator, made before its tests and disposed after them (read `w` and `t`
 * inside the tests and later hooks).
 */
export function clientFixture(language: string, subdirectory = '.'): ClientFixture {
  const fixture = {} as ClientFixture;
  beforeAll(async () => {
    fixture.w = workspace(language, subdirectory);
    fixture.t = await serveOneOperator();
  });
  afterAll(async () => {
    await fixture.t?.dispose();
    fixture.w?.dispose();
  });
  return fixture;
}
