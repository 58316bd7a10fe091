// COPY … TO STDOUT: the rows arrive as CopyData messages in text, CSV or binary COPY format
// (PostgreSQL docs, "COPY" — File Formats). Columns are known by position from the COPY
// statement (the table and its column list, or lineage of `COPY (query)`), their types from the
// catalog when they are plain table columns (else unknown: a masked value of an unknown type is
// written as NULL). PostgreSQL sends one row per CopyData; the rewriters do not rely on it and
// carry a partial row over to the next message.
import type { CopyStmt, Node } from 'libpg-query';
import { encodeCopyData, type CopyResponse } from '../../protocols/postgres/backend-messages.js';
import { Backend } from '../../protocols/postgres/codes.js';
import type { OutputColumn, StatementInfo } from '../sql/index.js';
import type { CatalogSnapshot } from './catalog-snapshot.js';
import { CatalogError } from './catalog.js';
import type { MaskingContext } from './context.js';
import { emptyCovered } from './coverage.js';
import { compileColumns, type PlanColumn } from './plan.js';
import { valueType, type ValueType } from './pg-types.js';
import { MaskingError, type AppliedMask, type CopyMaskPlan } from './types.js';
import { MASK_NULL, MASK_UNCHANGED, type ValueMasker } from './value-masker.js';

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
/** A partial row carried between CopyData messages may not grow past this. */
const MAX_PENDING = 256 * 1024 * 1024;

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
  const aligned = lin.output === 'rows' && lin.shapeKnown && lin.columns.length === n;
  const cov = ctx.coverage(snap);
  const binary = fmt.format === 'binary';
  const cols: PlanColumn[] = [];
  for (let i = 0; i < n; i++) {
    const oc = aligned ? lin.columns[i] : undefined;
    const covered = oc ? cov.outputColumn(oc) : emptyCovered();
    if (!oc && ctx.rules.columnRules.length > 0) covered.unresolved.push('the COPY columns do not line up with the statement');
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
  return { active: true, columns: compiled.columns, rewriteCopyData: (buf, start, end) => rewriter.rewrite(buf, start, end) };
}

/** Shared framing: CopyData payloads in, complete units rewritten, a partial unit carried over. */
abstract class CopyRewriter {
  private pending: Buffer | undefined;

  constructor(
    protected readonly columns: number,
    protected readonly maskers: readonly (ValueMasker | undefined)[],
    protected readonly rule: string,
  ) {}

  protected fail(why: string): MaskingError {
    return new MaskingError(this.rule, `malformed COPY data (${why}): the data is not sent`);
  }

  /** Rewrites the complete units at the start of `data`; returns the output parts, bytes consumed and whether anything changed. */
  protected abstract process(data: Buffer): { parts: Buffer[]; consumed: number; changed: boolean };

  rewrite(buf: Buffer, start: number, end: number): Buffer | undefined {
    if (buf[start] !== Backend.copyData || end - start < 5 || buf.readInt32BE(start + 1) !== end - start - 1) throw this.fail('not a CopyData message');
    const payload = buf.subarray(start + 5, end);
    const hadPending = this.pending !== undefined;
    const data = this.pending ? Buffer.concat([this.pending, payload]) : payload;
    const { parts, consumed, changed } = this.process(data);
    const rest = data.length - consumed;
    if (rest > MAX_PENDING) throw this.fail('a row larger than the carry-over limit');
    this.pending = rest > 0 ? Buffer.from(data.subarray(consumed)) : undefined;
    if (!changed && !hadPending && rest === 0) return undefined;
    return encodeCopyData(parts.length === 1 ? (parts[0] as Buffer) : Buffer.concat(parts));
  }

  /** Applies column `i`'s masker to a value; returns its new bytes, null for NULL, or undefined when unchanged. */
  protected maskValue(i: number, value: Buffer): Buffer | null | undefined {
    const m = this.maskers[i];
    if (!m) return undefined;
    const r = m.mask(value, 0, value.length);
    if (r === MASK_UNCHANGED) return undefined;
    if (r === MASK_NULL) return null;
    return Buffer.from(m.out.subarray(0, r));
  }
}

const NEWLINE = 0x0a;
const BACKSLASH = 0x5c;
const ESCAPES: Readonly<Record<number, number>> = { 0x62: 0x08, 0x66: 0x0c, 0x6e: 0x0a, 0x72: 0x0d, 0x74: 0x09, 0x76: 0x0b };
const ESCAPE_OUT: Readonly<Record<number, number>> = { 0x08: 0x62, 0x0c: 0x66, 0x0a: 0x6e, 0x0d: 0x72, 0x09: 0x74, 0x0b: 0x76 };

class TextCopyRewriter extends CopyRewriter {
  private headerPending: boolean;

  constructor(columns: number, maskers: readonly (ValueMasker | undefined)[], private readonly fmt: CopyFormat, rule: string) {
    super(columns, maskers, rule);
    this.headerPending = fmt.header;
  }

