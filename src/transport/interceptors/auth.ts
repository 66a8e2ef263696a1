// Role tokens: `authorization: Bearer <token>`, each token carrying one role.
import { createHash, timingSafeEqual } from 'node:crypto';
import { Code, ConnectError, type Interceptor } from '@connectrpc/connect';

export const ROLES = ['bot', 'operator', 'admin'] as const;
export type Role = (typeof ROLES)[number];

export interface RoleToken {
  role: Role;
  token: string;
}

/** Standard services anyone may call: probes and tooling need no token. */
const OPEN_SERVICES = new Set(['grpc.health.v1.Health', 'grpc.reflection.v1.ServerReflection', 'grpc.reflection.v1alpha.ServerReflection']);

/** Who may call what; `admin` may call everything, and anything unlisted is admin-only. */
const GRANTS: Record<string, Role> = {
  'crm.v1.DistributionService/RegisterContact': 'bot',
  'crm.v1.DistributionService/UpdateContactStatus': 'operator',
  'crm.v1.DistributionService/WatchAssignments': 'operator',
  'crm.v1.DistributionService/TransferContact': 'operator',
  'crm.v1.QueryService': 'operator',
};

/**
 * Parses `role:token` pairs separated by commas or newlines; blank entries and
 * `#` lines are skipped. A token that no `authorization` header could carry
 * (spaces, non-ASCII) is refused.
 */
export function parseRoleTokens(text: string, origin: string): RoleToken[] {
  const tokens = text
    .split(/[,\n]/)
    .map((entry) => entry.trim())
    .filter((entry) => entry !== '' && !entry.startsWith('#'))
    .map((entry) => {
      const colon = entry.indexOf(':');
      const role = entry.slice(0, colon).trim();
      const token = entry.slice(colon + 1).trim();
      if (colon < 0 || !(ROLES as readonly string[]).includes(role) || token === '') {
        throw new Error(`${origin}: each entry must be role:token with role one of ${ROLES.join(', ')}`);
      }
      // Visible ASCII only: what a Bearer header can carry and a client can send.
      if (!/^[\x21-\x7e]+$/.test(token)) throw new Error(`${origin}: the token for role ${role} may hold only visible ASCII characters, no spaces`);
      return { role: role as Role, token };
    });
  return tokens;
}

/** Refuses a token given to two roles: which one it carried would depend on the order of the list. */
export function checkDistinctRoles(tokens: readonly RoleToken[]): RoleToken[] {
  const roles = new Map<string, Role>();
  for (const { role, token } of tokens) {
    const other = roles.get(token);
    if (other !== undefined && other !== role) throw new Error(`CRM_TOKENS: one token is given to both roles ${other} and ${role}; give each role its own token`);
    roles.set(token, role);
  }
  return [...tokens];
}

function digest(token: string): Buffer {
  return createHash('sha256').update(token).digest();
}

/**
 * Checks every call's token and role. Tokens are compared as SHA-256 digests
 * with timingSafeEqual, against every configured token, so the time taken says
 * nothing about how much of a token was right. Tokens are never logged.
 */
export function authInterceptor(tokens: readonly RoleToken[]): Interceptor {
  const known = tokens.map(({ role, token }) => ({ role, digest: digest(token) }));
  return (next) => async (request) => {
    const service = request.service.typeName;
    if (OPEN_SERVICES.has(service)) return next(request);
    const header = request.header.get('authorization') ?? '';
    const match = /^Bearer\s+(\S+)$/i.exec(header.trim());
    if (!match) throw new ConnectError('missing bearer token', Code.Unauthenticated);
    const presented = digest(match[1]!);
    let role: Role | undefined;
    for (const entry of known) if (timingSafeEqual(entry.digest, presented)) role = entry.role;
    if (role === undefined) throw new ConnectError('unknown token', Code.Unauthenticated);
    const method = `${service}/${request.method.name}`;
    const needed = GRANTS[method] ?? GRANTS[service] ?? 'admin';
    if (role !== 'admin' && role !== needed) throw new ConnectError(`role ${role} may not call ${service}.${request.method.name}`, Code.PermissionDenied);
    return next(request);
  };
}

/** Whether a HOST value only accepts connections from this machine. */
export function isLoopbackHost(host: string): boolean {
  return host === 'localhost' || host === '::1' || /^127\.\d+\.\d+\.\d+$/.test(host);
}
