// One agent connection on the PostgreSQL listener, from the first byte to the relay:
//
//   startup ──SSLRequest──▶ tls ──▶ startup ──StartupMessage──▶ authenticating
//      │                                                              │ token valid, target known
//      └──CancelRequest──▶ (forward cancel, close)                    ▼
//                                                                  connecting ──▶ relaying ──▶ closed
//
// Every refusal is a FATAL ErrorResponse built in one place (`refuse`) with a SQLSTATE and a
// short reason; internal detail goes to the log only.
import { randomUUID } from 'node:crypto';
import type net from 'node:net';
import tls from 'node:tls';
import type { Logger } from '../log.js';
import type { PostgresTargetConfig, WardenConfig } from '../config/types.js';
import { AuthError, type Principal, type TokenVerifier } from '../identity/types.js';
import { AUTH_REASONS } from '../identity/reasons.js';
import { MAX_TOKEN_CHARS } from '../identity/verifier.js';
import { expiryWait, matchPrincipal, mayReach, tokenExpiredAtLogin } from '../policy/principals.js';
import { encodeAuthentication } from '../../protocols/postgres/authentication.js';
import { Frontend } from '../../protocols/postgres/codes.js';
import { encodeErrorResponse, type ErrorSpec } from '../../protocols/postgres/error-response.js';
import { decodePasswordMessage } from '../../protocols/postgres/password-message.js';
import {
  encodeBackendKeyData,
  encodeNegotiateProtocolVersion,
  encodeReadyForQuery,
} from '../../protocols/postgres/session-messages.js';
import { decodeStartupPacket, startupPacketLength, type StartupMessage } from '../../protocols/postgres/startup-message.js';
import { MessageTooLargeError, ProtocolError } from '../../protocols/errors.js';
import type { Metrics } from '../admin/metrics.js';
import { transcriptPrincipal, type Recorder } from '../audit/recorder.js';
import type { SessionEventInfo, SessionStartInfo } from '../audit/types.js';
import { capturePolicyFor } from '../config/sections/transcripts.js';
import type { RecordingThread, ThreadSessionStart, ThreadTap } from './recording/thread.js';
import { WireTap, type WireRecording } from './recording/wire-recording.js';
import { threadHandlers } from './recording/handlers.js';
import type { SessionMasker } from '../masking/types.js';
import type { SessionServices } from '../services.js';
import { SessionFlow } from './flow/session-flow.js';
import type { CancelRegistry, UpstreamCancelTarget } from './cancel-registry.js';
import { MessageReader, DeadlineError, ConnectionClosedError } from './message-reader.js';
import { PassThroughClient, PassThroughServer, PgRelay, type DirectionHandler, type RelayEndReason } from './relay.js';
import { SqlState } from './sqlstate.js';
import { connectUpstream, sendUpstreamCancel, UpstreamError, type UpstreamSession } from './upstream.js';

export type SessionState = 'startup' | 'tls' | 'authenticating' | 'connecting' | 'relaying' | 'closed';

export interface PgSessionDeps {
  config: WardenConfig;
  verifier: TokenVerifier;
  /** Present when warden has a certificate: SSLRequest is then answered 'S'. */
  secureContext: tls.SecureContext | undefined;
  logger: Logger;
  metrics: Metrics;
  services: SessionServices;
  cancels: CancelRegistry;
  /** Called when the session is established and when it ends, for the session registry. */
  onOpen(session: PgClientSession): void;
  onClose(session: PgClientSession): void;
}

/** Thrown inside the login flow to end it with a FATAL error to the client. */
class Refusal extends Error {
  constructor(
    readonly spec: ErrorSpec,
    readonly logDetail: Record<string, unknown> = {},
  ) {
    super(spec.message);
  }
}

/** How long a session may go on past its token's expiry waiting for an idle point. */
const EXPIRY_HARD_GRACE_MS = 60_000;
/** Why a session recorded on the recording thread refuses its statements once the thread cannot record it (it does until it ends). */
const THREAD_UNWRITABLE = 'the recording thread cannot write this session\'s transcript; reconnect to go on (new sessions are recorded in line)';
const THREAD_STOPPED = 'the recording thread stopped following this session; reconnect to go on';
const WIRE_UNWRITABLE = "warden cannot write this session's transcript";
/** How long a session recorded on a failed recording thread may take to reach an idle point before it is closed. */
const RECORDING_FAILED_GRACE_MS = 2_000;

/** Settings the `options` startup parameter may not carry: they change who the session acts as. */
const FORBIDDEN_OPTION_SETTINGS = new Set(['role', 'session_authorization']);

/** The longest token the verifier takes, with room for framing, the NUL and stray whitespace. */
const MAX_PASSWORD_MESSAGE = MAX_TOKEN_CHARS + 1024;

