// Loads warden's one YAML configuration file into a WardenConfig, or throws a ConfigError that
// lists every problem with its key path, line and column. Sections are read in dependency order
// (principals refer to targets and issuers) by the readers in sections/, written with the
// toolkit in validate.ts. See docs/configuration.md for the reference.

import { readFile, stat } from 'node:fs/promises';
import { dirname, resolve } from 'node:path';
import { readYaml } from './document.js';
import { ConfigError } from './problems.js';
import { readApprovals } from './sections/approvals.js';
import { readIdentity } from './sections/identity.js';
import { readListen } from './sections/listen.js';
import { readMasking } from './sections/masking.js';
import { readPrincipals } from './sections/principals.js';
import { readRules } from './sections/rules.js';
import { readServerTls } from './sections/server-tls.js';
import { readSessions } from './sections/sessions.js';
import { readTargets } from './sections/targets.js';
import { readTranscripts } from './sections/transcripts.js';
import type { PlaintextTokenPolicy, WardenConfig } from './types.js';
import { MiB, formatBytes } from './units.js';
import type { Field } from './validate.js';

export { ConfigError, formatProblem, type Problem } from './problems.js';

/** A configuration is a few kilobytes; anything near this is not one. */
export const MAX_CONFIG_BYTES = MiB;
export const DEFAULT_DATA_DIR = './.warden';
export const LOG_LEVELS = ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'] as const;
export const PLAINTEXT_TOKEN_POLICIES: readonly PlaintextTokenPolicy[] = ['never', 'loopback'];

const TOP_KEYS = ['data_dir', 'listen', 'tls', 'plaintext_tokens', 'log', 'identity', 'targets', 'principals', 'sessions', 'rules', 'approvals', 'masking', 'transcripts'] as const;

export interface LoadOptions {
  /** Where `${env:NAME}` values come from; default process.env. */
  env?: NodeJS.ProcessEnv;
  /**
   * Loaded for the transcript readers (sessions, replay, review, audit verify), which need the
   * transcript directory and public key, not warden's secrets: a `${env:NAME}` that is not set
   * does not fail (a target's password or port, say: a string reads as "(NAME not set)", a number,
   * duration, size or choice as the lowest its field accepts), and an explicit
   * `transcripts.key_file` need not be on this machine.
   */
  forReaders?: boolean;
}

export interface ParseOptions extends LoadOptions {
  /** The file name shown in problems; default "<config>". */
  source?: string;
  /** Directory relative paths are resolved against; default the source's directory, or the cwd. */
  baseDir?: string;
}

/** Reads and validates the configuration file at `path`. */
export async function loadConfig(path: string, opts: LoadOptions = {}): Promise<WardenConfig> {
  const absolute = resolve(path);
  let text: string;
  try {
    const info = await stat(absolute);
    if (!info.isFile()) throw fileProblem(path, 'is not a file');
    if (info.size > MAX_CONFIG_BYTES) throw fileProblem(path, `is too large for a configuration file (${info.size} bytes, at most ${formatBytes(MAX_CONFIG_BYTES)})`);
    text = await readFile(absolute, 'utf8');
  } catch (err) {
    if (err instanceof ConfigError) throw err;
    const code = (err as NodeJS.ErrnoException).code;
    const why = code === 'ENOENT' ? 'no such file' : code === 'EACCES' ? 'permission denied' : (code ?? String(err));
    throw fileProblem(path, `cannot read the configuration file: ${why}`);
  }
  const config = parseConfig(text, { ...opts, source: path, baseDir: dirname(absolute) });
  config.source = absolute;
  return config;
}

function fileProblem(source: string, reason: string): ConfigError {
  return new ConfigError([{ source, path: '', reason }]);
}

