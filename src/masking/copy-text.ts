// COPY text and CSV formats (PostgreSQL docs, COPY — File Formats; copyto.c CopyAttributeOutText
// and CopyAttributeOutCSV): rows end with a newline, fields are split by the delimiter; text
// format escapes with backslashes and writes NULL as `\N`, CSV quotes values that need it and
// writes NULL as an unquoted empty string (both configurable). A masked value is written back
// escaped (text) or always quoted (CSV, so it is never read as NULL).
import type { CopyFormat } from './copy.js';
import { CopyRewriter } from './copy-stream.js';
import type { ValueMasker } from './value-masker.js';

const NEWLINE = 0x0a;
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
