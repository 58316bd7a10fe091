// `masking:` — which data is sensitive and how each value is masked on the wire. Rules are tried
// in the order written; the first rule that covers a column (and applies to the principal)
// masks it. See docs/masking.md.
//
//   masking:
//     classifiers:                       # custom content classifiers (regular expressions)
//       - { name: employee_id, pattern: 'EMP-[0-9]{6}' }
//     rules:
//       - name: national-ids
//         columns: [public.customers.ssn]
//         column_names: ['*ssn*']
//         content: [us_ssn]
//         strategy: partial
//         options: { keep_last: 4 }
//         exempt: { groups: [security-team-group-id] }
//         binary: null                   # or fail
//         inference: deny                # or allow, hold
//         laundering: deny               # or allow, hold
import { builtinNames, BUILTIN_CLASSIFIERS, CLASSIFIER_GROUPS, customClassifier } from '../../masking/classifiers.js';
import { checkColumnNamePattern, parseColumnSelector } from '../../masking/selectors.js';
import { didYouMean } from '../suggest.js';
import type { Field, Section } from '../validate.js';
import { name } from './checks.js';

export const MASK_STRATEGIES = ['redact', 'null', 'partial', 'email', 'hash', 'format', 'date'] as const;
export type MaskStrategyName = (typeof MASK_STRATEGIES)[number];
export const VERDICT_SETTINGS = ['allow', 'deny', 'hold'] as const;
export type VerdictSetting = (typeof VERDICT_SETTINGS)[number];
export const BINARY_SETTINGS = ['null', 'fail'] as const;
export type BinarySetting = (typeof BINARY_SETTINGS)[number];
export const DATE_PRECISIONS = ['year', 'month'] as const;

export type MaskStrategyConfig =
  | { kind: 'redact'; text: string }
  | { kind: 'null' }
  | { kind: 'partial'; keepFirst: number; keepLast: number; maskChar: string }
  | { kind: 'email'; keepDomain: boolean; keepFirstLetter: boolean; maskChar: string }
  | { kind: 'hash'; key: string; length: number }
  | { kind: 'format'; key?: string; keepFirst: number; keepLast: number }
  | { kind: 'date'; precision: 'year' | 'month' };

/** Who a rule is about: any listed principal name, app role or group. */
export interface MaskAudience {
  principals: string[];
  roles: string[];
  groups: string[];
}

export interface MaskRuleConfig {
  name: string;
  /** `schema.table.column` / `table.column` selectors, wildcards allowed (see src/masking/selectors.ts). */
  columns: string[];
  /** Column-name globs, case-insensitive. */
  columnNames: string[];
  /** Content classifier names (built-in, group or custom). */
  content: string[];
  strategy: MaskStrategyConfig;
  /** Absent: the rule applies to every principal. */
  appliesTo?: MaskAudience;
  /** Principals, roles or groups that see clear values. */
  exempt?: MaskAudience;
  /** A binary-format value of a type warden cannot rewrite: send NULL, or refuse the result. */
  binary: BinarySetting;
  /** Predicates over covered columns (WHERE, JOIN ON, ORDER BY, GROUP BY, …). */
  inference: VerdictSetting;
  /** Statements that copy covered values elsewhere (CREATE TABLE AS, INSERT … SELECT, …). */
  laundering: VerdictSetting;
}

export interface ContentClassifierConfig {
  name: string;
  pattern: string;
  ignoreCase: boolean;
}

export interface MaskingConfig {
  rules: MaskRuleConfig[];
  classifiers: ContentClassifierConfig[];
}

export const MASKING_DEFAULTS = {
  binary: 'null',
  inference: 'deny',
  laundering: 'deny',
  redactText: '****',
  maskChar: '*',
  partial: { keepFirst: 0, keepLast: 4 },
  hashLength: 16,
  datePrecision: 'year',
} as const;

/** Shortest HMAC key accepted, in bytes (UTF-8). */
export const MIN_KEY_BYTES = 16;
const MAX_KEEP = 64;

const OPTION_KEYS: Readonly<Record<MaskStrategyName, readonly string[]>> = {
  redact: ['text'],
  null: [],
  partial: ['keep_first', 'keep_last', 'mask_char'],
  email: ['keep_domain', 'keep_first_letter', 'mask_char'],
  hash: ['key', 'length'],
  format: ['key', 'keep_first', 'keep_last'],
  date: ['precision'],
};

export interface MaskingRefs {
  /** Principal rule names; absent when the principals section could not be read. */
  principals?: ReadonlySet<string>;
}

export function readMasking(field: Field, refs: MaskingRefs = {}): MaskingConfig | undefined {
  const s = field.section(['rules', 'classifiers']);
  if (!s) return undefined;
  const classifierNames = new Map<string, number>();
  const classifiers = s.get('classifiers').list((f) => readClassifier(f, classifierNames)) ?? [];
  const customNames = new Set(classifierNames.keys());
  const ruleNames = new Map<string, number>();
  const rules = s.get('rules').list((f) => readRule(f, refs, customNames, ruleNames)) ?? [];
  return { rules, classifiers };
}

