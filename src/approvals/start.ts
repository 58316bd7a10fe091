// Starts just-in-time approval for startWarden(): the statement policy the relays consult, the
// store, the service that holds statements, webhook announcements, and the API on the admin
// server. The relays receive `policy` and `service`; `close()` is called on shutdown, after the
// sessions have ended.
import { hostname } from 'node:os';
import type { AdminServer } from '../admin/server.js';
import type { WardenConfig } from '../config/types.js';
import type { TokenVerifier } from '../identity/types.js';
import { silentLogger, type Logger } from '../log.js';
import { createStatementPolicy, type RuleStatementPolicy } from '../policy/statement-rules.js';
import { ApproverPolicy } from './approvers.js';
import { defaultApprovalsConfig, type ApprovalsConfig } from './config.js';
import { approvalsHttp } from './http.js';
import { ApprovalServiceImpl } from './service.js';
import type { ApprovalStore } from './store.js';
import { EmbeddedApprovalStore } from './store-embedded.js';
import { PostgresApprovalStore } from './store-postgres.js';
import { WebhookNotifier } from './webhook.js';

export const DEFAULT_ADMIN_URL = 'http://127.0.0.1:9187';

export interface ApprovalsDeps {
  logger?: Logger;
  /** Verifies approvers' tokens (the same issuers as agents). */
  verifier: TokenVerifier;
  /** Where the API is mounted; without it nobody can decide (requests expire). */
  admin?: AdminServer;
  /** The admin server's URL, for links in notices (approvals.base_url wins). */
  adminUrl?: string;
  /** Names this instance in requests when approvals.instance_id is not set (startWarden passes the transcripts' instance id); else the host name. */
  instanceId?: string;
}

export interface Approvals {
  policy: RuleStatementPolicy;
  service: ApprovalServiceImpl;
  store: ApprovalStore;
  config: ApprovalsConfig;
  close(): Promise<void>;
}

export async function openStore(config: ApprovalsConfig, logger: Logger): Promise<ApprovalStore> {
  const s = config.store;
  if (s.type === 'embedded') return EmbeddedApprovalStore.open({ dir: s.dir, retentionMs: s.retention, logger });
  // A shared store that is down at start does not stop warden: held statements are refused until
  // it answers. When it is up, warden starts listening before it serves.
  const store = PostgresApprovalStore.openLazily({ config: s, logger });
  await store.started;
  return store;
}

export async function startApprovals(config: WardenConfig, deps: ApprovalsDeps): Promise<Approvals> {
  const logger = deps.logger ?? silentLogger;
  const log = logger.child({ component: 'approvals' });
  const cfg = config.approvals ?? defaultApprovalsConfig(config.dataDir);
  const rules = config.rules ?? [];
  const policy = createStatementPolicy(rules);
  const baseUrl = (): string => cfg.baseUrl ?? deps.adminUrl ?? DEFAULT_ADMIN_URL;

  const store = await openStore(cfg, logger);
  const notifier = cfg.webhook ? new WebhookNotifier(cfg.webhook, { logger }) : undefined;
  const service = new ApprovalServiceImpl({
    store,
    approvers: new ApproverPolicy(cfg.approvers),
    // The configured approvals.instance_id wins: restart recovery withdraws every pending request
    // filed under this id, so instances sharing a store must keep the distinct ids they were given.
    instanceId: cfg.instanceId ?? deps.instanceId ?? hostname(),
    timeoutMs: cfg.timeout,
    grantMaxMs: cfg.grantMax,
    storeGraceMs: cfg.storeGrace,
    baseUrl,
    logger,
    ...(notifier ? { notifier } : {}),
  });
  try {
    await service.start();
  } catch (err) {
    await store.close();
    throw err;
  }
  const http = approvalsHttp({ service, verifier: deps.verifier, baseUrl, logger });
  if (deps.admin) deps.admin.use(http.route);
  else log.warn('no admin listener: approval requests cannot be decided and will expire (set listen.admin)');
  if (cfg.approvers.length === 0) log.warn('no approvers configured (approvals.approvers): held statements will expire undecided');
  log.info({ store: store.kind, rules: rules.length, approvers: cfg.approvers.length, timeoutMs: cfg.timeout, instance: service.instanceId }, 'approvals ready');

  let closing: Promise<void> | undefined;
  return {
    policy,
    service,
    store,
    config: cfg,
    close: () => {
      closing ??= (async () => {
        http.close();
        await service.close();
        await notifier?.close();
        await store.close();
      })();
      return closing;
    },
  };
}
