// Configuration of operators, sources and weights. Every change that can give
// an operator room (activation, a higher max_load, new or higher weights)
// drains the queue in the same transaction.
import { Operator, Source, SourceOperator, type IOperator, type Strategy } from './entities.ts';
import { AlreadyExistsError, NotFoundError } from './errors.ts';
import { drainQueue, lockForDrain, type DrainScope } from './assignment/queue.ts';
import { findSource, sourceView } from './sources.ts';
import type { Tx, UnitOfWork } from './unit-of-work.ts';
import type { AssignmentEvent, OperatorView, SourceView } from './views.ts';

export interface OperatorChanges {
  name?: string;
  active?: boolean;
  maxLoad?: number;
}

export interface SourceSettings {
  name: string;
  code: string | null;
  description: string;
  strategy: Strategy;
  leadAffinity: boolean;
  /** 0: no accept deadline. Changing it leaves the deadlines of contacts already assigned as they were. */
  acceptWithinMs: number;
}

/** The unique values a write sets, for the message when one of them is taken. */
interface UniqueValues {
  operatorName?: string;
  sourceName?: string;
  sourceCode?: string | null;
}

export interface OperatorWeightInput {
  operatorId: number;
  weight: number;
}

export class Admin {
  readonly #uow: UnitOfWork;
  readonly #random: () => number;

  constructor(uow: UnitOfWork, random: () => number = Math.random) {
    this.#uow = uow;
    this.#random = random;
  }

  createOperator(input: { name: string; maxLoad: number; active: boolean }): Promise<OperatorView> {
    return this.#write(async (tx) => {
      const createdAt = new Date();
      const id = await tx.insert(Operator, { ...input, openLoad: 0, createdAt });
      return { id, ...input, openLoad: 0, createdAt };
    }, { operatorName: input.name });
  }

  updateOperator(operatorId: number, changes: OperatorChanges): Promise<OperatorView> {
    return this.#write(async (tx, assigned) => {
      const before = await findOperator(tx, operatorId);
      const gainedRoom = (changes.active === true && !before.active) || (changes.maxLoad ?? 0) > before.maxLoad;
      if (gainedRoom) await lockForDrain(tx, { operatorIds: [operatorId] });
      if (Object.keys(changes).length > 0) await tx.nativeUpdate(Operator, { id: operatorId }, changes);
      if (gainedRoom) await this.#drain(tx, { operatorIds: [operatorId] }, assigned);
      return operatorView(await findOperator(tx, operatorId));
    }, { operatorName: changes.name });
  }

  createSource(settings: SourceSettings): Promise<SourceView> {
    return this.#write(async (tx) => {
      const createdAt = new Date();
      const id = await tx.insert(Source, { ...settings, createdAt });
      return { id, ...settings, createdAt, operators: [] };
    }, { sourceName: settings.name, sourceCode: settings.code });
  }

  updateSource(sourceId: number, changes: Partial<SourceSettings>): Promise<SourceView> {
    return this.#write(async (tx) => {
      const before = await findSource(tx, { id: sourceId });
      if (Object.keys(changes).length > 0) await tx.nativeUpdate(Source, { id: sourceId }, changes);
      if (changes.strategy !== undefined && changes.strategy !== before.strategy) await restartRoundRobin(tx, sourceId);
      return sourceView(tx, sourceId);
    }, { sourceName: changes.name, sourceCode: changes.code });
  }

  /** Replaces the source's whole operator list. */
  setSourceOperators(sourceId: number, operators: readonly OperatorWeightInput[]): Promise<SourceView> {
    return this.#write(async (tx, assigned) => {
      await findSource(tx, { id: sourceId });
      // Before the delete: two concurrent replacements of one list then run one after the other.
      await lockForDrain(tx, { sourceIds: [sourceId] });
      await requireOperators(tx, operators.map((o) => o.operatorId));
      await tx.nativeDelete(SourceOperator, { source: sourceId });
      if (operators.length > 0) {
        await tx.insertMany(SourceOperator, operators.map((o) => ({ source: sourceId, operator: o.operatorId, weight: o.weight, swrrCurrent: 0 })));
      }
      await restartRoundRobin(tx, sourceId);
      await this.#drain(tx, { sourceIds: [sourceId] }, assigned);
      return sourceView(tx, sourceId);
    });
  }

  /** Adds the operator to the source or changes its weight. */
  setOperatorWeight(sourceId: number, operatorId: number, weight: number): Promise<SourceView> {
    return this.#write(async (tx, assigned) => {
      await findSource(tx, { id: sourceId });
      await requireOperators(tx, [operatorId]);
      await tx.upsert(SourceOperator, { source: sourceId, operator: operatorId, weight, swrrCurrent: 0 });
      await restartRoundRobin(tx, sourceId);
      await this.#drain(tx, { sourceIds: [sourceId] }, assigned);
      return sourceView(tx, sourceId);
    });
  }

  removeSourceOperator(sourceId: number, operatorId: number): Promise<SourceView> {
    return this.#write(async (tx) => {
      await findSource(tx, { id: sourceId });
      const removed = await tx.nativeDelete(SourceOperator, { source: sourceId, operator: operatorId });
      if (removed === 0) throw new NotFoundError(`operator ${operatorId} is not configured for source ${sourceId}`);
      await restartRoundRobin(tx, sourceId);
      return sourceView(tx, sourceId);
    });
  }

  #drain(tx: Tx, scope: DrainScope, assigned: AssignmentEvent[]): Promise<void> {
    return drainQueue(tx, scope, this.#random, assigned);
  }

  /** Runs a unit of work in which a unique violation on a name or code it sets means that value is taken. */
  #write<T>(work: (tx: Tx, assigned: AssignmentEvent[]) => Promise<T>, sets: UniqueValues = {}): Promise<T> {
    return this.#uow.run(work, { uniqueViolation: (error) => nameTaken(error, sets) });
  }
}

