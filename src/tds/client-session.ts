// One agent connection on the TDS listener, from the first byte to the relay:
//
//   prelogin ──PRELOGIN──▶ [tls: handshake in PRELOGIN packets] ──▶ login ──LOGIN7──▶ authenticating
//      │                                                                                   │
//      └── TLS ClientHello first (TDS 8.0 strict) ──▶ tls ──▶ prelogin (inside TLS)        ▼
//                                                                       connecting ──▶ relaying ──▶ closed
//
// Encryption is what the client asks for in PRELOGIN, when warden has a certificate:
// ENCRYPT_ON/REQ → the whole session in TLS; ENCRYPT_OFF → TLS for LOGIN7 only, then plaintext
// ("login-only"); ENCRYPT_NOT_SUP (or no certificate) → plaintext, in which case a token login is
// refused unless `plaintext_tokens: loopback` and the client is on loopback. (tedious carries on
// in plaintext when the server answers NOT_SUP to its ENCRYPT_ON: warden then refuses the login.)
// The agent's OIDC token arrives in LOGIN7, through the FEDAUTH feature (security-token library)
// or as the password; it is checked exactly as on PostgreSQL. Every refusal is a TDS ERROR built
// in errors.ts, sent in place of the login response; detail goes to the log only.
import { randomUUID } from 'node:crypto';
import type net from 'node:net';
import type { Duplex } from 'node:stream';
import type tls from 'node:tls';
import {
  decodeFedAuthFeature,
  decodeLogin7,
  decodePrelogin,
  DEFAULT_PACKET_SIZE,
  encodePrelogin,
  ENCRYPTION,
  FEATURE_ID,
  FEDAUTH_LIBRARY,
  LOGIN7_MAX_LENGTH,
  LOGIN7_OPTION_FLAGS_2,
  MAX_PACKET_SIZE,
  packetize,
  PACKET_TYPE,
  TDS_VERSION,
  isSupportedVersion,
  type Login7,
  type Message,
  type Prelogin,
} from '../../protocols/tds/index.js';
import { MessageTooLargeError, ProtocolError } from '../../protocols/errors.js';
import type { Metrics } from '../admin/metrics.js';
import type { Recorder } from '../audit/recorder.js';
import { capturePolicyFor } from '../config/sections/transcripts.js';
import type { TargetConfig, TdsTargetConfig, WardenConfig } from '../config/types.js';
import { AuthError, type Principal, type TokenVerifier } from '../identity/types.js';
import { AUTH_REASONS } from '../identity/reasons.js';
import { MAX_TOKEN_CHARS } from '../identity/verifier.js';
import type { Logger } from '../log.js';
import { expiryWait, matchPrincipal, mayReach, tokenExpiredAtLogin } from '../policy/principals.js';
import type { SessionServices } from '../services.js';
import {
  cannotOpenDatabase,
  errorMessage,
  internalError,
  loginFailed,
  protocolViolation,
  shuttingDown,
  TDS_CLASS,
  TdsRefusal,
  type TdsErrorSpec,
} from './errors.js';
import { PassThroughFlow, TdsStatementFlow } from './flow.js';
import { clientLoginResponse } from './login-response.js';
import { ConnectionClosedError, DeadlineError, TdsMessageReader } from './message-reader.js';
import type { PreloginTlsAdapter } from './prelogin-tls.js';
import { TdsRelay, type RelayEndReason, type TdsFlowHandler } from './relay.js';
import { acceptPreloginTls, acceptStrictTls, type TdsServerTls, type TlsSessionInfo } from './tls.js';
import { connectTdsUpstream, UpstreamError, type TdsUpstreamSession } from './upstream.js';

export type TdsSessionState = 'prelogin' | 'tls' | 'login' | 'authenticating' | 'connecting' | 'relaying' | 'closed';

/** How the client's bytes travel. */
export type TdsEncryption = 'none' | 'login-only' | 'full' | 'strict';

