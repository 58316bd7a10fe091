// One verdict per statement text, from the statement rules and the masking engine's statement
// checks (inference, laundering): the strictest wins (deny > hold > allow). Plus the summary of a
// classification that transcripts keep.
import type { PolicyContext, StatementPolicy, StatementVerdict } from '../../approvals/types.js';
import type { SessionMasker } from '../../masking/types.js';
import type { ClassificationSummary } from '../../audit/types.js';
import { unwrap } from '../../sql/ast.js';
import type { Classification } from '../../sql/types.js';

const RANK = { allow: 0, hold: 1, deny: 2 } as const;

export function stricter(a: StatementVerdict, b: StatementVerdict): StatementVerdict {
  return RANK[b.action] > RANK[a.action] ? b : a;
}

export const ALLOW: StatementVerdict = { action: 'allow' };

export function decide(
  ctx: PolicyContext,
  cls: Classification,
  policy: StatementPolicy | undefined,
  masker: SessionMasker | undefined,
): StatementVerdict {
  let v: StatementVerdict = policy ? policy.evaluate(ctx, cls) : ALLOW;
  if (v.action === 'deny' || !masker || masker.inert) return v;
  if (!cls.ok) return stricter(v, masker.checkStatement(undefined));
  for (const st of cls.statements) {
    v = stricter(v, masker.checkStatement(st));
    if (v.action === 'deny') break;
  }
  return v;
}

const DDL_KINDS = new Set(['create', 'alter', 'drop', 'truncate', 'comment', 'refresh_matview', 'security_label']);
const ADMIN_KINDS = new Set(['grant', 'revoke', 'role', 'alter_system', 'set_role', 'set_session_authorization', 'do', 'vacuum', 'analyze']);

/** True when the text holds DDL, after which catalog knowledge must be refreshed. */
const catalogChanges = new WeakMap<Classification, boolean>();

export function changesCatalog(cls: Classification): boolean {
  let v = catalogChanges.get(cls);
  if (v === undefined) {
    v = !cls.ok || cls.statements.some((s) => DDL_KINDS.has(s.kind) || s.flags.privilegeChange);
    catalogChanges.set(cls, v);
  }
  return v;
}

/** Settings that change how the server reads statement text (see SessionFlow.noteParameter). */
const LEXING_SETTINGS = new Set(['standard_conforming_strings', 'client_encoding']);
/** set_config as a called function's name is written, with or without a schema. */
const SET_CONFIG = /(?:^|\.)set_config$/i;

/**
 * True when the text may change how the server reads the statements after it: SET / RESET of
 * standard_conforming_strings or client_encoding (SET NAMES), RESET ALL, set_config(), or a text
 * warden could not read. The server reports the change (ParameterStatus) only with its
 * ReadyForQuery, after statements the client pipelined behind it have been read.
 */
export function mayChangeLexing(cls: Classification): boolean {
  if (!cls.ok) return true;
  for (const s of cls.statements) {
    if (s.nodeType === 'VariableSetStmt') {
      const b = unwrap(s.tree)?.body as { kind?: string; name?: string } | undefined;
      if (b?.kind === 'VAR_RESET_ALL' || (b?.name !== undefined && LEXING_SETTINGS.has(b.name.toLowerCase()))) return true;
    }
    if (s.functions.some((f) => SET_CONFIG.test(f))) return true;
  }
  return false;
}

const summaries = new WeakMap<Classification, ClassificationSummary>();

export function summarize(cls: Classification): ClassificationSummary {
  const cached = summaries.get(cls);
  if (cached) return cached;
  let out: ClassificationSummary;
  if (!cls.ok) {
    out = { class: 'unknown', relations: [], error: cls.error };
  } else {
    let klass = 'read';
    const relations = new Set<string>();
    const kinds = new Set<string>();
    for (const s of cls.statements) {
      kinds.add(s.kind);
      for (const r of s.relations) relations.add(r.schema ? `${r.schema}.${r.name}` : r.name);
      if (ADMIN_KINDS.has(s.kind) || s.flags.privilegeChange || s.flags.sessionEscape) klass = 'admin';
      else if (DDL_KINDS.has(s.kind) && klass !== 'admin') klass = 'ddl';
      else if (!s.readOnly && klass === 'read') klass = 'write';
    }
    const dangerous = cls.statements.flatMap((s) => s.dangerousFunctions);
    out = {
      class: klass,
      relations: [...relations],
      kinds: [...kinds],
      ...(dangerous.length ? { dangerousFunctions: dangerous } : {}),
      ...(cls.statements.length === 1 && cls.statements[0] ? { fingerprint: cls.statements[0].fingerprint } : {}),
    };
  }
  summaries.set(cls, out);
  return out;
}