const isLoopback = (addr: string | undefined): boolean =>
  addr === '127.0.0.1' || addr === '::1' || addr === '::ffff:127.0.0.1' || (addr?.startsWith('127.') ?? false);

export class PgClientSession {
  readonly id = randomUUID();
  state: SessionState = 'startup';
  readonly startedAt = new Date();
  readonly remoteAddress: string | undefined;
  readonly remotePort: number | undefined;
  private socket: net.Socket;
  private tlsInfo: { protocol: string | null; cipher: string | null } | undefined;
  principal: Principal | undefined;
  target: PostgresTargetConfig | undefined;
  private relay: PgRelay | undefined;
  private flow: SessionFlow | undefined;
  private recorder: Recorder | undefined;
  /** Set when the session is recorded on the recording thread; its tap opens with the relay. */
  private threadStart: SessionStartInfo | undefined;
  /** A session recorded as `wire` records (transcripts.wire): its recorder, which wrote its `session-start`. */
  private wireRecorder: Recorder | undefined;
  private tap: ThreadTap | WireTap | undefined;
  /** Run once at the relay's next idle point. */
  private whenIdle: (() => void) | undefined;
  private upstream: UpstreamSession | undefined;
  private cancelTarget: UpstreamCancelTarget | undefined;
  private expiryTimer: NodeJS.Timeout | undefined;
  private readonly log: Logger;
  private closed = false;
  applicationName: string | undefined;
  clientUser: string | undefined;

  constructor(
    raw: net.Socket,
    private readonly deps: PgSessionDeps,
  ) {
    this.socket = raw;
    this.remoteAddress = raw.remoteAddress;
    this.remotePort = raw.remotePort;
    raw.setNoDelay(true);
    raw.setKeepAlive(true, 60_000);
    this.log = deps.logger.child({ session: this.id, protocol: 'postgres', client: `${raw.remoteAddress}:${raw.remotePort}` });
    // Until the relay takes over, any socket error just ends the attempt.
    raw.on('error', (err) => this.log.debug({ err: err.message }, 'client socket error during login'));
  }

  async run(): Promise<void> {
    const deadline = Date.now() + this.deps.config.sessions.loginTimeout;
    try {
      const startup = await this.negotiateStartup(deadline);
      if (!startup) return; // a CancelRequest, handled
      this.applicationName = startup.params.get('application_name');
      this.clientUser = startup.params.get('user');
      const { principal, target } = await this.authenticate(startup, deadline);
      this.principal = principal;
      this.target = target;
      await this.connect(target, startup);
    } catch (err) {
      this.failLogin(err);
    }
  }

  // startup ---------------------------------------------------------------------------------------
  /** Reads startup packets until a StartupMessage (after optional SSL/GSS negotiation). */
  private async negotiateStartup(deadline: number): Promise<StartupMessage | undefined> {
    for (;;) {
      const { packet, leftover } = await readStartupPacket(this.socket, deadline);
      const msg = decodeStartupPacket(packet);
      switch (msg.kind) {
        case 'ssl': {
          if (leftover.length) throw new ProtocolError('data sent after SSLRequest before the TLS handshake');
          if (this.tlsInfo) throw new ProtocolError('SSLRequest received twice');
          if (!this.deps.secureContext) {
            this.socket.write('N');
            continue;
          }
          this.socket.write('S');
          this.state = 'tls';
          this.socket = await this.startTls(deadline);
          this.state = 'startup';
          continue;
        }
        case 'gssenc':
          if (leftover.length) throw new ProtocolError('data sent after GSSENCRequest');
          this.socket.write('N'); // warden does not do GSSAPI encryption; the client falls back
          continue;
        case 'cancel':
          await this.forwardCancel(msg.processId, msg.secretKey);
          return undefined;
        case 'startup':
          this.pendingBytes = leftover;
          return msg;
      }
    }
  }

  private pendingBytes: Buffer = Buffer.alloc(0);

  private startTls(deadline: number): Promise<net.Socket> {
    return new Promise((resolve, reject) => {
      const secure = new tls.TLSSocket(this.socket, {
        isServer: true,
        secureContext: this.deps.secureContext as tls.SecureContext,
      });
      const timer = setTimeout(() => reject(new DeadlineError('TLS handshake timed out')), Math.max(0, deadline - Date.now()));
      secure.once('secure', () => {
        clearTimeout(timer);
        const cipher = secure.getCipher();
        this.tlsInfo = { protocol: secure.getProtocol(), cipher: cipher?.name ?? null };
        secure.setNoDelay(true);
        secure.pause();
        resolve(secure);
      });
      secure.once('error', (err) => {
        clearTimeout(timer);
        reject(new ConnectionClosedError(`TLS handshake failed: ${err.message}`));
      });
      secure.on('error', () => undefined);
    });
  }

