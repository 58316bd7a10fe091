// One column's masking, compiled once per result set: a strategy (or full redaction) applied to
// values of the column's type in the column's wire format. The result always decodes as the
// column's type: a value the strategy cannot mask becomes the rule's redaction (a text for text,
// json and jsonb; NULL for other types). Types the engine cannot read at all become NULL, or,
// in binary format when the rule says `binary: fail`, refuse the result at plan time.
//
// Hot path: text-type columns with redact, partial or null never decode to a JS string, nor do
// ASCII values under email; other cases go through the value's logical text (values.ts) and back.
import type { MaskStrategyConfig } from '../config/sections/masking.js';
import { mapBinaryArray, mapTextArray } from './arrays.js';
import { findMatches, type Classifier } from './classifiers.js';
import { isTextual, type ScalarKind, type ValueType } from './pg-types.js';
import { compileStrategy, redact, strategyApplies, type StrategyFn } from './strategies/index.js';
import { emailAscii, emailAsciiMax, type EmailOptions } from './strategies/email.js';
import { partialBytes, partialBytesMax, type PartialOptions } from './strategies/partial.js';
import { Format, readValue, writeValue } from './values.js';

/** Result codes of ValueMasker.mask besides a length. */
export const MASK_NULL = -1;
export const MASK_UNCHANGED = -2;

/**
 * Masks the non-NULL value `src[start, start + len)`. Returns the masked value's length (its
 * bytes are `out[0, length)`, valid until the next call), MASK_NULL, or MASK_UNCHANGED.
 */
export interface ValueMasker {
  mask(src: Buffer, start: number, len: number): number;
  out: Buffer;
  /** Set when every value masks to the same result (redact, null): rewriters use it without calling mask(). null = NULL. */
  readonly constant?: Buffer | null;
  /**
   * The same-length fast path (partial on ASCII text), when the masker has one. When
   * sameLength(src, start, len) is true, the masked value has the value's length and differs from
   * it only in bytes set to `fill`; overwrite(dst, at, len) turns a copy of the value at
   * `dst[at, at + len)` into it — no scratch buffer, no second copy. When false, use mask().
   */
  readonly inPlace?: InPlaceMasking;
  /**
   * Writing the masked value straight into the caller's buffer (email on ASCII text), when the
   * masker can: see DirectMasking.
   */
  readonly direct?: DirectMasking;
}

/**
 * write(src, start, len, dst, to) writes the masked value of `src[start, start + len)` to `dst`
 * from `to` (room for maxLength(len) bytes there) and returns its length, or -1 when the value
 * needs mask(). Every byte it writes is a byte of the value or `fill`: a rewriter for which
 * neither needs escaping copies nothing else (no scratch buffer, no escaping pass).
 */
export interface DirectMasking {
  write(src: Buffer, start: number, len: number, dst: Buffer, to: number): number;
  maxLength(len: number): number;
  readonly fill: number;
}

export interface InPlaceMasking {
  sameLength(src: Buffer, start: number, len: number): boolean;
  overwrite(dst: Buffer, at: number, len: number): void;
  /** The one byte overwrite() writes. */
  readonly fill: number;
}

/** What to do to one column. */
export interface MaskAction {
  rule: string;
  strategy: MaskStrategyConfig;
  /** Fully redact instead of applying the strategy (derived values the strategy cannot follow, whole rows, unknown lineage). */
  redactOnly: boolean;
  /** The rule's redaction text. */
  redactText: string;
  binary: 'null' | 'fail';
}

export type CompiledMasker = { masker: ValueMasker; strategy: string } | { refuse: string };

const TEXT_TYPE: ValueType = { oid: 25, kind: 'text' };

/** char(n) values are blank-padded to n characters; varchar(n) holds at most n. */
export function fitWidth(text: string, t: ValueType): string {
  if (t.fixedChars !== undefined) {
    const chars = [...text];
    return chars.length >= t.fixedChars ? chars.slice(0, t.fixedChars).join('') : text + ' '.repeat(t.fixedChars - chars.length);
  }
  if (t.maxChars !== undefined) {
    const chars = [...text];
    if (chars.length > t.maxChars) return chars.slice(0, t.maxChars).join('');
  }
  return text;
}