export interface TdsSessionDeps {
  config: WardenConfig;
  verifier: TokenVerifier;
  /** warden's certificate for TDS, when it has one. */
  tls: TdsServerTls | undefined;
  logger: Logger;
  metrics: Metrics;
  services: SessionServices;
  onOpen(session: TdsClientSession): void;
  onClose(session: TdsClientSession): void;
}

/** The first byte of a TLS handshake record: a TDS 8.0 client starts with its ClientHello. */
const TLS_HANDSHAKE_RECORD = 0x16;
/** A PRELOGIN message is a few dozen bytes. */
const MAX_PRELOGIN = 4096;
/** The version warden announces in PRELOGIN (the target's comes in LOGINACK). */
const WARDEN_VERSION = { major: 16, minor: 0, build: 0, subBuild: 0 };
/** The longest password FreeTDS sends (it cuts every LOGIN7 string there). */
const FREETDS_PASSWORD_LIMIT = 128;
/** Cap on one token of a response while relaying (PLP values are checked as they grow). */
const MAX_TOKEN_BYTES = 256 * 1024 * 1024;

const isLoopback = (addr: string | undefined): boolean =>
  addr === '127.0.0.1' || addr === '::1' || addr === '::ffff:127.0.0.1' || (addr?.startsWith('127.') ?? false);

export class TdsClientSession {
  readonly id = randomUUID();
  state: TdsSessionState = 'prelogin';
  readonly startedAt = new Date();
  readonly remoteAddress: string | undefined;
  readonly remotePort: number | undefined;
  /** What TDS is read from and written to now: the TCP socket or TLS over it. */
  private socket: Duplex;
  private adapter: PreloginTlsAdapter | undefined;
  encryption: TdsEncryption = 'none';
  private tlsInfo: TlsSessionInfo | undefined;
  private login: Login7 | undefined;
  /** A LOGIN7 that came without PRELOGIN. */
  private earlyLogin: Message | undefined;
  principal: Principal | undefined;
  target: TdsTargetConfig | undefined;
  private relay: TdsRelay | undefined;
  /** The statement flow, when one runs (it may hold a request for approval). */
  private flow: TdsStatementFlow | undefined;
  private recorder: Recorder | undefined;
  private upstream: TdsUpstreamSession | undefined;
  private expiryTimer: NodeJS.Timeout | undefined;
  private readonly log: Logger;
  private closed = false;

  constructor(
    private readonly raw: net.Socket,
    private readonly deps: TdsSessionDeps,
  ) {
    this.socket = raw;
    this.remoteAddress = raw.remoteAddress;
    this.remotePort = raw.remotePort;
    raw.setNoDelay(true);
    raw.setKeepAlive(true, 60_000);
    this.log = deps.logger.child({ session: this.id, protocol: 'tds', client: `${raw.remoteAddress}:${raw.remotePort}` });
    raw.on('error', (err) => this.log.debug({ err: err.message }, 'client socket error'));
  }

  async run(): Promise<void> {
    const deadline = Date.now() + this.deps.config.sessions.loginTimeout;
    try {
      await this.negotiate(deadline);
      const login = await this.readLogin(deadline);
      this.login = login;
      const { token, fedAuth } = this.credential(login);
      this.checkTransport();
      const { principal, target } = await this.authenticate(login, token);
      this.principal = principal;
      this.target = target;
      await this.connect(target, login, fedAuth);
    } catch (err) {
      this.failLogin(err);
    }
  }

  // prelogin and TLS ------------------------------------------------------------------------------