function readClassifier(field: Field, names: Map<string, number>): ContentClassifierConfig | undefined {
  const s = field.section(['name', 'pattern', 'ignore_case']);
  if (!s) return undefined;
  const nameField = s.need('name');
  const cname = nameField.string({ check: classifierName });
  if (cname !== undefined) {
    const first = names.get(cname);
    if (first !== undefined) nameField.fail(`duplicate classifier name "${cname}" (first used at line ${first})`);
    else names.set(cname, nameField.line);
  }
  const patternField = s.need('pattern');
  const pattern = patternField.string();
  const ignoreCase = s.get('ignore_case').boolean() ?? false;
  if (cname === undefined || pattern === undefined) return undefined;
  const compiled = customClassifier(cname, pattern, ignoreCase);
  if (typeof compiled === 'string') return patternField.fail(compiled);
  return { name: cname, pattern, ignoreCase };
}

function classifierName(value: string): string | undefined {
  const reason = name(value);
  if (reason !== undefined) return reason;
  if (builtinNames().includes(value)) return 'is the name of a built-in classifier; choose another name';
  return undefined;
}

const RULE_KEYS = [
  'name', 'columns', 'column_names', 'content', 'strategy', 'options', 'applies_to', 'exempt', 'binary', 'inference', 'laundering',
] as const;

function readRule(field: Field, refs: MaskingRefs, customNames: ReadonlySet<string>, names: Map<string, number>): MaskRuleConfig | undefined {
  const s = field.section(RULE_KEYS);
  if (!s) return undefined;
  const nameField = s.need('name');
  const ruleName = nameField.string({ check: name });
  if (ruleName !== undefined) {
    const first = names.get(ruleName);
    if (first !== undefined) nameField.fail(`duplicate rule name "${ruleName}" (first used at line ${first})`);
    else names.set(ruleName, nameField.line);
  }
  const columns = s.get('columns').strings({ nonEmpty: true, check: selectorCheck });
  const columnNames = s.get('column_names').strings({ nonEmpty: true, check: checkColumnNamePattern });
  const content = s.get('content').list((f) => contentRef(f, customNames), { nonEmpty: true });
  const written = (['columns', 'column_names', 'content'] as const).filter((k) => s.has(k));
  if (written.length === 0) s.fail('must select data with at least one of columns, column_names, content');
  const strategy = readStrategy(s);
  const appliesTo = readAudience(s.get('applies_to'), refs);
  const exempt = readAudience(s.get('exempt'), refs);
  const binary = s.get('binary').oneOf(BINARY_SETTINGS) ?? MASKING_DEFAULTS.binary;
  const inference = s.get('inference').oneOf(VERDICT_SETTINGS) ?? MASKING_DEFAULTS.inference;
  const laundering = s.get('laundering').oneOf(VERDICT_SETTINGS) ?? MASKING_DEFAULTS.laundering;
  // A selector that is written but invalid must not leave a rule that silently covers less.
  const invalid =
    (s.has('columns') && columns === undefined) || (s.has('column_names') && columnNames === undefined) || (s.has('content') && content === undefined) ||
    (s.has('applies_to') && appliesTo === undefined) || (s.has('exempt') && exempt === undefined);
  if (ruleName === undefined || strategy === undefined || written.length === 0 || invalid) return undefined;
  return {
    name: ruleName,
    columns: columns ?? [],
    columnNames: columnNames ?? [],
    content: content ?? [],
    strategy,
    ...(appliesTo !== undefined ? { appliesTo } : {}),
    ...(exempt !== undefined ? { exempt } : {}),
    binary,
    inference,
    laundering,
  };
}

function selectorCheck(text: string): string | undefined {
  const sel = parseColumnSelector(text);
  return typeof sel === 'string' ? sel : undefined;
}

function contentRef(field: Field, customNames: ReadonlySet<string>): string | undefined {
  const value = field.string();
  if (value === undefined) return undefined;
  if (customNames.has(value) || (BUILTIN_CLASSIFIERS as readonly string[]).includes(value) || value in CLASSIFIER_GROUPS) return value;
  const known = [...builtinNames(), ...customNames];
  return field.fail(`unknown content classifier "${value}"${didYouMean(value, known)}; built-in: ${builtinNames().join(', ')}${customNames.size > 0 ? `; custom: ${[...customNames].join(', ')}` : ''}`);
}

const NULL_HINT = ' (for the NULL strategy write "null" in quotes: a bare null is YAML for "no value")';

