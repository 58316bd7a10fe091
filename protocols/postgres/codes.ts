// PostgreSQL v3 protocol codes. https://www.postgresql.org/docs/current/protocol-message-formats.html

/** Messages sent by the client (frontend), by their type byte. */
export const Frontend = {
  bind: 0x42, // 'B'
  close: 0x43, // 'C'
  copyData: 0x64, // 'd'
  copyDone: 0x63, // 'c'
  copyFail: 0x66, // 'f'
  describe: 0x44, // 'D'
  execute: 0x45, // 'E'
  flush: 0x48, // 'H'
  functionCall: 0x46, // 'F'
  parse: 0x50, // 'P'
  password: 0x70, // 'p' (PasswordMessage, SASLInitialResponse, SASLResponse, GSSResponse)
  query: 0x51, // 'Q'
  sync: 0x53, // 'S'
  terminate: 0x58, // 'X'
} as const;

/** Messages sent by the server (backend), by their type byte. */
export const Backend = {
  authentication: 0x52, // 'R'
  backendKeyData: 0x4b, // 'K'
  bindComplete: 0x32, // '2'
  closeComplete: 0x33, // '3'
  commandComplete: 0x43, // 'C'
  copyBothResponse: 0x57, // 'W'
  copyData: 0x64, // 'd'
  copyDone: 0x63, // 'c'
  copyInResponse: 0x47, // 'G'
  copyOutResponse: 0x48, // 'H'
  dataRow: 0x44, // 'D'
  emptyQueryResponse: 0x49, // 'I'
  errorResponse: 0x45, // 'E'
  functionCallResponse: 0x56, // 'V'
  negotiateProtocolVersion: 0x76, // 'v'
  noData: 0x6e, // 'n'
  noticeResponse: 0x4e, // 'N'
  notificationResponse: 0x41, // 'A'
  parameterDescription: 0x74, // 't'
  parameterStatus: 0x53, // 'S'
  parseComplete: 0x31, // '1'
  portalSuspended: 0x73, // 's'
  readyForQuery: 0x5a, // 'Z'
  rowDescription: 0x54, // 'T'
} as const;

/** Codes in the first int32 of an untyped startup-phase packet. */
export const StartupCode = {
  protocol30: 196608, // 3 << 16 | 0
  cancelRequest: 80877102, // 1234 << 16 | 5678
  sslRequest: 80877103, // 1234 << 16 | 5679
  gssEncRequest: 80877104, // 1234 << 16 | 5680
} as const;

/** Authentication request subtypes ('R' message, first int32). */
export const AuthCode = {
  ok: 0,
  kerberosV5: 2,
  cleartextPassword: 3,
  md5Password: 5,
  gss: 7,
  gssContinue: 8,
  sspi: 9,
  sasl: 10,
  saslContinue: 11,
  saslFinal: 12,
} as const;

/** ReadyForQuery transaction status bytes. */
export const TransactionStatus = {
  idle: 0x49, // 'I'
  inTransaction: 0x54, // 'T'
  failed: 0x45, // 'E'
} as const;
export type TransactionStatusByte = (typeof TransactionStatus)[keyof typeof TransactionStatus];

/** ErrorResponse / NoticeResponse field codes. */
export const ErrorField = {
  severity: 0x53, // 'S' (localized)
  severityNonLocalized: 0x56, // 'V'
  code: 0x43, // 'C'
  message: 0x4d, // 'M'
  detail: 0x44, // 'D'
  hint: 0x48, // 'H'
  position: 0x50, // 'P'
  internalPosition: 0x70, // 'p'
  internalQuery: 0x71, // 'q'
  where: 0x57, // 'W'
  schema: 0x73, // 's'
  table: 0x74, // 't'
  column: 0x63, // 'c'
  dataType: 0x64, // 'd'
  constraint: 0x6e, // 'n'
  file: 0x46, // 'F'
  line: 0x4c, // 'L'
  routine: 0x52, // 'R'
} as const;

/** Describe / Close target kinds. */
export const TargetKind = {
  statement: 0x53, // 'S'
  portal: 0x50, // 'P'
} as const;

/** Format codes of Bind / RowDescription. */
export const FormatCode = {
  text: 0,
  binary: 1,
} as const;

/** The startup packet is small; PostgreSQL itself caps it at 10000 bytes (MAX_STARTUP_PACKET_LENGTH). */
export const MAX_STARTUP_PACKET = 10_000;

function lengthTable(entries: [number, number][]): Uint8Array {
  const t = new Uint8Array(256);
  for (const [code, length] of entries) t[code] = length;
  return t;
}

/**
 * Total length (type byte included) of frontend messages that have no variable part, by type
 * byte; 0 for the others. A typed array: the relay reads it for every message header.
 */
export const FRONTEND_FIXED_LENGTH: Uint8Array = lengthTable([
  [Frontend.sync, 5],
  [Frontend.flush, 5],
  [Frontend.terminate, 5],
  [Frontend.copyDone, 5],
]);

/** The same for backend messages. */
export const BACKEND_FIXED_LENGTH: Uint8Array = lengthTable([
  [Backend.parseComplete, 5],
  [Backend.bindComplete, 5],
  [Backend.closeComplete, 5],
  [Backend.noData, 5],
  [Backend.emptyQueryResponse, 5],
  [Backend.portalSuspended, 5],
  [Backend.copyDone, 5],
  [Backend.readyForQuery, 6],
  [Backend.backendKeyData, 13],
]);
