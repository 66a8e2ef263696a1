import { pino } from 'pino';
import { configFromEnv } from './config.ts';
import { startServer } from './server.ts';

const config = configFromEnv(process.env);
const log = pino({ level: config.logLevel });
const server = await startServer(config, log);

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
