// RegisterContact. Calls that arrive while a registration transaction is
// running wait and then share the next one: every step below is one statement
// for the whole batch, decided in memory in arrival order, so a batch behaves
// exactly like its calls one after another, at a fraction of the statements.
import { chooseAffinity, chooseOperator, isDeterministic } from '../assignment/choice.ts';
import { recordAssignments, type AssignmentChange } from '../assignment/history.ts';
import { acceptDeadline } from './accept-deadlines.ts';
import { claimCapacity, loadCandidates, recordClaim, recordRoundRobin, saveRoundRobin, type CandidatePool, type SourceCandidates } from '../assignment/candidates.ts';
import { CONTACT_RELATIONS, contactView } from './views.ts';
import { Contact, Lead, MAX_ROW_ID, PRIORITIES, type ILead, type ISource, type Outcome, type Priority } from '../entities.ts';
import { StorageFullError, UnavailableError } from '../errors.ts';
import { sourceNotFound, type SourceKey } from '../sources.ts';
import { missingIdentifiers, normalizeIdentifiers, pickLead, type LeadIdentifiers } from './lead-identity.ts';
import { insertReturningIds } from '../../storage/insert-returning.ts';
import { lockSources } from '../../storage/locks.ts';
import { execute, inList, storedDate, type StoredTime } from '../../storage/prepared-statements.ts';
import { ConflictError, type Tx, type UnitOfWork } from '../unit-of-work.ts';
import type { AssignmentEvent, ContactView, RegisterContactResult } from '../views.ts';

export interface RegisterContactInput {
  source: SourceKey;
  lead: { externalId: string; phone: string; email: string; name: string };
  message: string;
  /** Idempotency key, unique per source; empty for none. */
  requestId: string;
  priority: Priority;
}

/** Calls per transaction at most; more wait for the next one. */
const MAX_BATCH = 256;

interface Pending {
  input: RegisterContactInput;
  signal: AbortSignal | undefined;
  resolve(result: RegisterContactResult): void;
  reject(error: unknown): void;
}

type Outcomes = (RegisterContactResult | Error)[];

/** Hooks for monitoring how calls are batched. */
export interface BatchObserver {
  /** A batch of `size` calls committed as one transaction. */
  committed(size: number): void;
  /** A batch failed as a whole and is being retried call by call. */
  split(size: number, error: unknown): void;
}

export interface RegistrationOptions {
  random?: () => number;
  observer?: BatchObserver;
  /**
   * Batch the calls for sources that take an exclusive lock (round-robin and
   * least-loaded ones, see storage/locks.ts) apart from the rest, in a lane
   * of their own whose transactions run beside the other lane's. Where
   * transactions run side by side (PostgreSQL), a batch that holds such a
   * lock until it commits (or waits for another replica's) then never makes
   * the weighted-random calls wait. Where they run one at a time (SQLite) it
   * would only add commits.
   */
  isolateExclusiveSources?: boolean;
}

/** Calls waiting for a transaction, and whether one is running for them. */
class Lane {
  readonly waiting: Pending[] = [];
  running = false;
}

export class Registrations {
  readonly #uow: UnitOfWork;
  readonly #random: () => number;
  readonly #observer: BatchObserver | undefined;
  readonly #isolateExclusiveSources: boolean;
  /** Sources, by id and by code, that took an exclusive lock when last seen: a hint for choosing the lane, never a rule. */
  readonly #exclusiveSources = new Set<string>();
  readonly #sharedLane = new Lane();
  readonly #exclusiveLane = new Lane();

  constructor(uow: UnitOfWork, options: RegistrationOptions = {}) {
    this.#uow = uow;
    this.#random = options.random ?? Math.random;
    this.#observer = options.observer;
    this.#isolateExclusiveSources = options.isolateExclusiveSources ?? false;
  }

