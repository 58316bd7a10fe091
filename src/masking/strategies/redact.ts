// redact: a fixed text. Only text, json and jsonb can hold a text; any other type becomes NULL
// (a fixed text in an integer column would not decode as an integer).
import type { ScalarKind } from '../pg-types.js';

export function redact(text: string, kind: ScalarKind): string | null {
  if (kind === 'text') return text;
  if (kind === 'json' || kind === 'jsonb') return JSON.stringify(text);
  return null;
}
