// Small helpers over libpg_query's JSON parse trees. A tree node is an object with one key, the
// PostgreSQL node name (`{ SelectStmt: {...} }`); fields typed as a specific struct in the
// protobuf (e.g. `UpdateStmt.relation`) arrive unwrapped, as the struct itself.
import type { Node, RangeVar } from 'libpg-query';

/** A node's PostgreSQL name and body, or undefined for something that is not a wrapped node. */
export function unwrap(node: unknown): { tag: string; body: Record<string, unknown> } | undefined {
  if (node === null || typeof node !== 'object' || Array.isArray(node)) return undefined;
  const keys = Object.keys(node);
  if (keys.length !== 1) return undefined;
  const tag = keys[0]!;
  const first = tag.charCodeAt(0);
  if (first < 65 || first > 90) return undefined; // node names start with an upper-case letter
  const body = (node as Record<string, unknown>)[tag];
  if (body === null || typeof body !== 'object' || Array.isArray(body)) return undefined;
  return { tag, body: body as Record<string, unknown> };
}

export function tagOf(node: unknown): string | undefined {
  return unwrap(node)?.tag;
}

/** The body of `node` when it is a `tag` node. */
export function as<T>(node: unknown, tag: string): T | undefined {
  const u = unwrap(node);
  return u && u.tag === tag ? (u.body as T) : undefined;
}

/** `String` node value (identifiers and name parts). */
export function strVal(node: unknown): string | undefined {
  const s = as<{ sval?: string }>(node, 'String');
  return s ? (s.sval ?? '') : undefined;
}

/** Name parts of a list such as `funcname` or a `List` of `String` nodes. */
export function nameParts(list: readonly Node[] | undefined): string[] {
  const out: string[] = [];
  for (const n of list ?? []) {
    const s = strVal(n);
    if (s !== undefined) out.push(s);
  }
  return out;
}

/** Items of a `List` node, or the array itself. */
export function listItems(node: unknown): Node[] {
  if (Array.isArray(node)) return node as Node[];
  return as<{ items?: Node[] }>(node, 'List')?.items ?? [];
}

/** An unwrapped RangeVar (typed struct fields) or a wrapped `{ RangeVar }` node. */
export function rangeVarOf(value: unknown): RangeVar | undefined {
  const wrapped = as<RangeVar>(value, 'RangeVar');
  if (wrapped) return wrapped;
  if (value !== null && typeof value === 'object' && !Array.isArray(value) && typeof (value as RangeVar).relname === 'string' && 'relpersistence' in value) {
    return value as RangeVar;
  }
  return undefined;
}

const SIMPLE_IDENT = /^[a-z_][a-z0-9_$]*$/;

/** An identifier as it must be written to mean the same name again (double quotes when needed). */
export function quoteIdent(name: string): string {
  return SIMPLE_IDENT.test(name) ? name : `"${name.replaceAll('"', '""')}"`;
}

export function dotted(parts: readonly string[]): string {
  return parts.map(quoteIdent).join('.');
}

/**
 * Visits every object in the tree (wrapped nodes and unwrapped structs alike), depth first.
 * `visit` returns false to skip the children of a value. Iterative, so deep trees cannot overflow
 * the JavaScript stack.
 */
export function walkTree(root: unknown, visit: (value: Record<string, unknown>, key: string | undefined) => boolean | void): void {
  const stack: Array<[unknown, string | undefined]> = [[root, undefined]];
  while (stack.length > 0) {
    const [value, key] = stack.pop()!;
    if (value === null || typeof value !== 'object') continue;
    if (Array.isArray(value)) {
      for (let i = value.length - 1; i >= 0; i--) stack.push([value[i], key]);
      continue;
    }
    const obj = value as Record<string, unknown>;
    if (visit(obj, key) === false) continue;
    const entries = Object.entries(obj);
    for (let i = entries.length - 1; i >= 0; i--) {
      const [k, v] = entries[i]!;
      if (v !== null && typeof v === 'object') stack.push([v, k]);
    }
  }
}

/** Recursively freezes a value so cached results cannot be changed by a caller. */
export function deepFreeze<T>(value: T): T {
  const stack: unknown[] = [value];
  while (stack.length > 0) {
    const v = stack.pop();
    if (v === null || typeof v !== 'object' || Object.isFrozen(v)) continue;
    Object.freeze(v);
    for (const child of Object.values(v)) stack.push(child);
  }
  return value;
}