  /** `signal`: the call's deadline or cancellation; a call that ends while it waits is dropped, unwritten. */
  register(input: RegisterContactInput, signal?: AbortSignal): Promise<RegisterContactResult> {
    return new Promise((resolve, reject) => {
      const exclusive = this.#isolateExclusiveSources && this.#exclusiveSources.has(sourceHint(input.source));
      const lane = exclusive ? this.#exclusiveLane : this.#sharedLane;
      lane.waiting.push({ input, signal, resolve, reject });
      if (!lane.running) {
        lane.running = true;
        void this.#pump(lane);
      }
    });
  }

  async #pump(lane: Lane): Promise<void> {
    do {
      // SQLite answers synchronously, so a transaction never yields to the
      // event loop: let it read the calls that arrived meanwhile, then take
      // them all as the next batch.
      await new Promise((resolve) => setImmediate(resolve));
      const batch = lane.waiting.splice(0, MAX_BATCH).filter((pending) => {
        if (pending.signal?.aborted) pending.reject(pending.signal.reason);
        return !pending.signal?.aborted;
      });
      if (batch.length > 0) await this.#settle(batch);
    } while (lane.waiting.length > 0);
    lane.running = false;
  }

  /** Runs a batch; if the batch as a whole fails, each call runs alone so one cannot fail the others. */
  async #settle(batch: Pending[]): Promise<void> {
    let outcomes: Outcomes;
    try {
      outcomes = await this.#run(batch.map((p) => p.input));
    } catch (error) {
      // The database itself failing fails every call alike: running them one by one would only multiply the wait.
      if (batch.length === 1 || error instanceof UnavailableError || error instanceof StorageFullError) {
        for (const pending of batch) pending.reject(error);
        return;
      }
      this.#observer?.split(batch.length, error);
      for (const pending of batch) await this.#settle([pending]);
      return;
    }
    this.#observer?.committed(batch.length);
    outcomes.forEach((outcome, i) => (outcome instanceof Error ? batch[i]!.reject(outcome) : batch[i]!.resolve(outcome)));
  }

  /**
   * One unit of work for the batch. A unique violation (a lead or request_id
   * another process inserted first) or a refused capacity claim runs it again
   * on fresh reads.
   */
  #run(inputs: readonly RegisterContactInput[]): Promise<Outcomes> {
    return this.#uow.run((tx, assigned) => new BatchRegistration(tx, this.#random, assigned, (source, exclusive) => this.#noteSource(source, exclusive)).run(inputs));
  }

  #noteSource(source: RegistrationSource, exclusive: boolean): void {
    for (const key of [sourceHint({ id: source.id }), ...(source.code ? [sourceHint({ code: source.code })] : [])]) {
      if (exclusive) this.#exclusiveSources.add(key);
      else this.#exclusiveSources.delete(key);
    }
  }
}

function sourceHint(source: SourceKey): string {
  return 'id' in source ? `id:${source.id}` : `code:${source.code}`;
}

/** What registration reads of a source. */
type RegistrationSource = Pick<ISource, 'id' | 'code' | 'name' | 'strategy' | 'leadAffinity' | 'acceptWithinMs'>;

interface LeadState {
  lead: ILead;
  /** Not stored yet: inserted with the batch. */
  isNew: boolean;
  /** Identifiers or name to store on an existing lead. */
  fill: Partial<ILead>;
  /** Operators holding an open contact of this lead, oldest contact first. */
  holders: number[];
}

interface Decision {
  source: RegistrationSource;
  leadState: LeadState;
  leadCreated: boolean;
  operatorId: number | null;
  outcome: Outcome;
  input: RegisterContactInput;
  requestId: string | null;
}

class BatchRegistration {
  readonly #tx: Tx;
  readonly #random: () => number;
  readonly #assigned: AssignmentEvent[];
  readonly #noteSource: (source: RegistrationSource, exclusive: boolean) => void;
  readonly #now = new Date();

  constructor(tx: Tx, random: () => number, assigned: AssignmentEvent[], noteSource: (source: RegistrationSource, exclusive: boolean) => void) {
    this.#tx = tx;
    this.#random = random;
    this.#assigned = assigned;
    this.#noteSource = noteSource;
  }

