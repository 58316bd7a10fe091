// `warden token mint`: a development access token from the local dev issuer, shaped like an
// Azure AD app-only token. The flags resolve to a DevIssuerConfig plus MintOptions, so the same
// values can later come from the config file (devIssuerConfigFromFlags takes a base config).

import { resolve } from 'node:path';
import { parseArgs } from 'node:util';
import type { DevIssuerConfig } from '../../config/types.js';
import { ConfigError, loadConfig } from '../../config/load.js';
import { devIssuerUrl } from '../../config/sections/identity.js';
import { networkReason } from './approvals.js';
import {
  DEFAULT_DEV_AUDIENCE,
  DEFAULT_DEV_ISSUER_URL,
  DEFAULT_DEV_TENANT,
  DevIssuer,
  MAX_TTL_SECONDS,
  type DevIssuerLoadConfig,
  type MintedToken,
  type MintOptions,
  type TokenShape,
} from '../../identity/dev-issuer.js';

export const summary = 'mint a development access token, or exchange a token for a session ticket';

export const DEFAULT_DATA_DIR = './.warden';
const DEFAULT_TTL = '1h';
/** The longest a session ticket lasts (MAX_TTL_SECONDS in src/identity/tickets.ts, which caps it). */
const MAX_TICKET_TTL_SECONDS = 12 * 3600;

const USAGE = `usage: warden token mint --subject <client> [options]
       warden token ticket [--url <admin url>] [--token <access token>] [--ttl <duration>]

ticket: exchanges an access token ($WARDEN_TOKEN, or --token) for a short session ticket at
warden's admin API (default $WARDEN_ADMIN_URL or http://127.0.0.1:9187); clients whose password
field is too short for a token (FreeTDS tsql) log in with the ticket instead.

Mints an access token signed by warden's development issuer, shaped like an Azure AD app-only
token. Present it as the database password when connecting through warden.

options:
  --subject <id>        client application id (azp / appid); required
  --audience <aud>      token audience (default ${DEFAULT_DEV_AUDIENCE})
  --role <role>         app role; repeat for several
  --group <group>       group id; repeat for several
  --ttl <duration>      lifetime: 90s, 15m, 1h, 1d or seconds (default ${DEFAULT_TTL}, at most 1d)
  --shape <shape>       azure-v2 (azp, ver 2.0; default) or azure-v1 (appid, ver 1.0)
  --tenant <tid>        tenant id (default ${DEFAULT_DEV_TENANT})
  --name <text>         display name claim
  --issuer <url>        issuer URL (default ${DEFAULT_DEV_ISSUER_URL})
  --key-file <path>     issuer private key, created if absent (default <data dir>/keys/dev-issuer.pem)
  --data-dir <dir>      warden data directory (default ${DEFAULT_DATA_DIR})
  -c, --config <file>   take the issuer, key file, audience and tenant from warden's configuration
  --json                print {"token", "expires_at", "claims"} instead of the bare token
  -h, --help            show this help`;

export class UsageError extends Error {
  override readonly name = 'UsageError';
}

export interface MintFlags {
  subject?: string;
  audience?: string;
  roles: string[];
  groups: string[];
  ttlSeconds?: number;
  shape?: TokenShape;
  tenant?: string;
  name?: string;
  issuer?: string;
  keyFile?: string;
  dataDir?: string;
  config?: string;
  json: boolean;
  help: boolean;
}

const DURATION_UNITS: Record<string, number> = { s: 1, m: 60, h: 3600, d: 86400 };

/** "90s", "15m", "1h", "1d" or a bare number of seconds → seconds; at most `maxSeconds` when given
 *  (`what` names the thing with that limit in the message). */
export function parseTtl(text: string, maxSeconds?: number, what = 'a development token'): number {
  const m = /^(\d+)([smhd]?)$/.exec(text.trim());
  const unit = m ? DURATION_UNITS[m[2] || 's'] : undefined;
  if (!m || unit === undefined) throw new UsageError(`--ttl: '${text}' is not a duration like 90s, 15m, 1h or 1d`);
  const seconds = Number(m[1]) * unit;
  if (seconds <= 0) throw new UsageError('--ttl must be longer than zero');
  if (maxSeconds !== undefined && seconds > maxSeconds) {
    throw new UsageError(`--ttl: '${text}' is longer than the ${maxSeconds / 3600} hours (${maxSeconds} s) ${what} may last`);
  }
  return seconds;
}

