import type { ServiceImpl } from '@connectrpc/connect';
import { QueryService } from '../../../gen/crm/v1/query_pb.js';
import type { SourceKey } from '../../domain/sources.ts';
import type { LeadKey, Queries } from '../../domain/queries.ts';
import { leadIdentity } from './distribution-service.ts';
import { contactStatus } from '../messages/enums.ts';
import { encodeContact, encodeLead, encodeOperator, encodeSource } from '../messages/encode.ts';
import { encodePageToken, id, optionalId, page } from '../messages/decode.ts';

export function queryService(queries: Queries): ServiceImpl<typeof QueryService> {
  return {
    async getOperator(request) {
      return { operator: encodeOperator(await queries.getOperator(id(request.operatorId, 'operator'))) };
    },

    async listOperators(request) {
      const { items, lastId } = await queries.listOperators(page(request.pageSize, request.pageToken));
      return { operators: items.map(encodeOperator), nextPageToken: encodePageToken(lastId) };
    },

    async getSource(request) {
      // The rules require one of the two.
      const key: SourceKey = request.source.case === 'sourceId' ? { id: id(request.source.value, 'source') } : { code: request.source.value!.trim() };
      return { source: encodeSource(await queries.getSource(key)) };
    },

    async listSources(request) {
      const { items, lastId } = await queries.listSources(page(request.pageSize, request.pageToken));
      return { sources: items.map(encodeSource), nextPageToken: encodePageToken(lastId) };
    },

    async getLead(request) {
      // The rules require one of the two.
      const key: LeadKey = request.lead.case === 'leadId' ? { id: id(request.lead.value, 'lead') } : { identity: leadIdentity(request.lead.value!) };
      return { lead: encodeLead(await queries.getLead(key)) };
    },

    async listLeads(request) {
      const { items, lastId } = await queries.listLeads(page(request.pageSize, request.pageToken));
      return { leads: items.map(encodeLead), nextPageToken: encodePageToken(lastId) };
    },

    async listContacts(request) {
      const filter = {
        leadId: optionalId(request.leadId, 'lead'),
        sourceId: optionalId(request.sourceId, 'source'),
        operatorId: optionalId(request.operatorId, 'operator'),
        status: contactStatus(request.status),
        queuedOnly: request.queuedOnly,
      };
      const { items, lastId } = await queries.listContacts(filter, page(request.pageSize, request.pageToken));
      return { contacts: items.map(encodeContact), nextPageToken: encodePageToken(lastId) };
    },

    async getOperatorStats() {
      const stats = await queries.operatorStats();
      return {
        operators: stats.map((s) => ({
          operatorId: BigInt(s.id),
          operatorName: s.name,
          active: s.active,
          maxLoad: s.maxLoad,
          openLoad: s.openLoad,
          totalAssigned: BigInt(s.totalAssigned),
          sources: s.sources.map((l) => ({ sourceId: BigInt(l.sourceId), sourceName: l.sourceName, open: BigInt(l.open), total: BigInt(l.total) })),
        })),
      };
    },

    async getDistributionStats(request) {
      const stats = await queries.distributionStats(id(request.sourceId, 'source'));
      return {
        sourceId: BigInt(stats.sourceId),
        queued: BigInt(stats.queued),
        operators: stats.operators.map((o) => ({
          operatorId: BigInt(o.operatorId),
          operatorName: o.operatorName,
          weight: o.weight,
          targetShare: o.targetShare,
          assignedTotal: BigInt(o.assignedTotal),
          actualShare: o.actualShare,
        })),
      };
    },
  };
}
