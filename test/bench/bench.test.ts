// `npm run bench` on a tiny workload: its setup, pre-fill, statement count and
// report code run end to end and produce a report of the expected shape. No
// timing is asserted: these runs are far too short to mean anything. The
// PostgreSQL section runs on the PostgreSQL pass (TEST_DATABASE_URL) only.
import pg from 'pg';
import { describe, expect, it } from 'vitest';
import { formatLongReport, formatReport, POSTGRES_SCENARIOS, runBench, runLong, SCENARIOS, type ProgressKind, type ScenarioSummary } from './bench.ts';
import { testDialect } from '../support/test-database.ts';

const onLinux = process.platform === 'linux';

describe('benchmark (tiny workload)', () => {
  it('measures both phases, pre-fills consistently, counts statements and formats the report', async () => {
    const progress: [string, ProgressKind][] = [];
    const report = await runBench({
      concurrency: 2,
      channels: 2,
      seconds: 0.3,
      rounds: 2,
      warmupSeconds: 0.1,
      prefillContacts: 1_000,
      operators: 3,
      sources: 2,
      statementCalls: 20,
      // Nothing listens on port 1: the PostgreSQL section is skipped, and says so.
      postgresUrl: 'postgres://postgres:secret@127.0.0.1:1/postgres',
      onProgress: (line, kind) => progress.push([line, kind]),
    });

    expect(report.kind).toBe('bench');
    expect(report.errors).toBe(0);
    expect(report.machine.cpus).toBeGreaterThan(0);
    expect(report.phases.map((p) => p.name)).toEqual(['empty', 'prefilled']);
    for (const phase of report.phases) {
      expect(phase.rounds).toHaveLength(2 * SCENARIOS.length);
      for (const name of SCENARIOS) {
        expectScenarioRan(phase.scenarios[name]);
      }
      expect(phase.scenarios.baseline.vsBaseline).toBe(1);
      const registered = phase.scenarios.registerDistinct.outcomes;
      expect(registered.assigned + registered.assignedAffinity).toBe(phase.scenarios.registerDistinct.calls);
      expect(phase.contactsAtEnd).toBeGreaterThan(phase.contactsAtStart);
      expect(phase.server.loadRepairs).toBe(0);
      if (onLinux) expect(phase.server.peakRssBytes).toBeGreaterThan(0);
    }
    expect(report.phases[1]!.contactsAtStart).toBeGreaterThanOrEqual(1_000 + report.phases[0]!.contactsAtEnd);
    expect(report.prefill).toMatchObject({ contacts: 1_000, leads: 400, loadsConsistent: true });

    const statements = report.statements!;
    expect(statements.oneCall[0]).toMatch(/^begin/i);
    expect(statements.oneCall.at(-1)).toMatch(/^commit/i);
    expect(statements.measurements).toHaveLength(3);
    for (const m of statements.measurements) {
      expect(m.statements).toBeGreaterThan(0);
      expect(m.transactions).toBeGreaterThan(0);
      expect(m.statementsPerCall).toBeGreaterThan(0);
    }

    const text = formatReport(report);
    expect(text).toContain('| scenario');
    expect(text).toContain('1k-contact DB');
    expect(text).toContain('SQL statements per RegisterContact');
    expect(JSON.parse(JSON.stringify(report))).toMatchObject({ kind: 'bench', phases: [{ name: 'empty' }, { name: 'prefilled' }] });
    expect(progress.some(([, kind]) => kind === 'step')).toBe(true);

    expect(report.postgres).toEqual({ skipped: expect.stringMatching(/^PostgreSQL at postgres:\/\/postgres:\*\*\*@127\.0\.0\.1:1\/postgres cannot be used \(/) });
    expect(progress.filter(([line]) => line.includes('skipping the PostgreSQL section'))).toHaveLength(1);
    expect(text).toContain('PostgreSQL section skipped: PostgreSQL at');
    expect(JSON.stringify(report)).not.toContain('secret');
  }, 120_000);

  it.skipIf(testDialect !== 'postgresql')('PostgreSQL section: one replica, two, two with a watcher, on a temporary database it drops (TEST_DATABASE_URL; skipped without it)', async () => {
    const adminUrl = process.env.TEST_DATABASE_URL!;
    const progress: string[] = [];
    const report = await runBench({
      concurrency: 4,
      channels: 2,
      seconds: 0.3,
      rounds: 1,
      warmupSeconds: 0.1,
      prefillContacts: 0,
      operators: 3,
      sources: 2,
      statementCalls: 0,
      postgresUrl: adminUrl,
      onProgress: (line) => progress.push(line),
    });

    expect(report.errors).toBe(0);
    if ('skipped' in report.postgres) throw new Error(`skipped: ${report.postgres.skipped}`);
    const section = report.postgres;
    expect(section.rounds.map((r) => r.scenario)).toEqual(POSTGRES_SCENARIOS);
    for (const name of POSTGRES_SCENARIOS) {
      const s = section.scenarios[name];
      expectScenarioRan(s);
      // One figure per server process in the scenario.
      expect(s.serverPeakRssBytes).toHaveLength(name === 'twoReplicas' || name === 'twoReplicasWatched' ? 2 : 1);
      if (onLinux) {
        expect(s.serverCpuMicrosPerCall).toBeGreaterThan(0);
        for (const bytes of s.serverPeakRssBytes) expect(bytes).toBeGreaterThan(0);
      }
    }
    expect(section.scenarios.baseline.vsBaseline).toBe(1);
    expect(section.ratios.twoReplicasVsOne).toBeCloseTo(section.scenarios.twoReplicas.callsPerSecond / section.scenarios.oneReplica.callsPerSecond);
    expect(section.ratios.twoReplicasWatchedVsOne).toBeGreaterThan(0);
    const registered = section.scenarios.twoReplicasWatched.outcomes;
    // The watcher heard every assignment made while it watched, and nothing else.
    expect(section.watcher).toEqual({ events: registered.assigned + registered.assignedAffinity, assignments: registered.assigned + registered.assignedAffinity, firstError: null });
    expect(section.watcher.events).toBeGreaterThan(0);
    // The second replica is a new process in the warm-up round and in the measured one.
    expect(section.replicas.map((r) => r.starts)).toEqual([1, 2]);
    expect(section.replicas.map((r) => r.warnings)).toEqual([0, 0]);
    if (onLinux) for (const replica of section.replicas) expect(replica.peakRssBytes).toBeGreaterThan(0);
    const registrations = section.scenarios.oneReplica.calls + section.scenarios.twoReplicas.calls + section.scenarios.twoReplicasWatched.calls;
    expect(section.contactsAtEnd).toBeGreaterThanOrEqual(registrations);

    const text = formatReport(report);
    expect(text).toContain(`PostgreSQL ${section.serverVersion}, temporary database ${section.database}`);
    expect(text).toContain('RegisterContact, distinct leads, 2 replicas + 1 watcher');
    expect(text).toContain('2 replicas vs 1');
    expect(JSON.parse(JSON.stringify(report))).toMatchObject({ postgres: { database: section.database, watcher: { firstError: null } } });
    expect(progress.some((line) => line.startsWith('[PostgreSQL] round 1/1, RegisterContact, distinct leads, 2 replicas + 1 watcher'))).toBe(true);

    const admin = new pg.Client({ connectionString: adminUrl });
    await admin.connect();
    try {
      const { rows } = await admin.query('select datname from pg_database where datname = $1', [section.database]);
      expect(rows).toEqual([]);
    } finally {
      await admin.end();
    }
  }, 120_000);

  it('--long reports server RSS at start, middle and end', async () => {
    const report = await runLong({ concurrency: 2, channels: 1, warmupSeconds: 0.1, calls: 60, checkpoints: 4, operators: 2, sources: 1 });
    expect(report.kind).toBe('long');
    expect(report.calls).toBe(60);
    expect(report.errors).toBe(0);
    expect(report.rss.checkpoints.map((c) => c.calls)).toEqual([0, 15, 30, 45, 60]);
    if (onLinux) {
      for (const value of [report.rss.start, report.rss.middle, report.rss.end, report.rss.peakBytes]) expect(value).toBeGreaterThan(0);
    }
    expect(formatLongReport(report)).toContain('middle');
  }, 120_000);
});

/** A scenario that ran: calls made, none failed, consistent figures. */
function expectScenarioRan(s: Pick<ScenarioSummary, 'calls' | 'errors' | 'callsPerSecond' | 'p50Ms' | 'p99Ms' | 'vsBaseline'>): void {
  expect(s.calls).toBeGreaterThan(0);
  expect(s.errors).toBe(0);
  expect(s.callsPerSecond).toBeGreaterThan(0);
  expect(s.p99Ms).toBeGreaterThanOrEqual(s.p50Ms);
  expect(s.vsBaseline).toBeGreaterThan(0);
}