  private async negotiate(deadline: number): Promise<void> {
    const first = await firstByte(this.raw, deadline);
    if (first === TLS_HANDSHAKE_RECORD) {
      // TDS 8.0: TLS before anything else, then PRELOGIN inside it.
      if (!this.deps.tls) throw new ConnectionClosedError('TLS-first (TDS 8.0) connection but warden has no certificate');
      this.state = 'tls';
      const s = await acceptStrictTls(this.raw, this.deps.tls, deadline);
      this.socket = s.secure;
      this.tlsInfo = s.info;
      this.encryption = 'strict';
      this.state = 'prelogin';
    }
    const reader = new TdsMessageReader(this.socket, { packetSize: MAX_PACKET_SIZE, maxMessageSize: LOGIN7_MAX_LENGTH });
    const msg = await reader.next(deadline);
    if (!reader.detach()) throw new ProtocolError('data sent after PRELOGIN before its answer');
    if (msg.type === PACKET_TYPE.LOGIN7 && this.encryption === 'none') {
      // TDS 7.1 clients may log in without PRELOGIN (jTDS with ssl=off): no encryption, then.
      this.earlyLogin = msg;
      return;
    }
    if (msg.type !== PACKET_TYPE.PRELOGIN) throw new ProtocolError(`expected PRELOGIN, got packet type 0x${msg.type.toString(16)}`);
    if (msg.payload.length > MAX_PRELOGIN) throw new ProtocolError(`PRELOGIN of ${msg.payload.length} bytes`);
    const prelogin = decodePrelogin(msg.payload);
    const answer = this.answerPrelogin(prelogin);
    this.socket.write(packetize(PACKET_TYPE.TABULAR_RESULT, encodePrelogin(answer), DEFAULT_PACKET_SIZE));
    const enc = answer.encryption;
    if (this.encryption === 'strict' || enc === ENCRYPTION.ENCRYPT_NOT_SUP || !this.deps.tls) return;
    this.state = 'tls';
    const s = await acceptPreloginTls(this.raw, this.deps.tls, deadline);
    this.socket = s.secure;
    this.adapter = s.adapter;
    this.tlsInfo = s.info;
    this.encryption = enc === ENCRYPTION.ENCRYPT_OFF ? 'login-only' : 'full';
    this.state = 'prelogin';
  }

  /** warden's PRELOGIN answer: encryption as the client asks when warden can, MARS off, FEDAUTH as asked. */
  private answerPrelogin(client: Prelogin): Prelogin {
    const asked = (client.encryption ?? ENCRYPTION.ENCRYPT_NOT_SUP) & ~ENCRYPTION.ENCRYPT_CLIENT_CERT;
    let encryption: number;
    if (this.encryption === 'strict') {
      // Already in TLS: say so to a client that asks for encryption, leave alone one that does not.
      encryption = asked === ENCRYPTION.ENCRYPT_ON || asked === ENCRYPTION.ENCRYPT_REQ ? ENCRYPTION.ENCRYPT_ON : ENCRYPTION.ENCRYPT_NOT_SUP;
    } else if (!this.deps.tls) {
      encryption = ENCRYPTION.ENCRYPT_NOT_SUP;
    } else if (asked === ENCRYPTION.ENCRYPT_OFF) {
      encryption = ENCRYPTION.ENCRYPT_OFF; // login-only encryption: LOGIN7 (and the token) go in TLS
    } else if (asked === ENCRYPTION.ENCRYPT_ON || asked === ENCRYPTION.ENCRYPT_REQ) {
      encryption = ENCRYPTION.ENCRYPT_ON;
    } else {
      encryption = ENCRYPTION.ENCRYPT_NOT_SUP;
    }
    return {
      version: WARDEN_VERSION,
      encryption,
      ...(client.instance !== undefined ? { instance: '' } : {}),
      ...(client.threadId !== undefined ? { threadId: null } : {}),
      ...(client.mars !== undefined ? { mars: 0 } : {}),
      ...(client.fedAuthRequired !== undefined ? { fedAuthRequired: 1 } : {}),
    };
  }

  // LOGIN7 ------------------------------------------------------------------------------------

