// What a session tells the recorder, and what the records hold (the `d` member of each line).
// Protocol-neutral: the PostgreSQL and TDS relays fill the same shapes. No field ever holds a
// token or a password; values are whatever the agent could see (callers pass masked rows).

export type Protocol = 'postgres' | 'tds';
export type Verdict = 'allow' | 'deny' | 'hold' | 'mask';
export const VERDICTS: readonly Verdict[] = ['allow', 'deny', 'hold', 'mask'];

export type JsonValue = string | number | boolean | null | JsonValue[] | { [key: string]: JsonValue };

// ---- session start ----------------------------------------------------------------------------

/** The validated identity, as recorded. Built by whitelisting fields; a token is never copied. */
export interface TranscriptPrincipal {
  /** Policy principal name, e.g. "reporting-agent". */
  name: string;
  /** The token's `iss`. */
  issuer: string;
  /** Configured issuer name ("dev" for the development issuer). */
  issuerName?: string;
  subject: string;
  subjectClaim?: string;
  appId?: string;
  objectId?: string;
  tenantId?: string;
  roles: string[];
  groups: string[];
  groupsOverage?: boolean;
  /** From the token's `exp`, ISO 8601. */
  tokenExpiresAt?: string;
}

export interface TlsInfo {
  version: string;
  cipher: string;
}

export interface ClientInfo {
  address: string;
  port: number;
  /** null: plaintext connection. */
  tls: TlsInfo | null;
  /** PG `application_name` / TDS LOGIN7 AppName. */
  application?: string;
  /** The user name and database the client asked for (not warden's upstream credential). */
  user?: string;
  database?: string;
}

export interface SessionStartInfo {
  sessionId: string;
  protocol: Protocol;
  /** Target name from the policy. */
  target: string;
  principal: PrincipalLike;
  client: ClientInfo;
}

/** Anything shaped like identity's Principal; only the fields of TranscriptPrincipal are copied. */
export interface PrincipalLike {
  name: string;
  issuer: string;
  issuerName?: string;
  subject: string;
  subjectClaim?: string;
  appId?: string;
  objectId?: string;
  tenantId?: string;
  roles: readonly string[];
  groups: readonly string[];
  groupsOverage?: boolean;
  expiresAt?: Date | string;
}

export interface SessionStartData {
  protocol: Protocol;
  target: string;
  principal: TranscriptPrincipal;
  client: ClientInfo;
  instance: string;
}

// ---- statements -------------------------------------------------------------------------------

/** The classifier's summary. `class` (e.g. read, write, ddl, admin, unknown) and `relations`
 *  (tables touched, as the classifier names them, e.g. "public.customers") are what reports use;
 *  other members are kept as given. */
export interface ClassificationSummary {
  class: string;
  relations: string[];
  [key: string]: JsonValue;
}

export interface StatementParam {
  /** Type name as the protocol describes it (e.g. int4, text, nvarchar(50)); "unknown" if none. */
  type: string;
  /** Decoded value as the caller gives it; null for SQL NULL. */
  value: string | null;
  /** Parameter name (TDS RPC @name); absent for positional parameters. */
  name?: string;
  /**
   * Set by the recorder when `value` was cut to the limit: the value's full size in bytes (a caller
   * that passes a value it cut already sets it to the whole value's size).
   */
  fullBytes?: number;
}

export type ApprovalDecision = 'approved' | 'denied' | 'expired' | 'cancelled';

export interface ApprovalInfo {
  requestId: string;
  decision?: ApprovalDecision;
  approver?: string;
  reason?: string;
}

export interface StatementInfo {
  text: string;
  params?: readonly StatementParam[];
  classification: ClassificationSummary;
  verdict: Verdict;
  /** Policy rule that decided, and its message. */
  rule?: string;
  reason?: string;
  /** For held statements: the approval request (and, when already known, its decision). */
  approval?: ApprovalInfo;
  /** How the statement arrived: simple, extended, batch, rpc, copy … */
  via?: string;
  /** Prepared statement / portal / procedure name when there is one. */
  name?: string;
}

export interface StatementData {
  st: number;
  text: string;
  /** Set when `text` was cut to the limit: the full size and its SHA-256. */
  textBytes?: number;
  textSha256?: string;
  params?: StatementParam[];
  /** Parameters beyond the limit, not recorded. */
  paramsDropped?: number;
  /**
   * Set when no parameter was recorded because the record would have exceeded the record size
   * limit (the recording thread, which cannot refuse the statement): SHA-256 of the JSON array of
   * the values the record would have held (as text, each cut to the value limit; `null` for NULL).
   */
  paramsSha256?: string;
  cls: ClassificationSummary;
  verdict: Verdict;
  rule?: string;
  reason?: string;
  approval?: ApprovalInfo;
  via?: string;
  name?: string;
}

