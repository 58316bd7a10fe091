// Bounded byte readers and a growable writer shared by every TDS decoder and encoder.
// [MS-TDS] 2.2.5.1 (data stream basic types): BYTE, USHORT, ULONG, B_VARCHAR, US_VARCHAR,
// B_VARBYTE, US_VARBYTE, L_VARBYTE; all integers little-endian unless a field says otherwise.
//
// A Reader never reads past `end`: running off it is a ProtocolError naming the field and the
// offset. Offsets in errors are relative to `origin` (the start of the message or payload being
// decoded), so they match what a person sees in a hex dump of that message.
// Decoded byte strings are copied out of the source buffer: the incremental token parser reuses
// its buffer, so a view would change under the caller.

import { ProtocolError } from '../errors.js';

export class Reader {
  pos: number;

  constructor(
    readonly buf: Buffer,
    pos: number,
    readonly end: number,
    readonly origin = 0,
  ) {
    this.pos = pos;
  }

  /** Bytes left before `end`. */
  get remaining(): number {
    return this.end - this.pos;
  }

  /** Message-relative offset of the cursor, for error messages. */
  get offset(): number {
    return this.pos - this.origin;
  }

  fail(message: string, at = this.pos): never {
    throw new ProtocolError(message, at - this.origin);
  }

  need(n: number, what: string): void {
    if (n > this.end - this.pos) {
      this.fail(`${what}: needs ${n} bytes, only ${this.end - this.pos} left`);
    }
  }

  u8(what: string): number {
    this.need(1, what);
    return this.buf[this.pos++]!;
  }

  u16le(what: string): number {
    this.need(2, what);
    const v = this.buf.readUInt16LE(this.pos);
    this.pos += 2;
    return v;
  }

  u16be(what: string): number {
    this.need(2, what);
    const v = this.buf.readUInt16BE(this.pos);
    this.pos += 2;
    return v;
  }

  i16le(what: string): number {
    this.need(2, what);
    const v = this.buf.readInt16LE(this.pos);
    this.pos += 2;
    return v;
  }

  u32le(what: string): number {
    this.need(4, what);
    const v = this.buf.readUInt32LE(this.pos);
    this.pos += 4;
    return v;
  }

  u32be(what: string): number {
    this.need(4, what);
    const v = this.buf.readUInt32BE(this.pos);
    this.pos += 4;
    return v;
  }

  i32le(what: string): number {
    this.need(4, what);
    const v = this.buf.readInt32LE(this.pos);
    this.pos += 4;
    return v;
  }

  u64le(what: string): bigint {
    this.need(8, what);
    const v = this.buf.readBigUInt64LE(this.pos);
    this.pos += 8;
    return v;
  }

  i64le(what: string): bigint {
    this.need(8, what);
    const v = this.buf.readBigInt64LE(this.pos);
    this.pos += 8;
    return v;
  }

  /** A copy of the next `n` bytes. */
  bytes(n: number, what: string): Buffer {
    this.need(n, what);
    const out = Buffer.from(this.buf.subarray(this.pos, this.pos + n));
    this.pos += n;
    return out;
  }

  skip(n: number, what: string): void {
    this.need(n, what);
    this.pos += n;
  }

  /** `chars` UTF-16LE code units as a string. */
  utf16(chars: number, what: string): string {
    const n = chars * 2;
    this.need(n, what);
    const s = this.buf.toString('utf16le', this.pos, this.pos + n);
    this.pos += n;
    return s;
  }

  /** B_VARCHAR: a BYTE count of UTF-16 code units, then the characters. */
  bVarchar(what: string): string {
    return this.utf16(this.u8(what), what);
  }

  /** US_VARCHAR: a USHORT count of UTF-16 code units, then the characters. */
  usVarchar(what: string): string {
    return this.utf16(this.u16le(what), what);
  }

  /** B_VARBYTE: a BYTE length, then that many bytes. */
  bVarbyte(what: string): Buffer {
    return this.bytes(this.u8(what), what);
  }

  /** US_VARBYTE: a USHORT length, then that many bytes. */
  usVarbyte(what: string): Buffer {
    return this.bytes(this.u16le(what), what);
  }

  /** L_VARBYTE: a ULONG length, then that many bytes (checked against what is left). */
  lVarbyte(what: string): Buffer {
    return this.bytes(this.u32le(what), what);
  }

  /** Fails unless the reader consumed everything up to `end`. */
  expectEnd(what: string): void {
    if (this.pos !== this.end) this.fail(`${what}: ${this.end - this.pos} unexpected trailing bytes`);
  }
}

const INITIAL_CAPACITY = 256;

/** A growable little-endian writer. Encoders validate ranges and throw RangeError on bad input. */
export class Writer {
  private buf: Buffer;
  pos = 0;

  constructor(capacity = INITIAL_CAPACITY) {
    this.buf = Buffer.allocUnsafe(Math.max(16, capacity));
  }

  private ensure(n: number): void {
    if (this.pos + n <= this.buf.length) return;
    let size = this.buf.length * 2;
    while (size < this.pos + n) size *= 2;
    const next = Buffer.allocUnsafe(size);
    this.buf.copy(next, 0, 0, this.pos);
    this.buf = next;
  }