  private async readLogin(deadline: number): Promise<Login7> {
    this.state = 'login';
    let msg = this.earlyLogin;
    let clean = true;
    let tooLarge: MessageTooLargeError | undefined;
    if (!msg) {
      const reader = new TdsMessageReader(this.socket, { packetSize: MAX_PACKET_SIZE, maxMessageSize: LOGIN7_MAX_LENGTH });
      try {
        msg = await reader.next(deadline);
        clean = reader.detach();
      } catch (err) {
        if (!(err instanceof MessageTooLargeError && err.messageType === PACKET_TYPE.LOGIN7)) throw err;
        tooLarge = err;
      }
    }
    if (this.encryption === 'login-only') {
      // Login-only encryption: the rest of the session is plaintext on the TCP socket.
      this.adapter?.detach();
      (this.socket as tls.TLSSocket).destroy();
      this.socket = this.raw;
      this.raw.on('error', () => undefined);
    }
    if (tooLarge || !msg) {
      // Only a token (FEDAUTH, or the password) makes a LOGIN7 this large: a refused token, as
      // docs/identity.md says of tokens over 64 KiB, answered where the LOGIN7 answer goes.
      const detail = `LOGIN7 ${tooLarge?.message ?? 'missing'}: tokens are at most ${MAX_TOKEN_CHARS} characters`;
      throw new TdsRefusal(loginFailed('', `token rejected: ${AUTH_REASONS.malformed}`), { reason: AUTH_REASONS.malformed, detail }, AUTH_REASONS.malformed);
    }
    if (!clean) throw new ProtocolError('data sent after LOGIN7 before its answer');
    if (msg.type === PACKET_TYPE.SSPI) throw new TdsRefusal(loginFailed('', 'integrated (SSPI) authentication is not supported by warden; use an access token'), { reason: 'sspi' }, 'sspi');
    if (msg.type !== PACKET_TYPE.LOGIN7) throw new ProtocolError(`expected LOGIN7, got packet type 0x${msg.type.toString(16)}`);
    const login = decodeLogin7(msg.payload);
    if (!isSupportedVersion(login.tdsVersion)) throw new ProtocolError(`unsupported TDS version 0x${login.tdsVersion.toString(16)}`);
    return login;
  }

  /** Where the access token is: the FEDAUTH feature (security token), else the password. */
  private credential(login: Login7): { token: string; fedAuth: boolean } {
    const fed = login.features?.find((f) => f.featureId === FEATURE_ID.FEDAUTH);
    if (fed) {
      const f = decodeFedAuthFeature(fed.data);
      if (f.library !== FEDAUTH_LIBRARY.SECURITY_TOKEN || !f.token) {
        throw new TdsRefusal(loginFailed(login.userName, 'warden accepts federated authentication only with an access token (security token library)'), { reason: 'fedauth library', library: f.library }, 'fedauth library');
      }
      return { token: f.token, fedAuth: true };
    }
    if ((login.optionFlags2 & LOGIN7_OPTION_FLAGS_2.INTEGRATED_SECURITY) !== 0 || login.sspi.length > 0) {
      throw new TdsRefusal(loginFailed(login.userName, 'integrated authentication is not supported by warden; use an access token'), { reason: 'integrated' }, 'integrated');
    }
    if (!login.password) throw new TdsRefusal(loginFailed(login.userName, 'an access token is required as the password'), { reason: 'missing token' }, 'missing token');
    return { token: login.password, fedAuth: false };
  }

  private checkTransport(): void {
    if (this.encryption !== 'none') return;
    if (this.deps.config.plaintextTokens === 'loopback' && isLoopback(this.remoteAddress)) return;
    const user = this.login?.userName ?? '';
    throw new TdsRefusal(
      loginFailed(user, this.deps.tls ? 'warden accepts access tokens only over TLS; connect with Encrypt=true (or login-only encryption)' : 'warden accepts access tokens only over TLS, and has no TLS certificate configured'),
      { reason: 'plaintext' },
      'plaintext',
    );
  }

  // authentication ---------------------------------------------------------------------------------