function isOpaque(t: ValueType): boolean {
  return t.kind === 'opaque' || (t.kind === 'array' && (t.element === undefined || isOpaque(t.element)));
}

const NULL_MASKER: ValueMasker = { mask: () => MASK_NULL, out: Buffer.alloc(0), constant: null };

function constant(value: Buffer | null): ValueMasker {
  if (value === null) return NULL_MASKER;
  return { mask: () => value.length, out: value, constant: value };
}

/** A masker from a per-value function (the generic, decoding path). */
function fromFn(fn: (value: Buffer) => Buffer | null): ValueMasker {
  const m: ValueMasker = {
    out: Buffer.alloc(0),
    mask(src, start, len) {
      const r = fn(src.subarray(start, start + len));
      if (r === null) return MASK_NULL;
      m.out = r;
      return r.length;
    },
  };
  return m;
}

/** Logical text → masked logical text (fitted) or null, for one scalar kind. */
type LogicalFn = (text: string) => string | null;

function redaction(redactText: string, kind: ScalarKind, t: ValueType): string | null {
  const r = redact(redactText, kind);
  return r === null ? null : kind === 'text' ? fitWidth(r, t) : r;
}

function logicalFn(t: ValueType, fn: StrategyFn | undefined, redactText: string): LogicalFn {
  const kind = t.kind as ScalarKind;
  const red = redaction(redactText, kind, t);
  if (!fn) return () => red;
  const st = { kind, type: t };
  const trim = t.fixedChars !== undefined;
  return (text) => {
    const m = fn(trim ? text.replace(/ +$/, '') : text, st);
    if (m === undefined) return red;
    if (m === null) return null;
    return kind === 'text' ? fitWidth(m, t) : m;
  };
}

function bufferFn(t: ValueType, format: number, logical: LogicalFn, redactText: string): (b: Buffer) => Buffer | null {
  const kind = t.kind as ScalarKind;
  const red = redaction(redactText, kind, t);
  const redBuf = red === null ? null : (writeValue(kind, format, red) ?? null);
  return (b) => {
    const text = readValue(kind, format, b);
    if (text === undefined) return redBuf;
    const m = logical(text);
    if (m === null) return null;
    return writeValue(kind, format, m) ?? redBuf;
  };
}

/** The masker of an array column: each element masked as its element type. */
function arrayFn(t: ValueType, format: number, fn: StrategyFn | undefined, redactText: string): (b: Buffer) => Buffer | null {
  const et = t.element as ValueType;
  if (format === Format.binary) {
    const elem = bufferFn(et, format, logicalFn(et, fn, redactText), redactText);
    return (b) => mapBinaryArray(b, (e) => (e === null ? null : elem(e))) ?? null;
  }
  const logical = logicalFn(et, fn, redactText);
  return (b) => {
    const r = mapTextArray(b.toString('utf8'), (v) => (v === null ? null : logical(v)));
    return r === undefined ? null : Buffer.from(r, 'utf8');
  };
}

/**
 * Compiles the masker of one column for `action`, its type and its wire format. `fastPaths`
 * false leaves out the byte-level fast paths (tests compare both: they must agree on every value).
 */
