// Runs warden from a validated configuration: the admin HTTP server (health, metrics, the dev
// issuer's JWKS), the token verifier, and the protocol listeners. `warden start`, `warden demo`
// and the integration tests all go through startWarden().
import type { AddressInfo } from 'node:net';
import { resolve } from 'node:path';
import tls from 'node:tls';
import type { ListenConfig, TranscriptsConfig, WardenConfig } from './config/types.js';
import { createLogger, type Logger } from './log.js';
import { Metrics } from './admin/metrics.js';
import { adminExposureWarning, AdminServer as AdminHttpServer, httpBase } from './admin/server.js';
import { loggedBearerVerifier } from './admin/bearer-refusals.js';
import { DevIssuer } from './identity/dev-issuer.js';
import { devIssuerHttpHandler } from './identity/dev-issuer-http.js';
import { createTokenVerifier } from './identity/verifier.js';
import { TicketStore, ticketsHttp, withTickets } from './identity/tickets.js';
import type { TokenVerifier } from './identity/types.js';
import { PgListener } from './pg/listener.js';
import { TdsListener } from './tds/listener.js';
import { selfSignedCertificate } from './tls/self-signed.js';
import { hostname } from 'node:os';
import { transcriptConfig, type TranscriptConfig } from './audit/config.js';
import { TranscriptStore } from './audit/recorder.js';
import { RecordingThread, threadInstanceId } from './pg/recording/thread.js';
import { WireRecording } from './pg/recording/wire-recording.js';
import { transcriptsHttp } from './audit/http.js';
import { TranscriptShipper, type ShipHealth } from './audit/ship.js';
import { PostgresTranscriptStore } from './audit/store-postgres.js';
import { publicKeyFileFor } from './audit/keys.js';
import { sanitizeInstanceId } from './audit/segment-files.js';
import type { SessionServices } from './services.js';
import { initSqlParser } from './sql/parser.js';
import { startApprovals, type Approvals } from './approvals/start.js';
import type { AdminServer } from './admin/server.js';
import { createMaskingEngine } from './masking/engine.js';
import type { MaskingEngine } from './masking/types.js';
import { ByteBudget } from './net/byte-budget.js';

export interface WardenServer {
  config: WardenConfig;
  logger: Logger;
  metrics: Metrics;
  verifier: TokenVerifier;
  devIssuer: DevIssuer | undefined;
  /** The certificate clients see (PEM), e.g. to give them as a CA in tests and the demo. */
  certificate: string | undefined;
  postgres: AddressInfo | undefined;
  admin: AddressInfo | undefined;
  adminUrl: string | undefined;
  pgListener: PgListener | undefined;
  tds: AddressInfo | undefined;
  tdsListener: TdsListener | undefined;
  /** Records the PostgreSQL sessions no rule touches (transcripts.recording_thread); undefined when off. */
  recordingThread: RecordingThread | undefined;
  /** Stops accepting, lets sessions end at their next idle point for up to `graceMs`, then closes the rest. */
  close(graceMs?: number): Promise<void>;
}

export interface StartOptions {
  logger?: Logger;
}

async function secureContextFor(config: WardenConfig): Promise<{ context: tls.SecureContext; cert: string; key: string } | undefined> {
  if (!config.tls) return undefined;
  const pair = config.tls.selfSigned ? await selfSignedCertificate('localhost') : { cert: config.tls.cert, key: config.tls.key };
  return { context: tls.createSecureContext({ cert: pair.cert, key: pair.key, minVersion: 'TLSv1.2' }), cert: pair.cert, key: pair.key };
}