  private async authenticate(login: Login7, token: string): Promise<{ principal: Principal; target: TdsTargetConfig }> {
    this.state = 'authenticating';
    const user = login.userName;
    let identity;
    try {
      identity = await this.deps.verifier.verify(token);
    } catch (err) {
      if (err instanceof AuthError) {
        // FreeTDS (and drivers built on it) cut every LOGIN7 string, the password too, to 128
        // characters: no access token fits. Say so rather than leave "malformed token" unexplained.
        const cut = token === login.password && token.length === FREETDS_PASSWORD_LIMIT && err.reason === 'malformed token';
        const reason = cut ? `token rejected: ${err.reason} (the password arrived cut to ${FREETDS_PASSWORD_LIMIT} characters, as FreeTDS sends it; log in with a session ticket instead: warden token ticket, or POST /tickets on the admin port)` : `token rejected: ${err.reason}`;
        throw new TdsRefusal(loginFailed(user, reason), { reason: err.reason, detail: err.detail, ...(cut ? { truncatedPassword: true } : {}) }, err.reason);
      }
      throw err;
    }
    const matched = matchPrincipal(identity, this.deps.config.principals);
    if (!matched) {
      throw new TdsRefusal(loginFailed(user, 'no policy admits this identity'), { reason: 'no matching principal', issuer: identity.issuerName, subject: identity.subject }, 'no matching principal');
    }
    if (matched.rule.onTokenExpiry === 'end' && tokenExpiredAtLogin(matched.principal.expiresAt)) {
      // Within the issuer's clock_skew the verifier accepts a token just past its expiry, but an
      // 'end' rule would end the session at once: refuse it as the expired token it is.
      throw new TdsRefusal(loginFailed(user, 'token rejected: token expired'), { reason: 'token expired', principal: matched.principal.name }, 'token expired');
    }
    const name = login.database;
    const target = tdsTarget(this.deps.config.targets, name);
    if (!target) {
      throw new TdsRefusal(cannotOpenDatabase(name), { reason: 'unknown target', principal: matched.principal.name }, 'unknown target');
    }
    if (!mayReach(matched.rule, target.name)) {
      throw new TdsRefusal(loginFailed(user, `principal "${matched.principal.name}" may not connect to target "${target.name}"`), { reason: 'target not granted', principal: matched.principal.name }, 'target not granted');
    }
    const masking = this.deps.services.masking;
    if (masking) {
      // warden does not rewrite SQL Server rows yet: a principal that masking rules cover must
      // not reach a SQL Server target at all, or it would read the values in clear (fail closed).
      const masker = await masking.session({ principal: matched.principal, target: target.name }).catch(() => undefined);
      if (!masker || !masker.inert) {
        throw new TdsRefusal(
          loginFailed(user, `masking rules apply to principal "${matched.principal.name}", and warden cannot mask SQL Server results yet`),
          { reason: 'masking unsupported', principal: matched.principal.name },
          'masking unsupported',
        );
      }
    }
    if (matched.rule.onTokenExpiry === 'end' && matched.principal.expiresAt) this.scheduleExpiry(matched.principal.expiresAt);
    return { principal: matched.principal, target };
  }

  // upstream ---------------------------------------------------------------------------------------

  private async connect(target: TdsTargetConfig, login: Login7, fedAuth: boolean): Promise<void> {
    this.state = 'connecting';
    let upstream: TdsUpstreamSession;
    try {
      upstream = await connectTdsUpstream(target, login);
    } catch (err) {
      if (err instanceof UpstreamError) {
        this.deps.metrics.upstreamFailuresTotal.inc({ target: target.name, kind: err.kind });
        const said = `${err.clientMessage} "${target.name}"${err.clientReason ? `: ${err.clientReason}` : ''}`;
        throw new TdsRefusal(loginFailed(login.userName, said), { reason: 'upstream', kind: err.kind, detail: err.detail });
      }
      throw err;
    }
    if (this.closed || this.raw.destroyed) {
      upstream.socket.destroy();
      throw new ConnectionClosedError('client went away during upstream login');
    }
    this.upstream = upstream;
    try {
      await this.startRecording(target);
    } catch (err) {
      upstream.socket.destroy();
      throw err;
    }
    const response = clientLoginResponse(upstream, { client: login, fedAuth });
    this.socket.write(packetize(PACKET_TYPE.TABULAR_RESULT, response, Math.min(DEFAULT_PACKET_SIZE, upstream.packetSize), upstream.spid));
    this.startRelay(upstream);
  }

