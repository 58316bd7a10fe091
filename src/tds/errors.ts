// Every error warden itself sends a TDS client is built here: the ERROR token ([MS-TDS] 2.2.7.10)
// with SQL Server's error number and class where SQL Server has one, then a DONE/DONEPROC with
// the error bit, as one tabular result message. Messages are short and safe to show; the detail
// behind them stays in warden's log.
import {
  DONE_STATUS,
  encodeTokens,
  packetize,
  PACKET_TYPE,
  type DoneKind,
  type InfoErrorToken,
  type Token,
} from '../../protocols/tds/index.js';

/** Error numbers warden answers with (SQL Server's, where one fits). */
export const TDS_ERROR = {
  /** Login failed for user '%.*ls'.%.*ls — every refused login (bad token, no policy, no TLS). */
  LOGIN_FAILED: 18456,
  /** Cannot open database "%.*ls" requested by the login. The login failed. */
  CANNOT_OPEN_DATABASE: 4060,
  /** The %ls permission was denied on the object … — a statement refused by policy. */
  PERMISSION_DENIED: 229,
  /** User-defined (RAISERROR's default): statements warden refuses for reasons of its own. */
  WARDEN: 50000,
  /** The incoming tabular data stream (TDS) protocol stream is incorrect. */
  PROTOCOL: 4002,
  /** SHUTDOWN is in progress. */
  SHUTDOWN: 6005,
  /** A fatal error occurred while processing the request (warden's internal errors). */
  INTERNAL: 50001,
  /** There is insufficient system memory in resource pool '%ls' to run this query. */
  INSUFFICIENT_MEMORY: 701,
} as const;

/** Severity classes. [MS-TDS] 2.2.7.10: 0-10 informational (an INFO token), 11-16 user errors, 20+ end the connection. */
export const TDS_CLASS = {
  INFO: 0,
  /** 10: the highest informational class (what RAISERROR(…, 10, 1) sends): warden's notices. */
  NOTICE: 10,
  /** 11: the object (here, the database) does not exist. */
  NOT_FOUND: 11,
  /** 14: insufficient permission (login failures and denied statements). */
  PERMISSION: 14,
  /** 16: general user error. */
  USER: 16,
  /** 20: fatal to the connection. */
  FATAL: 20,
} as const;

/** The name warden puts in ServerName of its own errors. */
export const WARDEN_SERVER_NAME = 'warden';

export interface TdsErrorSpec {
  readonly number: number;
  readonly class: number;
  readonly state?: number;
  readonly message: string;
}

/** Thrown in the login flow to end it with a TDS error to the client. `logDetail` goes to the log only. */
export class TdsRefusal extends Error {
  constructor(
    readonly spec: TdsErrorSpec,
    readonly logDetail: Record<string, unknown> = {},
    /** Counted in warden_auth_failures_total under this reason. */
    readonly authFailure?: string,
  ) {
    super(spec.message);
  }
}

/** The user name SQL Server shows for a login that carried no user name (token logins). */
export const TOKEN_PRINCIPAL = '<token-identified principal>';

export function loginFailed(user: string, reason: string): TdsErrorSpec {
  return {
    number: TDS_ERROR.LOGIN_FAILED,
    class: TDS_CLASS.PERMISSION,
    state: 1,
    message: `Login failed for user '${user || TOKEN_PRINCIPAL}'. Reason: ${reason}.`,
  };
}

export function cannotOpenDatabase(name: string): TdsErrorSpec {
  // A login without a database (tsql without -D, a connection string without Database=) would
  // land in SQL Server's default database; warden has none: the database names the target.
  const why = name === '' ? 'no database was given: name a warden target as the database' : 'warden has no target of that name';
  return {
    number: TDS_ERROR.CANNOT_OPEN_DATABASE,
    class: TDS_CLASS.NOT_FOUND,
    state: 1,
    message: `Cannot open database "${name}" requested by the login. The login failed. (${why})`,
  };
}

export function protocolViolation(detail: string): TdsErrorSpec {
  return {
    number: TDS_ERROR.PROTOCOL,
    class: TDS_CLASS.FATAL,
    state: 1,
    message: `The incoming tabular data stream (TDS) protocol stream is incorrect: ${detail}`,
  };
}

