// `npm run bench [-- flags]`: see --help. The logic is in bench.ts.
import { parseArgs } from 'node:util';
import { cleanUpAfterInterrupt, DEFAULT_LONG_OPTIONS, DEFAULT_OPTIONS, formatLongReport, formatReport, runBench, runLong, type ProgressKind } from './bench.ts';

const HELP = `Usage: npm run bench -- [flags]

Starts the real server (node src/main.ts, durable SQLite) on an ephemeral port and
drives it with @grpc/grpc-js clients: a no-op baseline (grpc.health.v1 Health/Check)
and RegisterContact (distinct leads, and a repeat-lead mix), interleaved over several
rounds, on an empty database and again after pre-filling it with contacts. Reports
calls/s, p50/p99 latency, the ratio to the baseline, the server's CPU per call
(steadier than calls/s on shared cores), its peak RSS, and the SQL statements per
RegisterContact.

Then, on a temporary PostgreSQL database (created on --postgres's server and
dropped at the end), RegisterContact with distinct leads on one replica, on two
(two server processes, the load split evenly between them) and on two with a
WatchAssignments watcher on one, interleaved with the baseline, with the ratios
of two replicas to one and the events the watcher received. If that server
cannot be reached, the section is skipped.

  --concurrency N   calls in flight at once (default ${DEFAULT_OPTIONS.concurrency})
  --channels N      grpc-js channels / HTTP/2 connections (default ${DEFAULT_OPTIONS.channels}; rounded up to even for two replicas)
  --seconds S       length of one round of one scenario (default ${DEFAULT_OPTIONS.seconds})
  --rounds R        measured rounds per scenario (default ${DEFAULT_OPTIONS.rounds})
  --warmup S        warm-up per scenario before the rounds (default ${DEFAULT_OPTIONS.warmupSeconds})
  --prefill N       contacts to pre-fill for the second phase (default ${DEFAULT_OPTIONS.prefillContacts})
  --skip-prefill    measure the empty database only
  --long            instead: ${DEFAULT_LONG_OPTIONS.calls.toLocaleString('en-US')} RegisterContact calls, server RSS at start, middle and end
  --calls N         calls in --long mode (default ${DEFAULT_LONG_OPTIONS.calls})
  --dir PATH        directory for the temporary database (default: the OS temp dir)
  --postgres URL    PostgreSQL server to create the temporary database on, as a URL to
                    administer it by (default ${DEFAULT_OPTIONS.postgresUrl})
  --skip-postgres   measure SQLite only
  --json            print one JSON object instead of the table
  -h, --help        this text
`;

const { values } = parseArgs({
  options: {
    concurrency: { type: 'string' },
    channels: { type: 'string' },
    seconds: { type: 'string' },
    rounds: { type: 'string' },
    warmup: { type: 'string' },
    prefill: { type: 'string' },
    'skip-prefill': { type: 'boolean', default: false },
    long: { type: 'boolean', default: false },
    calls: { type: 'string' },
    dir: { type: 'string' },
    postgres: { type: 'string' },
    'skip-postgres': { type: 'boolean', default: false },
    json: { type: 'boolean', default: false },
    help: { type: 'boolean', short: 'h', default: false },
  },
  strict: true,
});

if (values.help) {
  process.stdout.write(HELP);
  process.exit(0);
}

function number(name: string, raw: string | undefined, fallback: number, { min = 0, integer = true } = {}): number {
  if (raw === undefined) return fallback;
  const value = Number(raw);
  if (!Number.isFinite(value) || value < min || (integer && !Number.isInteger(value))) {
    process.stderr.write(`bench: --${name} must be ${integer ? 'a whole number' : 'a number'} >= ${min}, got ${JSON.stringify(raw)}\n`);
    process.exit(2);
  }
  return value;
}

// Progress goes to stderr, so stdout holds only the report (or the JSON).
const tty = process.stderr.isTTY === true;
let live = false;
function onProgress(line: string, kind: ProgressKind): void {
  if (tty) {
    const width = process.stderr.columns || 120;
    process.stderr.write(`\r\x1b[2K${line.length > width - 1 ? line.slice(0, width - 1) : line}`);
    live = true;
    if (kind === 'step') {
      process.stderr.write('\n');
      live = false;
    }
  } else if (kind === 'step') {
    process.stderr.write(`${line}\n`);
  }
}
function endProgress(): void {
  if (live) process.stderr.write('\r\x1b[2K');
  live = false;
}

for (const signal of ['SIGINT', 'SIGTERM'] as const) {
  process.once(signal, () => {
    endProgress();
    process.stderr.write(`bench: ${signal}, stopping the servers and removing the temporary databases\n`);
    void cleanUpAfterInterrupt().finally(() => process.exit(130));
  });
}

const common = {
  concurrency: number('concurrency', values.concurrency, DEFAULT_OPTIONS.concurrency, { min: 1 }),
  channels: number('channels', values.channels, DEFAULT_OPTIONS.channels, { min: 1 }),
  warmupSeconds: number('warmup', values.warmup, DEFAULT_OPTIONS.warmupSeconds, { integer: false }),
  ...(values.dir ? { dir: values.dir } : {}),
  onProgress,
};

let failed = false;
if (values.long) {
  const report = await runLong({ ...common, calls: number('calls', values.calls, DEFAULT_LONG_OPTIONS.calls, { min: 1 }) });
  endProgress();
  process.stdout.write(values.json ? `${JSON.stringify(report, null, 2)}\n` : `${formatLongReport(report)}\n`);
  failed = report.errors > 0;
} else {
  const report = await runBench({
    ...common,
    seconds: number('seconds', values.seconds, DEFAULT_OPTIONS.seconds, { min: 0.1, integer: false }),
    rounds: number('rounds', values.rounds, DEFAULT_OPTIONS.rounds, { min: 1 }),
    prefillContacts: values['skip-prefill'] ? 0 : number('prefill', values.prefill, DEFAULT_OPTIONS.prefillContacts),
    postgresUrl: values['skip-postgres'] ? null : (values.postgres ?? DEFAULT_OPTIONS.postgresUrl),
  });
  endProgress();
  process.stdout.write(values.json ? `${JSON.stringify(report, null, 2)}\n` : `${formatReport(report)}\n`);
  failed = report.errors > 0;
}
// Failed calls mean the figures are not of a healthy server: say so in the exit code.
process.exit(failed ? 1 : 0);
