// Plans for a result set: per RowDescription column, whether and how it is masked.
//
// A column with a table OID is what PostgreSQL says it is: the catalog names the relation and
// column (aliases, views, search_path and temp tables cannot disguise it); attnum 0 is a whole
// row. A column without one (table OID 0: expressions, UNION, …) is traced with lineage of the
// statement — trusted only when its columns line up with the RowDescription by count and name.
// Anything that cannot be traced counts as derived from every protected column.
import type { FieldDescription } from '../../protocols/postgres/backend-messages.js';
import type { LineageResult, StatementInfo } from '../sql/index.js';
import { CatalogError } from './catalog.js';
import type { MaskingContext } from './context.js';
import { emptyCovered, type Covered } from './coverage.js';
import { DataRowRewriter } from './data-row.js';
import { decide } from './decide.js';
import { valueType, type TypeLookup, type ValueType } from './pg-types.js';
import { MaskingError, type AppliedMask, type RowMaskPlan } from './types.js';
import { compileMasker, contentMasker, type ValueMasker } from './value-masker.js';

/** PostgreSQL truncates column names to NAMEDATALEN - 1 bytes. */
const NAME_BYTES = 63;

function truncateName(name: string): string {
  const b = Buffer.from(name, 'utf8');
  if (b.length <= NAME_BYTES) return name;
  let end = NAME_BYTES;
  while (end > 0 && ((b[end] as number) & 0xc0) === 0x80) end--;
  return b.toString('utf8', 0, end);
}

/** A column to be planned: where its value comes from and how it is sent. */
export interface PlanColumn {
  name: string;
  covered: Covered;
  type: ValueType;
  format: number;
  /** The type content classifiers read values as, when it differs from `type`. */
  scanType?: ValueType;
}

export interface CompiledColumns {
  columns: (AppliedMask | null)[];
  maskers: (ValueMasker | undefined)[];
  refuse?: { rule: string; message: string };
}

/** Decisions and maskers for planned columns (shared by result sets and COPY). */
export function compileColumns(ctx: MaskingContext, cols: readonly PlanColumn[]): CompiledColumns {
  const out: CompiledColumns = { columns: [], maskers: [] };
  for (const c of cols) {
    const d = decide(c.covered, ctx.rules);
    if (d) {
      const m = compileMasker(d.action, c.type, c.format);
      if ('refuse' in m) {
        out.refuse ??= { rule: d.action.rule, message: `column "${c.name}" cannot be masked: ${m.refuse}` };
        out.columns.push({ rule: d.action.rule, strategy: 'refuse', because: d.because, ...(d.table ? { table: d.table } : {}) });
        out.maskers.push(undefined);
        continue;
      }
      out.columns.push({ rule: d.action.rule, strategy: m.strategy, because: d.because, ...(d.table ? { table: d.table } : {}) });
      out.maskers.push(m.masker);
      continue;
    }
    const scanner = ctx.contentRules.length > 0 ? contentMasker(ctx.contentRules, c.scanType ?? c.type, c.format) : undefined;
    if (scanner) {
      const names = [...new Set(ctx.contentRules.flatMap((r) => r.classifiers.map((k) => k.name)))];
      const first = ctx.contentRules[0] as { rule: string; strategy: { kind: string } };
      out.columns.push({ rule: first.rule, strategy: first.strategy.kind, because: `content: ${names.join(', ')} (only values that match)`, conditional: true });
      out.maskers.push(scanner);
    } else {
      out.columns.push(null);
      out.maskers.push(undefined);
    }
  }
  return out;
}

/** Lineage of the statement when it describes this result column by column, else why not. */
export function alignedLineage(ctx: MaskingContext, stmt: StatementInfo | undefined, names: readonly string[]): LineageResult | string {
  if (!stmt) return 'the statement is unknown or could not be parsed';
  const snap = ctx.catalog.current();
  if (!snap) return 'the catalog is not loaded';
  const lin = ctx.lineageOf(stmt, snap);
  if (lin.output !== 'rows') return `the result of ${stmt.commandTag} cannot be described from the statement`;
  if (!lin.shapeKnown || lin.columns.length !== names.length) return 'the result does not line up with the statement';
  for (let i = 0; i < names.length; i++) {
    if (truncateName(lin.columns[i]?.name ?? '') !== names[i]) return 'the result does not line up with the statement';
  }
  return lin;
}

export const INACTIVE_ROW_PLAN = (n: number): RowMaskPlan => ({
  active: false,
  columns: new Array<AppliedMask | null>(n).fill(null),
  rewriteDataRow: () => undefined,
});

function refused(n: number, rule: string, message: string, columns?: (AppliedMask | null)[]): RowMaskPlan {
  return {
    active: true,
    columns: columns ?? new Array<AppliedMask | null>(n).fill(null),
    refuse: { rule, message },
    rewriteDataRow: () => {
      throw new MaskingError(rule, message);
    },
  };
}

export async function planRows(ctx: MaskingContext, fields: readonly FieldDescription[], stmt: StatementInfo | undefined): Promise<RowMaskPlan> {
  if (ctx.rules.empty) return INACTIVE_ROW_PLAN(fields.length);
  let lookup: TypeLookup;
  const covered: Covered[] = [];
  try {
    const snap = await ctx.catalog.ready();
    lookup = snap.typeLookup;
    let lin: LineageResult | string | undefined;
    for (let i = 0; i < fields.length; i++) {
      const f = fields[i] as FieldDescription;
      if (f.tableOid !== 0) {
        const o = await ctx.catalog.origin(f.tableOid, f.columnAttr);
        const cov = ctx.coverage(ctx.catalog.current() ?? snap);
        covered.push(o.attnum === 0 ? cov.wholeRelation(o.relation) : o.column ? cov.relationColumn(o.relation, o.column.name) : emptyCovered());
      } else if (ctx.rules.columnRules.length > 0) {
        lin ??= alignedLineage(ctx, stmt, fields.map((x) => x.name));
        if (typeof lin === 'string') {
          const c = emptyCovered();
          c.unresolved.push(lin);
          covered.push(c);
        } else {
          covered.push(ctx.coverage(ctx.catalog.current() ?? snap).outputColumn(lin.columns[i] as NonNullable<LineageResult['columns'][number]>));
        }
      } else {
        covered.push(emptyCovered());
      }
    }
  } catch (err) {
    if (err instanceof CatalogError) return refused(fields.length, ctx.anyRule, 'cannot resolve column origin');
    throw err;
  }
  const cols: PlanColumn[] = fields.map((f, i) => ({
    name: f.name,
    covered: covered[i] as Covered,
    type: valueType(f.typeOid, f.typeModifier, lookup),
    format: f.format,
  }));
  const compiled = compileColumns(ctx, cols);
  if (compiled.refuse) return refused(fields.length, compiled.refuse.rule, compiled.refuse.message, compiled.columns);
  const rewriter = new DataRowRewriter(fields.length, compiled.maskers, ctx.anyRule);
  return {
    active: rewriter.active,
    columns: compiled.columns,
    rewriteDataRow: (buf, start, end) => rewriter.rewrite(buf, start, end),
    forwardDataRow: (buf, start, end, sink) => rewriter.forward(buf, start, end, sink),
  };
}
