// Helpers for the config tests: where a piece of text sits in a YAML string, so expected
// positions are computed from the text itself rather than typed by hand.

/** 1-based line and column of the `nth` occurrence of `needle` in `text` (plus `shift` chars). */
export function lineCol(text: string, needle: string, opts: { nth?: number; shift?: number } = {}): { line: number; col: number } {
  let index = -1;
  for (let i = 0; i <= (opts.nth ?? 0); i++) {
    index = text.indexOf(needle, index + 1);
    if (index < 0) throw new Error(`${JSON.stringify(needle)} not found in the test text`);
  }
  index += opts.shift ?? 0;
  const before = text.slice(0, index);
  const line = before.split('\n').length;
  const col = index - (before.lastIndexOf('\n') + 1) + 1;
  return { line, col };
}

/** Position of the value written after `key:` on the line where `key:` first appears (after `from`). */
export function valueOf(text: string, keyAndValue: string): { line: number; col: number } {
  const colon = keyAndValue.indexOf(': ');
  return lineCol(text, keyAndValue, { shift: colon < 0 ? 0 : colon + 2 });
}
