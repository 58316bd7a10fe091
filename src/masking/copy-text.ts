// COPY text and CSV formats (PostgreSQL docs, COPY — File Formats; copyto.c CopyAttributeOutText
// and CopyAttributeOutCSV): rows end with a newline, fields are split by the delimiter; text
// format escapes with backslashes and writes NULL as `\N`, CSV quotes values that need it and
// writes NULL as an unquoted empty string (both configurable). A masked value is written back
// escaped (text) or always quoted (CSV, so it is never read as NULL).
import type { CopyFormat } from './copy.js';
import { Backend } from '../../protocols/postgres/codes.js';
import { CopyRewriter, SLACK } from './copy-stream.js';
import { MASK_NULL, MASK_UNCHANGED, type DirectMasking, type InPlaceMasking, type ValueMasker } from './value-masker.js';
import { int32, viewOf, type OutputSlab } from './output-slab.js';

const NEWLINE = 0x0a;
/** Word-at-a-time scanning (rows()): a byte repeated four times, the high bit of each byte. */
const ONES = 0x01010101;
const BELOW_0E = 0x0e0e0e0e;
const BACKSLASHES = 0x5c5c5c5c;
const HIGH_BITS = 0x80808080 | 0;
/** Bytes a word copy may write past what it keeps. */
const WORD = 4;
/** Type byte and Int32 length of a CopyData message. */
const COPY_DATA_HEADER = 5;
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
  /** Per column: its masker's direct write, when its fill byte needs no escape here. */
  private readonly direct: (DirectMasking | undefined)[];
  /** The delimiter in each byte of a word. */
  private readonly delimiters: number;
  /** The payload rows() read last and a DataView of it (a run's messages share one chunk). */
  private inBuf: Buffer | undefined;
  private inView: DataView | undefined;

  constructor(columns: number, maskers: readonly (ValueMasker | undefined)[], private readonly fmt: CopyFormat, rule: string, out?: OutputSlab) {
    super(columns, maskers, rule, out);
    this.headerPending = fmt.header;
    for (const [c, e] of Object.entries(ESCAPE_OUT)) this.escapes[Number(c)] = e;
    this.escapes[BACKSLASH] = BACKSLASH;
    // A delimiter that has a letter escape (tab) is written with the letter, as PostgreSQL does.
    if (this.escapes[fmt.delimiter] === 0) this.escapes[fmt.delimiter] = fmt.delimiter;
    this.inPlace = maskers.map((m) => (m?.inPlace && this.escapes[m.inPlace.fill] === 0 ? m.inPlace : undefined));
    this.direct = maskers.map((m) => (m?.direct && this.escapes[m.direct.fill] === 0 ? m.direct : undefined));
    this.delimiters = Math.imul(fmt.delimiter, ONES);
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
   * Text format: the complete rows of the payload are those before its last newline (a raw
   * newline always ends a row: PostgreSQL escapes newlines in values); they are rewritten in one
   * pass (rows()), the rest is left for the next message.
   */
  private processText(data: Buffer, pos: number, end: number): number {
    if (this.headerPending) {
      pos = this.header(data, pos, end);
      if (this.headerPending) return pos;
    }
    let stop = end;
    while (stop > pos && data[stop - 1] !== NEWLINE) stop--;
    if (stop > pos) this.rows(data, pos, stop, -1);
    return stop;
  }

  /** Text format, no header line to come: rows() takes the messages of a run itself. */
  protected override runMessages(buf: Buffer, p: number, end: number): number {
    if (this.headerPending || this.fmt.format !== 'text') return p;
    // Room for the first message even with every byte escaped (rows() checks the next ones).
    this.out.ensure(2 * (1 + int32(buf, p + 1)) + SLACK);
    return this.rows(buf, p, p, end);
  }

  /**
   * Rewrites the complete rows `data[pos, stop)` (`stop - 1` is a newline) into the output, in one
   * pass and without per-row objects. Bytes are copied to the output as they are read, four at a
   * time: a word is copied whole and tested whole (bit tricks) for a byte the text format escapes
   * — a byte below 0x0e (the escaped controls, tab and newline), a backslash or the delimiter —
   * and the scan stops only at such a byte (the newline at `stop - 1` always stops it). A masked
   * field, once its end is found, is overwritten in the output where it was copied: in place
   * when its masker keeps the length, straight from the input when its masker writes only the
   * value's bytes and a fill byte (DirectMasking), else by the masked value escaped (or the NULL
   * string). A field is unescaped for its masker only when it holds a backslash.
   */
  private rows(data: Buffer, pos: number, stop: number, runEnd: number): number {
    const { delimiter, nullString } = this.fmt;
    const columns = this.columns;
    const maskers = this.maskers;
    const inPlace = this.inPlace;
    const direct = this.direct;
    const escapes = this.escapes;
    const delimiters = this.delimiters;
    const out = this.out;
    if (data !== this.inBuf) {
      this.inBuf = data;
      this.inView = viewOf(data);
    }
    const src = this.inView as DataView;
    // Words are read while four bytes of `data` remain (they may reach past `stop`).
    const lastWord = data.length - 4;
    // Invariant: the output has room for the rest of the rows as they are, and a word more (a word
    // copy writes up to three bytes past what it keeps). A masked value makes room for itself
    // and, again, the rest.
    out.ensure(stop - pos + WORD);
    let dst = out.buf;
    let view = out.view;
    let w = out.w;
    let i = pos;
    // A run: where the header of the message being written is in the output.
    let hdr = -1;
    for (;;) {
      if (i === stop) {
        if (runEnd < 0) break;
        if (hdr >= 0) {
          // The message is complete: its length, and it counts as done.
          const len = w - hdr - 1;
          dst[hdr + 1] = len >>> 24;
          dst[hdr + 2] = (len >>> 16) & 0xff;
          dst[hdr + 3] = (len >>> 8) & 0xff;
          dst[hdr + 4] = len & 0xff;
          this.runDone = w - out.start;
        }
        // The next message continues the run when it is a CopyData of complete rows for which the
        // slab has room (even with every byte escaped); else the caller takes it from here.
        if (runEnd - stop < COPY_DATA_HEADER + 1) break;
        const next = stop + 1 + int32(data, stop + 1);
        if (data[stop] !== Backend.copyData || next > runEnd || next < stop + COPY_DATA_HEADER + 1 || data[next - 1] !== NEWLINE || dst.length - w < 2 * (next - stop) + SLACK) break;
        dst[w] = Backend.copyData;
        hdr = w;
        w += COPY_DATA_HEADER;
        i = stop + COPY_DATA_HEADER;
        stop = next;
      }
      let col = 0;
      let fieldStart = i;
      let fieldOut = w;
      // The field holds a backslash escape / a byte the text format would escape, written raw.
      let escaped = false;
      let raw = false;
      for (;;) {
        let c: number;
        if (i <= lastWord) {
          const x = src.getInt32(i, true);
          view.setInt32(w, x, true);
          const y = x ^ BACKSLASHES;
          const z = x ^ delimiters;
          // A high bit per byte below 0x0e, equal to a backslash or to the delimiter; the lowest
          // one set marks the first such byte exactly (borrows only make higher ones unreliable).
          const found = ((((x - BELOW_0E) | 0) & ~x) | (((y - ONES) | 0) & ~y) | (((z - ONES) | 0) & ~z)) & HIGH_BITS;
          if (found === 0) {
            i += 4;
            w += 4;
            continue;
          }
          const k = ((31 - Math.clz32(found & -found)) >> 3) + 1;
          i += k;
          w += k;
          c = data[i - 1] as number;
        } else {
          c = data[i++] as number;
          dst[w++] = c;
        }
        if (escapes[c] === 0) continue; // a control byte the format writes raw (0x00-0x07)
        if (c === BACKSLASH) {
          // The escaped byte belongs to the value, whatever it is (a backslash is never the last
          // byte before the row's newline here: that newline would be escaped).
          const n = data[i++] as number;
          dst[w++] = n;
          if (n === NEWLINE) throw this.fail('a backslash before the end of a row');
          escaped = true;
          continue;
        }
        if (c !== delimiter && c !== NEWLINE) {
          raw = true;
          continue;
        }
        if (col >= columns) throw this.fail(`more than ${columns} fields`);
        const m = maskers[col];
        const fieldEnd = i - 1;
        if (m !== undefined && !isNullField(data, fieldStart, fieldEnd, nullString)) {
          const len = fieldEnd - fieldStart;
          const ip = inPlace[col];
          const d = direct[col];
          // The masker's result when it goes through mask(); stays MASK_UNCHANGED otherwise.
          let r = MASK_UNCHANGED;
          if (ip !== undefined && !escaped && !raw && ip.sameLength(data, fieldStart, len)) {
            // What overwrite() leaves (kept bytes, the fill byte) needs no escape.
            this.changed = true;
            ip.overwrite(dst, fieldOut, len);
          } else if (d !== undefined && !escaped && !raw) {
            // Room for the masked value, the byte that ended the field and the rest.
            out.w = w;
            out.ensure(d.maxLength(len) + 1 + stop - i + WORD);
            dst = out.buf;
            view = out.view;
            fieldOut += out.w - w;
            hdr += out.w - w;
            w = out.w;
            const n = d.write(data, fieldStart, len, dst, fieldOut);
            if (n >= 0) {
              // Bytes of the value and the fill byte: nothing to escape.
              this.changed = true;
              w = fieldOut + n;
              dst[w++] = c;
            } else {
              r = m.mask(data, fieldStart, len);
            }
          } else if (escaped) {
            const value = unescapeText(data.subarray(fieldStart, fieldEnd));
            r = m.mask(value, 0, value.length);
          } else {
            r = m.mask(data, fieldStart, len);
          }
          if (r !== MASK_UNCHANGED) {
            // Room for the value escaped (at most two bytes each) or the NULL string, the byte
            // that ended the field and the rest; the value replaces the field's copy.
            out.w = w;
            out.ensure((r === MASK_NULL ? nullString.length : 2 * r) + 1 + stop - i + WORD);
            dst = out.buf;
            view = out.view;
            fieldOut += out.w - w;
            hdr += out.w - w;
            w = fieldOut;
            this.changed = true;
            if (r === MASK_NULL) {
              for (let k = 0; k < nullString.length; k++) dst[w++] = nullString[k] as number;
            } else {
              const v = m.out;
              for (let k = 0; k < r; k++) {
                const b = v[k] as number;
                const e = escapes[b] as number;
                if (e !== 0) {
                  dst[w++] = BACKSLASH;
                  dst[w++] = e;
                } else {
                  dst[w++] = b;
                }
              }
            }
            dst[w++] = c;
          }
        }
        col++;
        if (c === NEWLINE) break;
        fieldStart = i;
        fieldOut = w;
        escaped = false;
        raw = false;
      }
      if (col !== columns) throw this.fail(`${col} fields, ${columns} columns expected`);
    }
    out.w = w;
    return stop;
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
