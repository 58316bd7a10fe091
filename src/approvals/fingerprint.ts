// The unit a grant is given for. libpg_query's fingerprint ignores literal values, which is right
// for `DELETE FROM orders WHERE id = 42` (a grant covers any id) but wrong where the literal IS
// the statement: a DO block's body, the role in SET ROLE, the file in pg_read_file('…'), the
// command in COPY … PROGRAM. Those statements are granted by their exact text and parameters.
import { createHash } from 'node:crypto';
import type { Classification, StatementInfo } from '../sql/types.js';
import type { HoldRequest, PolicyContext } from './types.js';

/** Kinds whose literals choose what happens (besides the flags checked below). */
const LITERAL_KINDS: ReadonlySet<string> = new Set(['do', 'set_role', 'set_session_authorization', 'alter_system']);

function digest(parts: readonly string[]): string {
  const h = createHash('sha256');
  for (const p of parts) h.update(`${p.length}:${p}`);
  return h.digest('hex').slice(0, 32);
}

function paramParts(params: readonly (string | null)[] | undefined): string[] {
  return (params ?? []).map((p) => (p === null ? '\u0000null' : `=${p}`));
}

/** True when the statement's literals decide what it does, so only the exact text may be granted. */
export function literalSensitive(st: StatementInfo): boolean {
  const f = st.flags;
  return LITERAL_KINDS.has(st.kind) || st.dangerousFunctions.length > 0 || f.doBlock || f.sessionEscape || f.alterSystem ||
    f.copyProgram || f.copyToFile || f.copyFromFile || f.privilegeChange;
}

/**
 * The fingerprint grants are given for: libpg_query's fingerprint per statement (a digest of them
 * for several statements); the exact text and parameters when any statement is literal-sensitive
 * or the text could not be parsed. The exact text is `sql` itself, never a statement's `text`: a
 * classification may be shared by texts that differ in numeric literals.
 */
export function approvalFingerprint(classification: Classification, sql: string, params?: readonly (string | null)[]): string {
  if (!classification.ok || classification.statements.some(literalSensitive)) return exactFingerprint(sql, params);
  const parts = classification.statements.map((st) => st.fingerprint);
  if (parts.length === 1) return parts[0]!;
  return `multi:${digest(parts)}`;
}

/** Grants for exactly this text and these parameters. */
export function exactFingerprint(sql: string, params?: readonly (string | null)[]): string {
  return `text:${digest([sql, ...paramParts(params)])}`;
}

/**
 * What approvers are shown of a parameter whose display text was cut: the text, then the whole
 * value's size and a digest of it. The cut is visible, and the request's exact fingerprint
 * (computed from what approvers see) tells apart two values that begin alike: a grant for one
 * does not cover the other.
 */
export function cutForApprovers(shown: string, whole: Buffer | string, fullBytes: number): string {
  const sha = createHash('sha256').update(whole).digest('hex');
  return `${shown}… [cut for display: ${fullBytes} bytes in all; sha256 ${sha}]`;
}

/** The literal-free text shown to approvers (each statement's normalized form). */
export function normalizedText(classification: Classification, sql: string): string {
  if (!classification.ok) return sql;
  return classification.statements.map((st) => st.normalized).join('; ');
}

export interface HoldRequestInput {
  ctx: PolicyContext;
  sessionId: string;
  instanceId: string;
  clientAddress: string;
  sql: string;
  classification: Classification;
  verdict: { rule: string; reason: string };
  params?: readonly (string | null)[];
}

/** Builds the HoldRequest for a held statement (what the relay passes to findGrant and hold). */
export function buildHoldRequest(input: HoldRequestInput): HoldRequest {
  const { ctx, classification, sql, params } = input;
  return {
    sessionId: input.sessionId,
    instanceId: input.instanceId,
    protocol: ctx.protocol,
    target: ctx.target,
    principal: ctx.principal,
    clientAddress: input.clientAddress,
    sql,
    fingerprint: approvalFingerprint(classification, sql, params),
    normalized: normalizedText(classification, sql),
    ...(params !== undefined ? { params } : {}),
    rule: input.verdict.rule,
    reason: input.verdict.reason,
    classification,
  };
}
