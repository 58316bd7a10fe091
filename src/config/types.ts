// The validated shape of warden's configuration (one YAML file; see docs/configuration.md).
// The loader (src/config/load.ts) turns YAML into these types or reports every error with the
// key path, line and column and the reason. Later features add their own sections here.

import type { ApprovalsConfig, StatementRule } from '../approvals/config.js';
import type { TranscriptShipConfig } from '../audit/ship-config.js';
import type { MaskingConfig } from './sections/masking.js';

export type Duration = number; // milliseconds, parsed from "30s", "5m", "2h", "1d" or a number of seconds

export interface ListenConfig {
  /** A literal IP address or "localhost"; default 127.0.0.1. */
  host: string;
  /** 0 asks the system for a free port (tests). */
  port: number;
}

/** TLS for client connections: certificate files, or a certificate generated at start. */
export type TlsServerConfig = TlsFilesConfig | TlsSelfSignedConfig;

/** `tls.cert_file` + `tls.key_file`, read at load time. */
export interface TlsFilesConfig {
  selfSigned?: false;
  /** PEM certificate chain and key. */
  cert: string;
  key: string;
  /** Where they came from, for messages. */
  certFile?: string;
  keyFile?: string;
}

/** `tls.self_signed: true`: generate a self-signed certificate (localhost, 127.0.0.1, ::1) at start. */
export interface TlsSelfSignedConfig {
  selfSigned: true;
}

export type PlaintextTokenPolicy = 'never' | 'loopback';

export interface IssuerConfig {
  /** A short name used in logs and in principal rules. */
  name: string;
  /** Exact `iss` value expected in tokens. */
  issuer: string;
  /** Remote JWKS (fetched, cached, refreshed on unknown kid, rate-limited) … */
  jwksUri?: string;
  /** … or a local JWKS file (JSON). Exactly one of the two. */
  jwksFile?: string;
  /** Accepted `aud` values (any one must match). */
  audiences: string[];
  /** Allowed JWS algorithms; default ["RS256"]. `none` and HMAC algorithms are rejected at load time. */
  algorithms: string[];
  /** Required `tid` claim (Azure AD tenant id), if set. */
  tenant?: string;
  /** Claims tried in order to name the principal; default ["azp", "appid", "oid", "sub"]. */
  subjectClaims: string[];
  /** Allowed clock skew for exp/nbf/iat; default 60 s. */
  clockSkew: Duration;
  /** Minimum time between JWKS refreshes triggered by unknown `kid`s; default 30 s. */
  jwksRefreshInterval: Duration;
  /** How long a fetched JWKS is trusted before a background refresh; default 10 min. */
  jwksCacheMaxAge: Duration;
}

export interface DevIssuerConfig {
  /** Issues tokens locally (`warden token mint`, the demo); its JWKS is served on the admin port. */
  enabled: boolean;
  /**
   * The `iss` of minted tokens; default `http://{admin host}:{admin port}/dev-issuer`, filled in
   * by the loader when listen.admin has a fixed port (see devIssuerUrl in sections/identity.ts).
   */
  issuer?: string;
  /** PEM file with the issuer's private key (PKCS#8 RS256); generated on first use if absent. */
  keyFile: string;
  /** Default audience of minted tokens. */
  audience: string;
  /** Tenant id put in minted tokens' `tid`. */
  tenant: string;
}

export interface IdentityConfig {
  issuers: IssuerConfig[];
  devIssuer?: DevIssuerConfig;
}

export type UpstreamTlsMode = 'disable' | 'prefer' | 'require' | 'verify-ca' | 'verify-full';

export interface UpstreamTlsConfig {
  /** Default: prefer for postgres targets, require for tds targets. */
  mode: UpstreamTlsMode;
  /** PEM CA bundle for verify-ca / verify-full (required there, refused with other modes). */
  ca?: string;
  caFile?: string;
  /** Server name for SNI and hostname checks; default the target host. */
  serverName?: string;
}

export interface PostgresTargetConfig {
  name: string;
  protocol: 'postgres';
  host: string;
  port: number;
  /** The upstream database name (the agent names the target, not this). */
  database: string;
  /** The stored credential the agent never sees. */
  user: string;
  password: string;
  tls: UpstreamTlsConfig;
  connectTimeout: Duration;
}

export interface TdsTargetConfig {
  name: string;
  protocol: 'tds';
  host: string;
  port: number;
  database: string;
  /** SQL login … */
  user?: string;
  password?: string;
  /** … or an access token presented through FEDAUTH. */
  accessToken?: string;
  tls: UpstreamTlsConfig;
  connectTimeout: Duration;
}

export type TargetConfig = PostgresTargetConfig | TdsTargetConfig;

