// What is wrong with a configuration file, and where. The loader collects every problem it finds
// (it does not stop at the first) and throws them together as one ConfigError.

export interface Problem {
  /** The file as the user named it (or a label such as "<config>"). */
  source: string;
  /** 1-based position of the offending value; absent when the file itself could not be read. */
  line?: number;
  col?: number;
  /** Key path such as `targets.shop.port` or `identity.issuers[0].audiences`; "" for the whole file. */
  path: string;
  /** Why, e.g. `must be an integer between 1 and 65535, got "abc"`. Never contains a secret. */
  reason: string;
}

/** `file:line:col: key.path: reason`, the form editors and CI logs understand. */
export function formatProblem(p: Problem): string {
  const where = p.line === undefined ? p.source : `${p.source}:${p.line}:${p.col ?? 1}`;
  return p.path === '' ? `${where}: ${p.reason}` : `${where}: ${p.path}: ${p.reason}`;
}

/** In file order; problems without a position (unreadable file) first. */
export function sortProblems(problems: readonly Problem[]): Problem[] {
  return [...problems].sort((a, b) => (a.line ?? 0) - (b.line ?? 0) || (a.col ?? 0) - (b.col ?? 0));
}

export class ConfigError extends Error {
  override readonly name = 'ConfigError';
  readonly problems: readonly Problem[];

  constructor(problems: readonly Problem[]) {
    const sorted = sortProblems(problems);
    super(sorted.map(formatProblem).join('\n'));
    this.problems = sorted;
  }
}
