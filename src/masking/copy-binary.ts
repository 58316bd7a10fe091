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