  /** Opens this session's transcript (fail closed: no session runs unrecorded unless configured to). */
  private async startRecording(target: TdsTargetConfig): Promise<void> {
    const { recorders, transcripts } = this.deps.services;
    if (!recorders || !transcripts?.enabled) return;
    const refusal = (detail?: string): TdsRefusal =>
      new TdsRefusal(loginFailed(this.login?.userName ?? '', 'warden cannot record sessions right now; try again later'), { reason: 'transcripts unavailable', ...(detail ? { detail } : {}) });
    if (!recorders.healthy && transcripts.onWriteError === 'refuse') throw refusal();
    const recorder = recorders.recorder();
    try {
      await recorder.sessionStart({
        sessionId: this.id,
        protocol: 'tds',
        target: target.name,
        principal: this.principal as Principal,
        client: {
          address: this.remoteAddress ?? '',
          port: this.remotePort ?? 0,
          tls: this.tlsInfo ? { version: this.tlsInfo.protocol ?? '', cipher: this.tlsInfo.cipher ?? '' } : null,
          ...(this.login?.appName ? { application: this.login.appName } : {}),
          ...(this.login?.userName ? { user: this.login.userName } : {}),
          database: target.name,
        },
      });
      this.recorder = recorder;
    } catch (err) {
      if (transcripts.onWriteError === 'refuse') throw refusal((err as Error).message);
      this.log.error({ err: (err as Error).message }, 'transcript unavailable; session continues unrecorded (on_write_error: continue)');
    }
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

  private startRelay(upstream: TdsUpstreamSession): void {
    const { metrics, services } = this.deps;
    const target = this.target as TdsTargetConfig;
    const principal = this.principal as Principal;
    const labels = { protocol: 'tds', target: target.name };
    const queries = metrics.queriesTotal.bind(labels);
    const up = metrics.bytesTotal.bind({ direction: 'client_to_upstream' });
    const down = metrics.bytesTotal.bind({ direction: 'upstream_to_client' });
    const cancels = metrics.cancelsTotal.bind({ protocol: 'tds', result: 'forwarded' });
    const ctx = { principal, target: target.name, protocol: 'tds' as const };
    const needsFlow = this.recorder !== undefined || (services.policy !== undefined && !services.policy.permitsEverything(ctx));
    const maxRequestBytes = Math.min(this.deps.config.sessions.maxMessageBytes, 1 << 30);
    let relay: TdsRelay | undefined;
    let handler: TdsFlowHandler = new PassThroughFlow({ tdsVersion: upstream.tdsVersion, maxValueLength: maxRequestBytes }, () => queries.inc(), () => cancels.inc());
    if (needsFlow) {
      const transcripts = services.transcripts;
      const recorders = services.recorders;
      const verdicts = metrics.verdictCounters('tds');
      handler = this.flow = new TdsStatementFlow({
        sessionId: this.id,
        principal,
        target: target.name,
        clientAddress: this.remoteAddress ?? '',
        instanceId: services.instanceId,
        logger: this.log,
        policy: services.policy,
        approvals: services.approvals,
        recorder: this.recorder,
        capture: capturePolicyFor(transcripts, target.name),
        durableBeforeForward: transcripts?.fsync === 'each',
        recordingHealthy: () => !this.recorder || !recorders || recorders.healthy || transcripts?.onWriteError === 'continue',
        ...(transcripts?.onWriteError === 'continue' ? { continueUnrecorded: (err: unknown) => this.continueUnrecorded(err) } : {}),
        tdsVersion: upstream.tdsVersion,
        answerOptions: (type) => (relay as TdsRelay).errorOptions(type),
        maxValueLength: maxRequestBytes,
        onQuery: () => queries.inc(),
        onVerdict: (v) => verdicts[v].inc(),
        onAttention: () => cancels.inc(),
      });
    }
    relay = new TdsRelay(this.socket, upstream.socket, handler, {
      tdsVersion: upstream.tdsVersion,
      packetSize: upstream.packetSize,
      spid: upstream.spid,
      maxRequestBytes,
      allowance: services.buffers,
      maxTokenBytes: MAX_TOKEN_BYTES,
      onEnd: (reason) => this.relayEnded(reason),
      onBytes: (direction, n) => (direction === 'client_to_upstream' ? up : down).inc(n),
      onHandlerError: (side, err) => this.log.error({ side, err: err instanceof Error ? err.message : String(err) }, 'statement flow failed; closing the session'),
    });
    this.relay = relay;
    this.state = 'relaying';
    metrics.sessionsTotal.inc(labels);
    metrics.sessionsActive.inc(labels);
    this.deps.onOpen(this);
    this.log.info(
      {
        principal: principal.name,
        subject: principal.subject,
        issuer: principal.issuerName,
        target: target.name,
        encryption: this.encryption,
        tls: this.tlsInfo?.protocol ?? 'none',
        upstreamTls: upstream.tls?.protocol ?? 'none',
        upstreamStrict: upstream.strict,
        tdsVersion: `0x${upstream.tdsVersion.toString(16)}`,
        packetSize: upstream.packetSize,
        application: this.login?.appName,
      },
      'session established',
    );
    relay.start();
  }

  private relayEnded(reason: RelayEndReason): void {
    const target = this.target as TdsTargetConfig;
    this.deps.metrics.sessionsActive.dec({ protocol: 'tds', target: target.name });
    if (reason.kind === 'protocol-error') {
      this.deps.metrics.protocolErrorsTotal.inc({ protocol: 'tds', side: reason.side });
      this.log.warn({ side: reason.side, error: reason.message }, 'session closed on a protocol error');
      this.recorder?.event({ kind: 'protocol-error', message: reason.message, detail: { side: reason.side } }).catch(() => undefined);
    }
    this.log.info({ reason: reason.kind, durationMs: Date.now() - this.startedAt.getTime() }, 'session ended');
    const end = (): void => {
      // Read here: a held request's records may have found the store failed (on_write_error: continue).
      this.recorder
        ?.sessionEnd({ reason: reason.kind, ...('message' in reason ? { detail: reason.message } : 'reason' in reason ? { detail: reason.reason } : {}) })
        .catch((err: unknown) => this.log.error({ err: (err as Error).message }, 'transcript write failed at session end'));
    };
    // A held request is withdrawn; its decision and result are recorded before the session's end.
    if (this.flow?.close('disconnected')) void this.flow.holdSettled().then(end);
    else end();
    this.markClosed();
  }

  // endings ------------------------------------------------------------------------------------

  private scheduleExpiry(expiresAt: Date): void {
    const { delayMs, final } = expiryWait(expiresAt);
    this.expiryTimer = setTimeout(() => (final ? this.tokenExpired() : this.scheduleExpiry(expiresAt)), delayMs);
    this.expiryTimer.unref();
  }

  private tokenExpired(): void {
    this.log.info('access token expired; the next request ends the session');
    const spec: TdsErrorSpec = { number: 18456, class: TDS_CLASS.FATAL, state: 1, message: 'access token expired; reconnect with a fresh token' };
    this.recorder?.event({ kind: 'token-expired' }).catch(() => undefined);
    if (this.relay) {
      // A held request has not run: it does not start after the token that sent it expired.
      this.flow?.close('token-expired');
      this.relay.refuseNextRequest(spec);
    } else {
      this.failLogin(new TdsRefusal(spec, { reason: 'token expired' }));
    }
  }

  /** Ends the session at its next idle point, or at once when `now`. */
  shutdown(now: boolean): void {
    if (this.relay) {
      if (now) {
        this.flow?.close('session-ended');
        this.relay.destroy('shutdown');
      } else {
        this.relay.endAtIdle('shutdown');
      }
    } else {
      this.failLogin(new TdsRefusal(shuttingDown(), { reason: 'shutdown' }));
    }
  }

  private failLogin(err: unknown): void {
    if (this.closed) return;
    const m = this.deps.metrics;
    if (err instanceof TdsRefusal) {
      if (err.authFailure) m.authFailuresTotal.inc({ protocol: 'tds', reason: err.authFailure });
      this.log.warn({ number: err.spec.number, message: err.spec.message, ...err.logDetail }, 'login refused');
      this.sendError(err.spec);
    } else if (err instanceof ProtocolError) {
      m.protocolErrorsTotal.inc({ protocol: 'tds', side: 'client' });
      this.log.warn({ error: err.message, state: this.state }, 'protocol violation during login');
      this.sendError(protocolViolation(err.message));
    } else if (err instanceof DeadlineError) {
      this.log.info({ state: this.state }, 'login timed out');
      this.sendError(protocolViolation('login timed out'));
    } else if (err instanceof ConnectionClosedError) {
      this.log.debug({ error: err.message, state: this.state }, 'client left during login');
      this.socket.destroy();
      this.raw.destroy();
    } else {
      this.log.error({ err }, 'internal error during login');
      this.sendError(internalError());
    }
    this.markClosed();
  }

  /** The refusal as a tabular result, in place of the response the client waits for; then the connection closes. */
  private sendError(spec: TdsErrorSpec): void {
    const s = this.socket;
    if (s.destroyed || this.state === 'tls') {
      s.destroy();
      this.raw.destroy();
      return;
    }
    const tdsVersion = this.login && isSupportedVersion(this.login.tdsVersion) ? this.login.tdsVersion : TDS_VERSION.V7_4;
    s.end(errorMessage([spec], { tdsVersion, packetSize: DEFAULT_PACKET_SIZE }));
    setTimeout(() => {
      s.destroy();
      this.raw.destroy();
    }, 1000).unref();
  }

  private markClosed(): void {
    if (this.closed) return;
    this.closed = true;
    this.state = 'closed';
    if (this.expiryTimer) clearTimeout(this.expiryTimer);
    this.deps.onClose(this);
  }
}

/** Waits for the client's first byte and leaves it unread (PRELOGIN packet or TLS ClientHello). */
function firstByte(socket: net.Socket, deadline: number): Promise<number> {
  return new Promise((resolve, reject) => {
    const cleanup = (): void => {
      clearTimeout(timer);
      socket.off('data', onData);
      socket.off('end', onEnd);
      socket.off('close', onEnd);
    };
    const onData = (chunk: Buffer): void => {
      cleanup();
      socket.pause();
      socket.unshift(chunk);
      resolve(chunk[0] as number);
    };
    const onEnd = (): void => {
      cleanup();
      reject(new ConnectionClosedError('client closed the connection before PRELOGIN'));
    };
    const timer = setTimeout(() => {
      cleanup();
      reject(new DeadlineError('PRELOGIN timed out'));
    }, Math.max(0, deadline - Date.now()));
    socket.on('data', onData);
    socket.once('end', onEnd);
    socket.once('close', onEnd);
    socket.resume();
  });
}

/**
 * The tds target a login names. SQL Server matches database names without regard to letter case
 * (under its default collations), and drivers send the name as the user typed it: an exact match
 * first, then one that differs only in case (the configuration refuses two such names).
 */
function tdsTarget(targets: ReadonlyMap<string, TargetConfig>, name: string): TdsTargetConfig | undefined {
  const exact = targets.get(name);
  if (exact) return exact.protocol === 'tds' ? exact : undefined;
  const folded = name.toLowerCase();
  for (const t of targets.values()) if (t.protocol === 'tds' && t.name.toLowerCase() === folded) return t;
  return undefined;
}
