// COPY binary format (PostgreSQL docs, COPY — Binary Format): an 11-byte signature, int32 flags,
// int32 header extension length and the extension; then per tuple an int16 field count and each
// field as int32 length (-1 = NULL) and bytes; an int16 -1 ends the data. PostgreSQL sends the
// header together with the first tuple and the trailer alone. Fields are in each type's binary
// format, masked by binary-format maskers.
import { CopyRewriter } from './copy-stream.js';

const SIGNATURE = Buffer.from('PGCOPY\n\xff\r\n\0', 'latin1');
const HEADER_FIXED = SIGNATURE.length + 8;
const FLAG_OIDS = 1 << 16;

export class BinaryCopyRewriter extends CopyRewriter {
  private headerDone = false;
  private finished = false;

  protected process(data: Buffer, from: number, end: number): number {
    let pos = from;
    if (!this.headerDone) {
      if (end - pos < HEADER_FIXED) return pos;
      if (!data.subarray(pos, pos + SIGNATURE.length).equals(SIGNATURE)) throw this.fail('bad binary COPY signature');
      const flags = data.readInt32BE(pos + SIGNATURE.length);
      if (flags & FLAG_OIDS) throw this.fail('binary COPY with OIDs');
      const ext = data.readInt32BE(pos + SIGNATURE.length + 4);
      if (ext < 0) throw this.fail('negative header extension length');
      if (end - pos < HEADER_FIXED + ext) return pos;
      this.emit(data, pos, pos + HEADER_FIXED + ext);
      pos += HEADER_FIXED + ext;
      this.headerDone = true;
    }
    while (!this.finished && pos + 2 <= end) {
      const count = data.readInt16BE(pos);
      if (count === -1) {
        this.emit(data, pos, pos + 2);
        pos += 2;
        this.finished = true;
        break;
      }
      if (count !== this.columns) throw this.fail(`${count} fields, ${this.columns} columns expected`);
      // Find the tuple's end first: only whole tuples are rewritten.
      let p = pos + 2;
      let complete = true;
      for (let i = 0; i < count; i++) {
        if (p + 4 > end) {
          complete = false;
          break;
        }
        const len = data.readInt32BE(p);
        if (len < -1) throw this.fail('negative field length');
        p += 4 + Math.max(0, len);
        if (p > end) {
          complete = false;
          break;
        }
      }
      if (!complete) break;
      this.tuple(data, pos);
      pos = p;
    }
    if (this.finished && pos < end) throw this.fail('data after the binary COPY trailer');
    return pos;
  }

  /** Writes the tuple at `t` (complete, field lengths checked) to the output, masked. */
  private tuple(data: Buffer, t: number): void {
    this.emit(data, t, t + 2);
    let p = t + 2;
    for (let i = 0; i < this.columns; i++) {
      const len = data.readInt32BE(p);
      const next = p + 4 + Math.max(0, len);
      const r = len >= 0 ? this.maskValue(i, data.subarray(p + 4, next)) : undefined;
      if (r === undefined) {
        this.emit(data, p, next);
      } else {
        this.changed = true;
        const out = this.out;
        out.ensure(4);
        out.buf.writeInt32BE(r === null ? -1 : r.length, out.w);
        out.w += 4;
        if (r) this.emit(r, 0, r.length);
      }
      p = next;
    }
  }
}
