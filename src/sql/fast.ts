// The classifier as the relay's hot path uses it: texts that differ only in numeric literals
// share one classification (see literal-key.ts), on top of classify()'s own cache by exact text.
import { LRUCache } from 'lru-cache';
import { classify } from './classify.js';
import { literalKey } from './literal-key.js';
import type { Classification } from './types.js';

const byKey = new LRUCache<string, Classification>({ max: 20_000, maxSize: 64 * 1024 * 1024, sizeCalculation: (_v, k) => 256 + k.length * 2 });

/**
 * classify(), reusing the classification of an earlier text that differs only in numeric
 * literals. The returned StatementInfo's `text` may therefore be that earlier text: callers use
 * their own copy of the SQL for display and records.
 */
export function classifyStatement(sql: string): Classification {
  const key = literalKey(sql);
  if (key === sql) return classify(sql);
  const hit = byKey.get(key);
  if (hit) return hit;
  const c = classify(sql);
  if (c.ok) byKey.set(key, c);
  return c;
}
