// The server logs levels by name ("level":"warn", see src/log.ts); tests that
// pick lines by severity compare them here.
import { levels } from 'pino';
import type { LogLevel } from '../../src/log.ts';

export type LevelName = Exclude<LogLevel, 'silent'>;

/**
 * Whether a parsed log line is at `level` or more severe. A line without a
 * level name throws: a filter for "no errors" must not pass because the
 * format changed under it.
 */
export function atLeast(entry: Record<string, unknown>, level: LevelName): boolean {
  const severity = typeof entry.level === 'string' ? levels.values[entry.level] : undefined;
  if (severity === undefined) throw new Error(`log line without a level name: ${JSON.stringify(entry)}`);
  return severity >= levels.values[level]!;
}
