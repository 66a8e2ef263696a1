import { Source, SourceOperator, type ISource } from './entities.ts';
import { NotFoundError } from './errors.ts';
import type { Tx } from './unit-of-work.ts';
import type { SourceView } from './views.ts';

export type SourceKey = { id: number } | { code: string };

export function sourceNotFound(key: SourceKey): NotFoundError {
  return new NotFoundError('id' in key ? `source ${key.id} not found` : `source with code ${JSON.stringify(key.code)} not found`);
}

export async function findSource(tx: Tx, key: SourceKey): Promise<ISource> {
  const source = 'id' in key
    ? await tx.findOne(Source, key.id, { disableIdentityMap: true })
    : await tx.findOne(Source, { code: key.code }, { disableIdentityMap: true });
  if (!source) throw sourceNotFound(key);
  return source;
}

/** Sources with their configured operators and weights. */
export async function sourceViews(tx: Tx, sources: readonly ISource[]): Promise<SourceView[]> {
  const links = sources.length === 0 ? [] : await tx.find(
    SourceOperator,
    { source: { $in: sources.map((s) => s.id) } },
    { populate: ['operator'], orderBy: { operator: 'asc' }, disableIdentityMap: true },
  );
  return sources.map((source) => ({
    id: source.id,
    name: source.name,
    code: source.code ?? null,
    description: source.description,
    strategy: source.strategy,
    leadAffinity: source.leadAffinity,
    acceptWithinMs: source.acceptWithinMs,
    createdAt: source.createdAt,
    operators: links
      .filter((link) => link.source.id === source.id)
      .map((link) => ({ operatorId: link.operator.id, operatorName: link.operator.name, weight: link.weight })),
  }));
}

export async function sourceView(tx: Tx, sourceId: number): Promise<SourceView> {
  const source = await tx.findOne(Source, sourceId, { disableIdentityMap: true });
  if (!source) throw new NotFoundError(`source ${sourceId} not found`);
  return (await sourceViews(tx, [source]))[0]!;
}
