// `npm run bench`: throughput, latency and memory of the real server under
// concurrent gRPC load. The logic lives here as functions (the CLI is main.ts,
// a tiny-workload check is bench.test.ts).
//
// The server runs as a child process (`node src/main.ts`, durable SQLite:
// WAL, synchronous=FULL) so its memory can be read from /proc. Load comes from
// @grpc/grpc-js clients in this process: N workers, each awaiting its call
// before issuing the next (a closed loop), spread over a few HTTP/2
// connections. A no-op call on the same server (grpc.health.v1 Health/Check)
// is the baseline every scenario is compared with; baseline and
// RegisterContact rounds are interleaved and medians across rounds reported.
//
// Then the same server on PostgreSQL, one replica and two (two processes on
// one temporary database, the load split between them), with and without a
// WatchAssignments watcher: what a second replica buys, and what it costs.
import { mkdtempSync, readFileSync, rmSync, statSync } from 'node:fs';
import os from 'node:os';
import { join } from 'node:path';
import { create, fromBinary, toBinary } from '@bufbuild/protobuf';
import * as grpc from '@grpc/grpc-js';
import Database, { type Statement } from 'better-sqlite3';
import pg from 'pg';
import { pino } from 'pino';
import { AdminService } from '../../gen/crm/v1/admin_pb.js';
import { DistributionService, RegisterContactRequestSchema, RegisterContactResponseSchema, WatchAssignmentsRequestSchema } from '../../gen/crm/v1/distribution_pb.js';
import { AssignmentOutcome, DistributionStrategy } from '../../gen/crm/v1/resources_pb.js';
import { Health, HealthCheckRequestSchema, HealthCheckResponse_ServingStatus, HealthCheckResponseSchema } from '../../gen/grpc/health/v1/health_pb.js';
import { startServer } from '../../src/server.ts';
import { DEFAULT_CONNECTION_LIMITS } from '../../src/transport/service-port.ts';
import { startChildServer, type ChildServer } from '../support/child-server.ts';
import { grpcClient } from '../support/grpc-client.ts';
import { atLeast } from '../support/log-levels.ts';

// ---------------------------------------------------------------- options

export interface BenchOptions {
  /** Calls in flight at once (closed loop: each worker awaits its call, then issues the next). */
  concurrency: number;
  /** grpc-js channels (separate HTTP/2 connections) the workers are spread over. */
  channels: number;
  /** Length of one measured round of one scenario. */
  seconds: number;
  /** Rounds per scenario; scenarios are interleaved within each round. */
  rounds: number;
  /** Unmeasured run of each scenario before the first round. */
  warmupSeconds: number;
  /** Contacts written straight into the database before the second phase; 0 skips that phase. */
  prefillContacts: number;
  operators: number;
  maxLoad: number;
  sources: number;
  /** Share of the repeat-lead mix's calls that name a lead already stored. */
  repeatShare: number;
  /** RegisterContact calls per statement-count measurement (0 skips it). */
  statementCalls: number;
  /** Where the temporary database files go (default: the OS temp dir). */
  dir?: string;
  /**
   * A PostgreSQL server for the replica section, as a URL to administer it by:
   * the bench creates a temporary database there and drops it. null skips the section.
   */
  postgresUrl: string | null;
  onProgress?: (line: string, kind: ProgressKind) => void;
}

export interface LongOptions extends Omit<BenchOptions, 'seconds' | 'rounds' | 'prefillContacts' | 'statementCalls' | 'postgresUrl'> {
  /** RegisterContact calls in the long run. */
  calls: number;
  /** RSS checkpoints (evenly spaced by calls), besides the one at the start. */
  checkpoints: number;
}

/** A tick is a live status (overwritten on a TTY); a step is worth a line in a log. */
export type ProgressKind = 'tick' | 'step';

export const DEFAULT_OPTIONS: BenchOptions = {
  concurrency: 64,
  channels: 4,
  seconds: 5,
  rounds: 3,
  warmupSeconds: 2,
  prefillContacts: 1_000_000,
  operators: 20,
  maxLoad: 1_000_000,
  sources: 4,
  repeatShare: 0.5,
  statementCalls: 500,
  postgresUrl: 'postgres://postgres@127.0.0.1:5432/postgres',
};

export const DEFAULT_LONG_OPTIONS: LongOptions = {
  ...DEFAULT_OPTIONS,
  calls: 1_000_000,
  checkpoints: 10,
};

// ---------------------------------------------------------------- report shapes

export type ScenarioName = 'baseline' | 'registerDistinct' | 'registerRepeat';
/** The baseline first: the others are compared with it. */
export const SCENARIOS = ['baseline', 'registerDistinct', 'registerRepeat'] as const satisfies readonly ScenarioName[];

export interface Outcomes {
  assigned: number;
  assignedAffinity: number;
  queued: number;
}

export interface RoundResult<S extends string = ScenarioName> extends DriveResult {
  scenario: S;
  /** 0 for the warm-up run. */
  round: number;
}

export interface ScenarioSummary<S extends string = ScenarioName> {
  scenario: S;
  label: string;
  /** Medians across the measured rounds. */
  callsPerSecond: number;
  p50Ms: number;
  p99Ms: number;
  serverCpuPercent: number | null;
  serverCpuMicrosPerCall: number | null;
  clientCpuPercent: number;
  /** Highest sampled VmRSS of each server process across the rounds (one entry per process). */
  serverPeakRssBytes: number[];
  /** callsPerSecond / the baseline's callsPerSecond. */
  vsBaseline: number;
  /** Totals across the measured rounds. */
  calls: number;
  errors: number;
  outcomes: Outcomes;
}

export interface ServerFigures {
  pid: number;
  /** From spawn to the "listening" log line (includes migrations and the load reconciliation). */
  startupMs: number;
  /** Loads the start-up reconciliation had to repair (0 if the pre-fill kept open_load consistent). */
  loadRepairs: number;
  /** Log lines at warn level or above while measuring. */
  warnings: number;
  rssAfterSetupBytes: number;
  rssAtEndBytes: number;
  /** Highest VmRSS seen by sampling every 250 ms. */
  rssSampledPeakBytes: number;
  /** VmHWM: the kernel's peak resident set size of the server process. */
  peakRssBytes: number;
}

export interface PhaseReport {
  name: 'empty' | 'prefilled';
  label: string;
  contactsAtStart: number;
  contactsAtEnd: number;
  databaseBytesAtEnd: number;
  scenarios: Record<ScenarioName, ScenarioSummary>;
  rounds: RoundResult[];
  server: ServerFigures;
}

export interface PrefillReport {
  contacts: number;
  leads: number;
  openContacts: number;
  seconds: number;
  /** Every operator's open_load equals its NEW + IN_PROGRESS contacts after the pre-fill. */
  loadsConsistent: boolean;
}

export type PostgresScenarioName = 'baseline' | 'oneReplica' | 'twoReplicas' | 'twoReplicasWatched';
/** The baseline first: the others are compared with it. */
export const POSTGRES_SCENARIOS = ['baseline', 'oneReplica', 'twoReplicas', 'twoReplicasWatched'] as const satisfies readonly PostgresScenarioName[];

export interface WatcherFigures {
  /** Events the watcher received in the measured rounds. */
  events: number;
  /** RegisterContact calls of those rounds that assigned their contact: each should reach the watcher as one event. */
  assignments: number;
  /** The status a watch stream ended with before the bench closed it (RESOURCE_EXHAUSTED: it fell behind), if one did. */
  firstError: string | null;
}

export interface ReplicaFigures {
  /** Processes started: the second replica is a new one every round. */
  starts: number;
  /** VmHWM, the kernel's peak resident set size of the process: the highest over its starts. */
  peakRssBytes: number;
  /** Log lines at warn level or above while measuring. */
  warnings: number;
}

export interface PostgresReport {
  /** PostgreSQL's server_version. */
  serverVersion: string;
  /** The temporary database both replicas used (dropped at the end). */
  database: string;
  contactsAtEnd: number;
  scenarios: Record<PostgresScenarioName, ScenarioSummary<PostgresScenarioName>>;
  rounds: RoundResult<PostgresScenarioName>[];
  /** calls/s of each two-replica scenario over the one-replica one's. */
  ratios: { twoReplicasVsOne: number; twoReplicasWatchedVsOne: number };
  watcher: WatcherFigures;
  /** The first replica (in every scenario, and where the watcher is) and the second. */
  replicas: [ReplicaFigures, ReplicaFigures];
}

/** The PostgreSQL section, or why it did not run. */
export type PostgresSection = PostgresReport | { skipped: string };

