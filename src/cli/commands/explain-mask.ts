// `warden explain-mask`: for a principal (by name, or by an access token) and a target, which
// output columns of a query would be masked, by which rule and why, and what the inference and
// laundering checks say. It connects to the target (with its stored credential) to read the
// catalog and to have each statement described; nothing is executed.

import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { parseArgs } from 'node:util';
import { ConfigError, formatProblem, loadConfig } from '../../config/load.js';
import type { IssuerConfig, WardenConfig } from '../../config/types.js';
import { DevIssuer } from '../../identity/dev-issuer.js';
import type { Principal } from '../../identity/types.js';
import { createTokenVerifier } from '../../identity/verifier.js';
import { createMaskingEngine, explainMask, formatExplain } from '../../masking/index.js';
import { matchPrincipal } from '../../policy/principals.js';
import { initSqlParser } from '../../sql/index.js';
import { configPath } from './check-config.js';

export const summary = 'show which output columns of a query are masked for a principal, and why';

const USAGE = `usage: warden explain-mask [--config FILE] --target NAME (--principal NAME | --token TOKEN) [options] SQL

For the principal and target, prints each statement of SQL with the masking verdict (inference
and laundering checks) and, per output column, whether it is masked, by which rule, with which
strategy and why. warden connects to the target to read its catalog and to have PostgreSQL
describe each statement (Parse + Describe: nothing runs).

options:
  -c, --config FILE     configuration file (default $WARDEN_CONFIG, else ./warden.yaml)
  -t, --target NAME     a target from the configuration
  -p, --principal NAME  the principal's name (as masking rules name it)
      --role ROLE       an app role the principal holds; repeat for several (with --principal)
      --group GROUP     a group the principal is in; repeat for several (with --principal)
      --groups-overage  the principal's token carries a groups overage (with --principal)
      --token TOKEN     an access token instead: validated like a login, its principal used
      --json            print the result as JSON
  -h, --help            show this help`;

interface Flags {
  config?: string | undefined;
  target?: string | undefined;
  principal?: string | undefined;
  role?: string[] | undefined;
  group?: string[] | undefined;
  'groups-overage'?: boolean | undefined;
  token?: string | undefined;
  json?: boolean | undefined;
  help?: boolean | undefined;
}

function fail(message: string): number {
  process.stderr.write(`warden explain-mask: ${message}\n`);
  return 2;
}

export async function run(args: string[]): Promise<number> {
  let values: Flags;
  let positionals: string[];
  try {
    ({ values, positionals } = parseArgs({
      args,
      options: {
        config: { type: 'string', short: 'c' },
        target: { type: 'string', short: 't' },
        principal: { type: 'string', short: 'p' },
        role: { type: 'string', multiple: true },
        group: { type: 'string', multiple: true },
        'groups-overage': { type: 'boolean' },
        token: { type: 'string' },
        json: { type: 'boolean' },
        help: { type: 'boolean', short: 'h' },
      },
      strict: true,
      allowPositionals: true,
    }));
  } catch (err) {
    return fail(`${err instanceof Error ? err.message : String(err)}\n${USAGE}`);
  }
  if (values.help) {
    process.stdout.write(`${USAGE}\n`);
    return 0;
  }
  const sql = positionals.join(' ').trim();
  if (sql === '') return fail(`the SQL to explain is missing\n${USAGE}`);
  if (!values.target) return fail(`--target is required\n${USAGE}`);
  if ((values.principal === undefined) === (values.token === undefined)) return fail(`give exactly one of --principal and --token\n${USAGE}`);
  if (values.token !== undefined && (values.role || values.group || values['groups-overage'])) return fail('--role, --group and --groups-overage go with --principal (a token carries its own)');

  const path = configPath(values.config);
  let config: WardenConfig;
  try {
    config = await loadConfig(path);
  } catch (err) {
    if (!(err instanceof ConfigError)) throw err;
    for (const problem of err.problems) process.stderr.write(`${formatProblem(problem)}\n`);
    process.stderr.write(`${path}: the configuration is not valid\n`);
    return 1;
  }
  const target = config.targets.get(values.target);
  if (!target) return fail(`target "${values.target}" is not configured (known: ${[...config.targets.keys()].join(', ') || 'none'})`);
  if (target.protocol !== 'postgres') return fail(`target "${values.target}" is a ${target.protocol} target; explain-mask supports postgres targets`);

  let principal: Principal;
  if (values.token !== undefined) {
    const p = await principalFromToken(config, values.token);
    if (typeof p === 'string') {
      process.stderr.write(`warden explain-mask: ${p}\n`);
      return 1;
    }
    principal = p;
  } else {
    principal = {
      name: values.principal as string,
      issuerName: 'explain-mask',
      issuer: 'explain-mask',
      subject: values.principal as string,
      subjectClaim: 'explain-mask',
      roles: values.role ?? [],
      groups: values.group ?? [],
      groupsOverage: values['groups-overage'] ?? false,
      audience: 'explain-mask',
    };
    if (!config.principals.some((r) => r.name === principal.name)) {
      process.stderr.write(`warden explain-mask: note: no principal rule is named "${principal.name}"\n`);
    }
  }

  await initSqlParser();
  const engine = createMaskingEngine({ masking: config.masking, targets: config.targets });
  try {
    const result = await explainMask(engine, principal, values.target, sql);
    process.stdout.write(values.json ? `${JSON.stringify(result, null, 2)}\n` : `${formatExplain(result)}\n`);
    return 0;
  } catch (err) {
    process.stderr.write(`warden explain-mask: ${err instanceof Error ? err.message : String(err)}\n`);
    return 1;
  } finally {
    await engine.close();
  }
}

/** Validates a token as a login would and maps it to its principal; a string says why not. */
async function principalFromToken(config: WardenConfig, token: string): Promise<Principal | string> {
  const identity = { ...config.identity, issuers: [...config.identity.issuers] };
  let tmp: string | undefined;
  try {
    const dev = config.identity.devIssuer;
    if (dev?.enabled && dev.issuer !== undefined) {
      // The dev issuer's keys are served by a running warden; read them from its key file instead.
      const issuer = await DevIssuer.load({ ...dev, keyFile: resolve(dev.keyFile), issuer: dev.issuer });
      tmp = await mkdtemp(join(tmpdir(), 'warden-explain-'));
      const jwksFile = join(tmp, 'jwks.json');
      await writeFile(jwksFile, JSON.stringify(issuer.jwks()));
      const { jwksUri: _unused, ...rest } = issuer.issuerConfig();
      const local: IssuerConfig = { ...rest, jwksFile, audiences: [dev.audience] };
      if (!identity.issuers.some((i) => i.issuer === local.issuer)) identity.issuers.push(local);
    }
    const verifier = createTokenVerifier({ issuers: identity.issuers });
    let verified;
    try {
      verified = await verifier.verify(token);
    } catch (err) {
      return `token rejected: ${err instanceof Error ? err.message : String(err)}`;
    }
    const match = matchPrincipal(verified, config.principals);
    if (!match) return 'no policy admits this identity';
    return match.principal;
  } finally {
    if (tmp) await rm(tmp, { recursive: true, force: true });
  }
}
