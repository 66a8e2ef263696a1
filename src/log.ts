// The server's log: one JSON object a line on stdout (README, "Operations").
import { pino, stdTimeFunctions, type Logger } from 'pino';

/** What LOG_LEVEL accepts, most severe first; `silent` logs nothing. */
export const LOG_LEVELS = ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'] as const;
export type LogLevel = (typeof LOG_LEVELS)[number];

/**
 * Each line carries its level by name and its time in ISO 8601 UTC
 * ("level":"info","time":"2026-11-27T09:30:00.000Z"): readable as it is,
 * and understood by log collectors without pino's numbers.
 */
export function createLogger(level: LogLevel): Logger {
  return pino({
    level,
    timestamp: stdTimeFunctions.isoTime,
    formatters: { level: (label) => ({ level: label }) },
  });
}
