import { pino } from 'pino';
import { configFromEnv, type Config } from './config.ts';
import { startServer, type RunningServer } from './server.ts';
import { DatabaseInUseError } from './storage/sqlite-ownership.ts';

let config: Config;
try {
  config = configFromEnv(process.env);
} catch (error) {
  // A configuration mistake is the operator's to fix: say what, without a stack trace.
  console.error(`crm-distributor: ${(error as Error).message}`);
  process.exit(2);
}
const log = pino({ level: config.logLevel });
let server: RunningServer;
try {
  server = await startServer(config, log);
} catch (error) {
  if (!(error instanceof DatabaseInUseError)) throw error;
  console.error(`crm-distributor: ${error.message}`);
  process.exit(1);
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