  private async forwardCancel(processId: number, secretKey: number): Promise<void> {
    const target = this.deps.cancels.lookup(processId, secretKey);
    this.deps.metrics.cancelsTotal.inc({ protocol: 'postgres', result: target ? 'forwarded' : 'unknown_key' });
    if (!target) {
      this.log.warn({ processId }, 'cancel request with an unknown key ignored');
    } else {
      this.log.info({ target_session: target.sessionId }, 'forwarding cancel request');
      await target.cancel().catch((err: Error) => this.log.warn({ err: err.message }, 'cancel request to the target failed'));
    }
    this.socket.destroy(); // the protocol has no reply to a CancelRequest
    this.markClosed();
  }

  // authentication --------------------------------------------------------------------------------
  private async authenticate(startup: StartupMessage, deadline: number): Promise<{ principal: Principal; target: PostgresTargetConfig }> {
    const params = startup.params;
    if (params.has('replication') && params.get('replication') !== 'false' && params.get('replication') !== 'off') {
      throw new Refusal({ severity: 'FATAL', code: SqlState.featureNotSupported, message: 'replication connections are not supported through warden' });
    }
    const minor = startup.version & 0xffff;
    const protocolOptions = [...params.keys()].filter((k) => k.startsWith('_pq_.'));
    if (minor > 0 || protocolOptions.length) {
      this.socket.write(encodeNegotiateProtocolVersion({ newestMinor: 0, unrecognized: protocolOptions }));
    }
    const forbidden = forbiddenOptions(params.get('options') ?? '');
    if (forbidden) {
      throw new Refusal(
        { severity: 'FATAL', code: SqlState.insufficientPrivilege, message: `warden does not allow setting "${forbidden}" at connection start` },
        { reason: 'forbidden startup option', setting: forbidden },
      );
    }
    const user = params.get('user');
    if (!user) {
      throw new Refusal({ severity: 'FATAL', code: SqlState.invalidAuthorizationSpecification, message: 'no user name specified in the startup packet' });
    }
    const targetName = params.get('database') || user;

    const plaintextOk = this.deps.config.plaintextTokens === 'loopback' && isLoopback(this.remoteAddress);
    if (!this.tlsInfo && !plaintextOk) {
      throw new Refusal(
        {
          severity: 'FATAL',
          code: SqlState.invalidAuthorizationSpecification,
          message: 'warden accepts access tokens only over TLS',
          hint: this.deps.secureContext ? 'connect with sslmode=require' : 'warden has no TLS certificate configured',
        },
        { reason: 'plaintext' },
      );
    }

    this.state = 'authenticating';
    this.socket.write(encodeAuthentication({ type: 'cleartext-password' }));
    const reader = new MessageReader(this.socket, MAX_PASSWORD_MESSAGE);
    reader.seed(this.pendingBytes);
    this.socket.resume();
    let msg: Buffer;
    try {
      msg = await reader.next(deadline);
    } catch (err) {
      // A password too long to be a token is a refused token (28000), as docs/identity.md says.
      if (err instanceof MessageTooLargeError && err.messageType === Frontend.password) {
        throw new Refusal(
          { severity: 'FATAL', code: SqlState.invalidAuthorizationSpecification, message: `token rejected: ${AUTH_REASONS.malformed}` },
          { reason: AUTH_REASONS.malformed, detail: `${err.message}: tokens are at most ${MAX_TOKEN_CHARS} characters` },
        );
      }
      throw err;
    }
    if (!reader.detach()) throw new ProtocolError('unexpected data after the password message');
    if (msg[0] !== Frontend.password) {
      throw new ProtocolError(`expected a password message, got message type 0x${(msg[0] ?? 0).toString(16)}`);
    }
    const token = decodePasswordMessage(msg);
    if (!token) {
      throw new Refusal(
        { severity: 'FATAL', code: SqlState.invalidAuthorizationSpecification, message: 'access token required as the password' },
        { reason: 'missing token' },
      );
    }

    let identity;
    try {
      identity = await this.deps.verifier.verify(token);
    } catch (err) {
      if (err instanceof AuthError) {
        throw new Refusal(
          { severity: 'FATAL', code: SqlState.invalidAuthorizationSpecification, message: `token rejected: ${err.reason}` },
          { reason: err.reason, detail: err.detail },
        );
      }
      throw err;
    }
    const matched = matchPrincipal(identity, this.deps.config.principals);
    if (!matched) {
      throw new Refusal(
        { severity: 'FATAL', code: SqlState.invalidAuthorizationSpecification, message: 'no policy admits this identity' },
        { reason: 'no matching principal', issuer: identity.issuerName, subject: identity.subject },
      );
    }
    if (matched.rule.onTokenExpiry === 'end' && tokenExpiredAtLogin(matched.principal.expiresAt)) {
      // Within the issuer's clock_skew the verifier accepts a token just past its expiry, but an
      // 'end' rule would end the session at once: refuse it as the expired token it is.
      throw new Refusal(
        { severity: 'FATAL', code: SqlState.invalidAuthorizationSpecification, message: 'token rejected: token expired' },
        { reason: 'token expired', principal: matched.principal.name },
      );
    }
    const target = this.deps.config.targets.get(targetName);
    if (!target || target.protocol !== 'postgres') {
      throw new Refusal(
        { severity: 'FATAL', code: SqlState.invalidCatalogName, message: `target "${targetName}" does not exist` },
        { reason: 'unknown target', principal: matched.principal.name },
      );
    }
    if (!mayReach(matched.rule, target.name)) {
      throw new Refusal(
        {
          severity: 'FATAL',
          code: SqlState.invalidAuthorizationSpecification,
          message: `principal "${matched.principal.name}" may not connect to target "${target.name}"`,
        },
        { reason: 'target not granted', principal: matched.principal.name },
      );
    }
    if (matched.rule.onTokenExpiry === 'end' && matched.principal.expiresAt) {
      this.scheduleExpiry(matched.principal.expiresAt);
    }
    return { principal: matched.principal, target };
  }

