// COPY text and CSV formats (PostgreSQL docs, COPY — File Formats; copyto.c CopyAttributeOutText
// and CopyAttributeOutCSV): rows end with a newline, fields are split by the delimiter; text
// format escapes with backslashes and writes NULL as `\N`, CSV quotes values that need it and
// writes NULL as an unquoted empty string (both configurable). A masked value is written back
// escaped (text) or always quoted (CSV, so it is never read as NULL).
import type { CopyFormat } from './copy.js';
import { CopyRewriter } from './copy-stream.js';
import { MASK_NULL, MASK_UNCHANGED, type InPlaceMasking, type ValueMasker } from './value-masker.js';
import type { OutputSlab } from './output-slab.js';

const NEWLINE = 0x0a;
const BACKSLASH = 0x5c;
const ESCAPES: Readonly<Record<number, number>> = { 0x62: 0x08, 0x66: 0x0c, 0x6e: 0x0a, 0x72: 0x0d, 0x74: 0x09, 0x76: 0x0b };
const ESCAPE_OUT: Readonly<Record<number, number>> = { 0x08: 0x62, 0x0c: 0x66, 0x0a: 0x6e, 0x0d: 0x72, 0x09: 0x74, 0x0b: 0x76 };

export class TextCopyRewriter extends CopyRewriter {
  private headerPending: boolean;
  /**
   * How a masked value's bytes are written in text format, per byte: 0 as it is, else preceded by
   * a backslash and written as this byte (the escape letter of a control character; backslash and
   * the delimiter themselves), as CopyAttributeOutText writes them.
   */
  private readonly escapes = new Uint8Array(256);
  /** Per column: its masker's same-length fast path, when the byte it writes needs no escape here. */
  private readonly inPlace: (InPlaceMasking | undefined)[];

  constructor(columns: number, maskers: readonly (ValueMasker | undefined)[], private readonly fmt: CopyFormat, rule: string, out?: OutputSlab) {
    super(columns, maskers, rule, out);
    this.headerPending = fmt.header;
    for (const [c, e] of Object.entries(ESCAPE_OUT)) this.escapes[Number(c)] = e;
    this.escapes[BACKSLASH] = BACKSLASH;
    // A delimiter that has a letter escape (tab) is written with the letter, as PostgreSQL does.
    if (this.escapes[fmt.delimiter] === 0) this.escapes[fmt.delimiter] = fmt.delimiter;
    this.inPlace = maskers.map((m) => (m?.inPlace && this.escapes[m.inPlace.fill] === 0 ? m.inPlace : undefined));
  }

  protected process(data: Buffer, pos: number, end: number): number {
    return this.fmt.format === 'csv' ? this.processCsv(data, pos, end) : this.processText(data, pos, end);
  }

  /** Copies the header line when one is still expected; returns where the data after it starts (pos when the line is incomplete). */
  private header(data: Buffer, pos: number, end: number): number {
    const nl = data.indexOf(NEWLINE, pos);
    if (nl < 0 || nl >= end) return pos;
    this.headerPending = false;
    this.emit(data, pos, nl + 1);
    return nl + 1;
  }

  /**
   * Text format in one pass over the payload, without per-row objects: each row's bytes are
   * scanned once for delimiters, backslashes and the newline; untouched spans (every field up to
   * a masked one, and the rest of the row after the last) are copied as they are; a masked field
   * is unescaped only when it holds a backslash, masked, and escaped back. A raw newline always
   * ends a row (PostgreSQL escapes newlines in values). An incomplete row at the end is taken
   * back out of the output and left for the next message.
   */
  private processText(data: Buffer, pos: number, end: number): number {
    if (this.headerPending) {
      pos = this.header(data, pos, end);
      if (this.headerPending) return pos;
    }
    const { delimiter, nullString } = this.fmt;
    const columns = this.columns;
    const maskers = this.maskers;
    const out = this.out;
    const escapes = this.escapes;
    // Invariant: the output has room for the rest of the payload as it is, so spans are copied
    // without a check; a masked value makes room for itself and, again, the rest.
    out.ensure(end - pos);
    for (;;) {
      const rowOut = out.w - out.start;
      let copied = pos;
      let col = 0;
      let fieldStart = pos;
      // The field holds a backslash escape / a byte the text format would escape, written raw.
      let escaped = false;
      let raw = false;
      let i = pos;
      for (; i < end; i++) {
        // Skip ordinary bytes (those written unescaped) with one table load each.
        while (i < end && escapes[data[i] as number] === 0) i++;
        if (i >= end) break;
        const c = data[i] as number;
        if (c === BACKSLASH) {
          escaped = true;
          i++; // the escaped byte belongs to the value, whatever it is
          if (i < end && data[i] === NEWLINE) throw this.fail('a backslash before the end of a row');
          continue;
        }
        if (c !== delimiter && c !== NEWLINE) {
          raw = true;
          continue;
        }
        if (col >= columns) throw this.fail(`more than ${columns} fields`);
        const m = maskers[col];
        const ip = this.inPlace[col];
        if (m !== undefined && !isNullField(data, fieldStart, i, nullString)) {
          if (ip !== undefined && !escaped && !raw && ip.sameLength(data, fieldStart, i - fieldStart)) {
            // In place: the value's bytes are the field's bytes, and what overwrite() leaves
            // (kept bytes, the fill byte) needs no escape — the field is copied, then overwritten.
            this.changed = true;
            this.copy(data, copied, i);
            ip.overwrite(out.buf, out.w - (i - fieldStart), i - fieldStart);
            copied = i;
          } else if (this.maskField(m, data, fieldStart, i, escaped, copied, end)) {
            copied = i;
          }
        }
        col++;
        fieldStart = i + 1;
        escaped = false;
        raw = false;
        if (c === NEWLINE) break;
      }
      if (i >= end) {
        // No newline: an incomplete row, carried over.
        out.w = out.start + rowOut;
        return pos;
      }
      if (col !== columns) throw this.fail(`${col} fields, ${columns} columns expected`);
      this.copy(data, copied, i + 1);
      pos = i + 1;
    }
  }