  async run(inputs: readonly RegisterContactInput[]): Promise<Outcomes> {
    const sources = await this.#sources(inputs);
    const locks = sources.map((s) => ({ id: s.id, exclusive: isDeterministic(s.strategy) }));
    sources.forEach((source, i) => this.#noteSource(source, locks[i]!.exclusive));
    await lockSources(this.#tx, locks);
    const found = inputs.map((input) => sources.find((s) => ('id' in input.source ? s.id === input.source.id : s.code === input.source.code)));
    const replays = await this.#storedReplays(inputs, found);
    const identities = inputs.map((input) => normalizeIdentifiers(input.lead));
    const leads = await this.#leads(identities.filter((_, i) => found[i] !== undefined));
    const pool = await loadCandidates(this.#tx, [...new Set(found.flatMap((s) => (s ? [s.id] : [])))]);

    const decided: (Decision | Error | RegisterContactResult | { replayOf: number })[] = [];
    const requestKeys = new Map<string, number>();
    const roundRobins = new Set<SourceCandidates>();
    inputs.forEach((input, i) => {
      const source = found[i];
      if (!source) {
        decided.push(sourceNotFound(input.source));
        return;
      }
      const requestId = input.requestId === '' ? null : input.requestId;
      const key = `${source.id}\u0000${requestId}`;
      if (requestId !== null) {
        const stored = replays.get(key);
        if (stored) return void decided.push(stored);
        const earlier = requestKeys.get(key);
        if (earlier !== undefined) return void decided.push({ replayOf: earlier });
        requestKeys.set(key, i);
      }
      const { state, created } = this.#resolveLead(leads, identities[i]!, input.lead.name.trim());
      const { operatorId, outcome } = this.#choose(pool, source, state, created, roundRobins);
      if (operatorId !== null) state.holders.push(operatorId);
      decided.push({ source, leadState: state, leadCreated: created, operatorId, outcome, input, requestId });
    });

    await this.#writeLeads(leads);
    const outcomes = await this.#insertContacts(decided, pool);
    // The claim comes last: from it to the commit, the operators' rows are
    // locked, and a concurrent batch (another replica's) that gives the same
    // operators capacity waits for them. So they wait only for the commit.
    await this.#claimCapacity(decided);
    await saveRoundRobin(this.#tx, roundRobins);
    return outcomes;
  }

  async #sources(inputs: readonly RegisterContactInput[]): Promise<RegistrationSource[]> {
    // An id beyond a 32-bit integer names no source; as a parameter PostgreSQL would refuse it rather than match nothing.
    const ids = inList([...new Set(inputs.flatMap((i) => ('id' in i.source && i.source.id <= MAX_ROW_ID ? [i.source.id] : [])))]);
    const codes = inList([...new Set(inputs.flatMap((i) => ('code' in i.source ? [i.source.code] : [])))]);
    const { rows } = await execute<{ id: number; code: string | null; name: string; strategy: ISource['strategy']; lead_affinity: number | boolean; accept_within_ms: number }>(
      this.#tx,
      `select id, code, name, strategy, lead_affinity, accept_within_ms from source where id in (${ids.sql}) or code in (${codes.sql})`,
      [...ids.params, ...codes.params],
    );
    return rows.map((row) => ({ id: row.id, code: row.code, name: row.name, strategy: row.strategy, leadAffinity: Boolean(row.lead_affinity), acceptWithinMs: row.accept_within_ms }));
  }

  /** Contacts already stored under the batch's request_ids, as replay answers. */
  async #storedReplays(inputs: readonly RegisterContactInput[], sources: readonly (RegistrationSource | undefined)[]): Promise<Map<string, RegisterContactResult>> {
    const keyed = inputs.flatMap((input, i) => (input.requestId !== '' && sources[i] ? [{ source: sources[i].id, requestId: input.requestId }] : []));
    const replays = new Map<string, RegisterContactResult>();
    if (keyed.length === 0) return replays;
    const requestIds = inList([...new Set(keyed.map((k) => k.requestId))]);
    const sourceIds = inList([...new Set(keyed.map((k) => k.source))]);
    // Replays are rare: look for ids first, and load whole contacts only for those found.
    const { rows: found } = await execute<{ id: number }>(
      this.#tx,
      `select id from contact where request_id in (${requestIds.sql}) and source_id in (${sourceIds.sql})`,
      [...requestIds.params, ...sourceIds.params],
    );
    if (found.length === 0) return replays;
    const stored = await this.#tx.find(Contact, { id: { $in: found.map((c) => c.id) } }, { populate: [...CONTACT_RELATIONS] });
    for (const contact of stored) {
      replays.set(`${contact.source.id}\u0000${contact.requestId}`, { contact: contactView(contact), leadCreated: false, outcome: contact.outcome, replayed: true });
    }
    return replays;
  }

  /** Every stored lead any identity of the batch points to, with its open contacts' operators. */
  async #leads(identities: readonly LeadIdentifiers[]): Promise<LeadState[]> {
    const [externalIds, phones, emails] = (['externalId', 'phone', 'email'] as const).map((key) =>
      inList([...new Set(identities.flatMap((ids) => (ids[key] === null ? [] : [ids[key]])))]));
    const { rows } = await execute<{ id: number; external_id: string | null; phone: string | null; email: string | null; name: string; created_at: StoredTime }>(
      this.#tx,
      `select id, external_id, phone, email, name, created_at from lead
        where external_id in (${externalIds!.sql}) or phone in (${phones!.sql}) or email in (${emails!.sql})`,
      [...externalIds!.params, ...phones!.params, ...emails!.params],
    );
    const states = rows.map((row) => ({
      lead: { id: row.id, externalId: row.external_id, phone: row.phone, email: row.email, name: row.name, createdAt: storedDate(row.created_at) } as ILead,
      isNew: false,
      fill: {},
      holders: [] as number[],
    }));
    if (states.length === 0) return states;
    // Affinity needs only who holds the lead's open contacts, not the contacts:
    // one row per (lead, operator) from an index, however many the lead has.
    const leadIds = inList(states.map((s) => s.lead.id));
    const { rows: holders } = await execute<{ lead_id: number; operator_id: number }>(
      this.#tx,
      `select lead_id, operator_id, min(id) as oldest from contact
        where lead_id in (${leadIds.sql}) and operator_id is not null and status in ('NEW', 'IN_PROGRESS')
        group by lead_id, operator_id order by oldest`,
      leadIds.params,
    );
    for (const row of holders) states.find((s) => s.lead.id === Number(row.lead_id))!.holders.push(Number(row.operator_id));
    return states;
  }

  /** Finds the lead among those known to the batch (stored or created earlier in it), or creates it. */
  #resolveLead(states: LeadState[], ids: LeadIdentifiers, name: string): { state: LeadState; created: boolean } {
    const leads = states.map((s) => s.lead);
    const lead = pickLead(leads, ids);
    if (!lead) {
      const state: LeadState = { lead: { id: 0, ...ids, name, createdAt: this.#now } as ILead, isNew: true, fill: {}, holders: [] };
      states.push(state);
      return { state, created: true };
    }
    const state = states.find((s) => s.lead === lead)!;
    const fill: Partial<ILead> = { ...missingIdentifiers(lead, leads, ids), ...(lead.name === '' && name !== '' ? { name } : {}) };
    Object.assign(lead, fill);
    if (!state.isNew) Object.assign(state.fill, fill);
    return { state, created: false };
  }

  /** Affinity first, then the source's strategy; capacity is taken in memory and claimed in #claimCapacity. */
  #choose(pool: CandidatePool, source: RegistrationSource, lead: LeadState, created: boolean, roundRobins: Set<SourceCandidates>): { operatorId: number | null; outcome: Outcome } {
    const settings = pool.bySource.get(source.id)!;
    if (source.leadAffinity && !created) {
      const keeper = chooseAffinity(lead.holders, settings.candidates);
      if (keeper !== undefined) {
        recordClaim(pool, keeper, this.#now);
        return { operatorId: keeper, outcome: 'ASSIGNED_AFFINITY' };
      }
    }
    const choice = chooseOperator(settings, this.#random);
    if (choice.kind === 'queue') return { operatorId: null, outcome: choice.reason };
    recordClaim(pool, choice.operatorId, this.#now);
    if (choice.roundRobin) {
      recordRoundRobin(settings, choice.roundRobin);
      roundRobins.add(settings);
    }
    return { operatorId: choice.operatorId, outcome: 'ASSIGNED' };
  }

  async #writeLeads(states: readonly LeadState[]): Promise<void> {
    for (const state of states) {
      if (!state.isNew && Object.keys(state.fill).length > 0) await this.#tx.nativeUpdate(Lead, { id: state.lead.id }, state.fill);
    }
    const created = states.filter((s) => s.isNew);
    if (created.length === 0) return;
    const ids = await insertReturningIds(
      this.#tx,
      'lead',
      ['external_id', 'phone', 'email', 'name', 'created_at'],
      created.map(({ lead }) => [lead.externalId ?? null, lead.phone ?? null, lead.email ?? null, lead.name, lead.createdAt]),
    );
    created.forEach((state, i) => (state.lead.id = ids[i]!));
  }

  /**
   * One conditional update takes what the batch gave every operator. It fails
   * only if another process took the same capacity since the batch read it:
   * then the whole batch runs again on fresh figures.
   */
  async #claimCapacity(decided: readonly unknown[]): Promise<void> {
    const units = new Map<number, number>();
    for (const d of decided) {
      if (isDecision(d) && d.operatorId !== null) units.set(d.operatorId, (units.get(d.operatorId) ?? 0) + 1);
    }
    if (!(await claimCapacity(this.#tx, units, this.#now))) throw new ConflictError('an operator lost capacity to a concurrent transaction');
  }

  async #insertContacts(decided: readonly (Decision | Error | RegisterContactResult | { replayOf: number })[], pool: CandidatePool): Promise<Outcomes> {
    const fresh = decided.filter(isDecision);
    const ids = await insertReturningIds(
      this.#tx,
      'contact',
      ['lead_id', 'source_id', 'operator_id', 'status', 'message', 'request_id', 'outcome', 'created_at', 'assigned_at', 'priority', 'accept_by'],
      fresh.map((d) => [
        d.leadState.lead.id,
        d.source.id,
        d.operatorId,
        'NEW',
        d.input.message,
        d.requestId,
        d.outcome,
        this.#now,
        d.operatorId === null ? null : this.#now,
        PRIORITIES[d.input.priority],
        d.operatorId === null ? null : acceptDeadline(d.source, this.#now),
      ]),
    );
    const results = new Map<Decision, RegisterContactResult>();
    const changes: AssignmentChange[] = [];
    fresh.forEach((d, i) => {
      const contact = this.#view(d, ids[i]!, pool);
      if (d.operatorId !== null) changes.push({ contact, reason: d.outcome === 'ASSIGNED_AFFINITY' ? 'AFFINITY' : 'NEW_CONTACT', previousOperatorId: null });
      results.set(d, { contact, leadCreated: d.leadCreated, outcome: d.outcome, replayed: false });
    });
    await recordAssignments(this.#tx, changes, this.#now, this.#assigned);
    return decided.map((d) => {
      if (isDecision(d)) return results.get(d)!;
      if ('replayOf' in d) return { ...results.get(decided[d.replayOf] as Decision)!, leadCreated: false, replayed: true };
      return d;
    });
  }

  #view(d: Decision, id: number, pool: CandidatePool): ContactView {
    const { lead } = d.leadState;
    return {
      id,
      lead: { id: lead.id, externalId: lead.externalId ?? null, name: lead.name },
      source: { id: d.source.id, name: d.source.name, code: d.source.code ?? null },
      operator: d.operatorId === null ? null : { id: d.operatorId, name: pool.operatorNames.get(d.operatorId)! },
      status: 'NEW',
      message: d.input.message,
      requestId: d.requestId,
      createdAt: this.#now,
      assignedAt: d.operatorId === null ? null : this.#now,
      closedAt: null,
      priority: d.input.priority,
    };
  }
}

function isDecision(value: unknown): value is Decision {
  return typeof value === 'object' && value !== null && 'leadState' in value;
}