  // upstream --------------------------------------------------------------------------------------
  private async connect(target: PostgresTargetConfig, startup: StartupMessage): Promise<void> {
    this.state = 'connecting';
    let upstream: UpstreamSession;
    try {
      upstream = await connectUpstream(target, startup.params, { maxMessageBytes: this.deps.config.sessions.maxMessageBytes });
    } catch (err) {
      if (err instanceof UpstreamError) {
        this.deps.metrics.upstreamFailuresTotal.inc({ target: target.name, kind: err.kind });
        const code = err.kind === 'rejected' && err.sqlState ? err.sqlState : SqlState.connectionFailure;
        const message =
          err.kind === 'rejected' ? err.clientMessage : `${err.clientMessage} "${target.name}"`;
        throw new Refusal({ severity: 'FATAL', code, message }, { reason: 'upstream', kind: err.kind, detail: err.detail });
      }
      throw err;
    }
    if (this.closed || this.socket.destroyed) {
      upstream.socket.destroy();
      throw new ConnectionClosedError('client went away during upstream login');
    }
    this.upstream = upstream;
    this.cancelTarget = {
      host: target.host,
      port: target.port,
      processId: upstream.backendKey.processId,
      secretKey: upstream.backendKey.secretKey,
      sessionId: this.id,
      cancel: () => {
        const held = this.flow?.cancelHeld() ?? false;
        this.recordCancel(held);
        return held ? Promise.resolve() : sendUpstreamCancel(target, upstream.backendKey);
      },
    };
    let masker: SessionMasker | undefined;
    try {
      masker = await this.startMasking(target);
      await this.startRecording(target, masker);
    } catch (err) {
      upstream.socket.destroy();
      throw err;
    }
    const clientKey = this.deps.cancels.register(this.cancelTarget);

    const greeting = [encodeAuthentication({ type: 'ok' }), ...upstream.parameterStatus, ...upstream.notices, encodeBackendKeyData(clientKey), encodeReadyForQuery(upstream.transactionStatus)];
    this.socket.write(Buffer.concat(greeting));
    this.startRelay(upstream, masker);
  }

  /**
   * Opens this session's transcript (fail closed: no session runs unrecorded unless configured
   * to). A session that no statement rule and no masking rule touches is recorded as wire records
   * (transcripts.wire: its start now, its bytes as they come) or on the recording thread
   * (src/pg/recording/) when there is one: its tap opens with the relay.
   */
  private async startRecording(target: PostgresTargetConfig, masker: SessionMasker | undefined): Promise<void> {
    const { recorders, transcripts, recordingThread, wire, policy } = this.deps.services;
    if (!recorders || !transcripts?.enabled) return;
    const principal = this.principal as Principal;
    const start: SessionStartInfo = {
      sessionId: this.id,
      protocol: 'postgres',
      target: target.name,
      principal,
      client: {
        address: this.remoteAddress ?? '',
        port: this.remotePort ?? 0,
        tls: this.tlsInfo ? { version: this.tlsInfo.protocol ?? '', cipher: this.tlsInfo.cipher ?? '' } : null,
        ...(this.applicationName ? { application: this.applicationName } : {}),
        ...(this.clientUser ? { user: this.clientUser } : {}),
        database: target.name,
      },
    };
    const passThrough =
      transcripts.fsync === 'interval' &&
      (policy === undefined || policy.permitsEverything({ principal, target: target.name, protocol: 'postgres' })) &&
      (masker === undefined || masker.inert);
    // As wire records: the session's start now, its bytes as they come (wire-recording.ts). Not
    // with `capture: all`, whose rows the statement flow keeps within its limits.
    const asWire = passThrough && wire?.healthy === true && capturePolicyFor(transcripts, target.name).mode !== 'all';
    if (!asWire && passThrough && recordingThread?.healthy) {
      this.threadStart = start;
      return;
    }
    if (!recorders.healthy && transcripts.onWriteError === 'refuse') {
      throw new Refusal(
        { severity: 'FATAL', code: SqlState.ioError, message: 'warden cannot record sessions right now; try again later' },
        { reason: 'transcripts unavailable' },
      );
    }
    const recorder = recorders.recorder();
    try {
      await recorder.sessionStart(start);
      if (asWire) {
        this.threadStart = start;
        this.wireRecorder = recorder;
      } else this.recorder = recorder;
    } catch (err) {
      if (transcripts.onWriteError === 'refuse') {
        throw new Refusal(
          { severity: 'FATAL', code: SqlState.ioError, message: 'warden cannot record sessions right now; try again later' },
          { reason: 'transcripts unavailable', detail: (err as Error).message },
        );
      }
      this.log.error({ err: (err as Error).message }, 'transcript unavailable; session continues unrecorded (on_write_error: continue)');
    }
  }

