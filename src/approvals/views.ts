// Requests and grants as the HTTP API, the event stream, the CLI and webhooks show them
// (snake_case JSON). Tokens never appear; parameters appear only for authenticated approvers.
import type { ActorInfo, ApprovalRequest, GrantRecord, RequestDecision } from './model.js';

export interface ViewOptions {
  /** Include bind parameters (approvers only; never webhooks). */
  params: boolean;
  /** Base URL for links. */
  baseUrl: string;
}

export function actorView(a: ActorInfo): Record<string, unknown> {
  return {
    label: a.label,
    rule: a.rule,
    issuer: a.issuerName,
    subject: a.subject,
    ...(a.objectId !== undefined ? { object_id: a.objectId } : {}),
    ...(a.displayName !== undefined ? { name: a.displayName } : {}),
  };
}

function decisionView(d: RequestDecision): Record<string, unknown> {
  return {
    at: d.at.toISOString(),
    ...(d.by ? { by: actorView(d.by) } : {}),
    ...(d.reason !== undefined ? { reason: d.reason } : {}),
    ...(d.scope !== undefined ? { scope: d.scope } : {}),
    ...(d.grantId !== undefined ? { grant_id: d.grantId } : {}),
  };
}

export function requestUrls(id: string, baseUrl: string): { url: string; api_url: string } {
  return { url: `${baseUrl}/approvals/ui?request=${encodeURIComponent(id)}`, api_url: `${baseUrl}/approvals/${encodeURIComponent(id)}` };
}

export function requestView(r: ApprovalRequest, opts: ViewOptions): Record<string, unknown> {
  return {
    id: r.id,
    status: r.status,
    created_at: r.createdAt.toISOString(),
    expires_at: r.expiresAt.toISOString(),
    principal: {
      name: r.principal.name,
      issuer: r.principal.issuerName,
      subject: r.principal.subject,
      ...(r.principal.objectId !== undefined ? { object_id: r.principal.objectId } : {}),
    },
    target: r.target,
    protocol: r.protocol,
    session_id: r.sessionId,
    instance_id: r.instanceId,
    client_address: r.clientAddress,
    statement: r.sql,
    normalized: r.normalized,
    ...(opts.params && r.params !== undefined ? { params: r.params } : {}),
    ...(!opts.params && r.params !== undefined ? { params_count: r.params.length } : {}),
    fingerprint: r.fingerprint,
    rule: r.rule,
    reason: r.reason,
    ...(r.decision ? { decision: decisionView(r.decision) } : {}),
    ...requestUrls(r.id, opts.baseUrl),
  };
}

export function grantView(g: GrantRecord, now: Date): Record<string, unknown> {
  const live = g.revokedAt === undefined && g.expiresAt.getTime() > now.getTime();
  return {
    id: g.id,
    status: g.revokedAt !== undefined ? 'revoked' : live ? 'live' : 'expired',
    principal: { name: g.principalName, key: g.principalKey },
    target: g.target,
    fingerprint: g.fingerprint,
    normalized: g.normalized,
    rule: g.rule,
    request_id: g.requestId,
    created_at: g.createdAt.toISOString(),
    expires_at: g.expiresAt.toISOString(),
    approver: actorView(g.approver),
    ...(g.reason !== undefined ? { reason: g.reason } : {}),
    ...(g.revokedAt !== undefined ? { revoked_at: g.revokedAt.toISOString() } : {}),
    ...(g.revokedBy !== undefined ? { revoked_by: actorView(g.revokedBy) } : {}),
    ...(g.revokeReason !== undefined ? { revoke_reason: g.revokeReason } : {}),
  };
}
