// Statement fingerprints: a hash of the parse tree with literal values, parameter numbers and
// source locations left out, so `WHERE id = 1` and `WHERE id = 2` share one (approval grants are
// keyed by it). Anything else — names, operators, IN-list lengths, file names, DO bodies — counts.
//
// Computed here rather than with libpg_query's fingerprintSync(): in libpg-query 18.1.5 that
// call starts throwing "Maximum call stack size exceeded" for nested queries after a few
// thousand calls in one process (parseSync and normalizeSync do not), which in a long-running
// proxy would turn ordinary queries into unclassifiable ones.
import { createHash } from 'node:crypto';
import type { Node } from 'libpg-query';

/** Location fields carry offsets into the text, not meaning. */
const POSITION_KEYS = new Set(['location', 'stmt_location', 'stmt_len', 'list_start', 'list_end', 'rexpr_list_start', 'rexpr_list_end']);

export function fingerprintTree(tree: Node): string {
  const canonical = JSON.stringify(tree, (key, value: unknown) => {
    if (POSITION_KEYS.has(key)) return undefined;
    if (key === 'A_Const' || key === 'ParamRef') return {}; // literal values and $n numbers
    return value;
  });
  return createHash('sha256').update(canonical).digest('hex').slice(0, 16);
}