  /** Opens the session's tap on the recording thread, once the upstream's state is known. */
  private openTap(thread: RecordingThread, start: SessionStartInfo, upstream: UpstreamSession, target: PostgresTargetConfig): ThreadTap {
    return thread.open(this.sessionContext(start, upstream, target), (error) => this.recordingFailed(error.message, error.code === 'ESTOPPED' ? THREAD_STOPPED : THREAD_UNWRITABLE));
  }

  /** What a statement flow replaying the session's bytes must know before the first byte. */
  private sessionContext(start: SessionStartInfo, upstream: UpstreamSession, target: PostgresTargetConfig): ThreadSessionStart {
    const tp = transcriptPrincipal(start.principal);
    return {
      // Only what a transcript may hold of the principal crosses to the thread, or into a wire record.
      start: { ...start, principal: { ...tp, ...(tp.tokenExpiresAt === undefined ? {} : { expiresAt: tp.tokenExpiresAt }) } },
      parameters: [...upstream.parameters],
      capture: capturePolicyFor(this.deps.services.transcripts, target.name),
      maxMessageBytes: this.deps.config.sessions.maxMessageBytes,
      transactionStatus: upstream.transactionStatus,
    };
  }

  /** Opens the session's `wire` tap (transcripts.wire), once the upstream's state is known. */
  private openWireTap(recorder: Recorder, start: SessionStartInfo, upstream: UpstreamSession, target: PostgresTargetConfig): WireTap {
    return (this.deps.services.wire as WireRecording).open(this.sessionContext(start, upstream, target), recorder, (error) => this.recordingFailed(error.message, WIRE_UNWRITABLE));
  }

  /**
   * The recording thread cannot record this session any more (its store cannot be written, or it
   * is gone). As in line, its statements are then refused (on_write_error: refuse): at the next
   * idle point the statement flow takes over, refusing every statement. A session that does not
   * come to an idle point soon is closed.
   */
  private recordingFailed(why: string, refusal: string): void {
    const relay = this.relay;
    if (!relay || relay.endReason) return; // ending anyway (a message both relays refused, say)
    if (this.deps.services.transcripts?.onWriteError === 'continue') {
      this.log.error({ err: why }, 'transcript unavailable; session continues unrecorded (on_write_error: continue)');
      return;
    }
    this.log.error({ err: why }, 'transcript cannot be written; refusing the session\'s statements');
    const refuseAll = (): void => {
      if (relay.endReason) return;
      const upstream = this.upstream as UpstreamSession;
      this.flow = this.newFlow(upstream.parameters, undefined, () => false, refusal);
      relay.replaceHandlers(this.flow.client, this.flow.server);
      relay.releaseClient();
    };
    if (relay.idle) {
      refuseAll();
      return;
    }
    // Busy: what the client sends from now on would run unrecorded; it waits for the idle point,
    // where the refusing flow reads it (the server's answers to what came before still go through).
    relay.holdClient();
    this.whenIdle = refuseAll;
    setTimeout(() => {
      if (this.whenIdle !== refuseAll) return;
      this.whenIdle = undefined;
      this.forceEnd({ severity: 'FATAL', code: SqlState.ioError, message: 'warden cannot record this session any more; the session was closed, reconnect to go on' });
    }, RECORDING_FAILED_GRACE_MS).unref();
  }

  /** A CancelRequest for this session (it comes on a connection of its own): an `event` in its transcript. */
  private recordCancel(held: boolean): void {
    const info: SessionEventInfo = { kind: 'cancel', message: held ? 'CancelRequest: the statement held for approval was withdrawn' : 'CancelRequest' };
    if (this.recorder) this.recorder.event(info).catch((err: unknown) => this.log.error({ err: (err as Error).message }, 'transcript write failed'));
    else this.tap?.event(info);
  }

