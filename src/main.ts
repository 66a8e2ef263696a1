import { inspect } from 'node:util';
import { configFromEnv, type Config } from './config.ts';
import { createLogger } from './log.ts';
import { startServer, type RunningServer } from './server.ts';
import { configurationError, startupError, type StartupError } from './startup-errors.ts';

let config: Config;
try {
  config = configFromEnv(process.env);
} catch (error) {
  exitWith(configurationError(error));
}
const log = createLogger(config.logLevel);
let server: RunningServer;
try {
  server = await startServer(config, log);
} catch (error) {
  exitWith(startupError(error, config, process.env));
}

for (const signal of ['SIGINT', 'SIGTERM'] as const) {
  process.once(signal, () => {
    log.info({ signal }, 'shutting down');
    server.close().then(
      () => process.exit(0),
      (error: unknown) => {
        log.error({ err: error }, 'shutdown failed');
        process.exit(1);
      },
    );
  });
}

/**
 * One line for the operator: what to fix. The failure itself, stack and all,
 * only with LOG_LEVEL=debug or trace (read from the environment: the
 * configuration may be what failed).
 */
function exitWith(error: StartupError): never {
  console.error(`crm-distributor: ${error.message}`);
  if (/^(?:debug|trace)$/i.test(process.env.LOG_LEVEL ?? '')) console.error(inspect(error.cause));
  process.exit(error.exitCode);
}
