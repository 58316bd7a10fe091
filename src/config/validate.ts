// The validation toolkit every config section is written with. A `Field` is one YAML value with
// its key path and position; its typed readers (string, oneOf, integer, boolean, duration, bytes,
// list, section, entries, textFile, directoryPath) return the value, or record a problem and
// return undefined. A `Section` is a map with a fixed set of keys: unknown and duplicate keys are
// reported when it is opened, so a section reader only asks for what it knows. Readers never throw
// and never stop at the first problem; the loader throws once, with all of them (problems.ts).
//
// Writing a section (see sections/sessions.ts for a complete one):
//
//   const s = field.section(['shutdown_grace', 'login_timeout']);   // undefined: not a map
//   if (!s) return undefined;
//   return {
//     shutdownGrace: s.get('shutdown_grace').duration({ max: HOUR }) ?? 30 * SECOND,
//     loginTimeout: s.need('login_timeout').duration({ min: SECOND }),   // required
//   };
//
// Invariant: a reader returns undefined for an invalid value only after recording a problem, so
// a default applied with `??` never hides an error.

import { readFileSync, statSync } from 'node:fs';
import { resolve as resolvePath } from 'node:path';
import { isMap, isNode, isScalar, isSeq, isAlias, type Document, type LineCounter, type Node } from 'yaml';
import { hasReference, interpolate } from './interpolate.js';
import type { Problem } from './problems.js';
import { didYouMean } from './suggest.js';
import { formatBytes, formatDuration, parseByteSize, parseDuration, MiB } from './units.js';

/** Aliases (*name) are expanded at most this many times per file: no "billion laughs". */
const MAX_ALIAS_EXPANSIONS = 1000;
/** Longest value quoted back in a message. */
const MAX_SHOWN = 60;

export interface Range {
  min?: number;
  max?: number;
}

export interface StringOptions {
  /** Never quote the value back (passwords, tokens). */
  secret?: boolean;
  /** Accept "" (default: an empty string is an error). */
  allowEmpty?: boolean;
  /** Further check: returns the reason (e.g. "must be a host name") when the value is wrong. */
  check?: (value: string) => string | undefined;
}

/** Where problems are collected, and what every field needs to know about its file. */
export class Reader {
  readonly problems: Problem[] = [];
  private aliasesLeft = MAX_ALIAS_EXPANSIONS;

  constructor(
    readonly source: string,
    /** Relative paths in the file are resolved against this (the config file's directory). */
    readonly baseDir: string,
    readonly env: NodeJS.ProcessEnv,
    private readonly doc: Document,
    private readonly lines: LineCounter,
    /**
     * A value whose `${env:NAME}` is not set stands in as "(NAME not set)" for a string, and as the
     * lowest value its field accepts for a number, duration, size, boolean or choice, unchecked
     * (the transcript readers load warden's configuration without its secrets).
     */
    readonly unsetStandIns = false,
  ) {}

  /** The document's top-level value. */
  root(): Field {
    return new Field(this, '', this.doc.contents ?? undefined, 0, this.doc.contents !== null);
  }

  report(path: string, offset: number | undefined, reason: string): undefined {
    if (offset === undefined) {
      this.problems.push({ source: this.source, path, reason });
    } else {
      const { line, col } = this.lines.linePos(offset);
      this.problems.push({ source: this.source, line, col, path, reason });
    }
    return undefined;
  }

  line(offset: number): number {
    return this.lines.linePos(offset).line;
  }

  /** Follows an alias to its anchored node (bounded). */
  deref(node: unknown, path: string, offset: number): unknown {
    if (!isAlias(node)) return node;
    if (this.aliasesLeft-- <= 0) {
      return this.report(path, offset, `too many alias expansions (more than ${MAX_ALIAS_EXPANSIONS}); write the values out`);
    }
    const target = node.resolve(this.doc);
    if (target === undefined) return this.report(path, offset, `alias *${node.source} refers to no anchor`);
    return target;
  }
}

function isNull(node: unknown): boolean {
  return isScalar(node) && node.value === null;
}

function startOf(node: unknown): number | undefined {
  return isNode(node) ? (node as Node).range?.[0] : undefined;
}