export async function startWarden(config: WardenConfig, opts: StartOptions = {}): Promise<WardenServer> {
  const logger = opts.logger ?? createLogger({ level: config.log.level });
  const metrics = new Metrics();
  let pgListener: PgListener | undefined;
  let tdsListener: TdsListener | undefined;
  let shipHealth: (() => ShipHealth | undefined) | undefined;
  let recordingThread: RecordingThread | undefined;

  const admin = config.listen.admin
    ? new AdminHttpServer({
        metrics,
        logger: logger.child({ component: 'admin' }),
        health: () => {
          const ship = shipHealth?.();
          return {
            sessions: (pgListener?.openSessions ?? 0) + (tdsListener?.openSessions ?? 0),
            ...(ship ? { transcript_shipping: { state: ship.state, lag_records: ship.lagRecords, lag_seconds: ship.lagSeconds } } : {}),
            ...(recordingThread
              ? {
                  recording_thread: {
                    healthy: recordingThread.healthy,
                    pending_bytes: recordingThread.pendingBytes,
                    lag_ms: Math.round(recordingThread.lagMs),
                    priority: recordingThread.priority.mode,
                  },
                }
              : {}),
          };
        },
      })
    : undefined;
  const adminAddress = admin && config.listen.admin ? await listenAs('listen.admin', config.listen.admin, (cfg) => admin.listen(cfg)) : undefined;
  const exposed = config.listen.admin ? adminExposureWarning(config.listen.admin.host) : undefined;
  if (exposed) logger.warn({ host: config.listen.admin?.host }, exposed);
  const adminUrl = adminAddress ? httpBase(adminAddress) : undefined;
  const closers: (() => Promise<void>)[] = [];

  try {
    let devIssuer: DevIssuer | undefined;
    if (config.identity.devIssuer?.enabled) {
      const dev = config.identity.devIssuer;
      const issuer = dev.issuer ?? (adminUrl ? `${adminUrl}/dev-issuer` : undefined);
      if (!issuer) throw new Error('identity.dev_issuer needs listen.admin (its JWKS is served there) or an explicit issuer');
      devIssuer = await DevIssuer.load({ ...dev, keyFile: resolve(dev.keyFile), issuer });
      if (admin) admin.use(devIssuerHttpHandler(devIssuer, new URL(devIssuer.issuer).pathname));
    }
    const verifier = createTokenVerifier(config.identity, { logger, ...(devIssuer ? { devIssuer } : {}) });
    // Agents may log in with a session ticket exchanged for their token (clients whose password
    // field is too short for a token); approvers and auditors always use the token itself.
    const tickets = new TicketStore();
    const bearerVerifier = loggedBearerVerifier(verifier, metrics, logger.child({ component: 'admin' }));
    if (admin) admin.use(ticketsHttp(bearerVerifier, tickets, logger.child({ component: 'tickets' })));
    const agentVerifier = withTickets(verifier, tickets);
    const tlsSetup = await secureContextFor(config);
    const services = await startServices(config, logger, metrics, { verifier: bearerVerifier, admin, adminUrl });
    metrics.sample('warden_buffered_bytes', 'Bytes held across sessions of messages being read whole (limit: sessions.max_buffered_bytes).', () => services.buffers.inUse);
    closers.push(() => services.close());
    shipHealth = services.shipHealth;
    recordingThread = services.recordingThread;
    if (recordingThread) {
      const thread = recordingThread;
      metrics.sample('warden_recording_thread_pending_bytes', 'Bytes of sessions handed to the recording thread and not yet recorded.', () => thread.pendingBytes);
      metrics.sample('warden_recording_thread_lag_seconds', 'How long ago the oldest chunk handed to the recording thread and not yet recorded was read.', () => thread.lagMs / 1000);
      metrics.sampleCounter('warden_recording_thread_pauses_total', 'Times a session recorded on the recording thread stopped being read until the thread caught up (its backlog or its lag over the limit).', () => thread.pauses);
      metrics.sample('warden_recording_thread_nice', 'The recording thread\'s nice value: 19 in the background, the process\'s own while raised to catch up.', () => thread.priority.nice);
    }

    let postgres: AddressInfo | undefined;
    if (config.listen.postgres) {
      pgListener = new PgListener({ config, verifier: agentVerifier, secureContext: tlsSetup?.context, logger, metrics, services });
      const listener = pgListener;
      postgres = await listenAs('listen.postgres', config.listen.postgres, (cfg) => listener.listen(cfg));
      logger.info({ address: `${postgres.address}:${postgres.port}`, tls: Boolean(tlsSetup) }, 'PostgreSQL listener ready');
    }
    let tds: AddressInfo | undefined;
    if (config.listen.tds) {
      tdsListener = new TdsListener({ config, verifier: agentVerifier, certificate: tlsSetup ? { cert: tlsSetup.cert, key: tlsSetup.key } : undefined, logger, metrics, services });
      const listener = tdsListener;
      tds = await listenAs('listen.tds', config.listen.tds, (cfg) => listener.listen(cfg));
      logger.info({ address: `${tds.address}:${tds.port}`, tls: Boolean(tlsSetup) }, 'TDS listener ready');
    }
    if (adminUrl) logger.info({ url: adminUrl }, 'admin server ready');

    let closing: Promise<void> | undefined;
    /** Set by a close(0) while a close with a grace period is under way (a second SIGTERM): the grace ends now. */
    let hurried = false;
    const close = (graceMs = config.sessions.shutdownGrace): Promise<void> => {
      if (graceMs === 0) hurried = true;
      closing ??= (async () => {
        await Promise.all([pgListener, tdsListener].map(async (listener) => {
          if (!listener) return;
          const stopped = listener.stopAccepting();
          listener.endSessions(false);
          const deadline = Date.now() + graceMs;
          while (listener.openSessions > 0 && Date.now() < deadline && !hurried) await new Promise((r) => setTimeout(r, 50));
          if (listener.openSessions > 0) {
            logger.warn({ sessions: listener.openSessions }, hurried ? 'closing the remaining sessions now' : 'grace period over; cancelling and closing the remaining sessions');
            listener.endSessions(true);
            // Let their endings (transcript session-end records, withdrawn holds) happen before the services close.
            const hard = Date.now() + 3000;
            while (listener.openSessions > 0 && Date.now() < hard) await new Promise((r) => setTimeout(r, 20));
          }
          await stopped;
        }));
        for (const c of closers.reverse()) await c().catch((err: unknown) => logger.error({ err }, 'error while closing'));
        await admin?.close();
      })();
      return closing;
    };

    return {
      config,
      logger,
      metrics,
      verifier,
      devIssuer,
      certificate: tlsSetup?.cert,
      postgres,
      admin: adminAddress,
      adminUrl,
      pgListener,
      tds,
      tdsListener,
      recordingThread,
      close,
    };
  } catch (err) {
    // A listener already bound (postgres, when the tds port is taken) would keep the process alive.
    await Promise.all([pgListener, tdsListener].map((listener) => listener?.stopAccepting()));
    for (const c of closers.reverse()) await c().catch(() => undefined);
    await admin?.close();
    throw err;
  }
}

