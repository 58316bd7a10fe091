// Statement kind and command tag for each parse node, following PostgreSQL's CreateCommandTag()
// (src/backend/tcop/utility.c). The tag is PostgreSQL's name for the command; for CREATE TABLE AS,
// SELECT INTO and CREATE MATERIALIZED VIEW the CommandComplete message on the wire says `SELECT n`.
import type { ObjectType, TransactionStmtKind } from 'libpg-query';
import type { StatementKind, TransactionControl } from './types.js';

/** ObjectType → the words PostgreSQL uses in command tags ('MATERIALIZED VIEW'). */
export const OBJECT_WORDS: Readonly<Record<ObjectType, string>> = {
  OBJECT_ACCESS_METHOD: 'ACCESS METHOD',
  OBJECT_AGGREGATE: 'AGGREGATE',
  OBJECT_AMOP: 'OPERATOR FAMILY',
  OBJECT_AMPROC: 'OPERATOR FAMILY',
  OBJECT_ATTRIBUTE: 'TYPE',
  OBJECT_CAST: 'CAST',
  OBJECT_COLUMN: 'TABLE',
  OBJECT_COLLATION: 'COLLATION',
  OBJECT_CONVERSION: 'CONVERSION',
  OBJECT_DATABASE: 'DATABASE',
  OBJECT_DEFAULT: 'DEFAULT',
  OBJECT_DEFACL: 'DEFAULT PRIVILEGES',
  OBJECT_DOMAIN: 'DOMAIN',
  OBJECT_DOMCONSTRAINT: 'DOMAIN',
  OBJECT_EVENT_TRIGGER: 'EVENT TRIGGER',
  OBJECT_EXTENSION: 'EXTENSION',
  OBJECT_FDW: 'FOREIGN DATA WRAPPER',
  OBJECT_FOREIGN_SERVER: 'SERVER',
  OBJECT_FOREIGN_TABLE: 'FOREIGN TABLE',
  OBJECT_FUNCTION: 'FUNCTION',
  OBJECT_INDEX: 'INDEX',
  OBJECT_LANGUAGE: 'LANGUAGE',
  OBJECT_LARGEOBJECT: 'LARGE OBJECT',
  OBJECT_MATVIEW: 'MATERIALIZED VIEW',
  OBJECT_OPCLASS: 'OPERATOR CLASS',
  OBJECT_OPERATOR: 'OPERATOR',
  OBJECT_OPFAMILY: 'OPERATOR FAMILY',
  OBJECT_PARAMETER_ACL: 'PARAMETER',
  OBJECT_POLICY: 'POLICY',
  OBJECT_PROCEDURE: 'PROCEDURE',
  OBJECT_PUBLICATION: 'PUBLICATION',
  OBJECT_PUBLICATION_NAMESPACE: 'PUBLICATION',
  OBJECT_PUBLICATION_REL: 'PUBLICATION',
  OBJECT_ROLE: 'ROLE',
  OBJECT_ROUTINE: 'ROUTINE',
  OBJECT_RULE: 'RULE',
  OBJECT_SCHEMA: 'SCHEMA',
  OBJECT_SEQUENCE: 'SEQUENCE',
  OBJECT_SUBSCRIPTION: 'SUBSCRIPTION',
  OBJECT_STATISTIC_EXT: 'STATISTICS',
  OBJECT_TABCONSTRAINT: 'TABLE',
  OBJECT_TABLE: 'TABLE',
  OBJECT_TABLESPACE: 'TABLESPACE',
  OBJECT_TRANSFORM: 'TRANSFORM',
  OBJECT_TRIGGER: 'TRIGGER',
  OBJECT_TSCONFIGURATION: 'TEXT SEARCH CONFIGURATION',
  OBJECT_TSDICTIONARY: 'TEXT SEARCH DICTIONARY',
  OBJECT_TSPARSER: 'TEXT SEARCH PARSER',
  OBJECT_TSTEMPLATE: 'TEXT SEARCH TEMPLATE',
  OBJECT_TYPE: 'TYPE',
  OBJECT_USER_MAPPING: 'USER MAPPING',
  OBJECT_VIEW: 'VIEW',
};

/** Object types whose names are relations (tables, views, sequences, indexes). */
export const RELATION_OBJECT_TYPES: ReadonlySet<string> = new Set<ObjectType>([
  'OBJECT_TABLE', 'OBJECT_VIEW', 'OBJECT_MATVIEW', 'OBJECT_INDEX', 'OBJECT_SEQUENCE', 'OBJECT_FOREIGN_TABLE',
]);