  /**
   * `on_write_error: continue`: the store failed while this session was open; it goes on
   * unrecorded, as a session opened after the failure does (its end is not recorded either).
   */
  private continueUnrecorded(err: unknown): void {
    if (!this.recorder) return;
    this.recorder = undefined;
    this.log.error({ err: err instanceof Error ? err.message : String(err) }, 'transcript unavailable; session continues unrecorded (on_write_error: continue)');
  }

  /** The statement flow for this session (see flow/session-flow.ts). */
  private newFlow(parameters: ReadonlyMap<string, string>, masker: SessionMasker | undefined, recordingHealthy: () => boolean, unrecordedReason?: string): SessionFlow {
    const { metrics } = this.deps;
    const services = this.deps.services;
    const target = this.target as PostgresTargetConfig;
    const transcripts = services.transcripts;
    const queries = metrics.queriesTotal.bind({ protocol: 'postgres', target: target.name });
    const verdicts = metrics.verdictCounters('postgres');
    const flow = new SessionFlow({
      sessionId: this.id,
      principal: this.principal as Principal,
      target: target.name,
      clientAddress: this.remoteAddress ?? '',
      instanceId: services.instanceId,
      logger: this.log,
      policy: services.policy,
      approvals: services.approvals,
      masker,
      recorder: this.recorder,
      capture: capturePolicyFor(transcripts, target.name),
      durableBeforeForward: transcripts?.fsync === 'each',
      recordingHealthy,
      ...(unrecordedReason ? { unrecordedReason } : {}),
      ...(transcripts?.onWriteError === 'continue' ? { continueUnrecorded: (err: unknown) => this.continueUnrecorded(err) } : {}),
      inject: (msg) => this.relay?.injectToClient(msg),
      expectReady: () => this.relay?.expectReady(),
      onQuery: () => queries.inc(),
      onVerdict: (v) => verdicts[v].inc(),
    });
    for (const [name, value] of parameters) flow.noteParameter(name, value);
    return flow;
  }

  private async startMasking(target: PostgresTargetConfig): Promise<SessionMasker | undefined> {
    const engine = this.deps.services.masking;
    if (!engine) return undefined;
    try {
      return await engine.session({ principal: this.principal as Principal, target: target.name });
    } catch (err) {
      // Without the catalog warden cannot tell protected columns apart: refuse the session.
      throw new Refusal(
        { severity: 'FATAL', code: SqlState.connectionFailure, message: `warden could not load masking metadata for target "${target.name}"` },
        { reason: 'masking unavailable', detail: (err as Error).message },
      );
    }
  }

  private startRelay(upstream: UpstreamSession, masker: SessionMasker | undefined): void {
    const { metrics } = this.deps;
    const target = this.target as PostgresTargetConfig;
    const labels = { protocol: 'postgres', target: target.name };
    const queries = metrics.queriesTotal.bind(labels);
    const up = metrics.bytesTotal.bind({ direction: 'client_to_upstream' });
    const down = metrics.bytesTotal.bind({ direction: 'upstream_to_client' });
    const services = this.deps.services;
    const principal = this.principal as Principal;
    const ctx = { principal, target: target.name, protocol: 'postgres' as const };
    const needsFlow =
      this.recorder !== undefined ||
      (services.policy !== undefined && !services.policy.permitsEverything(ctx)) ||
      (masker !== undefined && !masker.inert);
    let clientHandler: DirectionHandler = new PassThroughClient(() => queries.inc());
    let serverHandler: DirectionHandler = new PassThroughServer();
    if (needsFlow) {
      const transcripts = services.transcripts;
      const recorders = services.recorders;
      this.flow = this.newFlow(upstream.parameters, masker, () => !this.recorder || !recorders || recorders.healthy || transcripts?.onWriteError === 'continue');
      clientHandler = this.flow.client;
      serverHandler = this.flow.server;
    }
    const thread = services.recordingThread;
    let wireTap: WireTap | undefined;
    if (this.threadStart && (this.wireRecorder || thread)) {
      this.tap = this.wireRecorder ? this.openWireTap(this.wireRecorder, this.threadStart, upstream, target) : this.openTap(thread as RecordingThread, this.threadStart, upstream, target);
      wireTap = this.tap instanceof WireTap ? this.tap : undefined;
      // Pass-through, but for what the statement flow refuses whatever the policy (handlers.ts).
      if (!needsFlow) {
        const denied = metrics.verdictsTotal.bind({ protocol: 'postgres', verdict: 'deny' });
        // The recording thread counts the statements its flows allow; with wire records no flow
        // runs now, so each Query or Execute counts as one allowed statement.
        const allowed = this.wireRecorder ? metrics.verdictsTotal.bind({ protocol: 'postgres', verdict: 'allow' }) : undefined;
        const onQuery = allowed
          ? () => {
              queries.inc();
              allowed.inc();
            }
          : () => queries.inc();
        ({ client: clientHandler, server: serverHandler } = threadHandlers({ readyDue: () => this.relay?.readyDue ?? 0, onQuery, onDenied: () => denied.inc(), ...(wireTap ? { state: wireTap.state } : {}) }));
      }
    }
    this.relay = new PgRelay(this.socket, upstream.socket, clientHandler, serverHandler, {
      maxMessageBytes: this.deps.config.sessions.maxMessageBytes,
      ...(this.tap ? { onChunk: this.tap.chunk } : {}),
      allowance: this.deps.services.buffers,
      onEnd: (reason) => this.relayEnded(reason),
      onBytes: (direction, n) => (direction === 'client_to_upstream' ? up : down).inc(n),
      onHandlerError: (side, err) => this.log.error({ side, err: err instanceof Error ? err.message : String(err) }, 'statement flow failed; closing the session'),
      onIdle: () => {
        // A wire session's resume point, when one is due (wire-recording.ts).
        wireTap?.idle();
        const then = this.whenIdle;
        this.whenIdle = undefined;
        then?.();
      },
    });
    this.tap?.attach(this.relay);
    this.state = 'relaying';
    metrics.sessionsTotal.inc(labels);
    metrics.sessionsActive.inc(labels);
    this.deps.onOpen(this);
    this.log.info(
      {
        principal: this.principal?.name,
        subject: this.principal?.subject,
        issuer: this.principal?.issuerName,
        target: target.name,
        tls: this.tlsInfo?.protocol ?? 'none',
        upstreamTls: upstream.tls?.protocol ?? 'none',
        application: this.applicationName,
      },
      'session established',
    );
    this.relay.start(upstream.transactionStatus);
  }

