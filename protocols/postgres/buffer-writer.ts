// Builds messages into one growable buffer; the length field is patched when the message ends.

/**
 * `buf`, of which the first `used` bytes are taken, with room for `n` more: itself when it has
 * it, else a copy at least twice as large.
 */
export function withRoom(buf: Buffer, used: number, n: number): Buffer {
  if (used + n <= buf.length) return buf;
  let size = buf.length * 2;
  while (size < used + n) size *= 2;
  const next = Buffer.allocUnsafe(size);
  buf.copy(next, 0, 0, used);
  return next;
}

export class Writer {
  private buf: Buffer;
  private pos = 0;
  private messageStart = -1;

  constructor(initialSize = 256) {
    this.buf = Buffer.allocUnsafe(initialSize);
  }

  private ensure(n: number): void {
    if (this.pos + n > this.buf.length) this.buf = withRoom(this.buf, this.pos, n);
  }

  /** Starts a typed message (`code` = type byte) or, with code undefined, an untyped startup packet. */
  begin(code?: number): this {
    if (code !== undefined) {
      this.ensure(1);
      this.buf[this.pos++] = code;
    }
    this.messageStart = this.pos;
    this.ensure(4);
    this.pos += 4; // length, patched by end()
    return this;
  }

  end(): this {
    this.buf.writeInt32BE(this.pos - this.messageStart, this.messageStart);
    this.messageStart = -1;
    return this;
  }

  byte(v: number): this {
    this.ensure(1);
    this.buf[this.pos++] = v;
    return this;
  }

  int16(v: number): this {
    this.ensure(2);
    this.buf.writeInt16BE(v, this.pos);
    this.pos += 2;
    return this;
  }

  int32(v: number): this {
    this.ensure(4);
    this.buf.writeInt32BE(v, this.pos);
    this.pos += 4;
    return this;
  }

  uint32(v: number): this {
    this.ensure(4);
    this.buf.writeUInt32BE(v, this.pos);
    this.pos += 4;
    return this;
  }

  cstring(s: string): this {
    const n = Buffer.byteLength(s, 'utf8');
    this.ensure(n + 1);
    this.buf.write(s, this.pos, 'utf8');
    this.pos += n;
    this.buf[this.pos++] = 0;
    return this;
  }

  bytes(b: Uint8Array): this {
    this.ensure(b.length);
    this.buf.set(b, this.pos);
    this.pos += b.length;
    return this;
  }

  /** int32 length + bytes, or -1 for null. */
  lengthPrefixed(b: Uint8Array | null): this {
    if (b === null) return this.int32(-1);
    this.int32(b.length);
    return this.bytes(b);
  }

  /** The bytes written so far (a copy; the writer can be reused after reset()). */
  toBuffer(): Buffer {
    return Buffer.from(this.buf.subarray(0, this.pos));
  }

  reset(): this {
    this.pos = 0;
    this.messageStart = -1;
    return this;
  }
}

/** Convenience: build one message. */
export function message(code: number | undefined, body: (w: Writer) => void): Buffer {
  const w = new Writer();
  w.begin(code);
  body(w);
  w.end();
  return w.toBuffer();
}