function readStrategy(s: Section<(typeof RULE_KEYS)[number]>): MaskStrategyConfig | undefined {
  const kind = s.need('strategy', NULL_HINT).oneOf(MASK_STRATEGIES);
  // Options are checked against the strategy's own keys, so they wait for a valid strategy.
  if (kind === undefined) return undefined;
  const o = s.get('options').section(OPTION_KEYS[kind]);
  if (!o) return undefined;
  const maskChar = (): string | undefined => o.get('mask_char').string({ check: maskCharCheck }) ?? (o.has('mask_char') ? undefined : MASKING_DEFAULTS.maskChar);
  const keep = (key: string, dflt: number): number | undefined => o.get(key).integer({ min: 0, max: MAX_KEEP }) ?? (o.has(key) ? undefined : dflt);
  switch (kind) {
    case 'redact': {
      const text = o.get('text').string({ check: redactTextCheck }) ?? (o.has('text') ? undefined : MASKING_DEFAULTS.redactText);
      return text === undefined ? undefined : { kind, text };
    }
    case 'null':
      return { kind };
    case 'partial': {
      const keepFirst = keep('keep_first', MASKING_DEFAULTS.partial.keepFirst);
      const keepLast = keep('keep_last', MASKING_DEFAULTS.partial.keepLast);
      const mc = maskChar();
      return keepFirst === undefined || keepLast === undefined || mc === undefined ? undefined : { kind, keepFirst, keepLast, maskChar: mc };
    }
    case 'email': {
      const keepDomain = o.get('keep_domain').boolean() ?? (o.has('keep_domain') ? undefined : true);
      const keepFirstLetter = o.get('keep_first_letter').boolean() ?? (o.has('keep_first_letter') ? undefined : false);
      const mc = maskChar();
      return keepDomain === undefined || keepFirstLetter === undefined || mc === undefined ? undefined : { kind, keepDomain, keepFirstLetter, maskChar: mc };
    }
    case 'hash': {
      const key = o.need('key', ' (the HMAC key, e.g. ${env:MASK_HASH_KEY})').string({ secret: true, check: keyCheck });
      const length = o.get('length').integer({ min: 8, max: 64 }) ?? (o.has('length') ? undefined : MASKING_DEFAULTS.hashLength);
      return key === undefined || length === undefined ? undefined : { kind, key, length };
    }
    case 'format': {
      const key = o.get('key').string({ secret: true, check: keyCheck });
      const keepFirst = keep('keep_first', 0);
      const keepLast = keep('keep_last', 0);
      if ((o.has('key') && key === undefined) || keepFirst === undefined || keepLast === undefined) return undefined;
      return { kind, ...(key !== undefined ? { key } : {}), keepFirst, keepLast };
    }
    case 'date': {
      const precision = o.get('precision').oneOf(DATE_PRECISIONS) ?? (o.has('precision') ? undefined : MASKING_DEFAULTS.datePrecision);
      return precision === undefined ? undefined : { kind, precision };
    }
  }
}

/** Characters that would need quoting in JSON, CSV or COPY text are refused, so a mask never breaks a value's syntax. */
const UNSAFE_CHARS = /["'\\,;\t\n\r\u0000-\u001f\u007f]/;

function maskCharCheck(value: string): string | undefined {
  if ([...value].length !== 1) return 'must be a single character';
  if (UNSAFE_CHARS.test(value) || /\s/.test(value)) return 'must be a visible character other than a quote, backslash, comma or semicolon';
  return undefined;
}

function redactTextCheck(value: string): string | undefined {
  if (value.length > 64) return 'must be at most 64 characters';
  if (/["\\\u0000-\u001f\u007f]/.test(value)) return 'must not hold double quotes, backslashes or control characters';
  return undefined;
}

function keyCheck(value: string): string | undefined {
  return Buffer.byteLength(value, 'utf8') < MIN_KEY_BYTES ? `must be at least ${MIN_KEY_BYTES} bytes long` : undefined;
}

function readAudience(field: Field, refs: MaskingRefs): MaskAudience | undefined {
  if (!field.present) return undefined;
  const s = field.section(['principals', 'roles', 'groups']);
  if (!s) return undefined;
  const principals = s.get('principals').list((f) => principalRef(f, refs), { nonEmpty: true });
  const roles = s.get('roles').strings({ nonEmpty: true });
  const groups = s.get('groups').strings({ nonEmpty: true });
  const written = (['principals', 'roles', 'groups'] as const).filter((k) => s.has(k));
  if (written.length === 0) return s.fail('must name at least one of principals, roles, groups');
  if ((s.has('principals') && principals === undefined) || (s.has('roles') && roles === undefined) || (s.has('groups') && groups === undefined)) return undefined;
  return { principals: principals ?? [], roles: roles ?? [], groups: groups ?? [] };
}

function principalRef(field: Field, refs: MaskingRefs): string | undefined {
  const value = field.string();
  if (value === undefined || refs.principals === undefined || refs.principals.has(value)) return value;
  const known = [...refs.principals];
  const list = known.length === 0 ? 'none are configured' : `known principals: ${known.join(', ')}`;
  return field.fail(`unknown principal "${value}"${didYouMean(value, known)}; ${list}`);
}