export interface StatementDecisionInfo {
  statementId: StatementId;
  decision: ApprovalDecision;
  requestId?: string;
  approver?: string;
  reason?: string;
}

export type DecisionData = Omit<StatementDecisionInfo, 'statementId'> & { st: number };

/** Statement ids are numbered from 1 within a session. */
export type StatementId = number;

// ---- results ----------------------------------------------------------------------------------

export interface ResultColumn {
  name: string;
  type: string;
  /** Name of the masking rule applied to this column, or null when sent as is. */
  masked: string | null;
  /** Source table when the protocol or the lineage knows it. */
  table?: string;
}

export interface ResultError {
  /** SQLSTATE (PostgreSQL) or error number (TDS), as text. */
  code: string;
  message: string;
}

/** A notice, warning or informational message the server sent the client with a result (as the client got it). */
export interface ResultNotice {
  /** NOTICE, WARNING, INFO, … (PostgreSQL's severity). */
  severity: string;
  code: string;
  message: string;
}

/** Notices kept per result, at most; more are counted (`noticesDropped`). */
export const MAX_RESULT_NOTICES = 20;

/** Rows of a result, as recorded. Row values are strings or null, already masked. */
export type CapturedRows =
  | { mode: 'none' }
  /** SHA-256 over the rows as sent on the wire (see RowCapture). */
  | { mode: 'digest'; sha256: string; rows: number }
  | { mode: 'first'; limit: number; rows: Array<Array<string | null>>; truncated: boolean }
  | { mode: 'all'; rows: Array<Array<string | null>>; truncated: boolean };

export interface ResultInfo {
  statementId: StatementId;
  columns: readonly ResultColumn[];
  rows: number;
  bytes: number;
  error?: ResultError;
  capture: CapturedRows;
  /** Command tag (PG CommandComplete, e.g. "SELECT 20") or TDS DONE summary. */
  tag?: string;
  /** Result set number for statements that return several (TDS); default 1. */
  set?: number;
  /** When the last byte of the result was sent; default now. */
  endedAt?: Date;
  /** Notices the server sent with this result, oldest first (at most MAX_RESULT_NOTICES), and how many more. */
  notices?: readonly ResultNotice[];
  noticesDropped?: number;
}

export interface ResultData {
  st: number;
  set?: number;
  /** Milliseconds from the statement record to the end of this result. */
  ms?: number;
  columns: ResultColumn[];
  rows: number;
  bytes: number;
  error?: ResultError;
  capture: CapturedRows;
  tag?: string;
  notices?: ResultNotice[];
  noticesDropped?: number;
}

// ---- other events and the end ---------------------------------------------------------------

export const EVENT_KIND = {
  cancel: 'cancel',
  protocolError: 'protocol-error',
  tokenExpired: 'token-expired',
  copy: 'copy',
  /**
   * Written by the store, not a relay: opens each new segment for every session still open, with
   * its start (SessionContinuedDetail), so that a segment says whose the session is even once
   * retention has removed the one holding its `session-start`.
   */
  sessionContinued: 'session-continued',
} as const;

/** The `detail` of a `session-continued` event. */
export interface SessionContinuedDetail {
  /** The session's `session-start` data, as recorded. */
  start: SessionStartData;
  /** When the session started (its `session-start` record's time). */
  startedAt: string;
  /**
   * Statements the session had run before this segment; null when this chain cannot count them
   * (a session recorded as `wire` records: its statements are known only once decoded).
   */
  statements: number | null;
}

export interface SessionEventInfo {
  /** One of EVENT_KIND, or another short name. */
  kind: string;
  statementId?: StatementId;
  code?: string;
  message?: string;
  detail?: { [key: string]: JsonValue };
}

export interface EventData {
  kind: string;
  st?: number;
  code?: string;
  message?: string;
  detail?: { [key: string]: JsonValue };
}

export interface SessionEndInfo {
  /** e.g. "client closed", "token expired", "protocol error", "shutdown". */
  reason: string;
  detail?: string;
}

export interface SessionEndData {
  reason: string;
  detail?: string;
  statements: number;
}