export interface StatementCount {
  description: string;
  concurrency: number;
  calls: number;
  statements: number;
  transactions: number;
  statementsPerCall: number;
  callsPerTransaction: number;
  statementsPerTransaction: number;
  /** Statements by their first keyword (select, insert, update, begin, commit, ...). */
  byKind: Record<string, number>;
}

export interface StatementReport {
  method: string;
  /** The statements of one RegisterContact of a new lead, alone in its transaction. */
  oneCall: string[];
  measurements: StatementCount[];
}

export interface MachineInfo {
  cpus: number;
  cpuModel: string;
  node: string;
  os: string;
  memoryBytes: number;
  /** 1-minute load average when the run started and ended: other work on the machine skews the figures. */
  loadAverage: { start: number; end: number };
}

export interface BenchReport {
  kind: 'bench';
  startedAt: string;
  seconds: number;
  machine: MachineInfo;
  options: Omit<BenchOptions, 'onProgress' | 'dir'>;
  server: { command: string; database: string; logLevel: string };
  phases: PhaseReport[];
  prefill: PrefillReport | null;
  statements: StatementReport | null;
  postgres: PostgresSection;
  /** Failed calls over every measured round (a healthy run has none). */
  errors: number;
}

export interface RssCheckpoint {
  calls: number;
  rssBytes: number;
}

export interface LongReport {
  kind: 'long';
  startedAt: string;
  seconds: number;
  machine: MachineInfo;
  options: Omit<LongOptions, 'onProgress' | 'dir'>;
  server: { command: string; database: string; logLevel: string };
  calls: number;
  errors: number;
  firstError: string | null;
  callsPerSecond: number;
  p50Ms: number;
  p99Ms: number;
  outcomes: Outcomes;
  rss: {
    start: number;
    middle: number;
    end: number;
    checkpoints: RssCheckpoint[];
    peakBytes: number;
    /** end - middle: what the second half of the calls added. */
    secondHalfGrowthBytes: number;
    /** Least-squares slope of RSS over the checkpoints from the middle on, bytes per 100,000 calls. */
    secondHalfSlopeBytesPer100k: number;
  };
  databaseBytesAtEnd: number;
  warnings: number;
}

// ---------------------------------------------------------------- small helpers

export function machineInfo(loadAtStart: number): MachineInfo {
  const cpus = os.cpus();
  return {
    cpus: cpus.length,
    cpuModel: cpus[0]?.model.trim() ?? 'unknown',
    node: process.version,
    os: `${os.type()} ${os.release()} ${os.arch()}`,
    memoryBytes: os.totalmem(),
    loadAverage: { start: loadAtStart, end: os.loadavg()[0]! },
  };
}

/** Nearest-rank percentile of ascending samples. */
export function percentile(sorted: ArrayLike<number>, q: number): number {
  if (sorted.length === 0) return Number.NaN;
  const rank = Math.min(sorted.length - 1, Math.max(0, Math.ceil(q * sorted.length) - 1));
  return sorted[rank]!;
}

export function median(values: readonly number[]): number {
  if (values.length === 0) return Number.NaN;
  const sorted = [...values].sort((a, b) => a - b);
  const mid = sorted.length >> 1;
  return sorted.length % 2 === 1 ? sorted[mid]! : (sorted[mid - 1]! + sorted[mid]!) / 2;
}

function emptyOutcomes(): Outcomes {
  return { assigned: 0, assignedAffinity: 0, queued: 0 };
}

function addOutcomes(into: Outcomes, more: Outcomes): Outcomes {
  into.assigned += more.assigned;
  into.assignedAffinity += more.assignedAffinity;
  into.queued += more.queued;
  return into;
}

/** VmRSS and VmHWM of a process, in bytes (0 if /proc is unavailable or the process is gone). */
export function processMemory(pid: number): { rssBytes: number; hwmBytes: number } {
  try {
    const status = readFileSync(`/proc/${pid}/status`, 'utf8');
    const kb = (field: string) => Number(new RegExp(`^${field}:\\s+(\\d+) kB`, 'm').exec(status)?.[1] ?? 0) * 1024;
    return { rssBytes: kb('VmRSS'), hwmBytes: kb('VmHWM') };
  } catch {
    return { rssBytes: 0, hwmBytes: 0 };
  }
}

/** CPU seconds (user + system, all threads) a process has used, or null without /proc. */
export function processCpuSeconds(pid: number): number | null {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    // Fields after "(comm)": state is field 3, utime 14, stime 15; in clock ticks (USER_HZ, 100 on Linux).
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    return (Number(fields[11]) + Number(fields[12])) / 100;
  } catch {
    return null;
  }
}

function fileBytes(path: string): number {
  let total = 0;
  for (const suffix of ['', '-wal', '-shm']) {
    try {
      total += statSync(path + suffix).size;
    } catch {
      // not there
    }
  }
  return total;
}

function countContacts(dbPath: string): number {
  const db = new Database(dbPath, { readonly: true });
  try {
    return (db.prepare('select count(*) as n from contact').get() as { n: number }).n;
  } finally {
    db.close();
  }
}

// ---------------------------------------------------------------- interruption

/** Servers, temporary directories and temporary databases of runs in progress, for `cleanUpAfterInterrupt`. */
const live = { servers: new Set<BenchServer>(), dirs: new Set<string>(), databases: new Set<TemporaryDatabase>() };

function tempDir(parent: string | undefined, prefix: string): string {
  const dir = mkdtempSync(join(parent ?? os.tmpdir(), prefix));
  live.dirs.add(dir);
  return dir;
}

function removeDir(dir: string): void {
  rmSync(dir, { recursive: true, force: true });
  live.dirs.delete(dir);
}

/** On Ctrl-C: stop the servers and delete the (large) temporary databases of runs in progress. */
export async function cleanUpAfterInterrupt(): Promise<void> {
  await Promise.all([...live.servers].map((server) => server.stop()));
  for (const dir of live.dirs) removeDir(dir);
  await Promise.all([...live.databases].map((database) => database.drop()));
}

// ---------------------------------------------------------------- a temporary PostgreSQL database

/** One statement on a connection of its own: the bench's few administrative queries. */
async function postgresQuery<Row>(url: string, sql: string): Promise<Row[]> {
  // Not the driver's default of waiting forever: an unreachable server must end in a skipped section.
  const client = new pg.Client({ connectionString: url, connectionTimeoutMillis: 5_000 });
  await client.connect();
  try {
    return (await client.query(sql)).rows as Row[];
  } finally {
    await client.end();
  }
}

/** A URL as it may be printed or reported: without its password. */
function withoutPassword(url: string): string {
  if (!URL.canParse(url)) return '(not a URL)';
  const parsed = new URL(url);
  if (parsed.password) parsed.password = '***';
  return parsed.href;
}

interface TemporaryDatabase {
  name: string;
  /** The admin URL with the database swapped in, as DATABASE_URL for the servers. */
  url: string;
  serverVersion: string;
  drop(): Promise<void>;
}

/** A new, empty database on the server of `adminUrl`; throws if that server cannot be reached or refuses. */
async function createPostgresDatabase(adminUrl: string): Promise<TemporaryDatabase> {
  const url = new URL(adminUrl);
  const name = `crm_bench_${process.pid}_${Date.now().toString(36)}`;
  const [version] = await postgresQuery<{ server_version: string }>(adminUrl, 'show server_version');
  await postgresQuery(adminUrl, `create database ${name}`);
  url.pathname = `/${name}`;
  let dropped: Promise<void> | undefined;
  const database: TemporaryDatabase = {
    name,
    url: url.href,
    serverVersion: version!.server_version,
    drop() {
      // With force: a server killed on Ctrl-C may leave connections behind for a moment.
      dropped ??= postgresQuery(adminUrl, `drop database if exists ${name} with (force)`).then(() => void live.databases.delete(database));
      return dropped;
    },
  };
  live.databases.add(database);
  return database;
}

// ---------------------------------------------------------------- the server and its fixture

export interface BenchServer {
  child: ChildServer;
  address: string;
  pid: number;
  startupMs: number;
  loadRepairs: number;
  /** Warn-or-worse log lines seen since the last call; forgets the lines read (they would pile up over a long run). */
  takeWarnings(): number;
  stop(): Promise<void>;
}

const LOG_LEVEL = 'info';

