import type { ServiceImpl } from '@connectrpc/connect';
import { QueryService } from '../../../gen/crm/v1/query_pb.js';
import type { SourceKey } from '../../domain/sources.ts';
import type { LeadKey, Queries } from '../../domain/queries.ts';
import { leadIdentity } from './distribution-service.ts';
import { contactStatus } from '../messages/enums.ts';
import { encodeContact, encodeLead, encodeOperator, encodeSource } from '../messages/encode.ts';
import { encodePageToken, LIMITS, Violations } from '../messages/validate.ts';

export function queryService(queries: Queries): ServiceImpl<typeof QueryService> {
  return {
    async getOperator(request) {
      const v = new Violations();
      const operatorId = v.id(request.operatorId, 'operator_id');
      v.check();
      return { operator: encodeOperator(await queries.getOperator(operatorId)) };
    },

    async listOperators(request) {
      const v = new Violations();
      const page = v.page(request.pageSize, request.pageToken);
      v.check();
      const { items, lastId } = await queries.listOperators(page);
      return { operators: items.map(encodeOperator), nextPageToken: encodePageToken(lastId) };
    },

    async getSource(request) {
      const v = new Violations();
      let key: SourceKey = { id: 0 };
      if (request.source.case === 'sourceId') key = { id: v.id(request.source.value, 'source_id') };
      else if (request.source.case === 'sourceCode') key = { code: v.text(request.source.value, 'source_code', LIMITS.code, true) };
      else v.add('source', 'source_id or source_code is required');
      v.check();
      return { source: encodeSource(await queries.getSource(key)) };
    },

    async listSources(request) {
      const v = new Violations();
      const page = v.page(request.pageSize, request.pageToken);
      v.check();
      const { items, lastId } = await queries.listSources(page);
      return { sources: items.map(encodeSource), nextPageToken: encodePageToken(lastId) };
    },

    async getLead(request) {
      const v = new Violations();
      let key: LeadKey = { id: 0 };
      if (request.lead.case === 'leadId') key = { id: v.id(request.lead.value, 'lead_id') };
      else if (request.lead.case === 'identity') key = { identity: leadIdentity(v, request.lead.value, 'identity') };
      else v.add('lead', 'lead_id or identity is required');
      v.check();
      return { lead: encodeLead(await queries.getLead(key)) };
    },

    async listLeads(request) {
      const v = new Violations();
      const page = v.page(request.pageSize, request.pageToken);
      v.check();
      const { items, lastId } = await queries.listLeads(page);
      return { leads: items.map(encodeLead), nextPageToken: encodePageToken(lastId) };
    },

    async listContacts(request) {
      const v = new Violations();
      const page = v.page(request.pageSize, request.pageToken);
      const filter = {
        leadId: v.optionalId(request.leadId, 'lead_id'),
        sourceId: v.optionalId(request.sourceId, 'source_id'),
        operatorId: v.optionalId(request.operatorId, 'operator_id'),
        status: contactStatus(v, request.status, 'status', false),
        queuedOnly: request.queuedOnly,
      };
      v.check();
      const { items, lastId } = await queries.listContacts(filter, page);
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
      const v = new Violations();
      const sourceId = v.id(request.sourceId, 'source_id');
      v.check();
      const stats = await queries.distributionStats(sourceId);
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
