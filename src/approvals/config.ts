// The validated shape of the `rules:` and `approvals:` sections (read by
// src/config/sections/rules.ts and approvals.ts; see docs/approvals.md for the reference).
import { join } from 'node:path';
import type { Duration, PrincipalMatch, UpstreamTlsMode } from '../config/types.js';
import type { RelationAccess, StatementFlags, StatementKind } from '../sql/types.js';
import type { StatementAction } from './types.js';

/** Stands for every target, rule or principal in approver and rule scopes. */
export const ANY = '*';

/** Flag names as written in the config → the classifier's StatementFlags key. */
export const RULE_FLAGS = {
  no_where: 'noWhere',
  data_modifying_cte: 'dataModifyingCte',
  privilege_change: 'privilegeChange',
  session_escape: 'sessionEscape',
  alter_system: 'alterSystem',
  do_block: 'doBlock',
  copy_program: 'copyProgram',
  copy_to_file: 'copyToFile',
  copy_from_file: 'copyFromFile',
} as const satisfies Record<string, keyof StatementFlags>;

export type RuleFlag = keyof typeof RULE_FLAGS;

/**
 * What a rule matches. Every key given must hold (AND); a list holds when any one of its values
 * does. `unparseable` and `all` stand alone.
 */
export interface StatementRuleMatch {
  /** Texts the parser could not understand (only these). */
  unparseable?: true;
  /** Every statement, and unparseable texts too. */
  all?: true;
  kinds?: StatementKind[];
  flags?: RuleFlag[];
  /** true: any function on the classifier's dangerous list; a list: any of these names (`*` wildcards). */
  dangerousFunctions?: true | string[];
  /** Any function called, by name (`pg_catalog.set_config`, `dblink*`). */
  functions?: string[];
  /** Relations touched: `orders`, `public.orders`, `payroll.*`, `*.secrets`. */
  relations?: string[];
  /** How the relation is touched (with `relations`: the same relation; alone: any relation). */
  access?: RelationAccess[];
  /** The classifier's conservative read-only verdict. */
  readOnly?: boolean;
}

export interface StatementRule {
  name: string;
  match: StatementRuleMatch;
  /** Principal rule names this rule applies to (default: every principal). */
  principals?: string[];
  /** Tokens with any of these app roles. */
  roles?: string[];
  /** Tokens with any of these groups. */
  groups?: string[];
  /** Target names (default: every target). */
  targets?: string[];
  action: StatementAction;
  /** Shown to the agent (deny) and to approvers (hold). */
  message?: string;
}

export interface ApproverRule {
  name: string;
  /** Which approver tokens this rule covers (same fields as a principal's match). */
  match: PrincipalMatch;
  /** Requests for these targets ("*" = all). */
  targets: string[];
  /** Requests raised by these statement rules ("*" = all). */
  rules: string[];
  /** Requests from these principals (principal rule names, "*" = all). */
  principals: string[];
  /** May approve with a time-boxed grant (default true). */
  mayGrant: boolean;
}

export interface EmbeddedStoreConfig {
  type: 'embedded';
  /** Directory of the journal; default <data_dir>/approvals. */
  dir: string;
  /** Finished requests and dead grants older than this are dropped when the journal is compacted. */
  retention: Duration;
}

/** A PostgreSQL database warden keeps state in (approvals, shipped transcripts). */
export interface PostgresConnection {
  /** A libpq URL … */
  url?: string;
  /** … or the parts. */
  host?: string;
  port?: number;
  database?: string;
  user?: string;
  password?: string;
  tls?: { mode: Extract<UpstreamTlsMode, 'disable' | 'require' | 'verify-ca' | 'verify-full'>; ca?: string };
}

export interface PostgresStoreConfig extends PostgresConnection {
  type: 'postgres';
  /** Schema holding the tables (created if absent); also names the NOTIFY channel. */
  schema: string;
  /** Connect and query timeout. */
  timeout: Duration;
  /** How often a holding instance checks its requests when no notification arrives. */
  pollInterval: Duration;
}

export type ApprovalStoreConfig = EmbeddedStoreConfig | PostgresStoreConfig;

export type WebhookFormat = 'json' | 'slack';

export interface WebhookConfig {
  url: string;
  format: WebhookFormat;
  /** Attempts after the first. */
  retries: number;
  /** Delay before the first retry; doubled each time up to maxBackoff. */
  backoff: Duration;
  maxBackoff: Duration;
  /** One attempt's time limit. */
  timeout: Duration;
  /** Extra request headers (e.g. Authorization); values may come from ${env:…}. */
  headers: Record<string, string>;
  /** When set, each POST carries `x-warden-signature: sha256=<HMAC of the body>`. */
  secret?: string;
}

export interface ApprovalsConfig {
  /** How long a held statement waits for a decision. */
  timeout: Duration;
  /** Longest grant an approver may give. */
  grantMax: Duration;
  approvers: ApproverRule[];
  store: ApprovalStoreConfig;
  webhook?: WebhookConfig;
  /** Base of the URLs in notices and webhooks; default the admin server's URL. */
  baseUrl?: string;
  /** Names this instance in requests (restart recovery); default the host name. */
  instanceId?: string;
  /** A store unreachable this long while statements are held denies them. */
  storeGrace: Duration;
}

export const APPROVALS_DEFAULTS = {
  timeout: 5 * 60_000,
  grantMax: 60 * 60_000,
  retention: 30 * 24 * 3600_000,
  schema: 'warden',
  storeTimeout: 5_000,
  pollInterval: 1_000,
  storeGrace: 3_000,
  webhookRetries: 5,
  webhookBackoff: 1_000,
  webhookMaxBackoff: 60_000,
  webhookTimeout: 5_000,
} as const;

/** The configuration used when the file has no `approvals:` section. */
export function defaultApprovalsConfig(dataDir: string): ApprovalsConfig {
  return {
    timeout: APPROVALS_DEFAULTS.timeout,
    grantMax: APPROVALS_DEFAULTS.grantMax,
    approvers: [],
    store: { type: 'embedded', dir: join(dataDir, 'approvals'), retention: APPROVALS_DEFAULTS.retention },
    storeGrace: APPROVALS_DEFAULTS.storeGrace,
  };
}
