// `approvals:` — how held statements are decided: how long they wait, who may approve what, where
// requests and grants are stored, and where new requests are announced.
//
//   approvals:
//     timeout: 5m
//     grant_max: 1h
//     approvers:
//       - name: dba-team
//         match: { issuer: azure, groups: [66666666-7777-8888-9999-000000000000] }
//         targets: ["*"]
//     store: { type: postgres, url: "${env:WARDEN_STORE_URL}" }
//     webhook: { url: "https://hooks.slack.com/services/…", format: slack }
import { join } from 'node:path';
import {
  ANY,
  APPROVALS_DEFAULTS,
  type ApprovalStoreConfig,
  type ApprovalsConfig,
  type ApproverRule,
  type PostgresStoreConfig,
  type WebhookConfig,
  type WebhookFormat,
} from '../../approvals/config.js';
import type { PrincipalMatch } from '../types.js';
import { didYouMean } from '../suggest.js';
import { DAY, HOUR, MINUTE, SECOND } from '../units.js';
import type { Field } from '../validate.js';
import { httpUrl, name } from './checks.js';
import { DEV_ISSUER_NAME } from './identity.js';
import { PG_PART_KEYS, readPostgresConnection, schemaName } from './postgres-store.js';
import { readPrincipalMatch } from './principals.js';

export const STORE_TYPES = ['embedded', 'postgres'] as const;
export const WEBHOOK_FORMATS: readonly WebhookFormat[] = ['json', 'slack'];