/** Object types named `name ON table` (the last name part is the object, the rest the table). */
export const ON_TABLE_OBJECT_TYPES: ReadonlySet<string> = new Set<ObjectType>([
  'OBJECT_TRIGGER', 'OBJECT_RULE', 'OBJECT_POLICY', 'OBJECT_TABCONSTRAINT',
]);

export function objectWords(t: ObjectType | undefined): string {
  return (t && OBJECT_WORDS[t]) || 'OBJECT';
}

export const TRANSACTION_CONTROL: Readonly<Record<TransactionStmtKind, { sub: TransactionControl; tag: string }>> = {
  TRANS_STMT_BEGIN: { sub: 'begin', tag: 'BEGIN' },
  TRANS_STMT_START: { sub: 'start', tag: 'START TRANSACTION' },
  TRANS_STMT_COMMIT: { sub: 'commit', tag: 'COMMIT' },
  TRANS_STMT_ROLLBACK: { sub: 'rollback', tag: 'ROLLBACK' },
  TRANS_STMT_SAVEPOINT: { sub: 'savepoint', tag: 'SAVEPOINT' },
  TRANS_STMT_RELEASE: { sub: 'release', tag: 'RELEASE' },
  TRANS_STMT_ROLLBACK_TO: { sub: 'rollback_to', tag: 'ROLLBACK' },
  TRANS_STMT_PREPARE: { sub: 'prepare_transaction', tag: 'PREPARE TRANSACTION' },
  TRANS_STMT_COMMIT_PREPARED: { sub: 'commit_prepared', tag: 'COMMIT PREPARED' },
  TRANS_STMT_ROLLBACK_PREPARED: { sub: 'rollback_prepared', tag: 'ROLLBACK PREPARED' },
};

type Body = Record<string, unknown>;
type Rule = StatementKind | ((b: Body) => { kind: StatementKind; tag: string });

const str = (b: Body, k: string): string | undefined => (typeof b[k] === 'string' ? (b[k] as string) : undefined);
const ot = (b: Body, k: string): ObjectType | undefined => str(b, k) as ObjectType | undefined;

