// `warden check-config [--config FILE]`: validates the configuration file and says what it
// configures, or prints every problem as `file:line:col: key: reason` and exits 1. Secrets are
// never printed: the summary shows names and counts only.

import { parseArgs } from 'node:util';
import { ConfigError, formatProblem, loadConfig } from '../../config/load.js';
import type { WardenConfig } from '../../config/types.js';

export const summary = 'validate the configuration file and report every problem';

export const DEFAULT_CONFIG_FILE = './warden.yaml';

const USAGE = `usage: warden check-config [--config FILE]

Validates warden's configuration: YAML syntax, every key and value, \${env:NAME} references,
the files it names (certificates, keys, JWKS, the transcript signing key), that data_dir and
transcripts.dir are directories if they exist, and references between sections. Creates nothing.
Prints a one-line summary and exits 0 when the file is valid; prints every problem and exits 1
when it is not.

options:
  -c, --config FILE   configuration file (default $WARDEN_CONFIG, else ${DEFAULT_CONFIG_FILE})
  -h, --help          show this help`;

/** `--config`, else $WARDEN_CONFIG, else ./warden.yaml. */
export function configPath(flag: string | undefined, env: NodeJS.ProcessEnv = process.env): string {
  return flag ?? (env.WARDEN_CONFIG !== undefined && env.WARDEN_CONFIG !== '' ? env.WARDEN_CONFIG : DEFAULT_CONFIG_FILE);
}

export async function run(args: string[]): Promise<number> {
  let values: { config?: string | undefined; help?: boolean | undefined };
  try {
    ({ values } = parseArgs({
      args,
      options: { config: { type: 'string', short: 'c' }, help: { type: 'boolean', short: 'h' } },
      strict: true,
      allowPositionals: false,
    }));
  } catch (err) {
    process.stderr.write(`warden check-config: ${err instanceof Error ? err.message : String(err)}\n${USAGE}\n`);
    return 2;
  }
  if (values.help) {
    process.stdout.write(`${USAGE}\n`);
    return 0;
  }
  const path = configPath(values.config);
  try {
    const config = await loadConfig(path);
    process.stdout.write(`${describe(path, config)}\n`);
    return 0;
  } catch (err) {
    if (!(err instanceof ConfigError)) throw err;
    for (const problem of err.problems) process.stderr.write(`${formatProblem(problem)}\n`);
    const n = err.problems.length;
    process.stderr.write(`${path}: ${n} problem${n === 1 ? '' : 's'}\n`);
    return 1;
  }
}

/** `warden.yaml: ok — 2 targets (shop, shop_mssql), 2 issuers (azure, dev), 3 principals (…)`. */
export function describe(path: string, config: WardenConfig): string {
  const issuers = config.identity.issuers.map((i) => i.name);
  if (config.identity.devIssuer?.enabled) issuers.push('dev');
  const principals = config.principals.map((p) => p.name);
  return `${path}: ok — ${counted([...config.targets.keys()], 'target')}, ${counted(issuers, 'issuer')}, ${counted(principals, 'principal')}`;
}

function counted(names: string[], noun: string): string {
  const label = `${names.length} ${noun}${names.length === 1 ? '' : 's'}`;
  return names.length === 0 ? label : `${label} (${names.join(', ')})`;
}