  protected process(data: Buffer): { parts: Buffer[]; consumed: number; changed: boolean } {
    const parts: Buffer[] = [];
    let changed = false;
    let pos = 0;
    for (;;) {
      const end = this.fmt.format === 'csv' ? this.csvRecordEnd(data, pos) : data.indexOf(NEWLINE, pos);
      if (end < 0) break;
      const line = data.subarray(pos, end);
      if (this.headerPending) {
        this.headerPending = false;
        parts.push(data.subarray(pos, end + 1));
      } else {
        const out = this.fmt.format === 'csv' ? this.csvRow(line) : this.textRow(line);
        if (out) {
          changed = true;
          parts.push(out, Buffer.from([NEWLINE]));
        } else {
          parts.push(data.subarray(pos, end + 1));
        }
      }
      pos = end + 1;
    }
    return { parts, consumed: pos, changed };
  }

  /** Index of the newline ending the CSV record at `pos` (newlines inside quotes belong to the value), or -1. */
  private csvRecordEnd(data: Buffer, pos: number): number {
    const { quote, escape } = this.fmt;
    let inQuotes = false;
    for (let i = pos; i < data.length; i++) {
      const c = data[i] as number;
      if (inQuotes) {
        if (c === escape && escape !== quote && (data[i + 1] === quote || data[i + 1] === escape)) i++;
        else if (c === quote) {
          if (escape === quote && data[i + 1] === quote) i++;
          else inQuotes = false;
        }
      } else if (c === quote) {
        inQuotes = true;
      } else if (c === NEWLINE) {
        return i;
      }
    }
    return -1;
  }

  private split(line: Buffer): Buffer[] {
    const fields: Buffer[] = [];
    let s = 0;
    for (let i = 0; i <= line.length; i++) {
      if (i === line.length || line[i] === this.fmt.delimiter) {
        fields.push(line.subarray(s, i));
        s = i + 1;
      } else if (line[i] === BACKSLASH) {
        i++; // an escaped delimiter is part of the value
      }
    }
    return fields;
  }

  private textRow(line: Buffer): Buffer | undefined {
    const fields = this.split(line);
    if (fields.length !== this.columns) throw this.fail(`${fields.length} fields, ${this.columns} columns expected`);
    let changed = false;
    const out = fields.map((raw, i) => {
      if (!this.maskers[i] || raw.equals(this.fmt.nullString)) return raw;
      const r = this.maskValue(i, unescapeText(raw));
      if (r === undefined) return raw;
      changed = true;
      return r === null ? this.fmt.nullString : escapeText(r, this.fmt.delimiter);
    });
    return changed ? joinFields(out, this.fmt.delimiter) : undefined;
  }

  private csvRow(line: Buffer): Buffer | undefined {
    const { quote, escape, delimiter } = this.fmt;
    const fields: { raw: Buffer; value: Buffer | null }[] = [];
    let i = 0;
    for (;;) {
      const s = i;
      if (line[i] === quote) {
        const bytes: number[] = [];
        i++;
        for (;;) {
          if (i >= line.length) throw this.fail('unterminated quoted CSV value');
          const c = line[i] as number;
          if (c === escape && (line[i + 1] === quote || (escape !== quote && line[i + 1] === escape))) {
            bytes.push(line[i + 1] as number);
            i += 2;
          } else if (c === quote) {
            i++;
            break;
          } else {
            bytes.push(c);
            i++;
          }
        }
        fields.push({ raw: line.subarray(s, i), value: Buffer.from(bytes) });
      } else {
        while (i < line.length && line[i] !== delimiter) i++;
        const raw = line.subarray(s, i);
        fields.push({ raw, value: raw.equals(this.fmt.nullString) ? null : raw });
      }
      if (i >= line.length) break;
      if (line[i] !== delimiter) throw this.fail('text after a quoted CSV value');
      i++;
      if (i === line.length) {
        fields.push({ raw: line.subarray(i, i), value: Buffer.alloc(0).equals(this.fmt.nullString) ? null : Buffer.alloc(0) });
        break;
      }
    }
    if (fields.length !== this.columns) throw this.fail(`${fields.length} fields, ${this.columns} columns expected`);
    let changed = false;
    const out = fields.map((f, k) => {
      if (f.value === null || !this.maskers[k]) return f.raw;
      const r = this.maskValue(k, f.value);
      if (r === undefined) return f.raw;
      changed = true;
      return r === null ? this.fmt.nullString : quoteCsv(r, quote, escape);
    });
    return changed ? joinFields(out, delimiter) : undefined;
  }
}

function joinFields(fields: Buffer[], delimiter: number): Buffer {
  const parts: Buffer[] = [];
  fields.forEach((f, i) => {
    if (i > 0) parts.push(Buffer.from([delimiter]));
    parts.push(f);
  });
  return Buffer.concat(parts);
}

