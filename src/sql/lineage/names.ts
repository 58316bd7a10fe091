// The name PostgreSQL gives a select-list entry without an alias (FigureColname in
// src/backend/parser/parse_target.c): column name, function name, type name of a cast, …
import type { Node } from 'libpg-query';
import { nameParts, strVal, unwrap } from '../ast.js';

const SQL_VALUE_NAMES: Readonly<Record<string, string>> = {
  SVFOP_CURRENT_DATE: 'current_date',
  SVFOP_CURRENT_TIME: 'current_time',
  SVFOP_CURRENT_TIME_N: 'current_time',
  SVFOP_CURRENT_TIMESTAMP: 'current_timestamp',
  SVFOP_CURRENT_TIMESTAMP_N: 'current_timestamp',
  SVFOP_LOCALTIME: 'localtime',
  SVFOP_LOCALTIME_N: 'localtime',
  SVFOP_LOCALTIMESTAMP: 'localtimestamp',
  SVFOP_LOCALTIMESTAMP_N: 'localtimestamp',
  SVFOP_CURRENT_ROLE: 'current_role',
  SVFOP_CURRENT_USER: 'current_user',
  SVFOP_USER: 'user',
  SVFOP_SESSION_USER: 'session_user',
  SVFOP_CURRENT_CATALOG: 'current_catalog',
  SVFOP_CURRENT_SCHEMA: 'current_schema',
};

const XML_NAMES: Readonly<Record<string, string>> = {
  IS_XMLCONCAT: 'xmlconcat',
  IS_XMLELEMENT: 'xmlelement',
  IS_XMLFOREST: 'xmlforest',
  IS_XMLPARSE: 'xmlparse',
  IS_XMLPI: 'xmlpi',
  IS_XMLROOT: 'xmlroot',
  IS_XMLSERIALIZE: 'xmlserialize',
};

const FIXED_NAMES: Readonly<Record<string, string>> = {
  CoalesceExpr: 'coalesce',
  A_ArrayExpr: 'array',
  RowExpr: 'row',
  GroupingFunc: 'grouping',
  MergeSupportFunc: 'merge_action',
  XmlSerialize: 'xmlserialize',
  JsonObjectConstructor: 'json_object',
  JsonArrayConstructor: 'json_array',
  JsonArrayQueryConstructor: 'json_array',
  JsonObjectAgg: 'json_objectagg',
  JsonArrayAgg: 'json_arrayagg',
  JsonParseExpr: 'json',
  JsonScalarExpr: 'json_scalar',
  JsonSerializeExpr: 'json_serialize',
};

/** Returns [name, strength]: strength 2 is a real name, 1 a fallback such as a type name. */
function figure(node: unknown): [string, number] {
  const u = unwrap(node);
  if (!u) return ['?column?', 0];
  const b = u.body;
  switch (u.tag) {
    case 'ColumnRef': {
      const fields = (b.fields as Node[] | undefined) ?? [];
      const last = strVal(fields[fields.length - 1]);
      return last !== undefined ? [last, 2] : ['?column?', 0];
    }
    case 'A_Indirection': {
      const ind = (b.indirection as Node[] | undefined) ?? [];
      for (let i = ind.length - 1; i >= 0; i--) {
        const f = strVal(ind[i]);
        if (f !== undefined) return [f, 2];
      }
      return figure(b.arg);
    }
    case 'FuncCall': {
      const parts = nameParts(b.funcname as Node[] | undefined);
      const last = parts[parts.length - 1];
      return last !== undefined ? [last, 2] : ['?column?', 0];
    }
    case 'A_Expr':
      return b.kind === 'AEXPR_NULLIF' ? ['nullif', 2] : ['?column?', 0];
    case 'TypeCast': {
      const [n, s] = figure(b.arg);
      if (s > 0) return [n, s];
      const names = nameParts((b.typeName as { names?: Node[] } | undefined)?.names);
      const t = names[names.length - 1];
      return t !== undefined ? [t, 1] : ['?column?', 0];
    }
    case 'CollateClause':
      return figure(b.arg);
    case 'SubLink':
      switch (b.subLinkType) {
        case 'EXISTS_SUBLINK':
          return ['exists', 2];
        case 'ARRAY_SUBLINK':
          return ['array', 2];
        case 'EXPR_SUBLINK': {
          const sel = unwrap(b.subselect)?.body as { targetList?: Node[] } | undefined;
          const first = unwrap(sel?.targetList?.[0])?.body as { name?: string; val?: Node } | undefined;
          if (first?.name) return [first.name, 2];
          const [n, s] = figure(first?.val);
          return s > 0 ? [n, 2] : ['?column?', 0];
        }
        default:
          return ['?column?', 0];
      }
    case 'CaseExpr': {
      const [n, s] = figure(b.defresult);
      return s > 1 ? [n, s] : ['case', 1];
    }
    case 'MinMaxExpr':
      return [b.op === 'IS_LEAST' ? 'least' : 'greatest', 2];
    case 'SQLValueFunction':
      return [SQL_VALUE_NAMES[b.op as string] ?? '?column?', 2];
    case 'XmlExpr':
      return XML_NAMES[b.op as string] ? [XML_NAMES[b.op as string]!, 2] : ['?column?', 0];
    case 'JsonFuncExpr': {
      const op = b.op as string | undefined;
      const name = op === 'JSON_EXISTS_OP' ? 'json_exists' : op === 'JSON_QUERY_OP' ? 'json_query' : op === 'JSON_VALUE_OP' ? 'json_value' : undefined;
      return name ? [name, 2] : ['?column?', 0];
    }
    default: {
      const fixed = FIXED_NAMES[u.tag];
      return fixed ? [fixed, 2] : ['?column?', 0];
    }
  }
}

export function figureName(node: unknown): string {
  return figure(node)[0];
}