/** Validates configuration text (YAML). Throws ConfigError with every problem found. */
export function parseConfig(text: string, opts: ParseOptions = {}): WardenConfig {
  const source = opts.source ?? '<config>';
  const baseDir = opts.baseDir ?? (opts.source !== undefined ? dirname(resolve(opts.source)) : process.cwd());
  if (Buffer.byteLength(text, 'utf8') > MAX_CONFIG_BYTES) {
    throw new ConfigError([{ source, path: '', reason: `is too large for a configuration file (at most ${formatBytes(MAX_CONFIG_BYTES)})` }]);
  }
  const env = opts.env ?? process.env;
  const forReaders = opts.forReaders === true;
  const { value: config, problems } = readYaml(text, (root) => readConfig(root, forReaders), {
    source,
    baseDir,
    env,
    unsetEnv: forReaders ? 'stand-in' : 'fail',
  });
  if (problems.length > 0 || config === undefined) {
    if (problems.length === 0) throw new Error('internal error: configuration rejected without a reason');
    throw new ConfigError(problems);
  }
  if (opts.source !== undefined) config.source = opts.source;
  return config;
}

function readConfig(rootField: Field, forReaders: boolean): WardenConfig | undefined {
  if (!rootField.present) {
    rootField.fail('the configuration is empty; see docs/configuration.md and fixtures/policies/example.yaml');
    return undefined;
  }
  const s = rootField.section(TOP_KEYS);
  if (!s) return undefined;

  const dataDir = s.get('data_dir').directoryPath('data directory') ?? rootField.resolvePath(DEFAULT_DATA_DIR);
  const tls = readServerTls(s.get('tls'));
  const plaintextField = s.get('plaintext_tokens');
  const plaintext = plaintextField.oneOf(PLAINTEXT_TOKEN_POLICIES);
  const plaintextTokens = plaintext ?? 'never';
  const tokensNeedTls = !s.has('tls') && plaintext !== 'loopback' && !(plaintextField.present && plaintext === undefined);
  const listen = readListen(s.get('listen'), { tokensNeedTls });
  const level = s.get('log').section(['level'])?.get('level').oneOf(LOG_LEVELS) ?? 'info';
  // `listenKnown`: whether listen was read, so a missing admin listener is known to be missing.
  const identity = readIdentity(s.get('identity'), { dataDir, listenKnown: listen !== undefined, ...(listen?.admin ? { admin: listen.admin } : {}) });
  const targets = readTargets(s.get('targets'));
  // When targets or identity could not be read at all, references to them are not checked.
  const principals = readPrincipals(s.get('principals'), {
    ...(targets ? { targets: targets.names } : {}),
    ...(identity ? { issuers: identity.names } : {}),
  });
  const sessions = readSessions(s.get('sessions'));
  const transcripts = readTranscripts(s.get('transcripts'), {
    dataDir,
    keyMayBeAbsent: forReaders,
    ...(targets ? { targets: targets.names } : {}),
    ...(identity ? { issuers: identity.names } : {}),
  });
  const principalNames = principals ? new Set(principals.map((p) => p.name)) : undefined;
  const rules = readRules(s.get('rules'), { ...(targets ? { targets: targets.names } : {}), ...(principalNames ? { principals: principalNames } : {}) });
  const approvals = readApprovals(s.get('approvals'), {
    dataDir,
    ...(identity ? { issuers: identity.names } : {}),
    ...(targets ? { targets: targets.names } : {}),
    ...(rules ? { rules: rules.names } : {}),
    ...(principalNames ? { principals: principalNames } : {}),
  });
  const masking = s.has('masking') ? readMasking(s.get('masking'), principalNames ? { principals: principalNames } : {}) : undefined;

  if (listen === undefined || identity === undefined || targets === undefined || principals === undefined || sessions === undefined || transcripts === undefined) {
    return undefined;
  }
  if (rules === undefined || approvals === undefined) return undefined;
  return {
    dataDir,
    listen,
    ...(tls !== undefined ? { tls } : {}),
    plaintextTokens,
    log: { level },
    identity: identity.identity,
    targets: targets.targets,
    principals,
    sessions,
    // Statement control is on when the file has a rules: or approvals: section; without either,
    // warden classifies statements only for masking and transcripts (see docs/approvals.md).
    ...(s.has('rules') || s.has('approvals') ? { rules: rules.rules, approvals } : {}),
    ...(masking !== undefined ? { masking } : {}),
    transcripts,
  };
}