/** Transcripts, statement rules, approvals and masking, as configured. */
async function startServices(
  config: WardenConfig,
  logger: Logger,
  metrics: Metrics,
  deps: { verifier: TokenVerifier; admin: AdminServer | undefined; adminUrl: string | undefined },
): Promise<SessionServices & { close(): Promise<void>; shipHealth(): ShipHealth | undefined }> {
  const t = config.transcripts;
  const instanceId = t?.instanceId ?? sanitizeInstanceId(hostname());
  let store: TranscriptStore | undefined;
  let wireRecording: WireRecording | undefined;
  // With a shared store, retention keeps what is not shipped yet: nothing until the shipper says.
  let keepMain = (): number | undefined => (t?.ship ? 0 : undefined);
  if (t?.enabled) {
    await initSqlParser();
    store = await TranscriptStore.open(
      storeConfig(config.dataDir, t, t.instanceId),
      {
        logger: logger.child({ component: 'transcripts' }),
        keepFromSeq: () => keepMain(),
        onUnhealthy: (err) => {
          metrics.transcriptFailuresTotal.inc();
          // Sessions recorded as wire records are told now (in line, each statement checks).
          wireRecording?.storeFailed({ message: err.message, code: err.code });
          logger.error({ err: err.message }, t.onWriteError === 'refuse' ? 'transcripts cannot be written: refusing statements until warden is restarted' : 'transcripts cannot be written: continuing unrecorded (on_write_error: continue)');
        },
      },
    );
    logger.info({ dir: t.dir, instance: t.instanceId, fsync: t.fsync }, 'recording transcripts');
  }
  let thread: RecordingThread | undefined;
  // With wire records, the thread takes only the sessions under `capture: all` (wire-recording.ts).
  const threadWanted = t !== undefined && (!t.wire || t.capture === 'all' || [...t.targets.values()].some((c) => c.capture === 'all'));
  if (t?.enabled && t.recordingThread && threadWanted && t.fsync === 'interval' && config.listen.postgres) {
    try {
      thread = await RecordingThread.start({
        transcript: storeConfig(config.dataDir, t, threadInstanceId(t.instanceId)),
        logger,
        logLevel: config.log.level,
        maxPendingBytes: Math.min(32 * 1024 * 1024, config.sessions.maxBufferedBytes),
        maxLagMs: t.recordingThreadMaxLagMs,
        flushMs: t.recordingThreadBatchMs,
        stallMs: t.recordingThreadStallMs,
        onAllowed: (n) => metrics.verdictsTotal.inc({ protocol: 'postgres', verdict: 'allow' }, n),
        keepUnshipped: t.ship !== undefined,
        onUnhealthy: (err) => {
          metrics.transcriptFailuresTotal.inc();
          logger.error(
            { err: err.message, ...(err.code ? { code: err.code } : {}) },
            t.onWriteError === 'refuse'
              ? 'the recording thread cannot write transcripts: its sessions refuse statements; new sessions are recorded in line'
              : 'the recording thread cannot write transcripts: its sessions continue unrecorded (on_write_error: continue)',
          );
        },
      });
    } catch (err) {
      await store?.close();
      throw err;
    }
    const priority = thread.priority;
    logger.info(
      { instance: thread.health().instance, priority: priority.mode, ...(priority.reason ? { reason: priority.reason } : {}) },
      priority.mode === 'background'
        ? 'recording sessions without rules on the recording thread, at background priority (raised while it is behind)'
        : 'recording sessions without rules on the recording thread, at normal priority',
    );
  }
  const wire = store && t?.wire && t.fsync === 'interval' && config.listen.postgres ? new WireRecording({ store, logger, flushMs: t.recordingThreadBatchMs }) : undefined;
  wireRecording = wire;
  if (wire) logger.info('recording sessions without rules as wire records, read back through the statement flow');
  // The shared store (multi-instance): this instance ships its records there; auditors read all of them.
  const shared = t?.ship ? new PostgresTranscriptStore(t.ship, { logger }) : undefined;
  const shipperFor = (instance: string, keyId: string, publicKeyFile: string, localSeq: () => number): TranscriptShipper | undefined =>
    shared && t?.ship
      ? TranscriptShipper.start({
          store: shared,
          dir: t.dir,
          instance,
          keyId,
          publicKeyFile,
          batch: t.ship.batch,
          intervalMs: t.ship.intervalMs,
          localSeq,
          logger,
          metrics,
        })
      : undefined;
  const recorded = store;
  const shipper = recorded ? shipperFor(recorded.writer.instance, recorded.keyId, recorded.publicKeyFile, () => recorded.health().seq) : undefined;
  const threadShipper = thread ? shipperFor(thread.health().instance, thread.keyId, thread.publicKeyFile, () => (thread as RecordingThread).health().seq) : undefined;
  if (shipper) keepMain = () => keepFromShipped(shipper);
  if (thread && threadShipper) thread.keepFromSeq = () => keepFromShipped(threadShipper);
  if (shipper && t?.ship) logger.info({ schema: t.ship.schema, batch: t.ship.batch }, 'shipping transcripts to the shared store');
  const closeTranscripts = async (): Promise<void> => {
    wire?.close(); // the bytes not yet written
    await thread?.close(); // the thread's last records, then its seal
    await store?.close(); // seals the segment, which the shipper then sends
    await threadShipper?.close();
    await shipper?.close();
    await shared?.close();
  };
  if (t && deps.admin) {
    const recording = store;
    deps.admin.use(
      transcriptsHttp({
        dir: t.dir,
        publicKeyFile: publicKeyFileFor(t.keyFile),
        auditors: t.auditors,
        verifier: deps.verifier,
        principals: config.principals,
        targets: [...config.targets.keys()],
        health: () => recording?.health(),
        ...(thread
          ? {
              threadHealth: () => {
                const th = thread as RecordingThread;
                return { ...th.health(), pendingBytes: th.pendingBytes, lagMs: Math.round(th.lagMs), priority: th.priority };
              },
            }
          : {}),
        threadShipHealth: () => threadShipper?.health(),
        ...(shared ? { shared } : {}),
        shipHealth: () => shipper?.health(),
        logger: logger.child({ component: 'transcripts-api' }),
      }),
    );
  }
  let approvals: Approvals | undefined;
  try {
    if (config.rules !== undefined || config.approvals !== undefined) {
      await initSqlParser();
      approvals = await startApprovals(config, {
        logger,
        verifier: deps.verifier,
        ...(deps.admin ? { admin: deps.admin } : {}),
        ...(deps.adminUrl ? { adminUrl: deps.adminUrl } : {}),
        instanceId,
      });
    }
  } catch (err) {
    await closeTranscripts();
    throw err;
  }
  let masking: MaskingEngine | undefined;
  if (config.masking) {
    await initSqlParser();
    masking = createMaskingEngine({ masking: config.masking, targets: config.targets });
    logger.info({ rules: config.masking.rules.length }, 'masking ready');
  }
  return {
    instanceId,
    recorders: store,
    recordingThread: thread,
    wire,
    transcripts: t,
    policy: approvals?.policy,
    approvals: approvals?.service,
    masking,
    buffers: new ByteBudget(config.sessions.maxBufferedBytes),
    // /healthz: the lag of both chains (the event loop's and the recording thread's).
    shipHealth: () => worstShipping(shipper?.health(), threadShipper?.health()),
    close: async () => {
      await masking?.close();
      await approvals?.close();
      await closeTranscripts();
    },
  };
}