function quote(text: string): string {
  const shown = text.length > MAX_SHOWN ? `${text.slice(0, MAX_SHOWN)}…` : text;
  return JSON.stringify(shown);
}

function show(value: unknown): string {
  if (typeof value === 'string') return quote(value);
  if (typeof value === 'number' || typeof value === 'boolean') return String(value);
  if (value === null) return 'nothing';
  return 'a tagged value';
}

function kindOf(node: unknown): string {
  if (isMap(node)) return 'a map';
  if (isSeq(node)) return 'a list';
  if (isScalar(node)) return show(node.value);
  return 'an unsupported value';
}

function joinPath(parent: string, key: string): string {
  const part = /^[A-Za-z0-9_-]+$/.test(key) ? key : JSON.stringify(key);
  return parent === '' ? part : `${parent}.${part}`;
}

function rangeText(range: Range, fmt: (n: number) => string): string {
  if (range.min !== undefined && range.max !== undefined) return `between ${fmt(range.min)} and ${fmt(range.max)}`;
  if (range.min !== undefined) return `at least ${fmt(range.min)}`;
  if (range.max !== undefined) return `at most ${fmt(range.max)}`;
  return '';
}

function inRange(n: number, range: Range): boolean {
  return (range.min === undefined || n >= range.min) && (range.max === undefined || n <= range.max);
}

/** A scalar after ${env:…} interpolation; `shown` is safe to print (never an env value). */
interface ScalarValue {
  value: unknown;
  fromEnv: boolean;
  shown: string;
  /** An unset `${env:NAME}` read with Reader.unsetStandIns: `value` is "(NAME not set)". */
  unset?: true;
}

/** One value in the file: its key path, its position, and typed readers. */
export class Field {
  /** False when the key is missing or has no value (`key:` or `key: ~`). */
  readonly present: boolean;
  private readonly node: unknown;
  /** Where problems about this field point: the value, or the key when there is no value. */
  private readonly offset: number;
  /** The key's position (the item's, in a list): where "is required" points for keys inside. */
  private readonly keyOffset: number;

  constructor(
    private readonly reader: Reader,
    readonly path: string,
    node: unknown,
    keyOffset: number,
    /** The key is written in the file (perhaps with no value). */
    private readonly declared: boolean,
  ) {
    const value = node === undefined ? undefined : reader.deref(node, path, keyOffset);
    this.present = value !== undefined && !isNull(value);
    this.node = this.present ? value : undefined;
    this.offset = (this.present ? startOf(node) : undefined) ?? keyOffset;
    this.keyOffset = keyOffset;
  }

  /** Records a problem at this field. Returns undefined so a reader can `return f.fail(…)`. */
  fail(reason: string): undefined {
    return this.reader.report(this.path, this.offset, reason);
  }

  /** Line of this field, for messages that point from one place to another ("also at line 7"). */
  get line(): number {
    return this.reader.line(this.offset);
  }

  /** Number of entries of a map or items of a list as written (valid or not); else undefined. */
  get size(): number | undefined {
    return isMap(this.node) || isSeq(this.node) ? this.node.items.length : undefined;
  }

  /** Records "is required" when the field is missing; returns the field for chaining. */
  required(hint = ''): this {
    if (!this.present) this.fail(this.declared ? `is required but has no value${hint}` : `is required${hint}`);
    return this;
  }

  // ---- scalars ------------------------------------------------------------------------------

  private scalar(expected: string): ScalarValue | undefined {
    if (!this.present) return undefined;
    const node = this.node;
    if (!isScalar(node)) return this.fail(`must be ${expected}, got ${kindOf(node)}`);
    const raw = node.value;
    if (typeof raw !== 'string' || !hasReference(raw)) return { value: raw, fromEnv: false, shown: show(raw) };
    const result = interpolate(raw, this.reader.env);
    if (this.reader.unsetStandIns && result.missing.length > 0 && !result.malformed) {
      return { value: result.missing.map((name) => `(${name} not set)`).join(' '), fromEnv: true, shown: quote(raw), unset: true };
    }
    for (const name of result.missing) this.fail(`environment variable ${name} is not set`);
    if (result.malformed) this.fail('contains "${" that is not an ${env:NAME} reference (write "$${" for a literal "${")');
    if (result.value === undefined) return undefined;
    const shown = result.fromEnv ? `the value from ${quote(raw)}` : quote(result.value);
    return { value: result.value, fromEnv: result.fromEnv, shown };
  }