export interface PrincipalMatch {
  /** Issuer name (IssuerConfig.name, or "dev" for the development issuer). */
  issuer?: string;
  /** Subject (the value of the first present subject claim). */
  subject?: string;
  /** Any of these app roles. */
  roles?: string[];
  /** Any of these groups (never matches when the token has a groups overage). */
  groups?: string[];
}

export interface PrincipalRule {
  /** Name given to principals this rule matches (in logs, transcripts, metrics). */
  name: string;
  match: PrincipalMatch;
  /** Target names this principal may reach; "*" for all. */
  targets: string[];
  /** What happens when the token expires mid-session; default "end". */
  onTokenExpiry: 'end' | 'continue';
}

export interface SessionsConfig {
  /** SIGTERM grace period before open sessions are closed; default 30 s. */
  shutdownGrace: Duration;
  /** Largest client or server message accepted; default 1 GiB for PostgreSQL. */
  maxMessageBytes: number;
  /** What all sessions together may hold of messages being read whole across socket reads. */
  maxBufferedBytes: number;
  /** Startup/login must finish within this; default 30 s. */
  loginTimeout: Duration;
}

/** `transcripts:` — see src/config/sections/transcripts.ts and docs/transcripts.md. */
export interface TranscriptsConfig {
  enabled: boolean;
  dir: string;
  instanceId: string;
  keyFile: string;
  /** Generate the key when absent (only for the default path; an explicit key_file must exist). */
  createKey: boolean;
  fsync: 'each' | 'interval';
  fsyncIntervalMs: number;
  /** transcripts.sync_stall_timeout: an fsync that has not returned after this long fails the writer. */
  syncStallMs: number;
  segmentMaxBytes: number;
  segmentMaxAgeMs: number;
  /** transcripts.retention: segments whose records are all older than this are removed; undefined keeps them. */
  retentionMs?: number;
  capture: 'none' | 'digest' | 'first' | 'all';
  captureRows: number;
  /** refuse: statements are refused while transcripts cannot be written (fail closed); continue: fail open. */
  onWriteError: 'refuse' | 'continue';
  /**
   * Record the PostgreSQL sessions that no statement rule and no masking rule touches on a thread
   * of their own, off the agents' path (fsync `interval` only; src/pg/recording/).
   */
  recordingThread: boolean;
  /**
   * Record the PostgreSQL sessions that no statement rule and no masking rule touches as the bytes
   * their relay reads (`wire` records), on the event loop; readers run the statement flow over
   * them (fsync `interval` only; src/pg/recording/wire-recording.ts). Before the recording thread.
   */
  wire: boolean;
  /**
   * How far behind the recording thread may fall (how long ago the oldest chunk it has not
   * recorded was read) before its sessions stop being read until it catches up.
   */
  recordingThreadMaxLagMs: number;
  /** How long bytes read gather before the recording thread takes them (transcripts.recording_thread_batch). */
  recordingThreadBatchMs: number;
  /**
   * How long the recording thread may go without acknowledging a batch it was handed before it is
   * taken to be stuck and failed (as when its store cannot be written).
   */
  recordingThreadStallMs: number;
  targets: Map<string, { capture: 'none' | 'digest' | 'first' | 'all' }>;
  /** Who may read transcripts over the admin API (tokens from the configured issuers). */
  auditors: { name: string; match: PrincipalMatch }[];
  /** Also ship every record to this shared PostgreSQL store (multi-instance setups). */
  ship?: TranscriptShipConfig;
}

export interface WardenConfig {
  /** Absolute path of the file this was loaded from, if any. */
  source?: string;
  /** Directory for warden's own state (keys, transcripts, embedded stores). */
  dataDir: string;
  listen: {
    postgres?: ListenConfig;
    tds?: ListenConfig;
    admin?: ListenConfig;
  };
  tls?: TlsServerConfig;
  /** Whether an OIDC token may arrive over a plaintext connection: never, or from loopback only. */
  plaintextTokens: PlaintextTokenPolicy;
  log: { level: 'fatal' | 'error' | 'warn' | 'info' | 'debug' | 'trace' | 'silent' };
  identity: IdentityConfig;
  targets: Map<string, TargetConfig>;
  principals: PrincipalRule[];
  sessions: SessionsConfig;
  /** Wire-level masking rules (docs/masking.md); absent when the file has no `masking:` section. */
  masking?: MaskingConfig;
  /** Statement rules (allow / deny / hold), in order; see docs/approvals.md. */
  rules?: StatementRule[];
  /** How held statements are decided; defaults when absent (see defaultApprovalsConfig). */
  approvals?: ApprovalsConfig;
  /** Session transcripts; the loader always fills it (absent only in hand-built configurations). */
  transcripts?: TranscriptsConfig;
}
