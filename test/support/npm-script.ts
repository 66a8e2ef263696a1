// `npm run <script> -- <args>` as a child process, as a user types it: for the
// tests of the command-line tools (src/tools/).
import { spawn } from 'node:child_process';

export interface ScriptResult {
  /** The exit code (npm passes on the script's), or null if a signal ended it. */
  code: number | null;
  stdout: string;
  stderr: string;
}

const ROOT = new URL('../../', import.meta.url).pathname;

/** Runs the package.json script from the project root (without npm's own banner) and resolves when it has exited. */
export function runNpmScript(script: string, args: readonly string[], env: Record<string, string> = {}): Promise<ScriptResult> {
  const child = spawn('npm', ['run', '--silent', script, '--', ...args], {
    cwd: ROOT,
    env: { ...process.env, ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let stdout = '';
  let stderr = '';
  child.stdout.setEncoding('utf8').on('data', (chunk: string) => (stdout += chunk));
  child.stderr.setEncoding('utf8').on('data', (chunk: string) => (stderr += chunk));
  return new Promise((resolve, reject) => {
    child.once('error', reject);
    // 'close' comes after the exit and after stdout and stderr are drained.
    child.once('close', (code) => resolve({ code, stdout, stderr }));
  });
}