  u8(v: number, what = 'byte'): this {
    checkUint(v, 0xff, what);
    this.ensure(1);
    this.buf[this.pos++] = v;
    return this;
  }

  u16le(v: number, what = 'USHORT'): this {
    checkUint(v, 0xffff, what);
    this.ensure(2);
    this.pos = this.buf.writeUInt16LE(v, this.pos);
    return this;
  }

  u16be(v: number, what = 'USHORT'): this {
    checkUint(v, 0xffff, what);
    this.ensure(2);
    this.pos = this.buf.writeUInt16BE(v, this.pos);
    return this;
  }

  i16le(v: number, what = 'SHORT'): this {
    checkInt(v, -0x8000, 0x7fff, what);
    this.ensure(2);
    this.pos = this.buf.writeInt16LE(v, this.pos);
    return this;
  }

  u32le(v: number, what = 'ULONG'): this {
    checkUint(v, 0xffffffff, what);
    this.ensure(4);
    this.pos = this.buf.writeUInt32LE(v, this.pos);
    return this;
  }

  u32be(v: number, what = 'ULONG'): this {
    checkUint(v, 0xffffffff, what);
    this.ensure(4);
    this.pos = this.buf.writeUInt32BE(v, this.pos);
    return this;
  }

  i32le(v: number, what = 'LONG'): this {
    checkInt(v, -0x80000000, 0x7fffffff, what);
    this.ensure(4);
    this.pos = this.buf.writeInt32LE(v, this.pos);
    return this;
  }

  u64le(v: bigint, what = 'ULONGLONG'): this {
    if (v < 0n || v > 0xffffffffffffffffn) throw new RangeError(`${what} out of range: ${v}`);
    this.ensure(8);
    this.pos = this.buf.writeBigUInt64LE(v, this.pos);
    return this;
  }

  i64le(v: bigint, what = 'LONGLONG'): this {
    if (v < -(2n ** 63n) || v >= 2n ** 63n) throw new RangeError(`${what} out of range: ${v}`);
    this.ensure(8);
    this.pos = this.buf.writeBigInt64LE(v, this.pos);
    return this;
  }

  f32le(v: number): this {
    this.ensure(4);
    this.pos = this.buf.writeFloatLE(v, this.pos);
    return this;
  }

  f64le(v: number): this {
    this.ensure(8);
    this.pos = this.buf.writeDoubleLE(v, this.pos);
    return this;
  }

  bytes(b: Uint8Array): this {
    this.ensure(b.length);
    this.buf.set(b, this.pos);
    this.pos += b.length;
    return this;
  }

  zeros(n: number): this {
    this.ensure(n);
    this.buf.fill(0, this.pos, this.pos + n);
    this.pos += n;
    return this;
  }

  /** UTF-16LE characters, no length prefix. Returns the number of code units written. */
  utf16(s: string): number {
    this.ensure(s.length * 2);
    const n = this.buf.write(s, this.pos, 'utf16le');
    this.pos += n;
    return n / 2;
  }

  bVarchar(s: string, what = 'B_VARCHAR'): this {
    if (s.length > 0xff) throw new RangeError(`${what} is ${s.length} characters; the limit is 255`);
    this.u8(s.length);
    this.utf16(s);
    return this;
  }

  usVarchar(s: string, what = 'US_VARCHAR'): this {
    if (s.length > 0xffff) throw new RangeError(`${what} is ${s.length} characters; the limit is 65535`);
    this.u16le(s.length);
    this.utf16(s);
    return this;
  }

  bVarbyte(b: Uint8Array, what = 'B_VARBYTE'): this {
    if (b.length > 0xff) throw new RangeError(`${what} is ${b.length} bytes; the limit is 255`);
    return this.u8(b.length).bytes(b);
  }

  usVarbyte(b: Uint8Array, what = 'US_VARBYTE'): this {
    if (b.length > 0xffff) throw new RangeError(`${what} is ${b.length} bytes; the limit is 65535`);
    return this.u16le(b.length).bytes(b);
  }

  lVarbyte(b: Uint8Array): this {
    return this.u32le(b.length).bytes(b);
  }

  patchU16le(at: number, v: number, what = 'USHORT'): void {
    checkUint(v, 0xffff, what);
    this.buf.writeUInt16LE(v, at);
  }

  patchU32le(at: number, v: number, what = 'ULONG'): void {
    checkUint(v, 0xffffffff, what);
    this.buf.writeUInt32LE(v, at);
  }

  /** The bytes written so far (a view; the writer must not be used afterwards). */
  finish(): Buffer {
    return this.buf.subarray(0, this.pos);
  }
}

function checkUint(v: number, max: number, what: string): void {
  if (!Number.isInteger(v) || v < 0 || v > max) throw new RangeError(`${what} out of range: ${v}`);
}

function checkInt(v: number, min: number, max: number, what: string): void {
  if (!Number.isInteger(v) || v < min || v > max) throw new RangeError(`${what} out of range: ${v}`);
}