  private text(opts: StringOptions): { value: string; shown: string; fromEnv: boolean } | undefined {
    const s = this.scalar('a string');
    if (!s) return undefined;
    if (s.unset) return { value: s.value as string, shown: s.shown, fromEnv: true };
    const shown = opts.secret ? 'a hidden value' : s.shown;
    if (typeof s.value !== 'string') {
      const quoteIt = typeof s.value === 'number' || typeof s.value === 'boolean' ? '; put it in quotes' : '';
      return this.fail(opts.secret ? `must be a string${quoteIt}` : `must be a string, got ${s.shown}${quoteIt}`);
    }
    if (s.value === '' && !opts.allowEmpty) return this.fail(s.fromEnv ? `must not be empty (${s.shown} is empty)` : 'must not be empty');
    const reason = opts.check?.(s.value);
    if (reason !== undefined) return this.fail(opts.secret ? reason : `${reason}, got ${shown}`);
    return { value: s.value, shown, fromEnv: s.fromEnv };
  }

  /** A string; `${env:NAME}` references are resolved. */
  string(opts: StringOptions = {}): string | undefined {
    return this.text(opts)?.value;
  }

  /** One of a fixed set of words. */
  oneOf<T extends string>(values: readonly T[]): T | undefined {
    const s = this.scalar(`one of ${values.join(', ')}`);
    if (!s) return undefined;
    if (s.unset) return values[0];
    if (typeof s.value === 'string' && (values as readonly string[]).includes(s.value)) return s.value as T;
    const hint = typeof s.value === 'string' && !s.fromEnv ? didYouMean(s.value, values) : '';
    return this.fail(`must be one of ${values.join(', ')}, got ${s.shown}${hint}`);
  }

  integer(range: Range = {}): number | undefined {
    const s = this.scalar('an integer');
    if (!s) return undefined;
    if (s.unset) return range.min ?? 0;
    let n: number | undefined;
    if (typeof s.value === 'number') n = s.value;
    else if (s.fromEnv && typeof s.value === 'string' && /^\s*[+-]?\d+\s*$/.test(s.value)) n = Number(s.value);
    if (n === undefined || !Number.isSafeInteger(n) || !inRange(n, range)) {
      const bounds = rangeText(range, String);
      return this.fail(`must be an integer${bounds === '' ? '' : ` ${bounds}`}, got ${s.shown}`);
    }
    return n;
  }

  boolean(): boolean | undefined {
    const s = this.scalar('true or false');
    if (!s) return undefined;
    if (s.unset) return false;
    if (typeof s.value === 'boolean') return s.value;
    if (s.fromEnv && (s.value === 'true' || s.value === 'false')) return s.value === 'true';
    return this.fail(`must be true or false, got ${s.shown}`);
  }

  /** "500ms", "30s", "5m", "2h", "1d" or a number of seconds → milliseconds; `range` in ms. */
  duration(range: Range = {}): number | undefined {
    const s = this.scalar('a duration');
    if (!s) return undefined;
    if (s.unset) return range.min ?? 0;
    const ms = typeof s.value === 'number' || typeof s.value === 'string' ? parseDuration(s.value) : undefined;
    if (ms === undefined) {
      return this.fail(`must be a duration such as "500ms", "30s", "5m", "2h", "1d" or a number of seconds, got ${s.shown}`);
    }
    if (!inRange(ms, range)) return this.fail(`must be ${rangeText(range, formatDuration)}, got ${s.shown}`);
    return ms;
  }

  /** "64KiB", "16MiB", "1GiB" or a number of bytes; `range` in bytes. */
  bytes(range: Range = {}): number | undefined {
    const s = this.scalar('a size');
    if (!s) return undefined;
    if (s.unset) return range.min ?? 0;
    const parsed = typeof s.value === 'number' || typeof s.value === 'string' ? parseByteSize(s.value) : { error: 'must be a size' };
    if ('error' in parsed) return this.fail(`${parsed.error}, got ${s.shown}`);
    if (!inRange(parsed.bytes, range)) return this.fail(`must be ${rangeText(range, formatBytes)}, got ${s.shown}`);
    return parsed.bytes;
  }