/** warden's sessions together hold all it allows for requests being read (sessions.max_buffered_bytes): this session ends. */
export function outOfMemory(detail: string): TdsErrorSpec {
  return { number: TDS_ERROR.INSUFFICIENT_MEMORY, class: TDS_CLASS.FATAL, state: 1, message: `There is insufficient memory in warden to read this request: ${detail}` };
}

export function internalError(): TdsErrorSpec {
  return { number: TDS_ERROR.INTERNAL, class: TDS_CLASS.FATAL, state: 1, message: 'internal error in warden; the session was closed' };
}

export function shuttingDown(): TdsErrorSpec {
  return { number: TDS_ERROR.SHUTDOWN, class: TDS_CLASS.FATAL, state: 1, message: 'warden is shutting down; the session was closed' };
}

/** A statement refused by a policy rule: SQL Server's permission error, with warden's reason. */
export function statementDenied(message: string): TdsErrorSpec {
  return { number: TDS_ERROR.PERMISSION_DENIED, class: TDS_CLASS.PERMISSION, state: 1, message };
}

/** A statement warden refuses for a reason of its own (transcripts down, approvals not available). */
export function statementRefused(message: string): TdsErrorSpec {
  return { number: TDS_ERROR.WARDEN, class: TDS_CLASS.USER, state: 1, message };
}

export function errorToken(spec: TdsErrorSpec): InfoErrorToken {
  return {
    kind: spec.class > TDS_CLASS.NOTICE ? 'ERROR' : 'INFO',
    number: spec.number,
    state: spec.state ?? 1,
    class: spec.class,
    message: spec.message,
    serverName: WARDEN_SERVER_NAME,
    procName: '',
    lineNumber: 1,
  };
}

export interface ErrorMessageOptions {
  readonly tdsVersion: number;
  readonly packetSize: number;
  readonly spid?: number;
  /** DONEPROC for RPC requests, DONE otherwise. */
  readonly done?: DoneKind;
}

/** A notice of warden's own (an INFO token, class 10, number 50000 as RAISERROR sends it). */
export function notice(message: string): TdsErrorSpec {
  return { number: TDS_ERROR.WARDEN, class: TDS_CLASS.NOTICE, state: 1, message };
}

/**
 * The start of a response whose end comes later ([MS-TDS] 2.2.3.1.2: no EOM on its last packet):
 * INFO tokens only. The rest of the message must continue its packet ids.
 */
export function messageStart(specs: readonly TdsErrorSpec[], opts: ErrorMessageOptions): Buffer {
  return tabular(specs.map(errorToken), opts, true);
}

/** The end of a response with nothing more to say: a final DONE (DONEPROC after an RPC). */
export function messageEnd(opts: ErrorMessageOptions): Buffer {
  return tabular([{ kind: opts.done ?? 'DONE', status: DONE_STATUS.FINAL, curCmd: 0, rowCount: 0n }], opts);
}

/** SQL Server's acknowledgement of an ATTENTION ([MS-TDS] 2.2.1.7): a message of its own, a DONE with DONE_ATTN. */
export function attentionAck(opts: ErrorMessageOptions): Buffer {
  return tabular([{ kind: 'DONE', status: DONE_STATUS.ATTN, curCmd: 0, rowCount: 0n }], opts);
}

/** The answer to a request the client abandoned (IGNORE): a final DONE, nothing run. */
export function ignoredRequestAnswer(opts: ErrorMessageOptions): Buffer {
  return tabular([{ kind: 'DONE', status: DONE_STATUS.FINAL, curCmd: 0, rowCount: 0n }], opts);
}

/** One tabular result message: the ERROR tokens, then the final DONE with the error bit. */
export function errorMessage(specs: readonly TdsErrorSpec[], opts: ErrorMessageOptions): Buffer {
  const tokens: Token[] = specs.map(errorToken);
  tokens.push({ kind: opts.done ?? 'DONE', status: DONE_STATUS.ERROR, curCmd: 0, rowCount: 0n });
  return tabular(tokens, opts);
}

/** A tabular result message of these tokens, in packets of the session's size. */
function tabular(tokens: Token[], opts: ErrorMessageOptions, continues = false): Buffer {
  return packetize(PACKET_TYPE.TABULAR_RESULT, encodeTokens(tokens, { tdsVersion: opts.tdsVersion }), opts.packetSize, opts.spid ?? 0, continues ? { continues } : {});
}
