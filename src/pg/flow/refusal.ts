// How warden refuses a statement so that the client and the server agree on what happened.
//
// PostgreSQL fails the current transaction when a statement fails. When warden refuses a
// statement instead of forwarding it, the server never saw a failure, so warden sends it a tiny
// statement that raises an error — the server's transaction state then becomes exactly what it
// would be had the refused statement failed there (failed inside a transaction block, nothing
// changed outside one). The server's error is swallowed and the client receives warden's own.
import { Buffer } from 'node:buffer';
import type { ErrorSpec } from '../../../protocols/postgres/error-response.js';
import { encodeParse, encodeQuery } from '../../../protocols/postgres/frontend-messages.js';
import { SqlState } from '../sqlstate.js';

/** The statement warden sends upstream to fail the transaction. Its message is never shown to the client. */
export const FAIL_TRANSACTION_SQL =
  "DO $warden$BEGIN RAISE EXCEPTION 'warden refused a statement' USING ERRCODE = 'insufficient_privilege'; END$warden$";

export const FAIL_TRANSACTION_QUERY: Buffer = encodeQuery(FAIL_TRANSACTION_SQL);

/**
 * The extended-protocol counterpart, sent in place of a refused message just before the batch's
 * Sync: a Parse the server's parser rejects, so the server fails the batch itself — the implicit
 * transaction of the batch is rolled back (what the batch's earlier statements did is undone, as
 * it would be had the refused one failed there), a transaction block is aborted. It is named so
 * that the client's unnamed statement is left alone; a name whose Parse fails is never stored.
 */
export const FAIL_BATCH_PARSE: Buffer = encodeParse({ name: 'warden_refused', sql: 'warden refused a statement', paramTypes: [] });

export function denied(message: string, detail?: string, hint?: string): ErrorSpec {
  return {
    severity: 'ERROR',
    code: SqlState.insufficientPrivilege,
    message,
    ...(detail !== undefined ? { detail } : {}),
    ...(hint !== undefined ? { hint } : {}),
  };
}

/** The fast-path FunctionCall names a function by OID, out of reach of classification. */
export const FAST_PATH_REFUSED: ErrorSpec = denied('warden does not allow fast-path function calls');

export function cancelled(): ErrorSpec {
  return { severity: 'ERROR', code: SqlState.queryCanceled, message: 'canceling statement due to user request' };
}