  // ---- collections --------------------------------------------------------------------------

  /**
   * A list; `item` reads each element (its Field path is `path[i]`). Returns the valid items;
   * empty elements (`- `) are reported here and never passed to `item`.
   */
  list<T>(item: (f: Field, index: number) => T | undefined, opts: { nonEmpty?: boolean } = {}): T[] | undefined {
    if (!this.present) return undefined;
    const node = this.node;
    if (!isSeq(node)) {
      const hint = isScalar(node) ? ' (write a single item as [item] or as a "- item" line)' : '';
      return this.fail(`must be a list, got ${kindOf(node)}${hint}`);
    }
    if (opts.nonEmpty && node.items.length === 0) return this.fail('must not be an empty list');
    const out: T[] = [];
    node.items.forEach((child, index) => {
      const f = new Field(this.reader, `${this.path}[${index}]`, child, startOf(child) ?? this.offset, true);
      if (!f.present) {
        f.fail('is an empty list item');
        return;
      }
      const value = item(f, index);
      if (value !== undefined) out.push(value);
    });
    return out;
  }

  /** A list of strings. */
  strings(opts: StringOptions & { nonEmpty?: boolean } = {}): string[] | undefined {
    return this.list((f) => f.string(opts), opts);
  }

  /**
   * A map with a fixed set of keys. Unknown keys (with a "did you mean" hint) and duplicate
   * keys are reported here. A missing or empty field gives an empty section (defaults apply);
   * a value that is not a map gives undefined.
   */
  section<K extends string>(keys: readonly K[]): Section<K> | undefined {
    if (!this.present) return new Section<K>(this.reader, this.path, this.offset, this.keyOffset, new Map());
    const pairs = this.pairs();
    if (!pairs) return undefined;
    for (const [key, pair] of pairs) {
      if (!(keys as readonly string[]).includes(key)) {
        const hint = key === '<<' ? ' (YAML merge keys are not supported; write the keys out)' : didYouMean(key, keys);
        this.reader.report(joinPath(this.path, key), pair.keyOffset, `unknown key${hint}`);
      }
    }
    return new Section<K>(this.reader, this.path, this.offset, this.keyOffset, pairs);
  }

  /**
   * A map keyed by names the user chooses (`targets: { shop: …, crm: … }`). Each entry's Field
   * path is `path.name`; `check` validates the name (reported at the key).
   */
  entries(opts: { check?: (name: string) => string | undefined } = {}): Array<[string, Field]> | undefined {
    if (!this.present) return undefined;
    const pairs = this.pairs();
    if (!pairs) return undefined;
    const out: Array<[string, Field]> = [];
    for (const [name, pair] of pairs) {
      const path = joinPath(this.path, name);
      const reason = opts.check?.(name);
      if (reason !== undefined) {
        this.reader.report(path, pair.keyOffset, `${reason}, got ${quote(name)}`);
        continue;
      }
      const f = new Field(this.reader, path, pair.value, pair.keyOffset, true);
      if (!f.present) {
        f.fail('has no value');
        continue;
      }
      out.push([name, f]);
    }
    return out;
  }

  private pairs(): Map<string, KeyedValue> | undefined {
    const node = this.node;
    if (!isMap(node)) return this.fail(`must be a map of keys and values, got ${kindOf(node)}`);
    const pairs = new Map<string, KeyedValue>();
    for (const pair of node.items) {
      const keyNode = this.reader.deref(pair.key, this.path, this.offset);
      const keyOffset = startOf(pair.key) ?? this.offset;
      if (!isScalar(keyNode) || (typeof keyNode.value !== 'string' && typeof keyNode.value !== 'number')) {
        this.reader.report(this.path, keyOffset, `keys must be plain names, got ${kindOf(keyNode)}`);
        continue;
      }
      const key = String(keyNode.value);
      const first = pairs.get(key);
      if (first) {
        this.reader.report(joinPath(this.path, key), keyOffset, `duplicate key (first written at line ${this.reader.line(first.keyOffset)})`);
        continue;
      }
      pairs.set(key, { keyOffset, value: pair.value });
    }
    return pairs;
  }

  // ---- files --------------------------------------------------------------------------------

