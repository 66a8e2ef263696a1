import type { ServiceImpl } from '@connectrpc/connect';
import { AdminService } from '../../../gen/crm/v1/admin_pb.js';
import type { Admin, OperatorWeightInput, SourceSettings } from '../../domain/admin.ts';
import { encodeOperator, encodeSource } from '../messages/encode.ts';
import { strategy } from '../messages/enums.ts';
import { LIMITS, Violations } from '../messages/validate.ts';

export function adminService(admin: Admin): ServiceImpl<typeof AdminService> {
  return {
    async createOperator(request) {
      const v = new Violations();
      const name = v.text(request.name, 'name', LIMITS.name, true);
      const maxLoad = v.count(request.maxLoad, 'max_load', LIMITS.maxLoad);
      v.check();
      return { operator: encodeOperator(await admin.createOperator({ name, maxLoad, active: request.active ?? true })) };
    },

    async updateOperator(request) {
      const v = new Violations();
      const operatorId = v.id(request.operatorId, 'operator_id');
      const changes = {
        ...(request.name === undefined ? {} : { name: v.text(request.name, 'name', LIMITS.name, true) }),
        ...(request.active === undefined ? {} : { active: request.active }),
        ...(request.maxLoad === undefined ? {} : { maxLoad: v.count(request.maxLoad, 'max_load', LIMITS.maxLoad) }),
      };
      v.check();
      return { operator: encodeOperator(await admin.updateOperator(operatorId, changes)) };
    },

    async createSource(request) {
      const v = new Violations();
      const settings: SourceSettings = {
        name: v.text(request.name, 'name', LIMITS.name, true),
        code: v.text(request.code, 'code', LIMITS.code) || null,
        description: v.text(request.description, 'description', LIMITS.description),
        strategy: strategy(v, request.strategy, 'strategy') ?? 'WEIGHTED_RANDOM',
        leadAffinity: request.leadAffinity ?? true,
        acceptWithinMs: v.duration(request.acceptWithin, 'accept_within', LIMITS.acceptWithinMs),
      };
      v.check();
      return { source: encodeSource(await admin.createSource(settings)) };
    },

    async updateSource(request) {
      const v = new Violations();
      const sourceId = v.id(request.sourceId, 'source_id');
      const changes: Partial<SourceSettings> = {
        ...(request.name === undefined ? {} : { name: v.text(request.name, 'name', LIMITS.name, true) }),
        ...(request.code === undefined ? {} : { code: v.text(request.code, 'code', LIMITS.code) || null }),
        ...(request.description === undefined ? {} : { description: v.text(request.description, 'description', LIMITS.description) }),
        ...(request.strategy === undefined ? {} : { strategy: strategy(v, request.strategy, 'strategy') ?? 'WEIGHTED_RANDOM' }),
        ...(request.leadAffinity === undefined ? {} : { leadAffinity: request.leadAffinity }),
        ...(request.acceptWithin === undefined ? {} : { acceptWithinMs: v.duration(request.acceptWithin, 'accept_within', LIMITS.acceptWithinMs) }),
      };
      v.check();
      return { source: encodeSource(await admin.updateSource(sourceId, changes)) };
    },

    async setSourceOperators(request) {
      const v = new Violations();
      const sourceId = v.id(request.sourceId, 'source_id');
      const seen = new Set<number>();
      const operators: OperatorWeightInput[] = request.operators.map((entry, i) => {
        const operatorId = v.id(entry.operatorId, `operators[${i}].operator_id`);
        if (seen.has(operatorId)) v.add(`operators[${i}].operator_id`, `operator ${operatorId} is listed more than once`);
        seen.add(operatorId);
        return { operatorId, weight: v.count(entry.weight, `operators[${i}].weight`, LIMITS.weight) };
      });
      v.check();
      return { source: encodeSource(await admin.setSourceOperators(sourceId, operators)) };
    },

    async setOperatorWeight(request) {
      const v = new Violations();
      const sourceId = v.id(request.sourceId, 'source_id');
      const operatorId = v.id(request.operatorId, 'operator_id');
      const weight = v.count(request.weight, 'weight', LIMITS.weight);
      v.check();
      return { source: encodeSource(await admin.setOperatorWeight(sourceId, operatorId, weight)) };
    },

    async removeSourceOperator(request) {
      const v = new Violations();
      const sourceId = v.id(request.sourceId, 'source_id');
      const operatorId = v.id(request.operatorId, 'operator_id');
      v.check();
      return { source: encodeSource(await admin.removeSourceOperator(sourceId, operatorId)) };
    },
  };
}
