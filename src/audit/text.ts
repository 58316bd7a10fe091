// Small formatting helpers for terminal and HTML output. Every value that came from an agent or a
// database (statement text, parameters, row values, names) passes through `printable` before it
// reaches a terminal, so control characters cannot drive the reviewer's terminal, and through
// `escapeHtml` before it reaches a page.

const CONTROL = /[\u0000-\u0008\u000b-\u001f\u007f-\u009f\u061c\u200e\u200f\u2028\u2029\u202a-\u202e\u2066-\u2069]/g;
/** What JSON.stringify leaves as it is but a terminal or a page acts on: C1 controls (U+009B is a CSI), bidi controls and marks. */
const JSON_UNSAFE = /[\u007f-\u009f\u061c\u200e\u200f\u2028\u2029\u202a-\u202e\u2066-\u2069]/g;

/** Escapes control and bidi characters as \u…; keeps '\n' and '\t' unless `singleLine`. */
export function printable(s: string, singleLine = false): string {
  const out = s.replace(CONTROL, (c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, '0')}`);
  return singleLine ? out.replace(/\n/g, '\\n').replace(/\t/g, '\\t') : out;
}

/**
 * JSON.stringify, with the characters it leaves raw that drive a terminal or reorder what a reader
 * sees written as \u escapes: the same JSON value, safe to print (`--format json`).
 */
export function terminalJson(value: unknown, space?: number): string {
  return JSON.stringify(value, null, space).replace(JSON_UNSAFE, (c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, '0')}`);
}

/** For a page: control and bidi characters shown as \u escapes (printable), then HTML-escaped. */
export function htmlText(s: string): string {
  return escapeHtml(printable(s));
}

export function escapeHtml(s: string): string {
  return s.replace(/[&<>"']/g, (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' })[c] as string);
}

/** Shortens to `max` characters with an ellipsis. */
export function shorten(s: string, max: number): string {
  return s.length <= max ? s : `${s.slice(0, Math.max(0, max - 1))}…`;
}

export function formatBytes(n: number): string {
  if (n < 1024) return `${n} B`;
  if (n < 1024 * 1024) return `${(n / 1024).toFixed(1)} KiB`;
  if (n < 1024 * 1024 * 1024) return `${(n / 1024 / 1024).toFixed(1)} MiB`;
  return `${(n / 1024 / 1024 / 1024).toFixed(2)} GiB`;
}

export function formatMs(ms: number): string {
  if (ms < 1) return `${ms.toFixed(2)} ms`;
  if (ms < 1000) return `${ms.toFixed(1)} ms`;
  if (ms < 120_000) return `${(ms / 1000).toFixed(2)} s`;
  return `${(ms / 60_000).toFixed(1)} min`;
}

/** "+12.345s" offsets in a timeline. */
export function formatOffset(ms: number): string {
  return `+${(ms / 1000).toFixed(3)}s`;
}

export function indent(text: string, prefix: string): string {
  return text
    .split('\n')
    .map((l) => `${prefix}${l}`)
    .join('\n');
}

/** A plain text table: header, rows; cells already printable. */
export function textTable(header: string[], rows: string[][]): string {
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => (r[i] ?? '').length)));
  const line = (cells: string[]) => cells.map((c, i) => c.padEnd(widths[i] ?? 0)).join('  ').trimEnd();
  return [line(header), line(widths.map((w) => '-'.repeat(w))), ...rows.map(line)].join('\n');
}

export function countText(n: number, one: string, many = `${one}s`): string {
  return `${n} ${n === 1 ? one : many}`;
}

export interface Clipped {
  value: string;
  cut: boolean;
  bytes: number;
}

/** Cuts `s` to at most `maxBytes` UTF-8 bytes, at a character boundary. */
export function clip(s: string, maxBytes: number): Clipped {
  if (s.length * 3 <= maxBytes) return { value: s, cut: false, bytes: -1 };
  const bytes = Buffer.byteLength(s);
  if (bytes <= maxBytes) return { value: s, cut: false, bytes };
  const buf = Buffer.from(s);
  // Cut before a character, not inside its UTF-8 sequence (which would decode as U+FFFD).
  let end = maxBytes;
  while (end > 0 && ((buf[end] ?? 0) & 0xc0) === 0x80) end--;
  return { value: buf.subarray(0, end).toString('utf8'), cut: true, bytes };
}