/** The transcript store's settings from the configuration, for the chain of `instanceId`. */
function storeConfig(dataDir: string, t: TranscriptsConfig, instanceId: string): TranscriptConfig {
  return transcriptConfig(dataDir, {
    dir: t.dir,
    instanceId,
    keyFile: t.keyFile,
    createKey: t.createKey,
    fsync: t.fsync,
    fsyncIntervalMs: t.fsyncIntervalMs,
    syncStallMs: t.syncStallMs,
    segmentMaxBytes: t.segmentMaxBytes,
    segmentMaxAgeMs: t.segmentMaxAgeMs,
    ...(t.retentionMs !== undefined ? { retentionMs: t.retentionMs } : {}),
    capture: { mode: t.capture, firstRows: t.captureRows },
  });
}

/** The lowest seq retention must leave on disk: the first the shipper has not shipped (all, before it knows). */
function keepFromShipped(shipper: TranscriptShipper): number {
  const h = shipper.health();
  return h.state === 'starting' ? 0 : h.shippedSeq + 1;
}

/** Two shippers' state as one: the state of the one behind, the lag of both. */
function worstShipping(a: ShipHealth | undefined, b: ShipHealth | undefined): ShipHealth | undefined {
  if (!a || !b) return a ?? b;
  const behind = a.state !== 'caught-up' ? a : b;
  return { ...behind, lagRecords: a.lagRecords + b.lagRecords, lagSeconds: Math.max(a.lagSeconds, b.lagSeconds) };
}

/** Binds a listener; a failure names the configuration key, the address and why. */
async function listenAs(key: string, cfg: ListenConfig, listen: (cfg: ListenConfig) => Promise<AddressInfo>): Promise<AddressInfo> {
  try {
    return await listen(cfg);
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    const why =
      code === 'EADDRINUSE'
        ? 'the port is already in use (another process, or another warden)'
        : code === 'EACCES'
          ? 'permission denied (ports below 1024 need privileges)'
          : code === 'EADDRNOTAVAIL'
            ? 'the address is not one of this machine\'s'
            : (err as Error).message;
    throw new Error(`${key}: cannot listen on ${cfg.host}:${cfg.port}: ${why}${code ? ` (${code})` : ''}`);
  }
}