export function compileMasker(action: MaskAction, t: ValueType, format: number, fastPaths = true): CompiledMasker {
  const s = action.strategy;
  if (s.kind === 'null') return { masker: NULL_MASKER, strategy: 'null' };
  if (isOpaque(t)) {
    if (format === Format.binary && action.binary === 'fail') {
      return { refuse: `rule "${action.rule}" cannot mask this column's type in binary format and says binary: fail` };
    }
    return { masker: NULL_MASKER, strategy: 'null' };
  }
  const scalar = (t.kind === 'array' ? (t.element as ValueType) : t).kind as ScalarKind;
  const applies = !action.redactOnly && strategyApplies(s.kind, scalar);
  const fn = applies && s.kind !== 'redact' ? compileStrategy(s) : undefined;
  const redactText = s.kind === 'redact' ? s.text : action.redactText;
  const label = applies ? s.kind : redact(redactText, scalar) === null ? 'null' : 'redact';
  if (t.kind === 'array') return { masker: fromFn(arrayFn(t, format, fn, redactText)), strategy: label };
  if (!fn) {
    const red = redaction(redactText, scalar, t);
    return { masker: constant(red === null ? null : (writeValue(scalar, format, red) ?? null)), strategy: label };
  }
  const general = fromFn(bufferFn(t, format, logicalFn(t, fn, redactText), redactText));
  if (fastPaths && s.kind === 'partial' && scalar === 'text') return { masker: partialMasker(s, t, general), strategy: label };
  if (fastPaths && s.kind === 'email' && scalar === 'text') return { masker: emailMasker(s, t, general), strategy: label };
  return { masker: general, strategy: label };
}

/** The byte of a one-character ASCII mask, or -1 (the byte paths need one). */
function asciiMaskByte(maskChar: string): number {
  return maskChar.length === 1 && maskChar.charCodeAt(0) < 0x80 ? maskChar.charCodeAt(0) : -1;
}

/**
 * Writes a strategy's result for the bytes `src[start, start + len)` to `out` from `to` and returns
 * its length, or returns -1 when a byte is not ASCII.
 */
type AsciiFn = (src: Buffer, start: number, len: number, out: Buffer, to: number) => number;

/**
 * A text-type masker with a byte-level fast path for ASCII values. Precondition on `fast`: for an
 * ASCII input it writes exactly the UTF-8 bytes of the strategy's result, that result is ASCII,
 * and each of its bytes is a byte of the input or `fill`; for any other input it returns -1.
 * Then characters are bytes, so char(n) trimming and width fitting work on bytes as fitWidth()
 * does on characters. Any other value (a byte ≥ 0x80: UTF-8, or anything the general path would
 * decode differently) goes through `general` — both paths agree on every input, which test/unit/masking-fast-paths.test.ts
 * checks with random values. Without char(n) padding (spaces the value may not hold) the fast
 * path also writes straight into a caller's buffer (ValueMasker.direct).
 */
function asciiTextMasker(fast: AsciiFn, maxOut: (len: number) => number, fill: number, t: ValueType, general: ValueMasker): ValueMasker {
  const fixed = t.fixedChars;
  const max = t.maxChars;
  let scratch = Buffer.allocUnsafe(256);
  const direct: DirectMasking = {
    fill,
    maxLength: maxOut,
    // One call less per value where no varchar(n) limit applies.
    write:
      max === undefined
        ? fast
        : (src, start, len, dst, to) => {
            const w = fast(src, start, len, dst, to);
            return w > max ? max : w;
          },
  };
  const m: ValueMasker = {
    ...(fixed === undefined ? { direct } : {}),
    out: scratch,
    mask(src, start, len) {
      const all = len;
      // Trailing spaces are ASCII: trimming them first does not change what is.
      if (fixed !== undefined) while (len > 0 && src[start + len - 1] === SPACE) len--;
      const need = Math.max(maxOut(len), fixed ?? 0);
      if (scratch.length < need) scratch = Buffer.allocUnsafe(Math.max(need, scratch.length * 2));
      let w = fast(src, start, len, scratch, 0);
      if (w < 0) {
        const r = general.mask(src, start, all);
        m.out = general.out;
        return r;
      }
      m.out = scratch;
      if (fixed !== undefined) {
        if (w < fixed) scratch.fill(SPACE, w, fixed);
        w = fixed;
      } else if (max !== undefined && w > max) {
        w = max;
      }
      return w;
    },
  };
  return m;
}

