// The real entry point (`node src/main.ts`) as a child process, for tests of
// process-level behaviour: signals, crashes, start-up checks, logs.
import { spawn, type ChildProcess, type SpawnOptions } from 'node:child_process';
import { readFileSync } from 'node:fs';

/** How the process ended: its exit code, or the signal that killed it. */
export interface ExitStatus {
  code: number | null;
  signal: NodeJS.Signals | null;
}

/** A started `node src/main.ts`, listening or not (yet). */
export interface ServerProcess {
  process: ChildProcess;
  /** Every complete stdout line so far (JSON log lines). */
  lines: string[];
  /** Everything written to stdout so far. */
  stdout(): string;
  /** Everything written to stderr so far. */
  stderr(): string;
  /** stdout and stderr so far, interleaved as they arrived. */
  output(): string;
  /** The stdout lines that are JSON objects, parsed. */
  logs(): Record<string, unknown>[];
  /** Resolves with the exit code (or signal name) once the process is gone and its output read. */
  exited: Promise<number | string>;
  /** Resolves with the exit code and signal once the process is gone and its output read. */
  exitStatus: Promise<ExitStatus>;
  /** True until the process has exited. */
  readonly running: boolean;
  /** The first stdout line that satisfies `test`; rejects if the output ends without one. */
  line(test: (line: string) => boolean): Promise<string>;
  /** The ports from the "listening" log line; rejects if the process exits first. */
  listening(): Promise<{ port: number; metricsPort: number | null }>;
  kill(signal?: NodeJS.Signals): void;
  /** SIGKILL if still running, then waits for it to be gone: for test clean-up. */
  stop(): Promise<void>;
}

/** A started `node src/main.ts` that has logged "listening". */
export interface ChildServer extends ServerProcess {
  port: number;
  address: string;
}

export interface ServerProcessOptions {
  /**
   * Give the process only PATH and HOME from the test's environment (besides the
   * defaults and `env`), so that nothing set around the tests (CRM_TOKENS, HOST,
   * ...) changes what it does. By default it inherits the whole environment.
   */
  isolated?: boolean;
  /**
   * Run `npm start` in this directory (an installed copy of the project), as
   * an operator does, instead of this repository's src/main.ts on the tests'
   * Node. npm runs the server as its child and passes signals on to it.
   */
  npmStartIn?: string;
}

const ROOT_URL = new URL('../../', import.meta.url);
const ROOT = ROOT_URL.pathname;

const START_SCRIPT = (JSON.parse(readFileSync(new URL('package.json', ROOT_URL), 'utf8')) as { scripts: { start: string } }).scripts.start;
if (!START_SCRIPT.startsWith('exec node ')) throw new Error(`package.json's start script is not "exec node <arguments>": ${START_SCRIPT}`);
/** The arguments `npm start` gives node (heap settings and the entry point), so tests run what users run. */
const START_ARGS = START_SCRIPT.slice('exec node '.length).split(/\s+/);

/** Starts the server as `npm start` does, on ephemeral ports with info logs (unless `env` says otherwise), without waiting for it. */
export function spawnServer(env: Record<string, string>, options: ServerProcessOptions = {}): ServerProcess {
  const inherited = options.isolated ? { PATH: process.env.PATH ?? '', HOME: process.env.HOME ?? '' } : process.env;
  const spawnOptions = {
    env: { ...inherited, PORT: '0', METRICS_PORT: '0', LOG_LEVEL: 'info', ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  } satisfies SpawnOptions;
  const child = options.npmStartIn
    ? // A process group of its own, so that stop() reaches the server under npm too.
      spawn('npm', ['start'], { ...spawnOptions, cwd: options.npmStartIn, detached: true })
    : spawn(process.execPath, START_ARGS, { ...spawnOptions, cwd: ROOT });
  const lines: string[] = [];
  let partial = '';
  let stdout = '';
  let stderr = '';
  let output = '';
  let closed = false;
  const waiters: (() => void)[] = [];
  const wake = () => waiters.splice(0).forEach((resolve) => resolve());

  child.stdout!.setEncoding('utf8').on('data', (chunk: string) => {
    stdout += chunk;
    output += chunk;
    const parts = (partial + chunk).split('\n');
    partial = parts.pop()!;
    lines.push(...parts);
    wake();
  });
  child.stdout!.on('end', () => {
    if (partial !== '') lines.push(partial);
    partial = '';
  });
  child.stderr!.setEncoding('utf8').on('data', (chunk: string) => {
    output += chunk;
    stderr += chunk;
  });
  // 'close' comes after the exit and after stdout and stderr are drained.
  const exitStatus = new Promise<ExitStatus>((resolve) => {
    child.once('close', (code, signal) => {
      closed = true;
      wake();
      resolve({ code, signal });
    });
  });

  const line = async (test: (line: string) => boolean): Promise<string> => {
    for (;;) {
      const found = lines.find(test);
      if (found !== undefined) return found;
      if (closed) throw new Error(`process exited (${describeExit(await exitStatus)}) without the expected line; stdout:\n${lines.join('\n')}\nstderr:\n${stderr}`);
      await new Promise<void>((resolve) => waiters.push(resolve));
    }
  };

  return {
    process: child,
    lines,
    stdout: () => stdout,
    stderr: () => stderr,
    output: () => output,
    logs: () => lines.filter((l) => l.startsWith('{')).map((l) => JSON.parse(l) as Record<string, unknown>),
    exited: exitStatus.then(({ code, signal }) => (code ?? signal) as number | string),
    exitStatus,
    get running() {
      return child.exitCode === null && child.signalCode === null;
    },
    line,
    async listening() {
      const found = await line((l) => {
        const entry = parseJson(l);
        return typeof entry?.msg === 'string' && entry.msg.startsWith('listening') && typeof entry.port === 'number';
      });
      const entry = JSON.parse(found) as { port: number; metricsPort?: number | null };
      return { port: entry.port, metricsPort: entry.metricsPort ?? null };
    },
    kill: (signal = 'SIGTERM') => void child.kill(signal),
    async stop() {
      // Under npm, the server may outlive npm and still hold the output open: its whole group goes.
      if (options.npmStartIn && !closed) process.kill(-child.pid!, 'SIGKILL');
      else if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
      await exitStatus;
    },
  };
}

/** Starts `node src/main.ts` (see spawnServer) and waits until it listens. */
export async function startChildServer(env: Record<string, string>, options: ServerProcessOptions = {}): Promise<ChildServer> {
  const server = spawnServer(env, options);
  const { port } = await server.listening();
  return Object.assign(server, { port, address: `127.0.0.1:${port}` });
}

function parseJson(line: string): Record<string, unknown> | undefined {
  try {
    const value: unknown = JSON.parse(line);
    return typeof value === 'object' && value !== null ? (value as Record<string, unknown>) : undefined;
  } catch {
    return undefined; // not a JSON line: the tests of the logs report those
  }
}

function describeExit({ code, signal }: ExitStatus): string {
  return signal ? `signal ${signal}` : `code ${code}`;
}