function parseShape(text: string): TokenShape {
  if (text === 'azure-v2' || text === 'azure-v1') return text;
  throw new UsageError(`--shape: '${text}' is not one of azure-v2, azure-v1`);
}

export function parseMintFlags(args: string[]): MintFlags {
  let values;
  try {
    ({ values } = parseArgs({
      args,
      strict: true,
      allowPositionals: false,
      options: {
        subject: { type: 'string' },
        audience: { type: 'string' },
        role: { type: 'string', multiple: true },
        group: { type: 'string', multiple: true },
        ttl: { type: 'string' },
        shape: { type: 'string' },
        tenant: { type: 'string' },
        name: { type: 'string' },
        issuer: { type: 'string' },
        'key-file': { type: 'string' },
        'data-dir': { type: 'string' },
        config: { type: 'string', short: 'c' },
        json: { type: 'boolean' },
        help: { type: 'boolean', short: 'h' },
      },
    }));
  } catch (err) {
    throw new UsageError((err as Error).message);
  }
  for (const [name, value] of Object.entries(values)) {
    // `--audience ''` would mint a token no warden accepts, `--key-file ''` read the current directory.
    if (value === '' || (Array.isArray(value) && value.includes(''))) throw new UsageError(`--${name} needs a value, not an empty string`);
  }
  const flags: MintFlags = {
    roles: values.role ?? [],
    groups: values.group ?? [],
    json: values.json ?? false,
    help: values.help ?? false,
  };
  if (values.subject !== undefined) flags.subject = values.subject;
  if (values.audience !== undefined) flags.audience = values.audience;
  if (values.ttl !== undefined) flags.ttlSeconds = parseTtl(values.ttl, MAX_TTL_SECONDS);
  if (values.shape !== undefined) flags.shape = parseShape(values.shape);
  if (values.tenant !== undefined) flags.tenant = values.tenant;
  if (values.name !== undefined) flags.name = values.name;
  if (values.issuer !== undefined) flags.issuer = values.issuer;
  if (values['key-file'] !== undefined) flags.keyFile = values['key-file'];
  if (values['data-dir'] !== undefined) flags.dataDir = values['data-dir'];
  if (values.config !== undefined) flags.config = values.config;
  return flags;
}

/**
 * The dev issuer settings: flags win over `base` (the config file's devIssuer section, once
 * --config exists), which wins over the built-in defaults.
 */
export function devIssuerConfigFromFlags(flags: MintFlags, base?: Partial<DevIssuerConfig>): DevIssuerLoadConfig {
  const dataDir = flags.dataDir ?? DEFAULT_DATA_DIR;
  return {
    enabled: true,
    issuer: flags.issuer ?? base?.issuer ?? DEFAULT_DEV_ISSUER_URL,
    keyFile: resolve(flags.keyFile ?? base?.keyFile ?? `${dataDir}/keys/dev-issuer.pem`),
    audience: base?.audience ?? DEFAULT_DEV_AUDIENCE,
    tenant: base?.tenant ?? DEFAULT_DEV_TENANT,
  };
}

export function mintOptionsFromFlags(flags: MintFlags): MintOptions {
  if (flags.subject === undefined || flags.subject.length === 0) throw new UsageError('--subject is required');
  const opts: MintOptions = { subject: flags.subject, roles: flags.roles, groups: flags.groups };
  if (flags.audience !== undefined) opts.audience = flags.audience;
  opts.ttlSeconds = flags.ttlSeconds ?? parseTtl(DEFAULT_TTL);
  if (flags.shape !== undefined) opts.shape = flags.shape;
  if (flags.tenant !== undefined) opts.tenant = flags.tenant;
  if (flags.name !== undefined) opts.name = flags.name;
  return opts;
}

/** Loads (or creates) the dev issuer key and mints one token. */
export async function mintDevToken(config: DevIssuerLoadConfig, opts: MintOptions): Promise<MintedToken & { keyGenerated: boolean }> {
  const issuer = await DevIssuer.load(config);
  return { ...(await issuer.mintWithClaims(opts)), keyGenerated: issuer.keyGenerated };
}

/** The dev issuer section of a configuration file, with its issuer URL worked out as warden does. */
async function devIssuerFromConfigFile(path: string): Promise<Partial<DevIssuerConfig>> {
  let cfg;
  try {
    cfg = await loadConfig(path);
  } catch (err) {
    if (err instanceof ConfigError) throw new UsageError(`invalid configuration:\n${err.message}`);
    throw err;
  }
  const dev = cfg.identity.devIssuer;
  if (!dev?.enabled) throw new UsageError(`${path} does not enable identity.dev_issuer`);
  const issuer = dev.issuer ?? (cfg.listen.admin ? devIssuerUrl(cfg.listen.admin) : undefined);
  return { ...dev, ...(issuer ? { issuer } : {}) };
}

