// `npm run bench` on a tiny workload: its setup, pre-fill, statement count and
// report code run end to end and produce a report of the expected shape. No
// timing is asserted: these runs are far too short to mean anything.
import { describe, expect, it } from 'vitest';
import { formatLongReport, formatReport, runBench, runLong, SCENARIOS, type ProgressKind } from './bench.ts';

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
      onProgress: (line, kind) => progress.push([line, kind]),
    });

    expect(report.kind).toBe('bench');
    expect(report.errors).toBe(0);
    expect(report.machine.cpus).toBeGreaterThan(0);
    expect(report.phases.map((p) => p.name)).toEqual(['empty', 'prefilled']);
    for (const phase of report.phases) {
      expect(phase.rounds).toHaveLength(2 * SCENARIOS.length);
      for (const name of SCENARIOS) {
        const s = phase.scenarios[name];
        expect(s.calls).toBeGreaterThan(0);
        expect(s.errors).toBe(0);
        expect(s.callsPerSecond).toBeGreaterThan(0);
        expect(s.p99Ms).toBeGreaterThanOrEqual(s.p50Ms);
        expect(s.vsBaseline).toBeGreaterThan(0);
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
