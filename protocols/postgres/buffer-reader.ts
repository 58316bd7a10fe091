// A bounded cursor over one message body. Every read checks the bounds and throws ProtocolError
// (never RangeError) with the offset of the failure, relative to the start of the buffer.
import { ProtocolError } from '../errors.js';

export class Reader {
  offset: number;

  constructor(
    readonly buf: Buffer,
    start = 0,
    readonly end = buf.length,
  ) {
    this.offset = start;
  }

  get remaining(): number {
    return this.end - this.offset;
  }

  private need(n: number, what: string): void {
    if (n < 0 || this.offset + n > this.end) {
      throw new ProtocolError(`message too short for ${what}`, this.offset);
    }
  }

  byte(what = 'byte'): number {
    this.need(1, what);
    return this.buf[this.offset++] as number;
  }

  int16(what = 'int16'): number {
    this.need(2, what);
    const v = this.buf.readInt16BE(this.offset);
    this.offset += 2;
    return v;
  }

  uint16(what = 'uint16'): number {
    this.need(2, what);
    const v = this.buf.readUInt16BE(this.offset);
    this.offset += 2;
    return v;
  }

  int32(what = 'int32'): number {
    this.need(4, what);
    const v = this.buf.readInt32BE(this.offset);
    this.offset += 4;
    return v;
  }

  uint32(what = 'uint32'): number {
    this.need(4, what);
    const v = this.buf.readUInt32BE(this.offset);
    this.offset += 4;
    return v;
  }

  /** A NUL-terminated string (UTF-8). */
  cstring(what = 'string'): string {
    const nul = this.buf.indexOf(0, this.offset);
    if (nul < 0 || nul >= this.end) throw new ProtocolError(`unterminated ${what}`, this.offset);
    const s = this.buf.toString('utf8', this.offset, nul);
    this.offset = nul + 1;
    return s;
  }

  /** `n` raw bytes as a view (no copy). */
  bytes(n: number, what = 'bytes'): Buffer {
    this.need(n, what);
    const b = this.buf.subarray(this.offset, this.offset + n);
    this.offset += n;
    return b;
  }

  /** An int32 length followed by that many bytes; -1 means NULL. */
  lengthPrefixed(what = 'value'): Buffer | null {
    const len = this.int32(`${what} length`);
    if (len === -1) return null;
    if (len < -1) throw new ProtocolError(`negative length ${len} for ${what}`, this.offset - 4);
    return this.bytes(len, what);
  }

  /** All remaining bytes. */
  rest(): Buffer {
    return this.bytes(this.remaining);
  }

  /** Asserts the message was consumed exactly. */
  done(what: string): void {
    if (this.offset !== this.end) {
      throw new ProtocolError(`${this.end - this.offset} unexpected trailing bytes in ${what}`, this.offset);
    }
  }
}
