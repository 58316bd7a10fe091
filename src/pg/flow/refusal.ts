// How warden refuses a statement so that the client and the server agree on what happened.
//
// PostgreSQL fails the current transaction when a statement fails. When warden refuses a
// statement instead of forwarding it, the server never saw a failure, so warden sends it a tiny
// statement that raises an error — the server's transaction state then becomes exactly what it
// would be had the refused statement failed there (failed inside a transaction block, nothing
// changed outside one). The server's error is swallowed and the client receives warden's own.
import { Buffer } from 'node:buffer';
import type { ErrorSpec } from '../../../protocols/postgres/error-response.js';
import { encodeQuery } from '../../../protocols/postgres/frontend-messages.js';
import { SqlState } from '../sqlstate.js';

/** The statement warden sends upstream to fail the transaction. Its message is never shown to the client. */
export const FAIL_TRANSACTION_SQL =
  "DO $warden$BEGIN RAISE EXCEPTION 'warden refused a statement' USING ERRCODE = 'insufficient_privilege'; END$warden$";

export const FAIL_TRANSACTION_QUERY: Buffer = encodeQuery(FAIL_TRANSACTION_SQL);

export function denied(message: string, detail?: string, hint?: string): ErrorSpec {
  return {
    severity: 'ERROR',
    code: SqlState.insufficientPrivilege,
    message,
    ...(detail !== undefined ? { detail } : {}),
    ...(hint !== undefined ? { hint } : {}),
  };
}

export function cancelled(): ErrorSpec {
  return { severity: 'ERROR', code: SqlState.queryCanceled, message: 'canceling statement due to user request' };
}
