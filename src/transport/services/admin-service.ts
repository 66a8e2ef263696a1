import type { ServiceImpl } from '@connectrpc/connect';
import { AdminService } from '../../../gen/crm/v1/admin_pb.js';
import type { Admin, SourceSettings } from '../../domain/admin.ts';
import { durationMs, id, refuseRepeatedOperators } from '../messages/decode.ts';
import { encodeOperator, encodeSource } from '../messages/encode.ts';
import { strategy } from '../messages/enums.ts';

export function adminService(admin: Admin): ServiceImpl<typeof AdminService> {
  return {
    async createOperator(request) {
      const input = { name: request.name.trim(), maxLoad: request.maxLoad, active: request.active ?? true };
      return { operator: encodeOperator(await admin.createOperator(input)) };
    },

    async updateOperator(request) {
      const changes = {
        ...(request.name === undefined ? {} : { name: request.name.trim() }),
        ...(request.active === undefined ? {} : { active: request.active }),
        ...(request.maxLoad === undefined ? {} : { maxLoad: request.maxLoad }),
      };
      return { operator: encodeOperator(await admin.updateOperator(id(request.operatorId, 'operator'), changes)) };
    },

    async createSource(request) {
      const settings: SourceSettings = {
        name: request.name.trim(),
        code: request.code.trim() || null,
        description: request.description.trim(),
        strategy: strategy(request.strategy),
        leadAffinity: request.leadAffinity ?? true,
        acceptWithinMs: durationMs(request.acceptWithin, 'accept_within'),
      };
      return { source: encodeSource(await admin.createSource(settings)) };
    },

    async updateSource(request) {
      const changes: Partial<SourceSettings> = {
        ...(request.name === undefined ? {} : { name: request.name.trim() }),
        // An empty code clears it.
        ...(request.code === undefined ? {} : { code: request.code.trim() || null }),
        ...(request.description === undefined ? {} : { description: request.description.trim() }),
        ...(request.strategy === undefined ? {} : { strategy: strategy(request.strategy) }),
        ...(request.leadAffinity === undefined ? {} : { leadAffinity: request.leadAffinity }),
        ...(request.acceptWithin === undefined ? {} : { acceptWithinMs: durationMs(request.acceptWithin, 'accept_within') }),
      };
      return { source: encodeSource(await admin.updateSource(id(request.sourceId, 'source'), changes)) };
    },

    async setSourceOperators(request) {
      refuseRepeatedOperators(request.operators.map((entry) => entry.operatorId), 'operators');
      const operators = request.operators.map((entry) => ({ operatorId: id(entry.operatorId, 'operator'), weight: entry.weight }));
      return { source: encodeSource(await admin.setSourceOperators(id(request.sourceId, 'source'), operators)) };
    },

    async setOperatorWeight(request) {
      return { source: encodeSource(await admin.setOperatorWeight(id(request.sourceId, 'source'), id(request.operatorId, 'operator'), request.weight)) };
    },

    async removeSourceOperator(request) {
      return { source: encodeSource(await admin.removeSourceOperator(id(request.sourceId, 'source'), id(request.operatorId, 'operator'))) };
    },
  };
}
