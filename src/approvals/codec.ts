// Requests and grants to and from JSON (the embedded journal's lines, the PostgreSQL store's jsonb
// columns). Dates travel as ISO strings. Reading checks the shape: a record that does not parse
// is an error, never a half-filled request.
import { REQUEST_STATUSES, type ActorInfo, type ApprovalRequest, type GrantRecord, type RequestDecision, type RequestStatus } from './model.js';

type Json = Record<string, unknown>;

export class RecordFormatError extends Error {
  override readonly name = 'RecordFormatError';
}

function obj(v: unknown, what: string): Json {
  if (typeof v !== 'object' || v === null || Array.isArray(v)) throw new RecordFormatError(`${what} is not an object`);
  return v as Json;
}

function str(o: Json, key: string, what: string): string {
  const v = o[key];
  if (typeof v !== 'string') throw new RecordFormatError(`${what}.${key} is not a string`);
  return v;
}

function optStr(o: Json, key: string, what: string): string | undefined {
  return o[key] === undefined || o[key] === null ? undefined : str(o, key, what);
}

function date(o: Json, key: string, what: string): Date {
  const v = o[key];
  const d = typeof v === 'string' || v instanceof Date ? new Date(v) : undefined;
  if (!d || Number.isNaN(d.getTime())) throw new RecordFormatError(`${what}.${key} is not a time`);
  return d;
}

function optDate(o: Json, key: string, what: string): Date | undefined {
  return o[key] === undefined || o[key] === null ? undefined : date(o, key, what);
}

function strings(o: Json, key: string, what: string): string[] {
  const v = o[key];
  if (!Array.isArray(v) || !v.every((x) => typeof x === 'string')) throw new RecordFormatError(`${what}.${key} is not a list of strings`);
  return v as string[];
}

function opt<K extends string, V>(key: K, value: V | undefined): { [P in K]?: V } {
  return (value === undefined ? {} : { [key]: value }) as { [P in K]?: V };
}

export function actorFromJson(v: unknown, what: string): ActorInfo {
  const o = obj(v, what);
  return {
    rule: str(o, 'rule', what),
    issuerName: str(o, 'issuerName', what),
    issuer: str(o, 'issuer', what),
    subject: str(o, 'subject', what),
    ...opt('objectId', optStr(o, 'objectId', what)),
    ...opt('displayName', optStr(o, 'displayName', what)),
    label: str(o, 'label', what),
  };
}

export function decisionFromJson(v: unknown, what: string): RequestDecision {
  const o = obj(v, what);
  const scope = optStr(o, 'scope', what);
  if (scope !== undefined && scope !== 'once' && scope !== 'grant') throw new RecordFormatError(`${what}.scope is not once or grant`);
  return {
    at: date(o, 'at', what),
    ...opt('by', o.by === undefined || o.by === null ? undefined : actorFromJson(o.by, `${what}.by`)),
    ...opt('reason', optStr(o, 'reason', what)),
    ...opt('scope', scope as 'once' | 'grant' | undefined),
    ...opt('grantId', optStr(o, 'grantId', what)),
  };
}

export function requestFromJson(v: unknown): ApprovalRequest {
  const what = 'request';
  const o = obj(v, what);
  const id = str(o, 'id', what);
  const status = str(o, 'status', what);
  if (!(REQUEST_STATUSES as readonly string[]).includes(status)) throw new RecordFormatError(`request.status ${JSON.stringify(status)} is unknown`);
  const protocol = str(o, 'protocol', what);
  if (protocol !== 'postgres' && protocol !== 'tds') throw new RecordFormatError('request.protocol is unknown');
  const p = obj(o.principal, 'request.principal');
  let params: (string | null)[] | undefined;
  if (o.params !== undefined && o.params !== null) {
    if (!Array.isArray(o.params) || !o.params.every((x) => typeof x === 'string' || x === null)) throw new RecordFormatError('request.params is not a list');
    params = o.params as (string | null)[];
  }
  return {
    id,
    status: status as RequestStatus,
    createdAt: date(o, 'createdAt', what),
    expiresAt: date(o, 'expiresAt', what),
    instanceId: str(o, 'instanceId', what),
    sessionId: str(o, 'sessionId', what),
    protocol,
    target: str(o, 'target', what),
    principal: {
      name: str(p, 'name', 'request.principal'),
      issuerName: str(p, 'issuerName', 'request.principal'),
      issuer: str(p, 'issuer', 'request.principal'),
      subject: str(p, 'subject', 'request.principal'),
      ...opt('objectId', optStr(p, 'objectId', 'request.principal')),
      ...opt('tenantId', optStr(p, 'tenantId', 'request.principal')),
      roles: strings(p, 'roles', 'request.principal'),
      groups: strings(p, 'groups', 'request.principal'),
    },
    principalKey: str(o, 'principalKey', what),
    clientAddress: str(o, 'clientAddress', what),
    sql: str(o, 'sql', what),
    fingerprint: str(o, 'fingerprint', what),
    normalized: str(o, 'normalized', what),
    ...opt('params', params),
    rule: str(o, 'rule', what),
    reason: str(o, 'reason', what),
    ...opt('decision', o.decision === undefined || o.decision === null ? undefined : decisionFromJson(o.decision, 'request.decision')),
  };
}

export function grantFromJson(v: unknown): GrantRecord {
  const what = 'grant';
  const o = obj(v, what);
  return {
    id: str(o, 'id', what),
    principalKey: str(o, 'principalKey', what),
    principalName: str(o, 'principalName', what),
    target: str(o, 'target', what),
    fingerprint: str(o, 'fingerprint', what),
    normalized: str(o, 'normalized', what),
    rule: str(o, 'rule', what),
    requestId: str(o, 'requestId', what),
    createdAt: date(o, 'createdAt', what),
    expiresAt: date(o, 'expiresAt', what),
    approver: actorFromJson(o.approver, 'grant.approver'),
    ...opt('reason', optStr(o, 'reason', what)),
    ...opt('revokedAt', optDate(o, 'revokedAt', what)),
    ...opt('revokedBy', o.revokedBy === undefined || o.revokedBy === null ? undefined : actorFromJson(o.revokedBy, 'grant.revokedBy')),
    ...opt('revokeReason', optStr(o, 'revokeReason', what)),
  };
}
