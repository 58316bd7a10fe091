// COPY … TO STDOUT: the rows arrive as CopyData messages in text, CSV or binary COPY format
// (PostgreSQL docs, "COPY" — File Formats). Columns are known by position from the COPY
// statement (the table and its column list, or lineage of `COPY (query)`), their types from the
// catalog when they are plain table columns (else unknown: a masked value of an unknown type is
// written as NULL). PostgreSQL sends one row per CopyData; the rewriters do not rely on it and
// carry a partial row over to the next message.
import type { CopyStmt, Node } from 'libpg-query';
import type { CopyResponse } from '../../protocols/postgres/backend-messages.js';
import type { OutputColumn, StatementInfo } from '../sql/index.js';
import type { CatalogSnapshot } from './catalog-snapshot.js';
import { CatalogError } from './catalog.js';
import type { MaskingContext } from './context.js';
import { emptyCovered } from './coverage.js';
import { compileColumns, type PlanColumn } from './plan.js';
import { valueType, type ValueType } from './pg-types.js';
import { MaskingError, type AppliedMask, type CopyMaskPlan } from './types.js';
import { BinaryCopyRewriter } from './copy-binary.js';
import { TextCopyRewriter } from './copy-text.js';

export interface CopyFormat {
  format: 'text' | 'csv' | 'binary';
  delimiter: number;
  nullString: Buffer;
  quote: number;
  escape: number;
  header: boolean;
}

const OPAQUE: ValueType = { oid: 0, kind: 'opaque' };
const UNKNOWN_TEXT: ValueType = { oid: 0, kind: 'text' };

function optionText(arg: Node | undefined): string | undefined {
  const a = arg as { String?: { sval?: string }; Boolean?: { boolval?: boolean }; Integer?: { ival?: number } } | undefined;
  if (a?.String) return a.String.sval ?? '';
  if (a?.Boolean) return a.Boolean.boolval ? 'true' : 'false';
  if (a?.Integer) return String(a.Integer.ival ?? 0);
  return undefined;
}

/** The output format a COPY statement asks for (defaults as in PostgreSQL). */
export function copyFormat(stmt: StatementInfo): CopyFormat | string {
  const copy = (stmt.tree as { CopyStmt?: CopyStmt }).CopyStmt;
  if (!copy) return 'not a COPY statement';
  const opts = new Map<string, string | undefined>();
  for (const o of (copy.options ?? []) as { DefElem?: { defname?: string; arg?: Node } }[]) {
    if (o.DefElem?.defname) opts.set(o.DefElem.defname, optionText(o.DefElem.arg));
  }
  const format = (opts.get('format') ?? 'text').toLowerCase();
  if (format !== 'text' && format !== 'csv' && format !== 'binary') return `unknown COPY format ${format}`;
  const csv = format === 'csv';
  const one = (name: string, dflt: string): number | string => {
    const v = opts.has(name) ? (opts.get(name) ?? '') : dflt;
    return Buffer.byteLength(v) === 1 ? v.charCodeAt(0) : `COPY option ${name} must be one single-byte character`;
  };
  const delimiter = one('delimiter', csv ? ',' : '\t');
  const quote = one('quote', '"');
  const escape = opts.has('escape') ? one('escape', '"') : quote;
  for (const v of [delimiter, quote, escape]) if (typeof v === 'string') return v;
  const header = (opts.has('header') ? (opts.get('header') ?? 'true') : 'false').toLowerCase();
  return {
    format,
    delimiter: delimiter as number,
    nullString: Buffer.from(opts.get('null') ?? (csv ? '' : '\\N'), 'utf8'),
    quote: quote as number,
    escape: escape as number,
    header: ['true', 'on', '1'].includes(header),
  };
}

