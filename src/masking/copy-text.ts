// COPY text and CSV formats (PostgreSQL docs, COPY — File Formats; copyto.c CopyAttributeOutText
// and CopyAttributeOutCSV): rows end with a newline, fields are split by the delimiter; text
// format escapes with backslashes and writes NULL as `\N`, CSV quotes values that need it and
// writes NULL as an unquoted empty string (both configurable). A masked value is written back
// escaped (text) or always quoted (CSV, so it is never read as NULL).
import type { CopyFormat } from './copy.js';
import { CopyRewriter } from './copy-stream.js';
import { MASK_NULL, MASK_UNCHANGED, type ValueMasker } from './value-masker.js';

const NEWLINE = 0x0a;
const NEWLINE_BUFFER = Buffer.of(NEWLINE);
const BACKSLASH = 0x5c;
const ESCAPES: Readonly<Record<number, number>> = { 0x62: 0x08, 0x66: 0x0c, 0x6e: 0x0a, 0x72: 0x0d, 0x74: 0x09, 0x76: 0x0b };
const ESCAPE_OUT: Readonly<Record<number, number>> = { 0x08: 0x62, 0x0c: 0x66, 0x0a: 0x6e, 0x0d: 0x72, 0x09: 0x74, 0x0b: 0x76 };

export class TextCopyRewriter extends CopyRewriter {
  private headerPending: boolean;

  constructor(columns: number, maskers: readonly (ValueMasker | undefined)[], private readonly fmt: CopyFormat, rule: string) {
    super(columns, maskers, rule);
    this.headerPending = fmt.header;
  }

  protected process(data: Buffer): { parts: Buffer[]; consumed: number; changed: boolean } {
    if (this.fmt.format !== 'csv') return this.processText(data);
    const parts: Buffer[] = [];
    let changed = false;
    let pos = 0;
    for (;;) {
      const end = this.csvRecordEnd(data, pos);
      if (end < 0) break;
      const line = data.subarray(pos, end);
      if (this.headerPending) {
        this.headerPending = false;
        parts.push(data.subarray(pos, end + 1));
      } else {
        const out = this.csvRow(line);
        if (out) {
          changed = true;
          parts.push(out, NEWLINE_BUFFER);
        } else {
          parts.push(data.subarray(pos, end + 1));
        }
      }
      pos = end + 1;
    }
    return { parts, consumed: pos, changed };
  }

  /** Output of the text format, reused between messages (one allocation per changed message). */
  private out = Buffer.allocUnsafe(64 * 1024);
  private outLen = 0;
  /** Field boundaries of the current row: start and end of each field. */
  private bounds = new Int32Array(2);

  private emit(src: Buffer, start: number, end: number): void {
    const n = end - start;
    if (this.outLen + n > this.out.length) {
      const grown = Buffer.allocUnsafe(Math.max(this.out.length * 2, this.outLen + n));
      this.out.copy(grown, 0, 0, this.outLen);
      this.out = grown;
    }
    if (n > 32) {
      src.copy(this.out, this.outLen, start, end);
      this.outLen += n;
      return;
    }
    // Fields are short: a loop beats Buffer.copy's call overhead.
    const out = this.out;
    let o = this.outLen;
    for (let i = start; i < end; i++) out[o++] = src[i] as number;
    this.outLen = o;
  }

  private emitByte(b: number): void {
    if (this.outLen + 1 > this.out.length) this.emit(Buffer.of(b), 0, 1);
    else this.out[this.outLen++] = b;
  }

  /**
   * Text format in one pass: each row's fields are found in place; untouched fields are copied,
   * masked ones unescaped (only when they hold a backslash), masked and escaped back.
   */
  private processText(data: Buffer): { parts: Buffer[]; consumed: number; changed: boolean } {
    const { delimiter, nullString } = this.fmt;
    const columns = this.columns;
    if (this.bounds.length < columns * 2) this.bounds = new Int32Array(columns * 2);
    const bounds = this.bounds;
    this.outLen = 0;
    let changed = false;
    let pos = 0;
    for (;;) {
      const end = data.indexOf(NEWLINE, pos);
      if (end < 0) break;
      if (this.headerPending) {
        this.headerPending = false;
        this.emit(data, pos, end + 1);
        pos = end + 1;
        continue;
      }
      // Field boundaries (an escaped delimiter belongs to its value).
      let f = 0;
      let s = pos;
      for (let i = pos; i <= end; i++) {
        const c = i === end ? delimiter : (data[i] as number);
        if (c === BACKSLASH) {
          i++;
          continue;
        }
        if (c === delimiter) {
          if (f >= columns) throw this.fail(`more than ${columns} fields`);
          bounds[f * 2] = s;
          bounds[f * 2 + 1] = i;
          f++;
          s = i + 1;
        }
      }
      if (f !== columns) throw this.fail(`${f} fields, ${columns} columns expected`);
      for (let k = 0; k < columns; k++) {
        if (k > 0) this.emitByte(delimiter);
        const fs = bounds[k * 2] as number;
        const fe = bounds[k * 2 + 1] as number;
        const m = this.maskers[k];
        if (!m || (fe - fs === nullString.length && data.compare(nullString, 0, nullString.length, fs, fe) === 0)) {
          this.emit(data, fs, fe);
          continue;
        }
        let escaped = false;
        for (let i = fs; i < fe; i++) {
          if (data[i] === BACKSLASH) {
            escaped = true;
            break;
          }
        }
        // The masker reads the value in place unless it must be unescaped first.
        const value = escaped ? unescapeText(data.subarray(fs, fe)) : data;
        const r = escaped ? m.mask(value, 0, value.length) : m.mask(data, fs, fe - fs);
        if (r === MASK_UNCHANGED) {
          this.emit(data, fs, fe);
          continue;
        }
        changed = true;
        if (r === MASK_NULL) this.emit(nullString, 0, nullString.length);
        else this.emitEscaped(m.out, r, delimiter);
      }
      this.emitByte(NEWLINE);
      pos = end + 1;
    }
    return { parts: changed ? [this.out.subarray(0, this.outLen)] : [data.subarray(0, pos)], consumed: pos, changed };
  }

  private emitEscaped(value: Buffer, length: number, delimiter: number): void {
    for (let i = 0; i < length; i++) {
      const c = value[i] as number;
      const e = ESCAPE_OUT[c];
      if (e !== undefined) {
        this.emitByte(BACKSLASH);
        this.emitByte(e);
      } else if (c === BACKSLASH || c === delimiter) {
        this.emitByte(BACKSLASH);
        this.emitByte(c);
      } else {
        this.emitByte(c);
      }
    }
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