/** `node src/main.ts` on the given database (`sqlite:<file>` or `postgres://...`), ephemeral port, default (durable) settings. */
export async function startBenchServer(databaseUrl: string): Promise<BenchServer> {
  const started = performance.now();
  // LOG_LEVEL info is both the server's default and what startChildServer needs to see "listening".
  const child = await startChildServer({ DATABASE_URL: databaseUrl, LOG_LEVEL });
  const startupMs = performance.now() - started;
  const loadRepairs = child.lines.filter((line) => line.includes('repaired an operator load')).length;
  child.lines.length = 0;
  let stopped: Promise<void> | undefined;
  const server: BenchServer = {
    child,
    address: child.address,
    pid: child.process.pid!,
    startupMs,
    loadRepairs,
    takeWarnings() {
      const warnings = child.logs().filter((line) => atLeast(line, 'warn')).length;
      child.lines.length = 0;
      return warnings;
    },
    stop() {
      stopped ??= (async () => {
        child.kill('SIGTERM');
        await child.exited;
        live.servers.delete(server);
      })();
      return stopped;
    },
  };
  live.servers.add(server);
  return server;
}

export interface Fixture {
  operatorIds: bigint[];
  sourceIds: bigint[];
}

/**
 * Operators with a high max_load (contacts are assigned, not queued) and
 * sources that each weight every operator: the last source uses smooth
 * weighted round-robin, the others weighted random.
 */
export async function setupFixture(address: string, options: Pick<BenchOptions, 'operators' | 'maxLoad' | 'sources'>): Promise<Fixture> {
  const admin = grpcClient(AdminService, address);
  try {
    const operatorIds: bigint[] = [];
    for (let i = 0; i < options.operators; i++) {
      operatorIds.push((await admin.createOperator({ name: `bench-operator-${i + 1}`, maxLoad: options.maxLoad })).operator!.id);
    }
    const sourceIds: bigint[] = [];
    for (let s = 0; s < options.sources; s++) {
      const roundRobin = options.sources > 1 && s === options.sources - 1;
      const { source } = await admin.createSource({
        name: `bench-source-${s + 1}`,
        code: `bench-${s + 1}`,
        description: 'benchmark source',
        strategy: roundRobin ? DistributionStrategy.SMOOTH_WEIGHTED_ROUND_ROBIN : DistributionStrategy.WEIGHTED_RANDOM,
      });
      await admin.setSourceOperators({ sourceId: source!.id, operators: operatorIds.map((operatorId, o) => ({ operatorId, weight: 1 + ((s * 7 + o * 3) % 10) })) });
      sourceIds.push(source!.id);
    }
    return { operatorIds, sourceIds };
  } finally {
    admin.close();
  }
}

// ---------------------------------------------------------------- calls

type Channel = grpc.Client;

/** A separate HTTP/2 connection: a local subchannel pool keeps grpc-js from sharing one among channels. */
function openChannel(address: string): Channel {
  return new grpc.Client(address, grpc.credentials.createInsecure(), { 'grpc.use_local_subchannel_pool': 1 });
}

/**
 * `count` channels taking the addresses (servers) in turn, rounded up to a
 * whole number per address: workers take the channels in turn too, so the
 * servers get equal shares of them.
 */
export function openChannels(addresses: readonly string[], count: number): Channel[] {
  const total = Math.ceil(count / addresses.length) * addresses.length;
  return Array.from({ length: total }, (_, c) => openChannel(addresses[c % addresses.length]!));
}

function closeChannels(channels: readonly Channel[]): void {
  for (const channel of channels) channel.close();
}

/** A unary call with pre-encoded request bytes; the response comes back undecoded. */
function unary(channel: Channel, path: string, body: Buffer): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    channel.makeUnaryRequest<Buffer, Buffer>(path, (b) => b, (b) => b, body, (error, response) => (error ? reject(error) : resolve(response!)));
  });
}

const HEALTH_CHECK = `/${Health.typeName}/${Health.method.check.name}`;
const REGISTER_CONTACT = `/${DistributionService.typeName}/${DistributionService.method.registerContact.name}`;
const WATCH_ASSIGNMENTS = `/${DistributionService.typeName}/${DistributionService.method.watchAssignments.name}`;
const HEALTH_REQUEST = Buffer.from(toBinary(HealthCheckRequestSchema, create(HealthCheckRequestSchema, { service: '' })));
const WATCH_EVERYTHING = Buffer.from(toBinary(WatchAssignmentsRequestSchema, create(WatchAssignmentsRequestSchema, {})));

/** One call of a scenario on a channel; resolves with what it counts for in the outcomes. */
type Call = (channel: Channel) => Promise<keyof Outcomes | null>;

async function healthCheck(channel: Channel): Promise<null> {
  const response = fromBinary(HealthCheckResponseSchema, await unary(channel, HEALTH_CHECK, HEALTH_REQUEST));
  if (response.status !== HealthCheckResponse_ServingStatus.SERVING) throw new Error(`health status ${response.status}`);
  return null;
}

const KNOWN_LEADS = 50_000;

/**
 * Makes RegisterContact requests: new leads (unique external_id and phone) or
 * leads already stored (by external_id: ones this run registered, and the
 * pre-filled ones). Every call carries a unique request_id, as a bot would.
 */
export class Workload {
  readonly #tag: string;
  readonly #sourceIds: bigint[];
  #sequence = 0;
  readonly #known: string[] = [];
  #knownNext = 0;
  #prefilledLeads = 0;

  constructor(fixture: Fixture, tag = Date.now().toString(36)) {
    this.#tag = tag;
    this.#sourceIds = fixture.sourceIds;
  }

  /** Leads `pf-0` ... `pf-<count-1>` exist (written by prefillDatabase). */
  usePrefilledLeads(count: number): void {
    this.#prefilledLeads = count;
  }

