// What the classifier says about a statement. See docs/statement-classes.md for the policy view.
import type { Node } from 'libpg-query';

export const STATEMENT_KINDS = [
  'select', 'insert', 'update', 'delete', 'merge', 'copy',
  'create', 'alter', 'drop', 'truncate', 'grant', 'revoke', 'role',
  'set', 'set_role', 'set_session_authorization', 'reset', 'show',
  'transaction', 'do', 'call', 'explain', 'prepare', 'execute', 'deallocate',
  'listen', 'notify', 'unlisten', 'discard', 'vacuum', 'analyze', 'lock',
  'declare_cursor', 'fetch', 'close_cursor', 'alter_system', 'comment', 'security_label',
  'refresh_matview', 'other',
] as const;

export type StatementKind = (typeof STATEMENT_KINDS)[number];

export type TransactionControl =
  | 'begin' | 'start' | 'commit' | 'rollback' | 'savepoint' | 'release' | 'rollback_to'
  | 'prepare_transaction' | 'commit_prepared' | 'rollback_prepared';

export type RelationAccess = 'read' | 'insert' | 'update' | 'delete' | 'truncate' | 'ddl' | 'lock' | 'copy';

/** A relation the statement touches, named as written (unqualified names stay unqualified). */
export interface RelationRef {
  readonly catalog?: string;
  readonly schema?: string;
  readonly name: string;
  readonly access: RelationAccess;
}

export interface StatementFlags {
  /** UPDATE or DELETE (anywhere, CTEs included) without WHERE, or with a WHERE that reads no column. */
  readonly noWhere: boolean;
  /** A WITH clause holds INSERT/UPDATE/DELETE/MERGE. */
  readonly dataModifyingCte: boolean;
  /** GRANT/REVOKE, role DDL, default privileges, ownership, RLS policies, SECURITY DEFINER. */
  readonly privilegeChange: boolean;
  /** Changes the session's identity: SET ROLE, SET SESSION AUTHORIZATION, RESET ROLE, set_config('role', …), DISCARD ALL. */
  readonly sessionEscape: boolean;
  readonly alterSystem: boolean;
  readonly doBlock: boolean;
  /** COPY … TO/FROM PROGRAM (runs a shell command on the database server). */
  readonly copyProgram: boolean;
  /** COPY … TO 'file' on the database server. */
  readonly copyToFile: boolean;
  /** COPY … FROM 'file' on the database server. */
  readonly copyFromFile: boolean;
  /** Set for transaction control statements, with the sub-kind. */
  readonly transactionControl?: TransactionControl;
}

export interface CopyInfo {
  readonly direction: 'to' | 'from';
  /** client = STDIN/STDOUT through the protocol; file and program are on the database server. */
  readonly endpoint: 'client' | 'file' | 'program';
  /** The file name or the shell command, for file and program endpoints. */
  readonly target?: string;
}

export interface DdlInfo {
  /** Lower-case object type as PostgreSQL spells it: 'table', 'materialized view', 'function', … */
  readonly objectType: string;
  /** Object names as written, quoted where needed (`s."My Table"`). */
  readonly objects: readonly string[];
}

export interface StatementInfo {
  readonly kind: StatementKind;
  /** PostgreSQL's parse node name, e.g. 'SelectStmt'. */
  readonly nodeType: string;
  /** The command tag PostgreSQL assigns (CreateCommandTag), e.g. 'SELECT', 'CREATE TABLE AS'. */
  readonly commandTag: string;
  /** True only when the statement is known not to write anything (conservative). */
  readonly readOnly: boolean;
  readonly flags: StatementFlags;
  /** Names of dangerous functions called anywhere in the statement, as written. */
  readonly dangerousFunctions: readonly string[];
  /** Every function called, schema-qualified when written so, in order of first appearance. */
  readonly functions: readonly string[];
  readonly relations: readonly RelationRef[];
  readonly ddl?: DdlInfo;
  readonly copy?: CopyInfo;
  /** The prepared statement (EXECUTE, DEALLOCATE, PREPARE) or cursor (DECLARE, FETCH, CLOSE) named. */
  readonly targetName?: string;
  /** Hash of the parse tree without literal values, $n numbers and positions (see fingerprint.ts). */
  readonly fingerprint: string;
  /** The statement with literals replaced by `$n`, for display. */
  readonly normalized: string;
  /** This statement's own text, sliced from the input. */
  readonly text: string;
  /** Offset of `text` in the classified input (JavaScript string index). */
  readonly start: number;
  /** The parse tree (frozen), for lineage. */
  readonly tree: Node;
}

/** `ok: false` means the text could not be understood: callers treat it as touching everything. */
export type Classification =
  | { readonly ok: true; readonly statements: readonly StatementInfo[] }
  | { readonly ok: false; readonly error: string };