/**
 * Reads the violated constraint (SQLite "source.code", PostgreSQL
 * "source_code_unique"): a taken operator name, source name or code is the
 * caller's error, named with the value the write set; any other (a concurrent
 * writer's row) is run again.
 */
function nameTaken(error: unknown, sets: UniqueValues): AlreadyExistsError | undefined {
  const message = error instanceof Error ? error.message : '';
  const constraint = message.slice(message.toLowerCase().lastIndexOf('constraint'));
  const [, table, column] = /\b(operator|source)[._](name|code)(?:_unique)?\b/.exec(constraint) ?? [];
  if (table === 'operator') return taken('an operator named', sets.operatorName);
  if (table === 'source') return column === 'code' ? taken('a source with code', sets.sourceCode) : taken('a source named', sets.sourceName);
  return undefined;
}

/** Only a value the write set can be the one taken; without it, the violation is not this write's. */
function taken(what: string, value: string | null | undefined): AlreadyExistsError | undefined {
  return value == null ? undefined : new AlreadyExistsError(`${what} ${JSON.stringify(value)} already exists`);
}

export function operatorView(operator: IOperator): OperatorView {
  const { id, name, active, maxLoad, openLoad, createdAt } = operator;
  return { id, name, active, maxLoad, openLoad, createdAt };
}

export async function findOperator(tx: Tx, operatorId: number): Promise<IOperator> {
  const operator = await tx.findOne(Operator, operatorId, { disableIdentityMap: true });
  if (!operator) throw new NotFoundError(`operator ${operatorId} not found`);
  return operator;
}

async function requireOperators(tx: Tx, operatorIds: readonly number[]): Promise<void> {
  if (operatorIds.length === 0) return;
  const found = await tx.find(Operator, { id: { $in: [...operatorIds] } }, { fields: ['id'], disableIdentityMap: true });
  const known = new Set(found.map((o) => o.id));
  const missing = operatorIds.filter((id) => !known.has(id));
  if (missing.length > 0) throw new NotFoundError(`operator ${missing.join(' and ')} not found`);
}

/** New weights or strategy: the smooth round-robin starts a fresh cycle. */
async function restartRoundRobin(tx: Tx, sourceId: number): Promise<void> {
  await tx.nativeUpdate(Source, { id: sourceId }, { swrrCycle: '' });
}