function emailMasker(o: EmailOptions, t: ValueType, general: ValueMasker): ValueMasker {
  const maskByte = asciiMaskByte(o.maskChar);
  if (maskByte < 0) return general;
  return asciiTextMasker((src, start, len, out, to) => emailAscii(src, start, len, o, maskByte, out, to), emailAsciiMax, maskByte, t, general);
}

const SPACE = 0x20;

/** partial over the raw bytes (text types read the same in text and binary format). */
function partialMasker(o: PartialOptions, t: ValueType, general: ValueMasker): ValueMasker {
  const mask = Buffer.from(o.maskChar, 'utf8');
  const fixed = t.fixedChars;
  const max = t.maxChars ?? Infinity;
  const { keepFirst, keepLast } = o;
  const keep = keepFirst + keepLast;
  const maskByte = mask.length === 1 ? (mask[0] as number) : -1;
  let scratch = Buffer.allocUnsafe(256);
  const m: ValueMasker = {
    ...(maskByte >= 0 && fixed === undefined ? { inPlace: partialInPlace(o, maskByte, max) } : {}),
    out: scratch,
    mask(src, start, len) {
      const all = len;
      if (fixed !== undefined) while (len > 0 && src[start + len - 1] === SPACE) len--;
      // Values longer than their type allows (never sent by PostgreSQL) are cut by the general path.
      if (len > max || (fixed !== undefined && len > fixed && utf8Chars(src, start, len) > fixed)) {
        const r = general.mask(src, start, all);
        m.out = general.out;
        return r;
      }
      m.out = scratch;
      const need = partialBytesMax(len, mask) + (fixed ?? 0);
      if (scratch.length < need) m.out = scratch = Buffer.allocUnsafe(Math.max(need, scratch.length * 2));
      const out = m.out;
      const end = start + len;
      let ascii = maskByte >= 0;
      for (let i = start; ascii && i < end; i++) if ((src[i] as number) >= 0x80) ascii = false;
      let w: number;
      if (ascii) {
        // ASCII text and a one-byte mask: characters are bytes.
        w = 0;
        if (len <= keep) {
          for (; w < len; w++) out[w] = maskByte;
        } else {
          const tail = end - keepLast;
          for (let i = start; i < start + keepFirst; i++) out[w++] = src[i] as number;
          for (let i = start + keepFirst; i < tail; i++) out[w++] = maskByte;
          for (let i = tail; i < end; i++) out[w++] = src[i] as number;
        }
      } else {
        w = partialBytes(src, start, len, o, mask, out);
      }
      if (fixed !== undefined) {
        const chars = utf8Chars(src, start, len);
        if (chars < fixed) {
          out.fill(SPACE, w, w + fixed - chars);
          w += fixed - chars;
        }
      }
      return w;
    },
  };
  return m;
}

/** Characters of the UTF-8 bytes `src[start, start + len)`. */
function utf8Chars(src: Buffer, start: number, len: number): number {
  let chars = 0;
  for (let i = start; i < start + len; i++) if (((src[i] as number) & 0xc0) !== 0x80) chars++;
  return chars;
}

/**
 * partial on ASCII text (one-byte ASCII mask, no char(n) padding, within a varchar(n) limit):
 * characters are bytes, so the masked value is the value with its middle bytes (all of them when
 * it is too short to keep anything) set to the mask byte.
 */
function partialInPlace(o: PartialOptions, maskByte: number, max: number): InPlaceMasking {
  const { keepFirst, keepLast } = o;
  return {
    fill: maskByte,
    sameLength(src, start, len) {
      if (len > max) return false;
      for (let i = start; i < start + len; i++) if ((src[i] as number) >= 0x80) return false;
      return true;
    },
    overwrite(dst, at, len) {
      const from = len <= keepFirst + keepLast ? at : at + keepFirst;
      const to = len <= keepFirst + keepLast ? at + len : at + len - keepLast;
      for (let i = from; i < to; i++) dst[i] = maskByte;
    },
  };
}

// Content scanning -----------------------------------------------------------------------------