/** COPY text format: `\N`-style escapes back to bytes. */
export function unescapeText(raw: Buffer): Buffer {
  if (!raw.includes(BACKSLASH)) return raw;
  const out: number[] = [];
  for (let i = 0; i < raw.length; i++) {
    const c = raw[i] as number;
    if (c !== BACKSLASH || i + 1 >= raw.length) {
      out.push(c);
      continue;
    }
    const n = raw[++i] as number;
    const mapped = ESCAPES[n];
    if (mapped !== undefined) out.push(mapped);
    else if (n >= 0x30 && n <= 0x37) {
      let v = n - 0x30;
      for (let k = 0; k < 2 && i + 1 < raw.length && (raw[i + 1] as number) >= 0x30 && (raw[i + 1] as number) <= 0x37; k++) v = v * 8 + ((raw[++i] as number) - 0x30);
      out.push(v & 0xff);
    } else if (n === 0x78 && i + 1 < raw.length && /[0-9a-fA-F]/.test(String.fromCharCode(raw[i + 1] as number))) {
      let hex = String.fromCharCode(raw[++i] as number);
      if (i + 1 < raw.length && /[0-9a-fA-F]/.test(String.fromCharCode(raw[i + 1] as number))) hex += String.fromCharCode(raw[++i] as number);
      out.push(parseInt(hex, 16));
    } else {
      out.push(n);
    }
  }
  return Buffer.from(out);
}

/** COPY text format escaping, as CopyAttributeOutText writes it. */
export function escapeText(value: Buffer, delimiter: number): Buffer {
  const out: number[] = [];
  for (const c of value) {
    const e = ESCAPE_OUT[c];
    if (e !== undefined) out.push(BACKSLASH, e);
    else if (c === BACKSLASH || c === delimiter) out.push(BACKSLASH, c);
    else out.push(c);
  }
  return Buffer.from(out);
}

/** A CSV value, always quoted (a quoted value is never read as NULL). */
export function quoteCsv(value: Buffer, quote: number, escape: number): Buffer {
  const out: number[] = [quote];
  for (const c of value) {
    if (c === quote || c === escape) out.push(escape);
    out.push(c);
  }
  out.push(quote);
  return Buffer.from(out);
}

const SIGNATURE = Buffer.from('PGCOPY\n\xff\r\n\0', 'latin1');
const HEADER_FIXED = SIGNATURE.length + 8;
const FLAG_OIDS = 1 << 16;

class BinaryCopyRewriter extends CopyRewriter {
  private headerDone = false;
  private finished = false;

  protected process(data: Buffer): { parts: Buffer[]; consumed: number; changed: boolean } {
    const parts: Buffer[] = [];
    let pos = 0;
    let changed = false;
    if (!this.headerDone) {
      if (data.length < HEADER_FIXED) return { parts, consumed: 0, changed };
      if (!data.subarray(0, SIGNATURE.length).equals(SIGNATURE)) throw this.fail('bad binary COPY signature');
      const flags = data.readInt32BE(SIGNATURE.length);
      if (flags & FLAG_OIDS) throw this.fail('binary COPY with OIDs');
      const ext = data.readInt32BE(SIGNATURE.length + 4);
      if (ext < 0) throw this.fail('negative header extension length');
      if (data.length < HEADER_FIXED + ext) return { parts, consumed: 0, changed };
      pos = HEADER_FIXED + ext;
      parts.push(data.subarray(0, pos));
      this.headerDone = true;
    }
    while (!this.finished && pos + 2 <= data.length) {
      const count = data.readInt16BE(pos);
      if (count === -1) {
        parts.push(data.subarray(pos, pos + 2));
        pos += 2;
        this.finished = true;
        break;
      }
      if (count !== this.columns) throw this.fail(`${count} fields, ${this.columns} columns expected`);
      // Find the tuple's end first: only whole tuples are rewritten.
      let p = pos + 2;
      let complete = true;
      for (let i = 0; i < count; i++) {
        if (p + 4 > data.length) {
          complete = false;
          break;
        }
        const len = data.readInt32BE(p);
        if (len < -1) throw this.fail('negative field length');
        p += 4 + Math.max(0, len);
        if (p > data.length) {
          complete = false;
          break;
        }
      }
      if (!complete) break;
      const tuple = data.subarray(pos, p);
      const out = this.tuple(tuple);
      if (out) changed = true;
      parts.push(out ?? tuple);
      pos = p;
    }
    if (this.finished && pos < data.length) throw this.fail('data after the binary COPY trailer');
    return { parts, consumed: pos, changed };
  }

  private tuple(t: Buffer): Buffer | undefined {
    const fields: Buffer[] = [];
    let p = 2;
    let changed = false;
    for (let i = 0; i < this.columns; i++) {
      const len = t.readInt32BE(p);
      const value = len >= 0 ? t.subarray(p + 4, p + 4 + len) : null;
      const r = value === null ? undefined : this.maskValue(i, value);
      if (r === undefined) {
        fields.push(t.subarray(p, p + 4 + Math.max(0, len)));
      } else {
        changed = true;
        const head = Buffer.allocUnsafe(4);
        head.writeInt32BE(r === null ? -1 : r.length, 0);
        fields.push(head);
        if (r) fields.push(r);
      }
      p += 4 + Math.max(0, len);
    }
    return changed ? Buffer.concat([t.subarray(0, 2), ...fields]) : undefined;
  }
}
