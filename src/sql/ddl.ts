// Object type and names of DDL-like statements, for approval prompts and policy rules.
import type { ObjectType, RangeVar } from 'libpg-query';
import { as, dotted, listItems, nameParts, quoteIdent, rangeVarOf, strVal, unwrap } from './ast.js';
import { objectWords } from './kinds.js';
import type { DdlInfo } from './types.js';

type Body = Record<string, unknown>;

function rvName(rv: RangeVar | undefined): string[] {
  if (!rv?.relname) return [];
  return [dotted([rv.catalogname, rv.schemaname, rv.relname].filter((p): p is string => !!p))];
}

function roleName(node: unknown): string | undefined {
  const r = (as<{ roletype?: string; rolename?: string }>(node, 'RoleSpec') ?? (node as { roletype?: string; rolename?: string } | undefined));
  if (!r || typeof r !== 'object') return undefined;
  if (r.rolename) return quoteIdent(r.rolename);
  switch (r.roletype) {
    case 'ROLESPEC_CURRENT_USER':
      return 'CURRENT_USER';
    case 'ROLESPEC_SESSION_USER':
      return 'SESSION_USER';
    case 'ROLESPEC_CURRENT_ROLE':
      return 'CURRENT_ROLE';
    case 'ROLESPEC_PUBLIC':
      return 'PUBLIC';
    default:
      return undefined;
  }
}

/** A name-ish node (String, List of String, RangeVar, ObjectWithArgs, TypeName, RoleSpec) as text. */
export function objectName(node: unknown): string | undefined {
  const s = strVal(node);
  if (s !== undefined) return quoteIdent(s);
  const u = unwrap(node);
  if (u) {
    switch (u.tag) {
      case 'List':
        return dotted(nameParts(listItems(node)));
      case 'RangeVar':
        return rvName(u.body as RangeVar)[0];
      case 'ObjectWithArgs':
        return dotted(nameParts((u.body as { objname?: [] }).objname));
      case 'TypeName':
        return dotted(nameParts((u.body as { names?: [] }).names));
      case 'RoleSpec':
        return roleName(node);
      case 'AccessPriv':
        return (u.body as { priv_name?: string }).priv_name;
      case 'Integer':
        return String((u.body as { ival?: number }).ival ?? 0);
      default:
        return undefined;
    }
  }
  const rv = rangeVarOf(node);
  if (rv) return rvName(rv)[0];
  return undefined;
}

function names(list: unknown): string[] {
  const out: string[] = [];
  for (const n of Array.isArray(list) ? list : []) {
    const name = objectName(n);
    if (name !== undefined) out.push(name);
  }
  return out;
}

/** Object types whose command-tag word names the parent (ALTER TABLE for a column), not the object. */
const OWN_WORDS: Readonly<Partial<Record<ObjectType, string>>> = {
  OBJECT_COLUMN: 'column',
  OBJECT_ATTRIBUTE: 'attribute',
  OBJECT_TABCONSTRAINT: 'table constraint',
  OBJECT_DOMCONSTRAINT: 'domain constraint',
  OBJECT_AMOP: 'operator of access method',
  OBJECT_AMPROC: 'function of access method',
  OBJECT_PUBLICATION_NAMESPACE: 'publication schema',
  OBJECT_PUBLICATION_REL: 'publication relation',
};

function info(type: ObjectType | string | undefined, objects: readonly (string | undefined)[]): DdlInfo {
  const own = type ? OWN_WORDS[type as ObjectType] : undefined;
  const words = own ?? (type && type.startsWith('OBJECT_') ? objectWords(type as ObjectType) : (type ?? 'object'));
  return { objectType: words.toLowerCase(), objects: objects.filter((o): o is string => o !== undefined && o !== '') };
}

function single(v: unknown): string | undefined {
  return typeof v === 'string' ? quoteIdent(v) : undefined;
}