export interface CommandIO {
  stdout: { write(text: string): unknown };
  stderr: { write(text: string): unknown };
}

export async function run(args: string[], io: CommandIO = process): Promise<number> {
  const [sub, ...rest] = args;
  if (sub === undefined) {
    io.stderr.write(`warden token: a subcommand is required (mint or ticket)\n\n${USAGE}\n`);
    return 2;
  }
  if (sub === '--help' || sub === '-h' || sub === 'help') {
    io.stdout.write(`${USAGE}\n`);
    return 0;
  }
  if (sub === 'ticket') return ticketCommand(rest, io);
  if (sub !== 'mint') {
    io.stderr.write(`warden token: unknown subcommand '${sub}'\n${USAGE}\n`);
    return 2;
  }
  let config: DevIssuerLoadConfig;
  let opts: MintOptions;
  let json: boolean;
  try {
    const flags = parseMintFlags(rest);
    if (flags.help) {
      io.stdout.write(`${USAGE}\n`);
      return 0;
    }
    config = devIssuerConfigFromFlags(flags, flags.config !== undefined ? await devIssuerFromConfigFile(flags.config) : undefined);
    opts = mintOptionsFromFlags(flags);
    json = flags.json;
  } catch (err) {
    if (!(err instanceof UsageError)) throw err;
    io.stderr.write(`warden token mint: ${err.message}\nrun 'warden token mint --help' for the options\n`);
    return 2;
  }
  try {
    const minted = await mintDevToken(config, opts);
    if (minted.keyGenerated) io.stderr.write(`warden token mint: created a new dev issuer key at ${config.keyFile}\n`);
    if (json) {
      const out = { token: minted.token, expires_at: minted.expiresAt.toISOString(), claims: minted.claims };
      io.stdout.write(`${JSON.stringify(out, null, 2)}\n`);
    } else {
      io.stdout.write(`${minted.token}\n`);
    }
    return 0;
  } catch (err) {
    io.stderr.write(`warden token mint: ${(err as Error).message}\n`);
    return 1;
  }
}

async function ticketCommand(args: string[], io: CommandIO): Promise<number> {
  let values;
  try {
    ({ values } = parseArgs({ args, strict: true, options: { url: { type: 'string' }, token: { type: 'string' }, ttl: { type: 'string' }, help: { type: 'boolean', short: 'h' } } }));
  } catch (err) {
    io.stderr.write(`warden token ticket: ${(err as Error).message}\n`);
    return 2;
  }
  if (values.help) {
    io.stdout.write(`${USAGE}\n`);
    return 0;
  }
  const token = values.token ?? process.env.WARDEN_TOKEN;
  if (!token) {
    io.stderr.write('warden token ticket: give the access token with --token or $WARDEN_TOKEN\n');
    return 2;
  }
  const url = (values.url ?? process.env.WARDEN_ADMIN_URL ?? 'http://127.0.0.1:9187').replace(/\/+$/, '');
  let ttl: number | undefined;
  try {
    if (values.ttl !== undefined) ttl = parseTtl(values.ttl, MAX_TICKET_TTL_SECONDS, 'a session ticket');
    if (!/^https?:\/\//.test(url)) throw new UsageError(`--url must be an http(s) URL, got '${url}'`);
  } catch (err) {
    io.stderr.write(`warden token ticket: ${(err as Error).message}\n`);
    return 2;
  }
  try {
    const res = await fetch(`${url}/tickets`, {
      method: 'POST',
      headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' },
      signal: AbortSignal.timeout(30_000),
      ...(ttl !== undefined ? { body: JSON.stringify({ ttl_seconds: ttl }) } : {}),
    });
    const body = (await res.json().catch(() => ({}))) as { ticket?: string; expires_at?: string; error?: string };
    if (!res.ok || !body.ticket) {
      io.stderr.write(`warden token ticket: ${res.status} ${body.error ?? res.statusText}\n`);
      return 1;
    }
    io.stdout.write(`${body.ticket}\n`);
    return 0;
  } catch (err) {
    io.stderr.write(`warden token ticket: cannot reach warden at ${url}: ${networkReason(err)}\n`);
    return 1;
  }
}