const APPROVALS_KEYS = ['timeout', 'grant_max', 'approvers', 'store', 'webhook', 'base_url', 'instance_id', 'store_grace'] as const;
const APPROVER_KEYS = ['name', 'match', 'targets', 'rules', 'principals', 'may_grant'] as const;
const STORE_KEYS = ['type', 'dir', 'retention', 'url', 'host', 'port', 'database', 'user', 'password', 'tls', 'schema', 'timeout', 'poll_interval'] as const;
const WEBHOOK_KEYS = ['url', 'format', 'retries', 'backoff', 'max_backoff', 'timeout', 'headers', 'secret'] as const;
const HEADER_NAME = /^[A-Za-z0-9!#$%&'*+.^_`|~-]+$/;
const RESERVED_HEADERS: ReadonlySet<string> = new Set(['content-type', 'content-length', 'host', 'transfer-encoding', 'connection', 'x-warden-signature']);
const INSTANCE_ID = /^[A-Za-z0-9][A-Za-z0-9._-]{0,62}$/;

export interface ApprovalsRefs {
  dataDir: string;
  /** Issuer names (absent: not checked). */
  issuers?: ReadonlySet<string>;
  targets?: ReadonlySet<string>;
  /** Statement rule names. */
  rules?: ReadonlySet<string>;
  /** Principal rule names. */
  principals?: ReadonlySet<string>;
}

/** Reads the section; absent, it gives the defaults (embedded store, no approvers). */
export function readApprovals(field: Field, refs: ApprovalsRefs): ApprovalsConfig | undefined {
  const s = field.section(APPROVALS_KEYS);
  if (!s) return undefined;
  const timeout = s.get('timeout').duration({ min: SECOND, max: DAY }) ?? APPROVALS_DEFAULTS.timeout;
  const grantMax = s.get('grant_max').duration({ min: MINUTE, max: 30 * DAY }) ?? APPROVALS_DEFAULTS.grantMax;
  const names = new Map<string, number>();
  const approvers = s.get('approvers').list((f) => readApprover(f, refs, names)) ?? (s.has('approvers') ? undefined : []);
  const store = readStore(s.get('store'), refs.dataDir);
  const webhook = s.has('webhook') ? readWebhook(s.get('webhook')) : undefined;
  const baseUrl = s.get('base_url').string({ check: httpUrl });
  const instanceId = s.get('instance_id').string({ check: (v) => (INSTANCE_ID.test(v) ? undefined : 'must be letters, digits, ".", "_" and "-" (at most 63)') });
  const storeGrace = s.get('store_grace').duration({ max: 10 * MINUTE }) ?? APPROVALS_DEFAULTS.storeGrace;
  if (approvers === undefined || store === undefined || (s.has('webhook') && webhook === undefined)) return undefined;
  if ((s.has('base_url') && baseUrl === undefined) || (s.has('instance_id') && instanceId === undefined)) return undefined;
  return {
    timeout,
    grantMax,
    approvers,
    store,
    storeGrace,
    ...(webhook !== undefined ? { webhook } : {}),
    ...(baseUrl !== undefined ? { baseUrl: baseUrl.replace(/\/+$/, '') } : {}),
    ...(instanceId !== undefined ? { instanceId } : {}),
  };
}

function readApprover(field: Field, refs: ApprovalsRefs, names: Map<string, number>): ApproverRule | undefined {
  const s = field.section(APPROVER_KEYS);
  if (!s) return undefined;
  const nameField = s.need('name');
  const approverName = nameField.string({ check: name });
  if (approverName !== undefined) {
    const first = names.get(approverName);
    if (first !== undefined) nameField.fail(`duplicate approver name "${approverName}" (first used at line ${first})`);
    else names.set(approverName, nameField.line);
  }
  const match = readPrincipalMatch(s.need('match'), refs);
  const targets = scopeList(s.get('targets'), refs.targets, 'target');
  const rules = scopeList(s.get('rules'), refs.rules, 'rule');
  const principals = scopeList(s.get('principals'), refs.principals, 'principal');
  const mayGrant = s.get('may_grant').boolean() ?? true;
  if (approverName === undefined || match === undefined || targets === undefined || rules === undefined || principals === undefined) return undefined;
  return { name: approverName, match, targets, rules, principals, mayGrant };
}

/** A scope list; absent means every one ("*"), written but invalid means undefined (never wider). */
function scopeList(field: Field, known: ReadonlySet<string> | undefined, what: string): string[] | undefined {
  if (!field.present) return [ANY];
  return field.list((f) => {
    const value = f.string();
    if (value === undefined || value === ANY || known === undefined || known.has(value)) return value;
    const list = known.size === 0 ? 'none are configured' : `known ${what}s: ${[...known].join(', ')}`;
    return f.fail(`unknown ${what} "${value}"${didYouMean(value, [...known])}; ${list} (or "*" for all)`);
  }, { nonEmpty: true });
}

function readStore(field: Field, dataDir: string): ApprovalStoreConfig | undefined {
  const s = field.section(STORE_KEYS);
  if (!s) return undefined;
  const typeField = s.get('type');
  const type = typeField.oneOf(STORE_TYPES) ?? (typeField.present ? undefined : 'embedded');
  if (type === undefined) return undefined;
  if (type === 'embedded') {
    for (const key of ['url', ...PG_PART_KEYS, 'schema', 'timeout', 'poll_interval'] as const) {
      s.forbid(key, 'is only used with type: postgres');
    }
    const dir = s.get('dir').filePath();
    const retention = s.get('retention').duration({ min: HOUR, max: 3650 * DAY });
    if ((s.has('dir') && dir === undefined) || (s.has('retention') && retention === undefined)) return undefined;
    return { type, dir: dir ?? join(dataDir, 'approvals'), retention: retention ?? APPROVALS_DEFAULTS.retention };
  }
  s.forbid('dir', 'is only used with type: embedded');
  s.forbid('retention', 'is only used with type: embedded');
  // Lower-case so the schema needs no quoting and can name the NOTIFY channel.
  const schema = s.get('schema').string({ check: schemaName });
  const timeout = s.get('timeout').duration({ min: 100, max: MINUTE });
  const pollInterval = s.get('poll_interval').duration({ min: 100, max: MINUTE });
  const ok = !((s.has('schema') && schema === undefined) || (s.has('timeout') && timeout === undefined) || (s.has('poll_interval') && pollInterval === undefined));
  const store: PostgresStoreConfig = {
    type,
    schema: schema ?? APPROVALS_DEFAULTS.schema,
    timeout: timeout ?? APPROVALS_DEFAULTS.storeTimeout,
    pollInterval: pollInterval ?? APPROVALS_DEFAULTS.pollInterval,
  };
  // Read even when the rest is wrong, so its problems are reported too.
  return readPostgresConnection(s, store) && ok ? store : undefined;
}

function readWebhook(field: Field): WebhookConfig | undefined {
  const s = field.section(WEBHOOK_KEYS);
  if (!s) return undefined;
  const url = s.need('url').string({ check: httpUrl });
  const format = s.get('format').oneOf(WEBHOOK_FORMATS) ?? 'json';
  const retries = s.get('retries').integer({ min: 0, max: 20 }) ?? APPROVALS_DEFAULTS.webhookRetries;
  const backoff = s.get('backoff').duration({ min: 10, max: HOUR }) ?? APPROVALS_DEFAULTS.webhookBackoff;
  const maxBackoff = s.get('max_backoff').duration({ min: 10, max: HOUR }) ?? Math.max(backoff, APPROVALS_DEFAULTS.webhookMaxBackoff);
  const timeout = s.get('timeout').duration({ min: 100, max: 5 * MINUTE }) ?? APPROVALS_DEFAULTS.webhookTimeout;
  const headers = readHeaders(s.get('headers'));
  const secret = s.get('secret').string({ secret: true });
  if (url === undefined || headers === undefined || (s.has('secret') && secret === undefined)) return undefined;
  if (maxBackoff < backoff) {
    s.get('max_backoff').fail('must not be shorter than backoff');
    return undefined;
  }
  return { url, format, retries, backoff, maxBackoff, timeout, headers, ...(secret !== undefined ? { secret } : {}) };
}

function readHeaders(field: Field): Record<string, string> | undefined {
  if (!field.present) return {};
  const entries = field.entries({
    check: (key) => {
      if (!HEADER_NAME.test(key)) return 'must be an HTTP header name';
      return RESERVED_HEADERS.has(key.toLowerCase()) ? 'is set by warden itself' : undefined;
    },
  });
  if (entries === undefined) return undefined;
  const headers: Record<string, string> = {};
  let ok = true;
  for (const [key, f] of entries) {
    const value = f.string({ secret: true, check: (v) => (/[\r\n]/.test(v) ? 'must be one line' : undefined) });
    if (value === undefined) ok = false;
    else headers[key] = value;
  }
  return ok ? headers : undefined;
}