  /** `relative` resolved against the config file's directory (for defaults of path fields). */
  resolvePath(relative: string): string {
    return resolvePath(this.reader.baseDir, relative);
  }

  /** A file path, resolved against the config file's directory (not opened). */
  filePath(): string | undefined {
    return this.file()?.path;
  }

  private file(): { path: string; shown: string } | undefined {
    const t = this.text({});
    if (!t) return undefined;
    const path = resolvePath(this.reader.baseDir, t.value);
    // An env-provided path is not shown; a written one is shown resolved, which is what was tried.
    return { path, shown: t.fromEnv ? t.shown : JSON.stringify(path) };
  }

  /** Checks the file exists and can be read; returns its absolute path. */
  readableFile(what: string, maxBytes = MiB): string | undefined {
    return this.textFile(what, maxBytes)?.path;
  }

  /**
   * Reads a small text file (PEM, JSON) named by this field. `ifMissing` is added to the reason
   * when the file does not exist (e.g. why an explicit path must).
   */
  textFile(what: string, maxBytes = MiB, ifMissing = ''): { path: string; text: string; shown: string } | undefined {
    const file = this.file();
    if (!file) return undefined;
    try {
      const stat = statSync(file.path);
      if (!stat.isFile()) return this.fail(`${file.shown} is not a file (a ${what} file was expected)`);
      if (stat.size > maxBytes) return this.fail(`${file.shown} is too large for a ${what} file (${stat.size} bytes, at most ${formatBytes(maxBytes)})`);
      return { path: file.path, text: readFileSync(file.path, 'utf8'), shown: file.shown };
    } catch (err) {
      const hint = ifMissing !== '' && errnoOf(err) === 'ENOENT' ? ` ${ifMissing}` : '';
      return this.fail(`cannot read ${what} file ${file.shown}: ${fsReason(err)}${hint}`);
    }
  }

  /**
   * A directory warden creates when it is missing (data_dir, transcripts.dir): resolved like a
   * file path, and refused when something that is not a directory is in the way. Only looks:
   * nothing is created here.
   */
  directoryPath(what: string): string | undefined {
    const file = this.file();
    if (!file) return undefined;
    try {
      if (!statSync(file.path).isDirectory()) return this.fail(`${file.shown} is not a directory (a ${what} was expected)`);
    } catch (err) {
      if (errnoOf(err) !== 'ENOENT') return this.fail(`cannot use ${file.shown} as the ${what}: ${fsReason(err)}`);
    }
    return file.path;
  }
}

interface KeyedValue {
  keyOffset: number;
  value: unknown;
}

function errnoOf(err: unknown): string | undefined {
  return (err as NodeJS.ErrnoException | undefined)?.code;
}

function fsReason(err: unknown): string {
  const code = errnoOf(err);
  if (code === 'ENOENT') return 'no such file';
  if (code === 'EACCES' || code === 'EPERM') return 'permission denied';
  if (code === 'ENOTDIR') return 'a part of the path is not a directory';
  return code ?? (err instanceof Error ? err.message : String(err));
}

/** A map with known keys, opened by Field.section(). */
export class Section<K extends string> {
  constructor(
    private readonly reader: Reader,
    readonly path: string,
    /** The map itself (problems about the whole section). */
    private readonly offset: number,
    /** The key the map is written under (a missing key inside it points here). */
    private readonly keyOffset: number,
    private readonly pairs: ReadonlyMap<string, KeyedValue>,
  ) {}

  get(key: K): Field {
    const pair = this.pairs.get(key);
    return new Field(this.reader, joinPath(this.path, key), pair?.value, pair?.keyOffset ?? this.keyOffset, pair !== undefined);
  }

  /** get(key).required(hint). */
  need(key: K, hint = ''): Field {
    return this.get(key).required(hint);
  }

  /** True when the key is written with a value. */
  has(key: K): boolean {
    return this.get(key).present;
  }

  /** A known key that must not be used here (e.g. access_token on a postgres target). */
  forbid(key: K, reason: string): void {
    const f = this.get(key);
    if (f.present) f.fail(reason);
  }

  /** Records a problem about the section as a whole (e.g. "needs jwks_uri or jwks_file"). */
  fail(reason: string): undefined {
    return this.reader.report(this.path, this.offset, reason);
  }
}
