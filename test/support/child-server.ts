// The real entry point (`node src/main.ts`) as a child process, for tests of
// process-level behaviour: signals, crashes, start-up checks.
import { spawn, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { createInterface } from 'node:readline';

export interface ChildServer {
  process: ChildProcess;
  port: number;
  address: string;
  /** Every stdout line so far (JSON log lines). */
  lines: string[];
  /** Resolves with the exit code (or signal name) once the process is gone. */
  exited: Promise<number | string>;
  kill(signal?: NodeJS.Signals): void;
}

export async function startChildServer(env: Record<string, string>): Promise<ChildServer> {
  const child = spawn(process.execPath, ['src/main.ts'], {
    cwd: new URL('../..', import.meta.url).pathname,
    env: { ...process.env, PORT: '0', METRICS_PORT: '0', LOG_LEVEL: 'info', ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  const exited = once(child, 'exit').then(([code, signal]) => (code ?? signal) as number | string);
  const lines: string[] = [];
  const listening = new Promise<number>((resolve, reject) => {
    createInterface({ input: child.stdout! }).on('line', (line) => {
      lines.push(line);
      const entry = JSON.parse(line) as { msg?: string; port?: number };
      if (entry.msg?.startsWith('listening') && entry.port) resolve(entry.port);
    });
    void exited.then((code) => reject(new Error(`server exited (${code}) before listening`)));
  });
  const port = await listening;
  return {
    process: child,
    port,
    address: `127.0.0.1:${port}`,
    lines,
    exited,
    kill: (signal = 'SIGTERM') => void child.kill(signal),
  };
}