  private relayEnded(reason: RelayEndReason): void {
    const target = this.target as PostgresTargetConfig;
    this.deps.metrics.sessionsActive.dec({ protocol: 'postgres', target: target.name });
    if (reason.kind === 'protocol-error') {
      this.deps.metrics.protocolErrorsTotal.inc({ protocol: 'postgres', side: reason.side });
      this.log.warn({ side: reason.side, error: reason.message }, 'session closed on a protocol error');
    }
    this.log.info({ reason: reason.kind, durationMs: Date.now() - this.startedAt.getTime() }, 'session ended');
    this.flow?.close('disconnected');
    this.tap?.end({ reason: reason.kind, ...('message' in reason ? { detail: reason.message } : 'reason' in reason ? { detail: reason.reason } : {}) });
    this.recorder
      ?.sessionEnd({ reason: reason.kind, ...('message' in reason ? { detail: reason.message } : 'reason' in reason ? { detail: reason.reason } : {}) })
      .catch((err: unknown) => this.log.error({ err: (err as Error).message }, 'transcript write failed at session end'));
    this.markClosed();
  }

  // endings ---------------------------------------------------------------------------------------
  private scheduleExpiry(expiresAt: Date): void {
    const { delayMs, final } = expiryWait(expiresAt);
    this.expiryTimer = setTimeout(() => (final ? this.tokenExpired() : this.scheduleExpiry(expiresAt)), delayMs);
    this.expiryTimer.unref();
  }

  private tokenExpired(): void {
    this.log.info('access token expired; ending the session at the next idle point');
    const spec: ErrorSpec = {
      severity: 'FATAL',
      code: SqlState.invalidAuthorizationSpecification,
      message: 'access token expired; reconnect with a fresh token',
    };
    if (this.relay) {
      // A held statement has not run: it does not start after the token that sent it expired.
      this.flow?.close('token-expired');
      this.relay.terminate(spec, true);
      // A session that never becomes idle (a long query, a busy pipeline) is not allowed to
      // outlive its token for long: after the grace its statement is cancelled and it is closed.
      setTimeout(() => this.forceEnd(spec), EXPIRY_HARD_GRACE_MS).unref();
    } else {
      this.failLogin(new Refusal(spec));
    }
  }

  /** Cancels whatever the upstream is running, then closes both sides at once. */
  private forceEnd(spec: ErrorSpec): void {
    const relay = this.relay;
    if (!relay || relay.endReason) return;
    this.log.warn({ reason: spec.message }, 'closing the session now');
    // A held statement is withdrawn (it never ran); a running one is cancelled upstream.
    const withdrew = this.flow?.close('session-ended') ?? false;
    const upstream = this.upstream;
    const target = this.target;
    if (!withdrew && !relay.idle && upstream && target) {
      sendUpstreamCancel(target, upstream.backendKey).catch((err: Error) => this.log.warn({ err: err.message }, 'could not cancel the running statement'));
    }
    relay.terminate(spec);
  }