  call(repeatShare: number): Call {
    return async (channel) => {
      const n = this.#sequence++;
      const existing = repeatShare > 0 && Math.random() < repeatShare ? this.#existingLead() : undefined;
      const externalId = existing ?? `bench-${this.#tag}-${n}`;
      const request = create(RegisterContactRequestSchema, {
        source: { case: 'sourceId', value: this.#sourceIds[n % this.#sourceIds.length]! },
        lead: existing ? { externalId } : { externalId, phone: `+7${9_000_000_000 + n}`, name: `Bench lead ${n}` },
        message: 'Hello, I would like to know more about your offer.',
        requestId: `req-${this.#tag}-${n}`,
      });
      const response = fromBinary(RegisterContactResponseSchema, await unary(channel, REGISTER_CONTACT, Buffer.from(toBinary(RegisterContactRequestSchema, request))));
      if (!existing) this.#remember(externalId);
      switch (response.outcome) {
        case AssignmentOutcome.ASSIGNED:
          return 'assigned';
        case AssignmentOutcome.ASSIGNED_AFFINITY:
          return 'assignedAffinity';
        case AssignmentOutcome.QUEUED_NO_CAPACITY:
        case AssignmentOutcome.QUEUED_NO_OPERATORS:
          return 'queued';
        default:
          throw new Error(`unexpected outcome ${response.outcome}`);
      }
    };
  }

  #existingLead(): string | undefined {
    if (this.#prefilledLeads > 0 && (this.#known.length === 0 || Math.random() < 0.5)) return `pf-${Math.floor(Math.random() * this.#prefilledLeads)}`;
    if (this.#known.length === 0) return undefined;
    return this.#known[Math.floor(Math.random() * this.#known.length)];
  }

  #remember(externalId: string): void {
    if (this.#known.length < KNOWN_LEADS) this.#known.push(externalId);
    else this.#known[this.#knownNext++ % KNOWN_LEADS] = externalId;
  }
}

/**
 * A WatchAssignments stream with no filter, on a connection of its own,
 * counting the events it is sent. They are not decoded: this process shares
 * the cores with the servers, and the count is all that is reported.
 */
class AssignmentWatcher {
  events = 0;
  /** The status the stream ended with before close(), if it did (RESOURCE_EXHAUSTED: it fell behind). */
  endedWith: string | null = null;
  readonly #channel: Channel;
  readonly #stream: grpc.ClientReadableStream<Buffer>;
  #closing = false;

  constructor(address: string) {
    this.#channel = openChannel(address);
    this.#stream = this.#channel.makeServerStreamRequest<Buffer, Buffer>(WATCH_ASSIGNMENTS, (b) => b, (b) => b, WATCH_EVERYTHING);
    this.#stream.on('data', () => (this.events += 1));
    this.#stream.on('error', (error) => {
      if (!this.#closing) this.endedWith ??= error.message;
    });
  }

  /**
   * Returns once the stream hears an assignment `probe` makes, with the count
   * at 0: the server subscribes it some time after the call starts, and an
   * assignment committed before that never reaches it.
   */
  async subscribe(probe: () => Promise<unknown>): Promise<void> {
    for (let probes = 1; probes <= 20 && this.events === 0 && this.endedWith === null; probes++) {
      await probe();
      await this.settle(probes, 500);
    }
    if (this.events === 0) throw new Error(`the WatchAssignments stream heard none of the probe assignments${this.endedWith ? ` (${this.endedWith})` : ''}`);
    this.events = 0;
  }

  /** Waits until `events` events have come, the stream has ended, or none has come for `quietMs`. */
  async settle(events: number, quietMs: number): Promise<void> {
    let heard = this.events;
    let quietSince = performance.now();
    while (this.events < events && this.endedWith === null && performance.now() - quietSince < quietMs) {
      await new Promise((resolve) => setTimeout(resolve, 20));
      if (this.events !== heard) {
        heard = this.events;
        quietSince = performance.now();
      }
    }
  }

  close(): void {
    this.#closing = true;
    this.#stream.cancel();
    this.#channel.close();
  }
}

// ---------------------------------------------------------------- the load loop

export interface DriveSpec {
  concurrency: number;
  /** Stop issuing calls after this long ... */
  seconds?: number;
  /** ... or after this many calls. */
  calls?: number;
  /** Called every 500 ms with the calls completed so far. */
  onTick?: (completed: number, elapsedSeconds: number) => void;
  /** Called after every completed call (successful or not). */
  onCompleted?: (completed: number) => void;
  /** The server processes, to measure their CPU (summed) and RSS over the run. */
  serverPids?: readonly number[];
}

export interface DriveResult {
  calls: number;
  errors: number;
  firstError: string | null;
  seconds: number;
  callsPerSecond: number;
  p50Ms: number;
  p99Ms: number;
  /** Server processes' CPU over the run, % of one core. */
  serverCpuPercent: number | null;
  /** Server processes' CPU per completed call: steadier than calls/s on shared cores, where the client competes for them. */
  serverCpuMicrosPerCall: number | null;
  /** Highest VmRSS of each server process, sampled every 250 ms over the run. */
  serverPeakRssBytes: number[];
  /** This (client) process's CPU over the run, % of one core. */
  clientCpuPercent: number;
  outcomes: Outcomes;
}

/** N workers over the channels, each issuing its next call when the last one is answered. */
export async function drive(channels: readonly Channel[], call: Call, spec: DriveSpec): Promise<DriveResult> {
  const latencies: number[] = [];
  const outcomes = emptyOutcomes();
  let issued = 0;
  let completed = 0;
  let errors = 0;
  let firstError: string | null = null;
  const started = process.hrtime.bigint();
  const deadline = spec.seconds === undefined ? undefined : started + BigInt(Math.round(spec.seconds * 1e9));
  const more = () => (spec.calls === undefined || issued < spec.calls) && (deadline === undefined || process.hrtime.bigint() < deadline);
  const serverPids = spec.serverPids ?? [];
  const serverCpuTotal = () => {
    const each = serverPids.map(processCpuSeconds);
    return serverPids.length === 0 || each.includes(null) ? null : each.reduce((sum: number, cpu) => sum + cpu!, 0);
  };
  const serverCpu = serverCpuTotal();
  const serverRss = serverPids.map(sampleRss);
  const clientCpu = process.cpuUsage();
  const ticker = spec.onTick && setInterval(() => spec.onTick!(completed, Number(process.hrtime.bigint() - started) / 1e9), 500);
  const worker = async (w: number) => {
    const channel = channels[w % channels.length]!;
    while (more()) {
      issued += 1;
      const t0 = process.hrtime.bigint();
      try {
        const outcome = await call(channel);
        if (outcome) outcomes[outcome] += 1;
      } catch (error) {
        errors += 1;
        firstError ??= (error as Error).message;
      }
      latencies.push(Number(process.hrtime.bigint() - t0) / 1e6);
      completed += 1;
      spec.onCompleted?.(completed);
    }
  };
  let serverPeakRssBytes: number[];
  try {
    await Promise.all(Array.from({ length: spec.concurrency }, (_, w) => worker(w)));
  } finally {
    if (ticker) clearInterval(ticker);
    serverPeakRssBytes = serverRss.map((rss) => rss.stop());
  }
  const seconds = Number(process.hrtime.bigint() - started) / 1e9;
  const client = process.cpuUsage(clientCpu);
  const serverCpuAfter = serverCpuTotal();
  const serverCpuSeconds = serverCpu === null || serverCpuAfter === null ? null : serverCpuAfter - serverCpu;
  const sorted = Float64Array.from(latencies).sort();
  return {
    calls: completed,
    errors,
    firstError,
    seconds,
    callsPerSecond: completed / seconds,
    p50Ms: percentile(sorted, 0.5),
    p99Ms: percentile(sorted, 0.99),
    serverCpuPercent: serverCpuSeconds === null ? null : (serverCpuSeconds / seconds) * 100,
    serverCpuMicrosPerCall: serverCpuSeconds === null || completed === 0 ? null : (serverCpuSeconds / completed) * 1e6,
    clientCpuPercent: ((client.user + client.system) / 1e6 / seconds) * 100,
    serverPeakRssBytes,
    outcomes,
  };
}

// ---------------------------------------------------------------- one phase: interleaved rounds on one server

const LABELS: Record<ScenarioName, string> = {
  baseline: 'baseline: Health/Check (no-op)',
  registerDistinct: 'RegisterContact, distinct leads',
  registerRepeat: 'RegisterContact, repeat-lead mix',
};

export function scenarioLabel(scenario: ScenarioName, repeatShare: number): string {
  return scenario === 'registerRepeat' ? `RegisterContact, ${Math.round(repeatShare * 100)}% repeat leads` : LABELS[scenario];
}

/** Samples a server's VmRSS (every 250 ms) until stopped. */
function sampleRss(pid: number): { stop(): number } {
  let peak = processMemory(pid).rssBytes;
  const timer = setInterval(() => (peak = Math.max(peak, processMemory(pid).rssBytes)), 250);
  return {
    stop() {
      clearInterval(timer);
      return Math.max(peak, processMemory(pid).rssBytes);
    },
  };
}

function roundLabel(round: number, rounds: number): string {
  return round === 0 ? 'warm-up' : `round ${round}/${rounds}`;
}

/** One run of a scenario against the server processes behind the channels, with a live status and a line for the log. */
async function runScenario(what: string, channels: readonly Channel[], call: Call, serverPids: readonly number[], seconds: number, options: BenchOptions): Promise<DriveResult> {
  const progress = options.onProgress ?? (() => undefined);
  const result = await drive(channels, call, {
    concurrency: options.concurrency,
    seconds,
    serverPids,
    onTick: (completed, elapsed) =>
      progress(`${what}: ${elapsed.toFixed(1)}/${seconds} s, ${completed.toLocaleString('en-US')} calls, ${Math.round(completed / elapsed).toLocaleString('en-US')}/s, server RSS ${serverPids.map((pid) => mb(processMemory(pid).rssBytes)).join(' + ')}`, 'tick'),
  });
  progress(`${what}: ${Math.round(result.callsPerSecond).toLocaleString('en-US')} calls/s, p50 ${result.p50Ms.toFixed(2)} ms, p99 ${result.p99Ms.toFixed(2)} ms${result.errors ? `, ${result.errors} errors` : ''}`, 'step');
  return result;
}

/** Medians across each scenario's measured rounds; the first scenario is the baseline the others are compared with. */
function summarizeScenarios<S extends string>(scenarios: readonly [S, ...S[]], label: (scenario: S) => string, rounds: readonly RoundResult<S>[]): Record<S, ScenarioSummary<S>> {
  const summaries = {} as Record<S, ScenarioSummary<S>>;
  for (const scenario of scenarios) {
    const mine = rounds.filter((r) => r.scenario === scenario);
    const cpu = mine.map((r) => r.serverCpuPercent).filter((c): c is number => c !== null);
    const cpuPerCall = mine.map((r) => r.serverCpuMicrosPerCall).filter((c): c is number => c !== null);
    summaries[scenario] = {
      scenario,
      label: label(scenario),
      callsPerSecond: median(mine.map((r) => r.callsPerSecond)),
      p50Ms: median(mine.map((r) => r.p50Ms)),
      p99Ms: median(mine.map((r) => r.p99Ms)),
      serverCpuPercent: cpu.length === 0 ? null : median(cpu),
      serverCpuMicrosPerCall: cpuPerCall.length === 0 ? null : median(cpuPerCall),
      clientCpuPercent: median(mine.map((r) => r.clientCpuPercent)),
      serverPeakRssBytes: mine.reduce<number[]>((peaks, r) => r.serverPeakRssBytes.map((bytes, p) => Math.max(bytes, peaks[p] ?? 0)), []),
      vsBaseline: 0,
      calls: mine.reduce((n, r) => n + r.calls, 0),
      errors: mine.reduce((n, r) => n + r.errors, 0),
      outcomes: mine.reduce((o, r) => addOutcomes(o, r.outcomes), emptyOutcomes()),
    };
  }
  for (const scenario of scenarios) summaries[scenario].vsBaseline = summaries[scenario].callsPerSecond / summaries[scenarios[0]].callsPerSecond;
  return summaries;
}

export async function measurePhase(
  name: PhaseReport['name'],
  label: string,
  server: BenchServer,
  workload: Workload,
  dbPath: string,
  options: BenchOptions,
): Promise<PhaseReport> {
  const contactsAtStart = countContacts(dbPath);
  const rssAfterSetupBytes = processMemory(server.pid).rssBytes;
  const rss = sampleRss(server.pid);
  const channels = openChannels([server.address], options.channels);
  const calls: Record<ScenarioName, Call> = {
    baseline: healthCheck,
    registerDistinct: workload.call(0),
    registerRepeat: workload.call(options.repeatShare),
  };
  const rounds: RoundResult[] = [];
  let warnings = 0;
  try {
    const run = async (scenario: ScenarioName, round: number, seconds: number): Promise<RoundResult> => {
      const what = `[${label}] ${roundLabel(round, options.rounds)}, ${scenarioLabel(scenario, options.repeatShare)}`;
      const result = await runScenario(what, channels, calls[scenario], [server.pid], seconds, options);
      warnings += server.takeWarnings();
      return { scenario, round, ...result };
    };
    for (const scenario of SCENARIOS) await run(scenario, 0, options.warmupSeconds);
    for (let round = 1; round <= options.rounds; round++) {
      for (const scenario of SCENARIOS) rounds.push(await run(scenario, round, options.seconds));
    }
  } finally {
    closeChannels(channels);
  }
  const { hwmBytes, rssBytes } = processMemory(server.pid);
  const rssSampledPeakBytes = rss.stop();
  return {
    name,
    label,
    contactsAtStart,
    contactsAtEnd: countContacts(dbPath),
    databaseBytesAtEnd: fileBytes(dbPath),
    scenarios: summarizeScenarios(SCENARIOS, (scenario) => scenarioLabel(scenario, options.repeatShare), rounds),
    rounds,
    server: {
      pid: server.pid,
      startupMs: server.startupMs,
      loadRepairs: server.loadRepairs,
      warnings,
      rssAfterSetupBytes,
      rssAtEndBytes: rssBytes,
      rssSampledPeakBytes,
      peakRssBytes: hwmBytes,
    },
  };
}

// ---------------------------------------------------------------- PostgreSQL: one replica, two, two with a watcher

const POSTGRES_LABELS: Record<PostgresScenarioName, string> = {
  baseline: 'baseline: Health/Check (no-op), 1 replica',
  oneReplica: 'RegisterContact, distinct leads, 1 replica',
  twoReplicas: 'RegisterContact, distinct leads, 2 replicas',
  twoReplicasWatched: 'RegisterContact, distinct leads, 2 replicas + 1 watcher',
};

/** Calls that assigned their contact: each one is an assignment event. */
function assignments(outcomes: Outcomes): number {
  return outcomes.assigned + outcomes.assignedAffinity;
}

/**
 * RegisterContact (distinct leads) on a temporary PostgreSQL database: see
 * measureReplicas. Skipped, with the reason, when the server of `adminUrl`
 * cannot be reached (or will not create the database).
 */
export async function measurePostgres(adminUrl: string, options: BenchOptions): Promise<PostgresSection> {
  let database: TemporaryDatabase;
  try {
    database = await createPostgresDatabase(adminUrl);
  } catch (error) {
    const skipped = `PostgreSQL at ${withoutPassword(adminUrl)} cannot be used (${(error as Error).message})`;
    options.onProgress?.(`${skipped}: skipping the PostgreSQL section`, 'step');
    return { skipped };
  }
  try {
    return await measureReplicas(database, options);
  } finally {
    await database.drop();
  }
}

/**
 * One server process, two on the same database with the load split between
 * them, and two with a watcher on the first, interleaved over rounds with the
 * Health/Check baseline (on one). The fixture is made once, through the first.
 */
async function measureReplicas(database: TemporaryDatabase, options: BenchOptions): Promise<PostgresReport> {
  options.onProgress?.(`starting a replica on PostgreSQL ${database.serverVersion} (temporary database ${database.name})`, 'step');
  const first = await startBenchServer(database.url);
  const replicas: [ReplicaFigures, ReplicaFigures] = [{ starts: 1, peakRssBytes: 0, warnings: 0 }, { starts: 0, peakRssBytes: 0, warnings: 0 }];
  const watcher: WatcherFigures = { events: 0, assignments: 0, firstError: null };
  const rounds: RoundResult<PostgresScenarioName>[] = [];
  const alone = openChannels([first.address], options.channels);
  try {
    const register = new Workload(await setupFixture(first.address, options)).call(0);
    const run = async (scenario: PostgresScenarioName, round: number, seconds: number, servers: readonly BenchServer[], channels: readonly Channel[]) => {
      const what = `[PostgreSQL] ${roundLabel(round, options.rounds)}, ${POSTGRES_LABELS[scenario]}`;
      const result = { scenario, round, ...(await runScenario(what, channels, scenario === 'baseline' ? healthCheck : register, servers.map((s) => s.pid), seconds, options)) };
      servers.forEach((server, r) => (replicas[r]!.warnings += server.takeWarnings()));
      if (round > 0) rounds.push(result);
      return result;
    };
    for (let round = 0; round <= options.rounds; round++) {
      const seconds = round === 0 ? options.warmupSeconds : options.seconds;
      await run('baseline', round, seconds, [first], alone);
      await run('oneReplica', round, seconds, [first], alone);
      // A new second process every round, so that the first is alone in the runs above: an idle
      // replica still works against the database (its timers, and the assignments the other announces while it listens).
      const second = await startBenchServer(database.url);
      replicas[1].starts += 1;
      const both = openChannels([first.address, second.address], options.channels);
      try {
        // It starts cold (its code not optimised yet); in round 0 every run is a warm-up already.
        if (round > 0) await run('twoReplicas', 0, options.warmupSeconds, [first, second], both);
        await run('twoReplicas', round, seconds, [first, second], both);
        const watch = new AssignmentWatcher(first.address);
        try {
          await watch.subscribe(() => register(both[1]!));
          const watched = await run('twoReplicasWatched', round, seconds, [first, second], both);
          // The events of the last calls may still be on their way.
          await watch.settle(assignments(watched.outcomes), 2_000);
          if (round > 0) {
            watcher.events += watch.events;
            watcher.assignments += assignments(watched.outcomes);
            watcher.firstError ??= watch.endedWith;
          }
        } finally {
          watch.close();
        }
      } finally {
        closeChannels(both);
        replicas[1].peakRssBytes = Math.max(replicas[1].peakRssBytes, processMemory(second.pid).hwmBytes);
        await second.stop();
      }
    }
    replicas[0].peakRssBytes = processMemory(first.pid).hwmBytes;
    const [contacts] = await postgresQuery<{ n: number }>(database.url, 'select count(*)::int as n from contact');
    const scenarios = summarizeScenarios(POSTGRES_SCENARIOS, (scenario) => POSTGRES_LABELS[scenario], rounds);
    return {
      serverVersion: database.serverVersion,
      database: database.name,
      contactsAtEnd: contacts!.n,
      scenarios,
      rounds,
      ratios: {
        twoReplicasVsOne: scenarios.twoReplicas.callsPerSecond / scenarios.oneReplica.callsPerSecond,
        twoReplicasWatchedVsOne: scenarios.twoReplicasWatched.callsPerSecond / scenarios.oneReplica.callsPerSecond,
      },
      watcher,
      replicas,
    };
  } finally {
    closeChannels(alone);
    await first.stop();
  }
}

// ---------------------------------------------------------------- pre-fill, straight into the file

const DAY_MS = 86_400_000;

/**
 * Writes `contacts` contacts of `contacts / 2.5` new leads (`pf-<i>`, half with a
 * phone, a third with an email) into a stopped server's database, spread over
 * its operators and sources: 2% NEW, 2% IN_PROGRESS, the rest CLOSED. Each
 * operator's open_load grows by exactly the open contacts it was given, so
 * the server's start-up reconciliation has nothing to repair.
 */
export function prefillDatabase(dbPath: string, contacts: number, onProgress: (done: number) => void = () => undefined): PrefillReport & { leadCount: number } {
  const started = performance.now();
  const db = new Database(dbPath);
  try {
    db.pragma('journal_mode = wal');
    // A bulk load, not a service write: durability comes from the checkpoint at the end.
    db.pragma('synchronous = normal');
    db.pragma('cache_size = -262144');
    const operators = (db.prepare('select id from operator order by id').all() as { id: number }[]).map((r) => r.id);
    const sources = (db.prepare('select id from source order by id').all() as { id: number }[]).map((r) => r.id);
    if (operators.length === 0 || sources.length === 0) throw new Error('pre-fill needs the operators and sources set up first');
    const leads = Math.max(1, Math.ceil(contacts / 2.5));
    const firstLead = (db.prepare('select coalesce(max(id), 0) + 1 as id from lead').get() as { id: number }).id;
    const insertLead = db.prepare('insert into lead (id, external_id, phone, email, name, created_at) values (?, ?, ?, ?, ?, ?)');
    const insertContact = db.prepare(
      'insert into contact (lead_id, source_id, operator_id, status, message, request_id, outcome, created_at, assigned_at, closed_at) values (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)',
    );
    const addLoad = db.prepare('update operator set open_load = open_load + ? where id = ?');
    const now = Date.now();
    const t0 = now - 30 * DAY_MS;
    let random = 0x2545f491;
    const next = () => {
      // xorshift32: deterministic spread of contacts over operators and sources
      random ^= random << 13;
      random ^= random >>> 17;
      random ^= random << 5;
      return random >>> 0;
    };
    const CHUNK = 100_000;
    const insertLeads = db.transaction((from: number, to: number) => {
      for (let i = from; i < to; i++) {
        insertLead.run(firstLead + i, `pf-${i}`, i % 2 === 0 ? `+1555${String(i).padStart(8, '0')}` : null, i % 3 === 0 ? `pf${i}@prefill.example` : null, `Prefilled lead ${i}`, t0 + i);
      }
    });
    const open = new Map<number, number>();
    const insertContacts = db.transaction((from: number, to: number) => {
      for (let i = from; i < to; i++) {
        const operator = operators[next() % operators.length]!;
        const source = sources[next() % sources.length]!;
        const status = i % 50 === 0 ? 'NEW' : i % 50 === 1 ? 'IN_PROGRESS' : 'CLOSED';
        const createdAt = t0 + Math.floor((i / contacts) * 29 * DAY_MS);
        insertContact.run(firstLead + (i % leads), source, operator, status, 'prefilled contact', `pf-${i}`, 'ASSIGNED', createdAt, createdAt, status === 'CLOSED' ? createdAt + 3_600_000 : null);
        if (status !== 'CLOSED') open.set(operator, (open.get(operator) ?? 0) + 1);
      }
    });
    for (let from = 0; from < leads; from += CHUNK) insertLeads(from, Math.min(leads, from + CHUNK));
    for (let from = 0; from < contacts; from += CHUNK) {
      insertContacts(from, Math.min(contacts, from + CHUNK));
      onProgress(Math.min(contacts, from + CHUNK));
    }
    db.transaction(() => {
      for (const [operator, count] of open) addLoad.run(count, operator);
    })();
    const mismatches = db.prepare(`
      select o.id from operator o
      where o.open_load != (select count(*) from contact c where c.operator_id = o.id and c.status != 'CLOSED')`).all();
    db.pragma('wal_checkpoint(truncate)');
    return {
      contacts,
      leads,
      leadCount: leads,
      openContacts: [...open.values()].reduce((a, b) => a + b, 0),
      seconds: (performance.now() - started) / 1000,
      loadsConsistent: mismatches.length === 0,
    };
  } finally {
    db.close();
  }
}

// ---------------------------------------------------------------- SQL statements per RegisterContact

/**
 * Counts the SQL statements an in-process server runs on SQLite. Every one,
 * the ORM's (MikroORM -> Kysely -> better-sqlite3, begin and commit included)
 * and the hot path's prepared ones, runs through a better-sqlite3 Statement's
 * run, all, get or iterate, so wrapping those in this process counts them
 * without touching the server's code.
 */
function statementCounter(dbPath: string) {
  // Counted where statements run, not where they are prepared: the hot path prepares each text once and reruns it.
  const probe = new Database(':memory:');
  const proto = Object.getPrototypeOf(probe.prepare('select 1')) as Record<'run' | 'all' | 'get' | 'iterate', (this: Statement, ...params: unknown[]) => unknown>;
  probe.close();
  const methods = (['run', 'all', 'get', 'iterate'] as const).map((name) => [name, proto[name]] as const);
  let recorded: string[] | null = null;
  for (const [name, original] of methods) {
    proto[name] = function (this: Statement, ...params: unknown[]) {
      if (recorded && this.database.name === dbPath) recorded.push(this.source);
      return original.apply(this, params);
    };
  }
  return {
    start() {
      recorded = [];
    },
    stop(): string[] {
      const done = recorded ?? [];
      recorded = null;
      return done;
    },
    uninstall() {
      for (const [name, original] of methods) proto[name] = original;
    },
  };
}

function summarizeStatements(description: string, concurrency: number, calls: number, statements: readonly string[]): StatementCount {
  const byKind: Record<string, number> = {};
  for (const sql of statements) {
    const kind = /^\s*(\w+)/.exec(sql)?.[1]?.toLowerCase() ?? '?';
    byKind[kind] = (byKind[kind] ?? 0) + 1;
  }
  const transactions = byKind['begin'] ?? 0;
  return {
    description,
    concurrency,
    calls,
    statements: statements.length,
    transactions,
    statementsPerCall: statements.length / calls,
    callsPerTransaction: transactions === 0 ? Number.NaN : calls / transactions,
    statementsPerTransaction: transactions === 0 ? Number.NaN : statements.length / transactions,
    byKind,
  };
}

export async function countStatements(dir: string, options: BenchOptions): Promise<StatementReport> {
  const dbPath = join(dir, 'statements.sqlite');
  const counter = statementCounter(dbPath);
  const server = await startServer(
    {
      host: '127.0.0.1',
      port: 0,
      database: { kind: 'sqlite', path: dbPath },
      sqliteSynchronous: 'FULL',
      logLevel: 'silent',
      tokens: [],
      maxMessageBytes: 1024 * 1024,
      metrics: null,
      connections: DEFAULT_CONNECTION_LIMITS,
    },
    pino({ level: 'silent' }),
  );
  const address = `127.0.0.1:${server.port}`;
  const channels = openChannels([address], options.channels);
  try {
    const workload = new Workload(await setupFixture(address, options), 'st');
    const distinct = workload.call(0);
    const repeat = workload.call(options.repeatShare);
    // Warm the caches (metadata, prepared plans) so the counts are of the steady state.
    await drive(channels, repeat, { concurrency: Math.min(8, options.concurrency), calls: 50 });
    counter.start();
    await distinct(channels[0]!);
    const oneCall = counter.stop();
    const measurements: StatementCount[] = [];
    const measure = async (description: string, call: Call, concurrency: number, calls: number) => {
      counter.start();
      const result = await drive(channels, call, { concurrency, calls });
      const statements = counter.stop();
      if (result.errors > 0) throw new Error(`statement count: ${result.errors} calls failed: ${result.firstError}`);
      measurements.push(summarizeStatements(description, concurrency, calls, statements));
    };
    const sequential = Math.max(1, Math.min(200, Math.round(options.statementCalls / 10)));
    await measure('one call at a time, distinct leads', distinct, 1, sequential);
    await measure(`concurrency ${options.concurrency}, distinct leads`, distinct, options.concurrency, options.statementCalls);
    await measure(`concurrency ${options.concurrency}, ${Math.round(options.repeatShare * 100)}% repeat leads`, repeat, options.concurrency, options.statementCalls);
    return {
      method: 'in-process server (src/server.ts startServer, same code and SQLite settings); every statement prepared on its database file through better-sqlite3, counted by wrapping Database.prototype.prepare',
      oneCall,
      measurements,
    };
  } finally {
    closeChannels(channels);
    await server.close();
    counter.uninstall();
  }
}

// ---------------------------------------------------------------- the whole run

function serverDescription() {
  return { command: 'node src/main.ts', database: 'SQLite file, WAL, synchronous=FULL (defaults)', logLevel: LOG_LEVEL };
}

function failedCalls(scenarios: Record<string, ScenarioSummary<string>>): number {
  return Object.values(scenarios).reduce((n, s) => n + s.errors, 0);
}

function publicOptions<T extends { onProgress?: unknown; dir?: unknown }>(options: T): Omit<T, 'onProgress' | 'dir'> {
  const { onProgress: _progress, dir: _dir, ...rest } = options;
  return rest;
}

export async function runBench(given: Partial<BenchOptions> = {}): Promise<BenchReport> {
  const options: BenchOptions = { ...DEFAULT_OPTIONS, ...given };
  const progress = options.onProgress ?? (() => undefined);
  const startedAt = new Date();
  const started = performance.now();
  const loadAtStart = os.loadavg()[0]!;
  const dir = tempDir(options.dir, 'crm-bench-');
  const dbPath = join(dir, 'crm.sqlite');
  const phases: PhaseReport[] = [];
  let prefill: PrefillReport | null = null;
  let statements: StatementReport | null = null;
  let postgres: PostgresSection = { skipped: '--skip-postgres' };
  let server: BenchServer | undefined;
  try {
    progress('starting the server (empty database)', 'step');
    server = await startBenchServer(`sqlite:${dbPath}`);
    const fixture = await setupFixture(server.address, options);
    const workload = new Workload(fixture);
    phases.push(await measurePhase('empty', 'empty DB', server, workload, dbPath, options));
    await server.stop();

    if (options.prefillContacts > 0) {
      progress(`pre-filling ${options.prefillContacts.toLocaleString('en-US')} contacts`, 'step');
      const { leadCount, ...filled } = prefillDatabase(dbPath, options.prefillContacts, (done) =>
        progress(`pre-filling: ${done.toLocaleString('en-US')} / ${options.prefillContacts.toLocaleString('en-US')} contacts`, 'tick'));
      prefill = filled;
      progress(`pre-filled ${filled.contacts.toLocaleString('en-US')} contacts (${filled.leads.toLocaleString('en-US')} leads) in ${filled.seconds.toFixed(1)} s`, 'step');
      workload.usePrefilledLeads(leadCount);
      progress('restarting the server on the pre-filled database', 'step');
      server = await startBenchServer(`sqlite:${dbPath}`);
      phases.push(await measurePhase('prefilled', `${compact(options.prefillContacts)}-contact DB`, server, workload, dbPath, options));
      await server.stop();
    }

    if (options.postgresUrl !== null) postgres = await measurePostgres(options.postgresUrl, options);

    if (options.statementCalls > 0) {
      progress('counting SQL statements per RegisterContact (in-process server)', 'step');
      statements = await countStatements(dir, options);
    }
  } finally {
    await server?.stop();
    removeDir(dir);
  }
  return {
    kind: 'bench',
    startedAt: startedAt.toISOString(),
    seconds: (performance.now() - started) / 1000,
    machine: machineInfo(loadAtStart),
    options: { ...publicOptions(options), postgresUrl: options.postgresUrl && withoutPassword(options.postgresUrl) },
    server: serverDescription(),
    phases,
    prefill,
    statements,
    postgres,
    errors: phases.reduce((n, p) => n + failedCalls(p.scenarios), 0) + ('skipped' in postgres ? 0 : failedCalls(postgres.scenarios)),
  };
}

/** `--long`: many RegisterContact calls (repeat-lead mix) on one server, its RSS at checkpoints. */
export async function runLong(given: Partial<LongOptions> = {}): Promise<LongReport> {
  const options: LongOptions = { ...DEFAULT_LONG_OPTIONS, ...given };
  const progress = options.onProgress ?? (() => undefined);
  const startedAt = new Date();
  const started = performance.now();
  const loadAtStart = os.loadavg()[0]!;
  const dir = tempDir(options.dir, 'crm-bench-long-');
  const dbPath = join(dir, 'crm.sqlite');
  let server: BenchServer | undefined;
  let channels: Channel[] = [];
  try {
    progress('starting the server (empty database)', 'step');
    server = await startBenchServer(`sqlite:${dbPath}`);
    const pid = server.pid;
    const workload = new Workload(await setupFixture(server.address, options));
    channels = openChannels([server.address], options.channels);
    const call = workload.call(options.repeatShare);
    progress(`warm-up: ${options.warmupSeconds} s`, 'step');
    await drive(channels, call, { concurrency: options.concurrency, seconds: options.warmupSeconds });
    const start = processMemory(pid).rssBytes;
    const checkpoints: RssCheckpoint[] = [{ calls: 0, rssBytes: start }];
    const every = Math.max(1, Math.floor(options.calls / options.checkpoints));
    let nextCheckpoint = every;
    let warnings = server.takeWarnings();
    const stopServer = server;
    progress(`${options.calls.toLocaleString('en-US')} RegisterContact calls, concurrency ${options.concurrency}; server RSS at start ${mb(start)}`, 'step');
    const result = await drive(channels, call, {
      concurrency: options.concurrency,
      calls: options.calls,
      serverPids: [pid],
      onCompleted: (completed) => {
        if (completed < nextCheckpoint && completed < options.calls) return;
        nextCheckpoint += every;
        const rssBytes = processMemory(pid).rssBytes;
        checkpoints.push({ calls: completed, rssBytes });
        progress(`${completed.toLocaleString('en-US')} / ${options.calls.toLocaleString('en-US')} calls: server RSS ${mb(rssBytes)}`, 'step');
      },
      onTick: (completed, elapsed) => {
        warnings += stopServer.takeWarnings();
        progress(`long run: ${completed.toLocaleString('en-US')} / ${options.calls.toLocaleString('en-US')} calls, ${Math.round(completed / elapsed).toLocaleString('en-US')}/s, server RSS ${mb(processMemory(pid).rssBytes)}`, 'tick');
      },
    });
    warnings += server.takeWarnings();
    const peakBytes = processMemory(pid).hwmBytes;
    const atOrAfter = (calls: number) => checkpoints.find((c) => c.calls >= calls) ?? checkpoints[checkpoints.length - 1]!;
    const secondHalf = checkpoints.filter((c) => c.calls >= options.calls / 2);
    return {
      kind: 'long',
      startedAt: startedAt.toISOString(),
      seconds: (performance.now() - started) / 1000,
      machine: machineInfo(loadAtStart),
      options: publicOptions(options),
      server: serverDescription(),
      calls: result.calls,
      errors: result.errors,
      firstError: result.firstError,
      callsPerSecond: result.callsPerSecond,
      p50Ms: result.p50Ms,
      p99Ms: result.p99Ms,
      outcomes: result.outcomes,
      rss: {
        start,
        middle: atOrAfter(options.calls / 2).rssBytes,
        end: checkpoints[checkpoints.length - 1]!.rssBytes,
        secondHalfGrowthBytes: checkpoints[checkpoints.length - 1]!.rssBytes - atOrAfter(options.calls / 2).rssBytes,
        checkpoints,
        peakBytes,
        secondHalfSlopeBytesPer100k: slope(secondHalf.map((c) => [c.calls, c.rssBytes] as const)) * 100_000,
      },
      databaseBytesAtEnd: fileBytes(dbPath),
      warnings,
    };
  } finally {
    closeChannels(channels);
    await server?.stop();
    removeDir(dir);
  }
}

/** Least-squares slope of y over x (0 with fewer than two points). */
export function slope(points: readonly (readonly [number, number])[]): number {
  if (points.length < 2) return 0;
  const n = points.length;
  const mx = points.reduce((s, [x]) => s + x, 0) / n;
  const my = points.reduce((s, [, y]) => s + y, 0) / n;
  const sxx = points.reduce((s, [x]) => s + (x - mx) ** 2, 0);
  const sxy = points.reduce((s, [x, y]) => s + (x - mx) * (y - my), 0);
  return sxx === 0 ? 0 : sxy / sxx;
}

// ---------------------------------------------------------------- the readable report

export function mb(bytes: number): string {
  return `${(bytes / 1024 / 1024).toFixed(1)} MB`;
}

function signedMb(bytes: number): string {
  return `${bytes >= 0 ? '+' : '-'}${mb(Math.abs(bytes))}`;
}

function compact(n: number): string {
  if (n >= 1_000_000 && n % 1_000_000 === 0) return `${n / 1_000_000}M`;
  if (n >= 1_000 && n % 1_000 === 0) return `${n / 1_000}k`;
  return n.toLocaleString('en-US');
}

function int(n: number): string {
  return Number.isFinite(n) ? Math.round(n).toLocaleString('en-US') : 'n/a';
}

function fixed(n: number, digits: number): string {
  return Number.isFinite(n) ? n.toFixed(digits) : 'n/a';
}

/** A Markdown-style table with right-aligned number columns. */
export function table(header: readonly string[], rows: readonly (readonly string[])[], numeric: readonly boolean[]): string {
  const widths = header.map((h, c) => Math.max(h.length, ...rows.map((r) => r[c]!.length)));
  const cell = (text: string, c: number) => (numeric[c] ? text.padStart(widths[c]!) : text.padEnd(widths[c]!));
  const line = (cells: readonly string[]) => `| ${cells.map(cell).join(' | ')} |`;
  const rule = `|${widths.map((w, c) => (numeric[c] ? `${'-'.repeat(w + 1)}:` : `${'-'.repeat(w + 2)}`)).join('|')}|`;
  return [line(header), rule, ...rows.map(line)].join('\n');
}

function header(report: BenchReport | LongReport): string[] {
  const m = report.machine;
  return [
    `machine: ${m.cpus} CPUs (${m.cpuModel}), ${mb(m.memoryBytes)} RAM, ${m.os}, Node ${m.node}; load average ${m.loadAverage.start.toFixed(2)} at start, ${m.loadAverage.end.toFixed(2)} at end`,
    `server:  ${report.server.command}, ${report.server.database}, LOG_LEVEL=${report.server.logLevel}, ${report.options.operators} operators x max_load ${report.options.maxLoad.toLocaleString('en-US')}, ${report.options.sources} sources`,
    `clients: @grpc/grpc-js in one process, ${report.options.channels} channels, concurrency ${report.options.concurrency} (closed loop)`,
  ];
}

/** One row per scenario. */
function scenarioTable(summaries: readonly ScenarioSummary<string>[]): string {
  return table(
    ['scenario', 'calls/s', 'p50 ms', 'p99 ms', 'vs baseline', 'server CPU', 'server µs/call', 'server RSS peak', 'client CPU', 'errors'],
    summaries.map((r) => {
      const serverCpu = r.serverCpuPercent === null ? 'n/a' : `${int(r.serverCpuPercent)}%`;
      const perCall = r.serverCpuMicrosPerCall === null ? 'n/a' : int(r.serverCpuMicrosPerCall);
      const rss = r.serverPeakRssBytes.map((bytes) => mb(bytes)).join(' / ');
      return [r.label, int(r.callsPerSecond), fixed(r.p50Ms, 2), fixed(r.p99Ms, 2), fixed(r.vsBaseline, 3), serverCpu, perCall, rss, `${int(r.clientCpuPercent)}%`, String(r.errors)];
    }),
    [false, true, true, true, true, true, true, true, true, true],
  );
}

function formatPostgres(section: PostgresSection, warmupSeconds: number): string[] {
  if ('skipped' in section) return [`PostgreSQL section skipped: ${section.skipped}`, ''];
  const { watcher: w, ratios } = section;
  const [first, second] = section.replicas;
  return [
    `PostgreSQL ${section.serverVersion}, temporary database ${section.database} (${section.contactsAtEnd.toLocaleString('en-US')} contacts at end); server CPU is the replicas', not PostgreSQL's`,
    `with 2 replicas the channels alternate between them; the second is a new process every round, warmed up ${warmupSeconds} s before it is measured`,
    scenarioTable(POSTGRES_SCENARIOS.map((name) => section.scenarios[name])),
    `calls/s, 2 replicas vs 1: ${fixed(ratios.twoReplicasVsOne, 3)}; 2 replicas + 1 watcher vs 1: ${fixed(ratios.twoReplicasWatchedVsOne, 3)}`,
    `watcher (WatchAssignments on the first replica, no filter): ${w.events.toLocaleString('en-US')} events for ${w.assignments.toLocaleString('en-US')} assignments made while it watched${w.firstError ? `; a stream ended early: ${w.firstError}` : ''}`,
    `server peak RSS (VmHWM): first replica ${mb(first.peakRssBytes)}, second ${mb(second.peakRssBytes)} (highest of its ${second.starts} processes); warnings logged ${first.warnings} and ${second.warnings}`,
    '',
  ];
}

export function formatReport(report: BenchReport): string {
  const o = report.options;
  const out = [
    'crm-distributor benchmark',
    ...header(report),
    `rounds:  ${o.rounds} x ${o.seconds} s per scenario, interleaved, after ${o.warmupSeconds} s warm-up each; figures are medians across rounds`,
    'server CPU is summed over the server processes; server RSS peak is sampled every 250 ms, one figure per process',
    '',
  ];
  for (const phase of report.phases) {
    const s = phase.server;
    out.push(`${phase.label} (${phase.contactsAtStart.toLocaleString('en-US')} contacts at start, ${phase.contactsAtEnd.toLocaleString('en-US')} at end, database ${mb(phase.databaseBytesAtEnd)})`);
    out.push(scenarioTable(SCENARIOS.map((name) => phase.scenarios[name])));
    const register = [phase.scenarios.registerDistinct, phase.scenarios.registerRepeat].reduce((o2, r) => addOutcomes(o2, r.outcomes), emptyOutcomes());
    out.push(`server peak RSS (VmHWM) ${mb(s.peakRssBytes)}; RSS after setup ${mb(s.rssAfterSetupBytes)}, at end ${mb(s.rssAtEndBytes)}; start-up ${fixed(s.startupMs / 1000, 2)} s, load repairs at start-up ${s.loadRepairs}, warnings logged ${s.warnings}`);
    out.push(`RegisterContact outcomes: ${register.assigned.toLocaleString('en-US')} assigned, ${register.assignedAffinity.toLocaleString('en-US')} by affinity, ${register.queued.toLocaleString('en-US')} queued`);
    out.push('');
  }
  if (report.prefill) {
    const p = report.prefill;
    out.push(`pre-fill (better-sqlite3, straight into the file, server stopped): ${p.contacts.toLocaleString('en-US')} contacts, ${p.leads.toLocaleString('en-US')} leads, ${p.openContacts.toLocaleString('en-US')} open, in ${fixed(p.seconds, 1)} s; loads consistent: ${p.loadsConsistent ? 'yes' : 'NO'}`);
    out.push('');
  }
  out.push(...formatPostgres(report.postgres, o.warmupSeconds));
  if (report.statements) {
    const st = report.statements;
    out.push('SQL statements per RegisterContact (counted at the SQLite driver of an in-process server):');
    out.push(table(
      ['workload', 'calls', 'statements', 'per call', 'transactions', 'calls/transaction', 'by kind'],
      st.measurements.map((m) => [m.description, int(m.calls), int(m.statements), fixed(m.statementsPerCall, 2), int(m.transactions), fixed(m.callsPerTransaction, 1), Object.entries(m.byKind).map(([k, v]) => `${k} ${v}`).join(', ')]),
      [false, true, true, true, true, true, false],
    ));
    const batched = st.measurements.filter((m) => m.concurrency > 1);
    if (batched.length > 0) {
      const perTx = Math.max(...batched.map((m) => m.callsPerTransaction));
      out.push(perTx < 1.5
        ? `micro-batching: NOT observed (at most ${fixed(perTx, 2)} calls per transaction with ${o.concurrency} calls in flight)`
        : `micro-batching: up to ${fixed(perTx, 1)} calls per transaction with ${o.concurrency} calls in flight`);
    }
    out.push(`one call alone (${st.oneCall.length} statements):`);
    for (const sql of st.oneCall) out.push(`  ${sql.length > 140 ? `${sql.slice(0, 137)}...` : sql}`);
    out.push('');
  }
  out.push(`total ${fixed(report.seconds, 0)} s${report.errors > 0 ? `; ${report.errors} FAILED CALLS` : ''}`);
  return out.join('\n');
}

export function formatLongReport(report: LongReport): string {
  const r = report.rss;
  return [
    'crm-distributor benchmark: long run',
    ...header(report),
    '',
    `${report.calls.toLocaleString('en-US')} RegisterContact calls (${Math.round(report.options.repeatShare * 100)}% repeat leads): ${int(report.callsPerSecond)} calls/s, p50 ${fixed(report.p50Ms, 2)} ms, p99 ${fixed(report.p99Ms, 2)} ms, errors ${report.errors}${report.firstError ? ` (${report.firstError})` : ''}`,
    `outcomes: ${report.outcomes.assigned.toLocaleString('en-US')} assigned, ${report.outcomes.assignedAffinity.toLocaleString('en-US')} by affinity, ${report.outcomes.queued.toLocaleString('en-US')} queued; database at end ${mb(report.databaseBytesAtEnd)}; warnings logged ${report.warnings}`,
    '',
    table(['', 'calls', 'server RSS'], [
      ['start', '0', mb(r.start)],
      ['middle', int(report.options.calls / 2), mb(r.middle)],
      ['end', int(report.calls), mb(r.end)],
      ['peak (VmHWM)', '', mb(r.peakBytes)],
    ], [false, true, true]),
    '',
    `RSS at every checkpoint: ${r.checkpoints.map((c) => `${compact(c.calls)} ${(c.rssBytes / 1024 / 1024).toFixed(0)}`).join(', ')} (MB)`,
    `second half (middle to end): ${signedMb(r.secondHalfGrowthBytes)} over ${int(report.calls - report.options.calls / 2)} calls; least-squares trend over its checkpoints ${signedMb(r.secondHalfSlopeBytesPer100k)} per 100,000 calls`,
    `total ${fixed(report.seconds, 0)} s`,
  ].join('\n');
}
