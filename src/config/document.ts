// YAML text → a Reader over its document, with syntax errors turned into positioned problems.
// parseConfig reads the whole file with it; a feature's tests can read just their own section:
//
//   const { value, problems } = readYaml('approvals:\n  timeout: 5m\n', (root) =>
//     readApprovals(root.section(['approvals'])?.get('approvals')));

import { LineCounter, parseDocument } from 'yaml';
import { sortProblems, type Problem } from './problems.js';
import { Reader, type Field } from './validate.js';

export interface ReadYamlOptions {
  /** The file name shown in problems; default "<config>". */
  source?: string;
  /** Directory relative paths are resolved against; default the cwd. */
  baseDir?: string;
  /** Where `${env:NAME}` values come from; default process.env. */
  env?: NodeJS.ProcessEnv;
  /**
   * A value whose `${env:NAME}` is not set: a problem (default), or, for the transcript readers,
   * which do not use what it configures, a stand-in that passes its field's checks (Reader.unsetStandIns).
   */
  unsetEnv?: 'fail' | 'stand-in';
}

export interface YamlRead<T> {
  /** undefined when the YAML could not be parsed (syntax errors are in `problems`). */
  value: T | undefined;
  /** In file order. */
  problems: Problem[];
}

export function readYaml<T>(text: string, read: (root: Field) => T, opts: ReadYamlOptions = {}): YamlRead<T> {
  const source = opts.source ?? '<config>';
  const lines = new LineCounter();
  // Duplicate keys are left to Field.section(), which reports them with their key path. No
  // merge keys (<<): they would hide where a value came from.
  const doc = parseDocument(text, { lineCounter: lines, uniqueKeys: false, prettyErrors: false, merge: false });
  // Once the parser has lost the document's structure it reports every later token as
  // unexpected: only the first of those is shown, the one that says where it went wrong.
  const lost = doc.errors.find((e) => e.code === 'UNEXPECTED_TOKEN');
  const shown = [...doc.errors.filter((e) => e.code !== 'UNEXPECTED_TOKEN' || e === lost), ...doc.warnings];
  const syntax: Problem[] = shown.map((e) => {
    const { line, col } = lines.linePos(e.pos[0]);
    return { source, line, col, path: '', reason: `YAML: ${e.message.split('\n')[0] ?? e.code}${envInFlowHint(text, e.pos[0])}` };
  });
  // Syntax errors leave a partial document; validating it would only add confusing noise.
  if (doc.errors.length > 0) return { value: undefined, problems: syntax };
  const reader = new Reader(source, opts.baseDir ?? process.cwd(), opts.env ?? process.env, doc, lines, opts.unsetEnv === 'stand-in');
  reader.problems.push(...syntax);
  const value = read(reader.root());
  return { value, problems: sortProblems(reader.problems) };
}

/** An unquoted `${env:NAME}` inside `{ … }` or `[ … ]`: its braces end YAML's plain scalar there. */
function envInFlowHint(text: string, offset: number): string {
  if (text[offset] !== '{' || text[offset - 1] !== '$') return '';
  const ref = /^\$\{[^}\s"']*\}/.exec(text.slice(offset - 1))?.[0] ?? '${env:NAME}';
  return `; inside { … } or [ … ] a \${env:…} value must be quoted: "${ref}"`;
}
