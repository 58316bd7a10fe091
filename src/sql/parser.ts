// PostgreSQL's own parser (libpg_query compiled to WASM). The module loads asynchronously once;
// after `initSqlParser()` every call here is synchronous, so the hot path never awaits.
import v8 from 'node:v8';
import {
  loadModule,
  normalizeSync,
  parseSync,
  type Node,
  type ParseResult,
} from 'libpg-query';

let ready = false;
let loading: Promise<void> | undefined;

/** Loads the WASM parser. Safe to call more than once; later calls share the first load. */
export function initSqlParser(): Promise<void> {
  if (ready) return Promise.resolve();
  // libpg-query is PostgreSQL's whole parser compiled to WebAssembly. V8 would tier its hot
  // functions up to TurboFan in background threads, and for a module this size that compile
  // work took a third of warden's CPU for the first minutes of load (measured with perf under
  // pgbench). Parses are cached, so the baseline (Liftoff) code is fast enough: keep to it.
  if (!loading) v8.setFlagsFromString('--liftoff-only');
  loading ??= loadModule().then(() => {
    ready = true;
  });
  return loading;
}

export function isSqlParserReady(): boolean {
  return ready;
}

function assertReady(): void {
  if (!ready) throw new Error('SQL parser used before initSqlParser() resolved');
}

/** One statement of a (possibly multi-statement) text, as the parser located it. */
export interface RawStatement {
  /** The parse tree, e.g. `{ SelectStmt: {...} }`. */
  tree: Node;
  /** The statement's own text (no separating semicolon), sliced from the input. */
  text: string;
  /** Offset of `text` in the input, in UTF-16 code units (JavaScript string indices). */
  start: number;
}

export type ParseOutcome = { ok: true; statements: RawStatement[] } | { ok: false; error: string };

/** Parses `sql` into its statements. A syntax error, or anything the parser throws, is `ok: false`. */
export function parseStatements(sql: string): ParseOutcome {
  assertReady();
  // libpg_query rejects the empty string; PostgreSQL answers it with EmptyQueryResponse.
  if (sql.length === 0) return { ok: true, statements: [] };
  let result: ParseResult;
  try {
    result = parseSync(sql);
  } catch (err) {
    return { ok: false, error: errorText(err) };
  }
  const raws = result.stmts ?? [];
  const slicer = new TextSlicer(sql);
  const statements: RawStatement[] = [];
  for (const raw of raws) {
    if (!raw.stmt) return { ok: false, error: 'parser returned a statement without a tree' };
    // stmt_location / stmt_len are byte offsets into the UTF-8 text; a zero length means "to the end".
    const from = raw.stmt_location ?? 0;
    const len = raw.stmt_len ?? 0;
    const { text, start } = slicer.slice(from, len === 0 ? undefined : from + len);
    statements.push({ tree: raw.stmt, text, start });
  }
  return { ok: true, statements };
}

/**
 * The statement with literals replaced by `$n` (libpg_query's normalization), for display. Should
 * that fail, literals are blanked by pattern instead, so a display never shows values.
 */
export function normalizeStatement(text: string): string {
  assertReady();
  try {
    return normalizeSync(text);
  } catch {
    return blankLiterals(text);
  }
}

/** Replaces quoted strings, dollar-quoted bodies and numbers with `?`. */
export function blankLiterals(text: string): string {
  return text
    .replace(/\$([A-Za-z_][A-Za-z0-9_]*)?\$[\s\S]*?\$\1\$/g, '?')
    .replace(/(?:[EeBbXxNn]|[Uu]&)?'(?:[^']|'')*'/g, '?')
    .replace(/(?<![\w$])\d+(?:\.\d*)?(?:[eE][-+]?\d+)?/g, '?');
}

function errorText(err: unknown): string {
  if (err instanceof Error) return err.message;
  return String(err);
}

/** Cuts byte ranges of a UTF-8 encoded string back into JavaScript substrings. */
class TextSlicer {
  private readonly bytes: Buffer | undefined;

  constructor(private readonly sql: string) {
    // ASCII texts (the common case) have byte offsets equal to string offsets.
    this.bytes = Buffer.byteLength(sql, 'utf8') === sql.length ? undefined : Buffer.from(sql, 'utf8');
  }

  slice(fromByte: number, toByte: number | undefined): { text: string; start: number } {
    if (!this.bytes) {
      const raw = this.sql.slice(fromByte, toByte);
      const lead = raw.length - raw.trimStart().length;
      return { text: raw.trim(), start: fromByte + lead };
    }
    const raw = this.bytes.subarray(fromByte, toByte).toString('utf8');
    const prefix = this.bytes.subarray(0, fromByte).toString('utf8');
    const lead = raw.length - raw.trimStart().length;
    return { text: raw.trim(), start: prefix.length + lead };
  }
}
