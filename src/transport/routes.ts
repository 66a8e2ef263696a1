import type { ConnectRouter } from '@connectrpc/connect';
import { AdminService } from '../../gen/crm/v1/admin_pb.js';
import { DistributionService } from '../../gen/crm/v1/distribution_pb.js';
import { QueryService } from '../../gen/crm/v1/query_pb.js';
import type { Admin } from '../domain/admin.ts';
import type { AssignmentFeed } from '../domain/assignment-feed.ts';
import type { Distribution } from '../domain/distribution.ts';
import type { Queries } from '../domain/queries.ts';
import { adminService } from './admin-service.ts';
import { distributionService } from './distribution-service.ts';
import { queryService } from './query-service.ts';

export interface Domain {
  distribution: Distribution;
  admin: Admin;
  queries: Queries;
  feed: AssignmentFeed;
}

export function routes(domain: Domain, shutdown: AbortSignal): (router: ConnectRouter) => void {
  return (router) => {
    router.service(DistributionService, distributionService(domain.distribution, domain.feed, shutdown));
    router.service(AdminService, adminService(domain.admin));
    router.service(QueryService, queryService(domain.queries));
  };
}