  /**
   * Masks the field `data[s, e)` (unescaped first when it holds a backslash). When the value
   * changes, writes the row's bytes since `copied`, then the masked value escaped (or the NULL
   * string) to the output and returns true; the caller's copy then resumes after the field.
   */
  private maskField(m: ValueMasker, data: Buffer, s: number, e: number, escaped: boolean, copied: number, end: number): boolean {
    let r: number;
    if (escaped) {
      const value = unescapeText(data.subarray(s, e));
      r = m.mask(value, 0, value.length);
    } else {
      r = m.mask(data, s, e - s);
    }
    if (r === MASK_UNCHANGED) return false;
    this.changed = true;
    this.copy(data, copied, s);
    // Room for the value escaped (at most two bytes each) or the NULL string, and the rest.
    const { nullString } = this.fmt;
    this.out.ensure((r === MASK_NULL ? nullString.length : 2 * r) + end - e);
    if (r === MASK_NULL) this.copy(nullString, 0, nullString.length);
    else this.emitEscaped(m.out, r);
    return true;
  }

  /** Copies `src[start, end)` to the output, which has room (see processText). */
  private copy(src: Buffer, start: number, end: number): void {
    const dst = this.out.buf;
    let w = this.out.w;
    if (end - start < 64) for (let i = start; i < end; i++) dst[w++] = src[i] as number;
    else w += src.copy(dst, w, start, end);
    this.out.w = w;
  }

  /** Writes `value[0, length)` escaped for the text format (the output has room for twice its length). */
  private emitEscaped(value: Buffer, length: number): void {
    const out = this.out;
    const dst = out.buf;
    const escapes = this.escapes;
    let w = out.w;
    for (let i = 0; i < length; i++) {
      const c = value[i] as number;
      const e = escapes[c] as number;
      if (e !== 0) {
        dst[w++] = BACKSLASH;
        dst[w++] = e;
      } else {
        dst[w++] = c;
      }
    }
    out.w = w;
  }

  private processCsv(data: Buffer, pos: number, end: number): number {
    for (;;) {
      const nl = this.csvRecordEnd(data, pos, end);
      if (nl < 0) return pos;
      if (this.headerPending) {
        this.headerPending = false;
        this.emit(data, pos, nl + 1);
      } else {
        const row = this.csvRow(data.subarray(pos, nl));
        if (row) {
          this.changed = true;
          this.emit(row, 0, row.length);
          this.emit(data, nl, nl + 1);
        } else {
          this.emit(data, pos, nl + 1);
        }
      }
      pos = nl + 1;
    }
  }

  /** Index of the newline ending the CSV record at `pos` (newlines inside quotes belong to the value), or -1 when it is not before `end`. */
  private csvRecordEnd(data: Buffer, pos: number, end: number): number {
    const { quote, escape } = this.fmt;
    let inQuotes = false;
    for (let i = pos; i < end; i++) {
      const c = data[i] as number;
      if (inQuotes) {
        if (c === escape && escape !== quote && i + 1 < end && (data[i + 1] === quote || data[i + 1] === escape)) i++;
        else if (c === quote) {
          if (escape === quote && i + 1 < end && data[i + 1] === quote) i++;
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

/** Whether the field `data[s, e)` is the NULL string (compared as written, before unescaping). */
function isNullField(data: Buffer, s: number, e: number, nullString: Buffer): boolean {
  if (e - s !== nullString.length) return false;
  for (let i = 0; i < nullString.length; i++) if (data[s + i] !== nullString[i]) return false;
  return true;
}

function joinFields(fields: Buffer[], delimiter: number): Buffer {
  const parts: Buffer[] = [];
  const sep = Buffer.of(delimiter);
  fields.forEach((f, i) => {
    if (i > 0) parts.push(sep);
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
