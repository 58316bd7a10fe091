// Shared by the transcript CLI commands (audit, sessions, replay, review): option parsing, times
// like "30d", the data directory, and one place that turns errors into exit codes.

import { parseArgs, type ParseArgsConfig } from 'node:util';
import { join, resolve } from 'node:path';
import { TranscriptReadError } from './errors.js';
import { publicKeyFileFor } from './keys.js';
import { printable } from './text.js';
import { ConfigError, loadConfig } from '../config/load.js';
import type { WardenConfig } from '../config/types.js';

export const DEFAULT_DATA_DIR = './.warden';

/** Bad command line: exit code 2 with the usage text. */
export class UsageError extends Error {
  override readonly name = 'UsageError';
}

type Options = NonNullable<ParseArgsConfig['options']>;

export function parseCommandArgs<O extends Options>(args: string[], options: O) {
  try {
    return parseArgs({ args, options: { ...options, help: { type: 'boolean', short: 'h' } }, allowPositionals: true, strict: true });
  } catch (err) {
    throw new UsageError(err instanceof Error ? err.message : String(err));
  }
}

export function transcriptDir(dataDir: string | undefined): string {
  return join(resolve(dataDir ?? DEFAULT_DATA_DIR), 'transcripts');
}

export interface TranscriptLocation {
  dir: string;
  /** The published public key, when known (from the configuration). */
  publicKeyFile?: string;
  config?: WardenConfig;
}

/**
 * Where the transcripts are: from `--config FILE` (its transcripts section, so a custom `dir`
 * or `key_file` is honoured), else `--data-dir DIR` / ./.warden.
 */
export async function transcriptLocation(values: { config?: string | undefined; 'data-dir'?: string | undefined; 'from-store'?: boolean | undefined }): Promise<TranscriptLocation> {
  if (values.config !== undefined) {
    if (values['data-dir'] !== undefined) throw new UsageError('give --config or --data-dir, not both');
    let config: WardenConfig;
    try {
      // The shared store's connection may take secrets from the environment: they must be set then.
      config = await loadConfig(values.config, { forReaders: values['from-store'] !== true });
    } catch (err) {
      if (err instanceof ConfigError) throw new TranscriptReadError(`invalid configuration:\n${err.message}`);
      throw err;
    }
    const t = config.transcripts;
    if (!t) return { dir: transcriptDir(config.dataDir), config };
    return { dir: t.dir, publicKeyFile: publicKeyFileFor(t.keyFile), config };
  }
  return { dir: transcriptDir(values['data-dir']) };
}

/** The targets a principal rule grants (names; "*" expanded), for the access review. */
export function grantedTargets(config: WardenConfig, principal: string): string[] | undefined {
  const rule = config.principals.find((p) => p.name === principal);
  if (!rule) return undefined;
  return rule.targets.includes('*') ? [...config.targets.keys()] : [...rule.targets];
}

const UNIT_MS: Record<string, number> = { s: 1000, m: 60_000, h: 3_600_000, d: 86_400_000, w: 7 * 86_400_000 };

/** "30d", "12h", "45m", "90s", "2w" (that long before `now`), "now", or an ISO 8601 date or time. */
export function parseWhen(value: string, now: Date, option: string): Date {
  if (value === 'now') return now;
  const m = /^(\d+(?:\.\d+)?)([smhdw])$/.exec(value);
  if (m?.[1] !== undefined && m[2] !== undefined) {
    const at = new Date(now.getTime() - Number(m[1]) * (UNIT_MS[m[2]] as number));
    if (Number.isNaN(at.getTime())) throw new UsageError(`${option} reaches further back than any date ('${value}')`);
    return at;
  }
  const day = /^(\d{4})-(\d{2})-(\d{2})/.exec(value);
  if (day) {
    // Date.parse rolls 2026-02-30 over to 2 March; a day that does not exist is a mistake.
    const [y, mo, d] = [Number(day[1]), Number(day[2]), Number(day[3])];
    if (mo < 1 || mo > 12 || d < 1 || d > new Date(Date.UTC(y, mo, 0)).getUTCDate()) {
      throw new UsageError(`${option} names a day that does not exist ('${value}')`);
    }
    const t = Date.parse(value);
    if (!Number.isNaN(t)) return new Date(t);
  }
  throw new UsageError(`${option} takes a duration before now (30d, 12h, 45m, 90s, 2w), "now", or an ISO 8601 date/time; got '${value}'`);
}

/** A time window must not end before it starts (`since`, `until` are the names the caller uses). */
export function checkWindow(since: Date | undefined, until: Date | undefined, sinceName: string, untilName: string): void {
  if (since !== undefined && until !== undefined && since > until) throw new UsageError(`${sinceName} is after ${untilName}`);
}

export function oneOf<T extends string>(value: string | undefined, allowed: readonly T[], option: string, fallback: T): T {
  if (value === undefined) return fallback;
  if ((allowed as readonly string[]).includes(value)) return value as T;
  throw new UsageError(`${option} must be one of ${allowed.join(', ')}; got '${value}'`);
}

/** Runs a command body; usage errors exit 2, unreadable stores and other errors exit 1. */
export async function runCommand(command: string, usage: string, body: () => Promise<number>): Promise<number> {
  try {
    return await body();
  } catch (err) {
    if (err instanceof UsageError) {
      process.stderr.write(`warden ${command}: ${err.message}\n\n${usage}\n`);
      return 2;
    }
    if (err instanceof TranscriptReadError) {
      process.stderr.write(`warden ${command}: ${err.message}\n`);
      return 1;
    }
    throw err;
  }
}

/**
 * Writes a command's output. Each renderer escapes the values it shows; this escapes once more
 * whatever control or bidi character is left (a field of an altered file no renderer expected),
 * so nothing read from transcripts can drive the terminal.
 */
export function writeOut(text: string): void {
  const safe = printable(text);
  process.stdout.write(safe.endsWith('\n') ? safe : `${safe}\n`);
}
