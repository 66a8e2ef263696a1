import type { DescService } from '@bufbuild/protobuf';
import type { ConnectRouter } from '@connectrpc/connect';
import { AdminService } from '../../../gen/crm/v1/admin_pb.js';
import { DistributionService } from '../../../gen/crm/v1/distribution_pb.js';
import { QueryService } from '../../../gen/crm/v1/query_pb.js';
import { file_google_rpc_error_details } from '../../../gen/google/rpc/error_details_pb.js';
import { Health } from '../../../gen/grpc/health/v1/health_pb.js';
import { ServerReflection } from '../../../gen/grpc/reflection/v1/reflection_pb.js';
import { ServerReflection as ServerReflectionV1alpha } from '../../../gen/grpc/reflection/v1alpha/reflection_pb.js';
import type { Admin } from '../../domain/admin.ts';
import type { AssignmentFeed } from '../../domain/assignment/feed.ts';
import type { ContactLifecycle } from '../../domain/contacts/lifecycle.ts';
import type { Transfers } from '../../domain/contacts/transfer.ts';
import type { Registrations } from '../../domain/contacts/registration.ts';
import type { Queries } from '../../domain/queries.ts';
import type { Metrics } from '../../metrics.ts';
import { adminService } from './admin-service.ts';
import { distributionService } from './distribution-service.ts';
import { healthService, type HealthStatus } from './health.ts';
import { queryService } from './query-service.ts';
import { reflectionServices } from './reflection.ts';

export interface Domain {
  registrations: Registrations;
  lifecycle: ContactLifecycle;
  transfers: Transfers;
  admin: Admin;
  queries: Queries;
  feed: AssignmentFeed;
}

/** Every service on the port: what reflection lists and health reports on. */
export const SERVICES: readonly DescService[] = [DistributionService, AdminService, QueryService, Health, ServerReflection, ServerReflectionV1alpha];

export function routes(domain: Domain, health: HealthStatus, metrics: Metrics, shutdown: AbortSignal): (router: ConnectRouter) => void {
  // Error details name google.rpc types, which clients resolve through reflection too.
  const reflection = reflectionServices(SERVICES, [file_google_rpc_error_details]);
  return (router) => {
    router.service(DistributionService, distributionService(domain.registrations, domain.lifecycle, domain.transfers, domain.feed, metrics, shutdown));
    router.service(AdminService, adminService(domain.admin));
    router.service(QueryService, queryService(domain.queries));
    router.service(Health, healthService(health, shutdown));
    router.service(ServerReflection, reflection.v1);
    router.service(ServerReflectionV1alpha, reflection.v1alpha);
  };
}
