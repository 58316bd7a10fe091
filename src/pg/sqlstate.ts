// SQLSTATE codes warden itself sends to PostgreSQL clients.
// https://www.postgresql.org/docs/current/errcodes-appendix.html
export const SqlState = {
  /** Token missing, invalid, expired; principal may not reach the target. */
  invalidAuthorizationSpecification: '28000',
  /** Statement or value refused by policy. */
  insufficientPrivilege: '42501',
  /** The client named a target warden does not know. */
  invalidCatalogName: '3D000',
  /** Malformed or oversized frames, protocol violations. */
  protocolViolation: '08P01',
  /** The upstream cannot be reached or its login failed. */
  connectionFailure: '08006',
  /** Upstream refused the connection for a reason the client may act on. */
  sqlclientUnableToEstablishSqlconnection: '08001',
  /** warden is shutting down. */
  adminShutdown: '57P01',
  /** Features warden refuses (GSSAPI encryption, replication connections). */
  featureNotSupported: '0A000',
  /** Internal trouble that must not leak detail. */
  internalError: 'XX000',
  /** Too many connections / resources. */
  tooManyConnections: '53300',
  /** warden's sessions together hold all the memory allowed for messages being read (sessions.max_buffered_bytes). */
  outOfMemory: '53200',
  /** Transcripts cannot be written (fail closed). */
  ioError: '58030',
  /** Query cancelled. */
  queryCanceled: '57014',
} as const;
export type SqlStateCode = (typeof SqlState)[keyof typeof SqlState];
