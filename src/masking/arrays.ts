// Arrays: masking applies to every element, and the array keeps its shape. Text format is
// array_out's literal (`{a,"b c",NULL}`, nested braces for more dimensions, an optional
// `[1:2]=` bounds prefix); binary format is array_send's (src/backend/utils/adt/arrayfuncs.c):
// int32 ndim, int32 flags (1 = has nulls), uint32 element type, ndim × (int32 size, int32 lower
// bound), then each element as int32 length (-1 = NULL) and bytes.

const MAX_DIMS = 6;

function quoteElement(v: string): string {
  if (v === '' || /[{}",\\\s]/.test(v) || v.toUpperCase() === 'NULL') return `"${v.replace(/["\\]/g, '\\$&')}"`;
  return v;
}

/** Rewrites each element of a text-format array literal; undefined when the literal is malformed. */
export function mapTextArray(text: string, fn: (value: string | null) => string | null, delim = ','): string | undefined {
  let i = 0;
  let out = '';
  if (text.startsWith('[')) {
    const eq = text.indexOf('=');
    if (eq < 0) return undefined;
    out = text.slice(0, eq + 1);
    i = eq + 1;
  }
  if (text[i] !== '{') return undefined;
  let depth = 0;
  while (i < text.length) {
    const c = text[i] as string;
    if (c === '{') {
      if (++depth > MAX_DIMS) return undefined;
      out += c;
      i++;
    } else if (c === '}') {
      if (--depth < 0) return undefined;
      out += c;
      i++;
      if (depth === 0) break;
    } else if (c === delim) {
      out += c;
      i++;
    } else if (depth === 0) {
      return undefined;
    } else if (c === '"') {
      let v = '';
      i++;
      for (;;) {
        if (i >= text.length) return undefined;
        const ch = text[i] as string;
        if (ch === '\\') {
          if (i + 1 >= text.length) return undefined;
          v += text[i + 1];
          i += 2;
        } else if (ch === '"') {
          i++;
          break;
        } else {
          v += ch;
          i++;
        }
      }
      const m = fn(v);
      out += m === null ? 'NULL' : quoteElement(m);
    } else {
      let j = i;
      while (j < text.length && text[j] !== delim && text[j] !== '}' && text[j] !== '{') j++;
      const raw = text.slice(i, j).trim();
      i = j;
      const m = fn(raw.toUpperCase() === 'NULL' ? null : raw);
      out += m === null ? 'NULL' : quoteElement(m);
    }
  }
  if (depth !== 0 || i !== text.length) return undefined;
  return out;
}

/** Rewrites each element of a binary-format array; undefined when the bytes are malformed. */
export function mapBinaryArray(b: Buffer, fn: (value: Buffer | null) => Buffer | null): Buffer | undefined {
  if (b.length < 12) return undefined;
  const ndim = b.readInt32BE(0);
  if (ndim < 0 || ndim > MAX_DIMS || b.length < 12 + 8 * ndim) return undefined;
  let count = ndim === 0 ? 0 : 1;
  for (let d = 0; d < ndim; d++) {
    const size = b.readInt32BE(12 + 8 * d);
    if (size < 0) return undefined;
    count *= size;
    if (count > b.length) return undefined; // every element takes at least 4 bytes
  }
  const header = 12 + 8 * ndim;
  const parts: (Buffer | null)[] = [];
  let p = header;
  let size = header;
  let hasNull = false;
  for (let k = 0; k < count; k++) {
    if (p + 4 > b.length) return undefined;
    const len = b.readInt32BE(p);
    p += 4;
    let value: Buffer | null = null;
    if (len >= 0) {
      if (p + len > b.length) return undefined;
      value = b.subarray(p, p + len);
      p += len;
    } else if (len !== -1) {
      return undefined;
    }
    const m = value === null ? null : fn(value);
    parts.push(m);
    if (m === null) hasNull = true;
    size += 4 + (m ? m.length : 0);
  }
  if (p !== b.length) return undefined;
  const out = Buffer.allocUnsafe(size);
  b.copy(out, 0, 0, header);
  out.writeInt32BE(hasNull ? 1 : 0, 4);
  let w = header;
  for (const m of parts) {
    out.writeInt32BE(m ? m.length : -1, w);
    w += 4;
    if (m) {
      m.copy(out, w);
      w += m.length;
    }
  }
  return out;
}