/** Node name → kind, with a fixed tag, or a function of the node for the tags that depend on it. */
const RULES: Readonly<Record<string, [Rule, string?]>> = {
  SelectStmt: [(b) => (b.intoClause ? { kind: 'create', tag: 'SELECT INTO' } : { kind: 'select', tag: 'SELECT' })],
  InsertStmt: ['insert', 'INSERT'],
  UpdateStmt: ['update', 'UPDATE'],
  DeleteStmt: ['delete', 'DELETE'],
  MergeStmt: ['merge', 'MERGE'],
  CopyStmt: ['copy', 'COPY'],
  TruncateStmt: ['truncate', 'TRUNCATE TABLE'],

  CreateStmt: ['create', 'CREATE TABLE'],
  CreateForeignTableStmt: ['create', 'CREATE FOREIGN TABLE'],
  CreateSchemaStmt: ['create', 'CREATE SCHEMA'],
  CreateTableSpaceStmt: ['create', 'CREATE TABLESPACE'],
  CreateExtensionStmt: ['create', 'CREATE EXTENSION'],
  CreateFdwStmt: ['create', 'CREATE FOREIGN DATA WRAPPER'],
  CreateForeignServerStmt: ['create', 'CREATE SERVER'],
  CreateUserMappingStmt: ['create', 'CREATE USER MAPPING'],
  ImportForeignSchemaStmt: ['create', 'IMPORT FOREIGN SCHEMA'],
  CreatePolicyStmt: ['create', 'CREATE POLICY'],
  CreateAmStmt: ['create', 'CREATE ACCESS METHOD'],
  CreateTrigStmt: ['create', 'CREATE TRIGGER'],
  CreateEventTrigStmt: ['create', 'CREATE EVENT TRIGGER'],
  CreatePLangStmt: ['create', 'CREATE LANGUAGE'],
  CreateSeqStmt: ['create', 'CREATE SEQUENCE'],
  DefineStmt: [(b) => ({ kind: 'create', tag: `CREATE ${objectWords(ot(b, 'kind'))}` })],
  CreateDomainStmt: ['create', 'CREATE DOMAIN'],
  CreateOpClassStmt: ['create', 'CREATE OPERATOR CLASS'],
  CreateOpFamilyStmt: ['create', 'CREATE OPERATOR FAMILY'],
  IndexStmt: ['create', 'CREATE INDEX'],
  CreateStatsStmt: ['create', 'CREATE STATISTICS'],
  CreateFunctionStmt: [(b) => ({ kind: 'create', tag: b.is_procedure ? 'CREATE PROCEDURE' : 'CREATE FUNCTION' })],
  RuleStmt: ['create', 'CREATE RULE'],
  CompositeTypeStmt: ['create', 'CREATE TYPE'],
  CreateEnumStmt: ['create', 'CREATE TYPE'],
  CreateRangeStmt: ['create', 'CREATE TYPE'],
  ViewStmt: ['create', 'CREATE VIEW'],
  CreatedbStmt: ['create', 'CREATE DATABASE'],
  CreateTableAsStmt: [
    (b) => {
      if (ot(b, 'objtype') === 'OBJECT_MATVIEW') return { kind: 'create', tag: 'CREATE MATERIALIZED VIEW' };
      return { kind: 'create', tag: b.is_select_into ? 'SELECT INTO' : 'CREATE TABLE AS' };
    },
  ],
  CreateConversionStmt: ['create', 'CREATE CONVERSION'],
  CreateCastStmt: ['create', 'CREATE CAST'],
  CreateTransformStmt: ['create', 'CREATE TRANSFORM'],
  CreatePublicationStmt: ['create', 'CREATE PUBLICATION'],
  CreateSubscriptionStmt: ['create', 'CREATE SUBSCRIPTION'],

  AlterTableStmt: [(b) => ({ kind: 'alter', tag: `ALTER ${objectWords(ot(b, 'objtype'))}` })],
  AlterTableMoveAllStmt: [(b) => ({ kind: 'alter', tag: `ALTER ${objectWords(ot(b, 'objtype'))}` })],
  AlterCollationStmt: ['alter', 'ALTER COLLATION'],
  AlterDomainStmt: ['alter', 'ALTER DOMAIN'],
  AlterTableSpaceOptionsStmt: ['alter', 'ALTER TABLESPACE'],
  AlterExtensionStmt: ['alter', 'ALTER EXTENSION'],
  AlterExtensionContentsStmt: ['alter', 'ALTER EXTENSION'],
  AlterFdwStmt: ['alter', 'ALTER FOREIGN DATA WRAPPER'],
  AlterForeignServerStmt: ['alter', 'ALTER SERVER'],
  AlterUserMappingStmt: ['alter', 'ALTER USER MAPPING'],
  AlterPolicyStmt: ['alter', 'ALTER POLICY'],
  AlterEventTrigStmt: ['alter', 'ALTER EVENT TRIGGER'],
  AlterSeqStmt: ['alter', 'ALTER SEQUENCE'],
  AlterOpFamilyStmt: ['alter', 'ALTER OPERATOR FAMILY'],
  AlterStatsStmt: ['alter', 'ALTER STATISTICS'],
  AlterFunctionStmt: [(b) => ({ kind: 'alter', tag: `ALTER ${objectWords(ot(b, 'objtype') ?? 'OBJECT_FUNCTION')}` })],
  RenameStmt: [
    (b) => {
      const t = ot(b, 'renameType');
      const shown = t === 'OBJECT_COLUMN' || t === 'OBJECT_ATTRIBUTE' ? ot(b, 'relationType') : t;
      return { kind: 'alter', tag: `ALTER ${objectWords(shown)}` };
    },
  ],
  AlterObjectDependsStmt: [(b) => ({ kind: 'alter', tag: `ALTER ${objectWords(ot(b, 'objectType'))}` })],
  AlterObjectSchemaStmt: [(b) => ({ kind: 'alter', tag: `ALTER ${objectWords(ot(b, 'objectType'))}` })],
  AlterOwnerStmt: [(b) => ({ kind: 'alter', tag: `ALTER ${objectWords(ot(b, 'objectType'))}` })],
  AlterOperatorStmt: ['alter', 'ALTER OPERATOR'],
  AlterTypeStmt: ['alter', 'ALTER TYPE'],
  AlterEnumStmt: ['alter', 'ALTER TYPE'],
  AlterDatabaseStmt: ['alter', 'ALTER DATABASE'],
  AlterDatabaseRefreshCollStmt: ['alter', 'ALTER DATABASE'],
  AlterDatabaseSetStmt: ['alter', 'ALTER DATABASE'],
  AlterTSDictionaryStmt: ['alter', 'ALTER TEXT SEARCH DICTIONARY'],
  AlterTSConfigurationStmt: ['alter', 'ALTER TEXT SEARCH CONFIGURATION'],
  AlterPublicationStmt: ['alter', 'ALTER PUBLICATION'],
  AlterSubscriptionStmt: ['alter', 'ALTER SUBSCRIPTION'],
  ReassignOwnedStmt: ['alter', 'REASSIGN OWNED'],

  DropStmt: [(b) => ({ kind: 'drop', tag: `DROP ${objectWords(ot(b, 'removeType'))}` })],
  DropTableSpaceStmt: ['drop', 'DROP TABLESPACE'],
  DropUserMappingStmt: ['drop', 'DROP USER MAPPING'],
  DropdbStmt: ['drop', 'DROP DATABASE'],
  DropSubscriptionStmt: ['drop', 'DROP SUBSCRIPTION'],
  DropOwnedStmt: ['drop', 'DROP OWNED'],

  GrantStmt: [(b) => (b.is_grant ? { kind: 'grant', tag: 'GRANT' } : { kind: 'revoke', tag: 'REVOKE' })],
  GrantRoleStmt: [(b) => (b.is_grant ? { kind: 'grant', tag: 'GRANT ROLE' } : { kind: 'revoke', tag: 'REVOKE ROLE' })],
  AlterDefaultPrivilegesStmt: [
    (b) => ({ kind: (b.action as Body | undefined)?.is_grant ? 'grant' : 'revoke', tag: 'ALTER DEFAULT PRIVILEGES' }),
  ],
  CreateRoleStmt: ['role', 'CREATE ROLE'],
  AlterRoleStmt: ['role', 'ALTER ROLE'],
  AlterRoleSetStmt: ['role', 'ALTER ROLE'],
  DropRoleStmt: ['role', 'DROP ROLE'],

  VariableSetStmt: [
    (b) => {
      const name = str(b, 'name');
      const reset = b.kind === 'VAR_RESET' || b.kind === 'VAR_RESET_ALL';
      const tag = reset ? 'RESET' : 'SET';
      if (reset) return { kind: 'reset', tag };
      if (name === 'role') return { kind: 'set_role', tag };
      if (name === 'session_authorization') return { kind: 'set_session_authorization', tag };
      return { kind: 'set', tag };
    },
  ],
  VariableShowStmt: ['show', 'SHOW'],
  ConstraintsSetStmt: ['other', 'SET CONSTRAINTS'],
  TransactionStmt: [
    (b) => ({ kind: 'transaction', tag: TRANSACTION_CONTROL[b.kind as TransactionStmtKind]?.tag ?? 'TRANSACTION' }),
  ],
  DoStmt: ['do', 'DO'],
  CallStmt: ['call', 'CALL'],
  ExplainStmt: ['explain', 'EXPLAIN'],
  PrepareStmt: ['prepare', 'PREPARE'],
  ExecuteStmt: ['execute', 'EXECUTE'],
  DeallocateStmt: [(b) => ({ kind: 'deallocate', tag: b.isall || !b.name ? 'DEALLOCATE ALL' : 'DEALLOCATE' })],
  ListenStmt: ['listen', 'LISTEN'],
  NotifyStmt: ['notify', 'NOTIFY'],
  UnlistenStmt: ['unlisten', 'UNLISTEN'],
  DiscardStmt: [
    (b) => {
      const words: Record<string, string> = { DISCARD_ALL: 'ALL', DISCARD_PLANS: 'PLANS', DISCARD_SEQUENCES: 'SEQUENCES', DISCARD_TEMP: 'TEMP' };
      return { kind: 'discard', tag: `DISCARD ${words[str(b, 'target') ?? ''] ?? 'ALL'}` };
    },
  ],
  VacuumStmt: [(b) => (b.is_vacuumcmd ? { kind: 'vacuum', tag: 'VACUUM' } : { kind: 'analyze', tag: 'ANALYZE' })],
  LockStmt: ['lock', 'LOCK TABLE'],
  DeclareCursorStmt: ['declare_cursor', 'DECLARE CURSOR'],
  FetchStmt: [(b) => ({ kind: 'fetch', tag: b.ismove ? 'MOVE' : 'FETCH' })],
  ClosePortalStmt: [(b) => ({ kind: 'close_cursor', tag: b.portalname ? 'CLOSE CURSOR' : 'CLOSE CURSOR ALL' })],
  AlterSystemStmt: ['alter_system', 'ALTER SYSTEM'],
  CommentStmt: ['comment', 'COMMENT'],
  SecLabelStmt: ['security_label', 'SECURITY LABEL'],
  RefreshMatViewStmt: ['refresh_matview', 'REFRESH MATERIALIZED VIEW'],
  LoadStmt: ['other', 'LOAD'],
  CheckPointStmt: ['other', 'CHECKPOINT'],
  ClusterStmt: ['other', 'CLUSTER'],
  ReindexStmt: ['other', 'REINDEX'],
};

/** Kind and command tag of a statement node; unknown node types are 'other' with tag '???'. */
export function kindAndTag(tag: string, body: Body): { kind: StatementKind; tag: string } {
  const rule = RULES[tag];
  if (!rule) return { kind: 'other', tag: '???' };
  const [r, fixed] = rule;
  return typeof r === 'function' ? r(body) : { kind: r, tag: fixed ?? '???' };
}