/** A content rule as the scanner needs it: its classifiers and how to mask what they find. */
export interface ContentRule {
  rule: string;
  classifiers: readonly Classifier[];
  strategy: MaskStrategyConfig;
  redactText: string;
}

/**
 * A masker that scans text values for content classifiers and masks what they find in place
 * (the rest of the value is kept). A match whose rule's strategy is `null` makes the whole value
 * NULL. Returns MASK_UNCHANGED for values without a match. Only for textual types (isTextual).
 */
export function contentMasker(rules: readonly ContentRule[], t: ValueType, format: number): ValueMasker | undefined {
  if (!isTextual(t)) return undefined;
  const classifiers = rules.flatMap((r) => r.classifiers);
  const ruleOf = new Map<string, ContentRule>();
  for (const r of rules) for (const c of r.classifiers) if (!ruleOf.has(c.name)) ruleOf.set(c.name, r);
  const fns = new Map<ContentRule, StrategyFn | undefined>(rules.map((r) => [r, r.strategy.kind === 'redact' ? undefined : compileStrategy(r.strategy)]));
  const prefilters = classifiers.map((c) => c.mayMatch);
  const anyUnfiltered = prefilters.some((p) => p === undefined);
  const textSt = { kind: 'text' as const, type: TEXT_TYPE };

  /** Masked text, null for SQL NULL, or undefined when nothing matched. */
  const scan = (text: string, kind: ScalarKind): string | null | undefined => {
    const matches = findMatches(text, classifiers);
    if (matches.length === 0) return undefined;
    let out = '';
    let last = 0;
    for (const m of matches) {
      const rule = ruleOf.get(m.classifier) as ContentRule;
      const fn = fns.get(rule);
      const found = text.slice(m.start, m.end);
      const masked = fn ? fn(found, textSt) : rule.strategy.kind === 'redact' ? rule.strategy.text : rule.redactText;
      if (masked === null) return null;
      out += text.slice(last, m.start) + (masked ?? rule.redactText);
      last = m.end;
    }
    out += text.slice(last);
    if (kind === 'json' || kind === 'jsonb') {
      try {
        JSON.parse(out);
      } catch {
        return JSON.stringify(rules[0]?.redactText ?? '****');
      }
    }
    return out;
  };

  const scalar = (et: ValueType, b: Buffer, fmt: number): Buffer | null | undefined => {
    const kind = et.kind as ScalarKind;
    const text = readValue(kind, fmt, b);
    if (text === undefined) return null; // unreadable: fail closed
    const r = scan(text, kind);
    if (r === undefined || r === null) return r;
    return writeValue(kind, fmt, kind === 'text' ? fitWidth(r, et) : r) ?? null;
  };

  const m: ValueMasker = {
    out: Buffer.alloc(0),
    mask(src, start, len) {
      if (!anyUnfiltered && !prefilters.some((p) => p?.(src, start, start + len))) return MASK_UNCHANGED;
      const b = src.subarray(start, start + len);
      let r: Buffer | null | undefined;
      if (t.kind !== 'array') {
        r = scalar(t, b, format);
      } else {
        const et = t.element as ValueType;
        let changed = false;
        if (format === Format.binary) {
          r = mapBinaryArray(b, (e) => {
            if (e === null) return null;
            const x = scalar(et, e, format);
            if (x === undefined) return e;
            changed = true;
            return x;
          }) ?? null;
        } else {
          const s = mapTextArray(b.toString('utf8'), (v) => {
            if (v === null) return null;
            const x = scan(v, et.kind as ScalarKind);
            if (x === undefined) return v;
            changed = true;
            return x === null ? null : et.kind === 'text' ? fitWidth(x, et) : x;
          });
          r = s === undefined ? null : Buffer.from(s, 'utf8');
        }
        if (r !== null && !changed) return MASK_UNCHANGED;
      }
      if (r === undefined) return MASK_UNCHANGED;
      if (r === null) return MASK_NULL;
      m.out = r;
      return r.length;
    },
  };
  return m;
}