/** The type of a COPY column when it is a plain column of one known relation (all candidates agree). */
function columnType(snap: CatalogSnapshot, oc: OutputColumn | undefined): ValueType | undefined {
  if (!oc || oc.derivation !== 'direct' || oc.sources.length !== 1) return undefined;
  const src = oc.sources[0] as NonNullable<OutputColumn['sources'][number]>;
  let found: { oid: number; typmod: number } | undefined;
  for (const rel of snap.candidates(src.schema, src.table)) {
    const col = rel.columns.find((c) => c.name === src.column);
    if (!col) continue;
    if (found && (found.oid !== col.typeOid || found.typmod !== col.typmod)) return undefined;
    found = { oid: col.typeOid, typmod: col.typmod };
  }
  return found ? valueType(found.oid, found.typmod, snap.typeLookup) : undefined;
}

const inactive = (n: number): CopyMaskPlan => ({ active: false, columns: new Array<AppliedMask | null>(n).fill(null), rewriteCopyData: () => undefined });

function refused(n: number, rule: string, message: string): CopyMaskPlan {
  return {
    active: true,
    columns: new Array<AppliedMask | null>(n).fill(null),
    refuse: { rule, message },
    rewriteCopyData: () => {
      throw new MaskingError(rule, message);
    },
  };
}

export async function planCopy(ctx: MaskingContext, copy: CopyResponse, stmt: StatementInfo | undefined): Promise<CopyMaskPlan> {
  const n = copy.columnFormats.length;
  if (ctx.rules.empty) return inactive(n);
  if (!stmt || stmt.kind !== 'copy') return refused(n, ctx.anyRule, 'the COPY statement is not known, so its columns cannot be masked');
  const fmt = copyFormat(stmt);
  if (typeof fmt === 'string') return refused(n, ctx.anyRule, fmt);
  let snap: CatalogSnapshot;
  try {
    snap = await ctx.catalog.ready();
  } catch (err) {
    if (err instanceof CatalogError) return refused(n, ctx.anyRule, 'cannot resolve column origin');
    throw err;
  }
  const lin = ctx.lineageOf(stmt, snap);
  // COPY sends no column names to check positions against (a RowDescription does): when a name
  // the statement uses could mean relations with different columns (hr.staff and the agent's
  // public.staff, told apart by search_path), lineage's guess of one may place hr.staff.ssn under
  // the agent's harmless column. Then no position is trusted.
  const guessed = stmt.relations.some((r) => !snap.columnsAgree(r.schema, r.name));
  const aligned = !guessed && lin.output === 'rows' && lin.shapeKnown && lin.columns.length === n;
  const cov = ctx.coverage(snap);
  const binary = fmt.format === 'binary';
  const cols: PlanColumn[] = [];
  for (let i = 0; i < n; i++) {
    const oc = aligned ? lin.columns[i] : undefined;
    const covered = oc ? cov.outputColumn(oc) : emptyCovered();
    if (!oc && ctx.rules.columnRules.length > 0) covered.unresolved.push(guessed ? 'a relation the COPY names could be one of several with different columns' : 'the COPY columns do not line up with the statement');
    const type = columnType(snap, oc);
    cols.push({
      name: oc?.name ?? `column ${i + 1}`,
      covered,
      type: type ?? OPAQUE,
      format: binary ? 1 : 0,
      // Every COPY text field is text: a column of unknown type can still be scanned for content.
      ...(type === undefined && !binary ? { scanType: UNKNOWN_TEXT } : {}),
    });
  }
  const compiled = compileColumns(ctx, cols);
  if (compiled.refuse) return refused(n, compiled.refuse.rule, compiled.refuse.message);
  if (compiled.maskers.every((m) => m === undefined)) return { ...inactive(n), columns: compiled.columns };
  const rewriter = binary ? new BinaryCopyRewriter(n, compiled.maskers, ctx.anyRule) : new TextCopyRewriter(n, compiled.maskers, fmt, ctx.anyRule);
  return {
    active: true,
    columns: compiled.columns,
    rewriteCopyData: (buf, start, end) => rewriter.rewrite(buf, start, end),
    forwardCopyData: (buf, start, end, sink) => rewriter.forward(buf, start, end, sink),
    forwardCopyRun: (buf, start, end, sink) => rewriter.forwardRun(buf, start, end, sink),
  };
}