/** DDL details for statements that create, change or remove named objects; undefined otherwise. */
export function ddlInfo(tag: string, b: Body): DdlInfo | undefined {
  switch (tag) {
    case 'CreateStmt':
      return info('OBJECT_TABLE', rvName(rangeVarOf(b.relation)));
    case 'CreateForeignTableStmt':
      return info('OBJECT_FOREIGN_TABLE', rvName(rangeVarOf((b.base as Body | undefined)?.relation)));
    case 'CreateTableAsStmt':
      return info(b.objtype as string, rvName((b.into as { rel?: RangeVar } | undefined)?.rel));
    case 'SelectStmt':
      return b.intoClause ? info('OBJECT_TABLE', rvName((b.intoClause as { rel?: RangeVar }).rel)) : undefined;
    case 'ViewStmt':
      return info('OBJECT_VIEW', rvName(rangeVarOf(b.view)));
    case 'IndexStmt': {
      const rel = rangeVarOf(b.relation);
      const idx = typeof b.idxname === 'string' ? dotted([rel?.schemaname, b.idxname].filter((p): p is string => !!p)) : undefined;
      return info('OBJECT_INDEX', [idx]);
    }
    case 'CreateFunctionStmt':
      return info(b.is_procedure ? 'OBJECT_PROCEDURE' : 'OBJECT_FUNCTION', [dotted(nameParts(b.funcname as []))]);
    case 'CreateSchemaStmt':
      return info('OBJECT_SCHEMA', [single(b.schemaname) ?? roleName(b.authrole)]);
    case 'CreateSeqStmt':
    case 'AlterSeqStmt':
      return info('OBJECT_SEQUENCE', rvName(rangeVarOf(b.sequence)));
    case 'CreateRoleStmt':
      return info('OBJECT_ROLE', [single(b.role)]);
    case 'AlterRoleStmt':
    case 'AlterRoleSetStmt':
      return info('OBJECT_ROLE', [roleName(b.role)]);
    case 'DropRoleStmt':
      return info('OBJECT_ROLE', names(b.roles));
    case 'CreatedbStmt':
    case 'DropdbStmt':
    case 'AlterDatabaseStmt':
    case 'AlterDatabaseSetStmt':
    case 'AlterDatabaseRefreshCollStmt':
      return info('OBJECT_DATABASE', [single(b.dbname)]);
    case 'CreateExtensionStmt':
    case 'AlterExtensionStmt':
    case 'AlterExtensionContentsStmt':
      return info('OBJECT_EXTENSION', [single(b.extname)]);
    case 'DropStmt':
      return info(b.removeType as string, names(b.objects));
    case 'AlterTableStmt':
      return info(b.objtype as string, rvName(rangeVarOf(b.relation)));
    case 'RenameStmt':
    case 'AlterOwnerStmt':
    case 'AlterObjectSchemaStmt':
    case 'AlterObjectDependsStmt': {
      const type = (b.renameType ?? b.objectType) as string | undefined;
      const target = rvName(rangeVarOf(b.relation))[0] ?? objectName(b.object);
      const sub = typeof b.subname === 'string' && target ? `${target}.${quoteIdent(b.subname)}` : target;
      return info(type, [sub]);
    }
    case 'GrantStmt':
      return info(b.objtype as string, names(b.objects));
    case 'GrantRoleStmt':
      return info('OBJECT_ROLE', names(b.granted_roles));
    case 'AlterDefaultPrivilegesStmt':
      return info('OBJECT_DEFACL', []);
    case 'CommentStmt':
    case 'SecLabelStmt':
      return info(b.objtype as string, [objectName(b.object)]);
    case 'CreateTrigStmt':
      return info('OBJECT_TRIGGER', [single(b.trigname)]);
    case 'CreateEventTrigStmt':
    case 'AlterEventTrigStmt':
      return info('OBJECT_EVENT_TRIGGER', [single(b.trigname)]);
    case 'CreatePolicyStmt':
    case 'AlterPolicyStmt':
      return info('OBJECT_POLICY', [single(b.policy_name)]);
    case 'RuleStmt':
      return info('OBJECT_RULE', [single(b.rulename)]);
    case 'DefineStmt':
      return info(b.kind as string, [dotted(nameParts(b.defnames as []))]);
    case 'CreateDomainStmt':
      return info('OBJECT_DOMAIN', [dotted(nameParts(b.domainname as []))]);
    case 'AlterDomainStmt':
      return info('OBJECT_DOMAIN', [dotted(nameParts(b.typeName as []))]);
    case 'CompositeTypeStmt':
      return info('OBJECT_TYPE', rvName(rangeVarOf(b.typevar)));
    case 'CreateEnumStmt':
    case 'CreateRangeStmt':
    case 'AlterEnumStmt':
    case 'AlterTypeStmt':
      return info('OBJECT_TYPE', [dotted(nameParts(b.typeName as []))]);
    case 'CreateTableSpaceStmt':
    case 'DropTableSpaceStmt':
    case 'AlterTableSpaceOptionsStmt':
      return info('OBJECT_TABLESPACE', [single(b.tablespacename)]);
    case 'CreateForeignServerStmt':
    case 'AlterForeignServerStmt':
      return info('OBJECT_FOREIGN_SERVER', [single(b.servername)]);
    case 'CreateFdwStmt':
    case 'AlterFdwStmt':
      return info('OBJECT_FDW', [single(b.fdwname)]);
    case 'CreateUserMappingStmt':
    case 'AlterUserMappingStmt':
    case 'DropUserMappingStmt':
      return info('OBJECT_USER_MAPPING', [roleName(b.user)]);
    case 'CreatePublicationStmt':
    case 'AlterPublicationStmt':
      return info('OBJECT_PUBLICATION', [single(b.pubname)]);
    case 'CreateSubscriptionStmt':
    case 'AlterSubscriptionStmt':
    case 'DropSubscriptionStmt':
      return info('OBJECT_SUBSCRIPTION', [single(b.subname)]);
    case 'CreateStatsStmt':
    case 'AlterStatsStmt':
      return info('OBJECT_STATISTIC_EXT', [dotted(nameParts(b.defnames as []))]);
    case 'AlterFunctionStmt':
      return info((b.objtype as string | undefined) ?? 'OBJECT_FUNCTION', [objectName({ ObjectWithArgs: b.func ?? {} })]);
    case 'RefreshMatViewStmt':
      return info('OBJECT_MATVIEW', rvName(rangeVarOf(b.relation)));
    case 'CreateCastStmt':
      return info('OBJECT_CAST', []);
    case 'CreateTransformStmt':
      return info('OBJECT_TRANSFORM', []);
    case 'CreateConversionStmt':
      return info('OBJECT_CONVERSION', [dotted(nameParts(b.conversion_name as []))]);
    case 'CreateOpClassStmt':
      return info('OBJECT_OPCLASS', [dotted(nameParts(b.opclassname as []))]);
    case 'CreateOpFamilyStmt':
    case 'AlterOpFamilyStmt':
      return info('OBJECT_OPFAMILY', [dotted(nameParts(b.opfamilyname as []))]);
    case 'CreateAmStmt':
      return info('OBJECT_ACCESS_METHOD', [single(b.amname)]);
    case 'CreatePLangStmt':
      return info('OBJECT_LANGUAGE', [single(b.plname)]);
    case 'AlterCollationStmt':
      return info('OBJECT_COLLATION', [dotted(nameParts(b.collname as []))]);
    case 'ImportForeignSchemaStmt':
      return info('OBJECT_SCHEMA', [single(b.local_schema)]);
    case 'DropOwnedStmt':
    case 'ReassignOwnedStmt':
      return info('OBJECT_ROLE', names(b.roles));
    case 'TruncateStmt':
      return info('OBJECT_TABLE', names(b.relations));
    default:
      return undefined;
  }
}