  /** Ends the session at its next idle point with 57P01 (shutdown), or at once when `now`. */
  shutdown(now: boolean): void {
    const spec: ErrorSpec = { severity: 'FATAL', code: SqlState.adminShutdown, message: 'terminating connection because warden is shutting down' };
    if (this.relay) {
      if (now) this.forceEnd(spec);
      else this.relay.terminate(spec, true);
    } else {
      this.failLogin(new Refusal(spec));
    }
  }

  private failLogin(err: unknown): void {
    if (this.closed) return;
    const m = this.deps.metrics;
    if (err instanceof Refusal) {
      if (err.spec.code === SqlState.invalidAuthorizationSpecification) {
        m.authFailuresTotal.inc({ protocol: 'postgres', reason: String(err.logDetail.reason ?? 'refused') });
      }
      this.log.warn({ code: err.spec.code, message: err.spec.message, ...err.logDetail }, 'login refused');
      this.sendFatal(err.spec);
    } else if (err instanceof ProtocolError) {
      m.protocolErrorsTotal.inc({ protocol: 'postgres', side: 'client' });
      this.log.warn({ error: err.message }, 'protocol violation during login');
      this.sendFatal({ severity: 'FATAL', code: SqlState.protocolViolation, message: `invalid startup: ${err.message}` });
    } else if (err instanceof DeadlineError) {
      this.log.info('login timed out');
      this.sendFatal({ severity: 'FATAL', code: SqlState.protocolViolation, message: 'login timed out' });
    } else if (err instanceof ConnectionClosedError) {
      this.log.debug({ error: err.message }, 'client left during login');
      this.socket.destroy();
    } else {
      this.log.error({ err }, 'internal error during login');
      this.sendFatal({ severity: 'FATAL', code: SqlState.internalError, message: 'internal error in warden' });
    }
    this.markClosed();
  }

  private sendFatal(spec: ErrorSpec): void {
    if (this.socket.destroyed) return;
    this.socket.end(encodeErrorResponse(spec));
    setTimeout(() => this.socket.destroy(), 1000).unref();
  }

  private markClosed(): void {
    if (this.closed) return;
    this.closed = true;
    this.state = 'closed';
    if (this.expiryTimer) clearTimeout(this.expiryTimer);
    if (this.cancelTarget) this.deps.cancels.unregister(this.cancelTarget);
    this.deps.onClose(this);
  }
}

/** Reads one untyped startup packet; returns it and any bytes that came after it. */
function readStartupPacket(socket: net.Socket, deadline: number): Promise<{ packet: Buffer; leftover: Buffer }> {
  return new Promise((resolve, reject) => {
    let buf: Buffer = Buffer.alloc(0);
    const cleanup = (): void => {
      clearTimeout(timer);
      socket.off('data', onData);
      socket.off('end', onEnd);
      socket.off('close', onEnd);
      socket.pause();
    };
    const onData = (chunk: Buffer): void => {
      buf = buf.length ? Buffer.concat([buf, chunk]) : chunk; // at most 10 KB, once per connection
      try {
        const len = startupPacketLength(buf);
        if (len === 0) return;
        cleanup();
        resolve({ packet: buf.subarray(0, len), leftover: buf.subarray(len) });
      } catch (err) {
        cleanup();
        reject(err);
      }
    };
    const onEnd = (): void => {
      cleanup();
      reject(new ConnectionClosedError('client closed the connection during startup'));
    };
    const timer = setTimeout(() => {
      cleanup();
      reject(new DeadlineError('startup timed out'));
    }, Math.max(0, deadline - Date.now()));
    socket.on('data', onData);
    socket.once('end', onEnd);
    socket.once('close', onEnd);
    socket.resume();
  });
}


/**
 * The first setting in an `options` startup parameter (`-c name=value`, `--name=value`, quoted
 * or backslash-escaped as libpq allows) that may not be set through warden, if any.
 */
export function forbiddenOptions(options: string): string | undefined {
  const words: string[] = [];
  let cur = '';
  for (let i = 0; i < options.length; i++) {
    const ch = options[i] as string;
    if (ch === '\\' && i + 1 < options.length) {
      cur += options[++i];
    } else if (/\s/.test(ch)) {
      if (cur) words.push(cur);
      cur = '';
    } else {
      cur += ch;
    }
  }
  if (cur) words.push(cur);
  for (let i = 0; i < words.length; i++) {
    const w = words[i] as string;
    let setting: string | undefined;
    if (w === '-c') setting = words[++i];
    else if (w.startsWith('-c')) setting = w.slice(2);
    else if (w.startsWith('--')) setting = w.slice(2);
    if (setting === undefined) continue;
    const name = setting.split('=')[0]?.trim().toLowerCase().replace(/-/g, '_') ?? '';
    if (FORBIDDEN_OPTION_SETTINGS.has(name)) return name;
  }
  return undefined;
}
