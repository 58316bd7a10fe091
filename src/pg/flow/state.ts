// What a PostgreSQL session's statement flow keeps track of: prepared statements and portals
// (extended protocol), and the queue of responses the server owes — one entry per message
// forwarded, in order — so each response is matched to the statement it belongs to (masking
// plans, transcripts) even when the client pipelines.
import type { FieldDescription } from '../../../protocols/postgres/backend-messages.js';
import type { ErrorSpec } from '../../../protocols/postgres/error-response.js';
import type { StatementVerdict } from '../../approvals/types.js';
import type { Classification, StatementInfo } from '../../sql/types.js';
import type { StatementGate } from '../../audit/recorder.js';

/** A statement created by Parse (named, or the unnamed one). */
export interface Prepared {
  name: string;
  sql: string;
  classification: Classification;
  /** The single statement it holds, when it parsed to exactly one. */
  info: StatementInfo | undefined;
  verdict: StatementVerdict;
  /** Parameter types from Parse, completed by ParameterDescription. */
  paramTypes: number[];
  /** Result columns from a Describe of the statement (format codes all text, as PostgreSQL reports them). */
  fields: readonly FieldDescription[] | null | undefined;
  /** A Describe of it has been forwarded: its answer will give `fields`. */
  describing?: true;
}

/** A portal created by Bind. */
export interface Portal {
  name: string;
  stmt: Prepared | undefined;
  resultFormats: number[];
  /** Parameters as display strings, for the transcript. */
  params: (string | null)[];
  /** Per parameter: its whole size when the display string was cut. */
  paramBytes?: (number | undefined)[];
  /** Parameters as approvers see them, when one was cut: marked, with a digest of the whole value (cutForApprovers). */
  heldParams?: (string | null)[];
  /** Result columns with their final formats (from Describe portal, or the statement's + Bind formats). */
  fields: readonly FieldDescription[] | null | undefined;
  /** A Describe of it has been forwarded: its answer will give `fields`. */
  describing?: true;
  /**
   * An approver approved an Execute of this portal: its further Executes (more rows of a
   * suspended portal) continue that execution. Another Bind, even of the same statement in the
   * same batch, is a new portal with parameters nobody has seen, and is held again.
   */
  approved?: boolean;
  /**
   * A portal of a statement prepared with SQL PREPARE (not a protocol Parse, so `stmt` is unset):
   * what its Execute is judged as.
   */
  judgedAs?: Pick<Prepared, 'sql' | 'classification' | 'verdict'>;
  /** A cursor declared with SQL DECLARE, run with a protocol Execute: its declared statement (masking lineage). */
  cursor?: StatementInfo;
}

/** A statement recorded in the transcript, whose results are still to come. */
/** A statement's transcript id, and what forwarding it waits on (see StatementGate). */
export interface RecordedStatement extends StatementGate {
  id: number;
}

export type Expect =
  /** `previous`: what the name meant before, again when the server fails or skips this message. */
  | { k: 'parse'; stmt: Prepared; previous: Prepared | undefined }
  | { k: 'bind'; portal: Portal; previous: Portal | undefined }
  | { k: 'describe-stmt'; stmt: Prepared | undefined }
  /** `hidden`: warden's own Describe (see SessionFlow.describeFirst); its answer is not the client's. */
  | { k: 'describe-portal'; portal: Portal | undefined; hidden?: true }
  | { k: 'execute'; portal: Portal | undefined; rec: RecordedStatement | undefined }
  | { k: 'close' }
  | { k: 'sync' }
  | { k: 'query'; statements: readonly StatementInfo[] | undefined; rec: RecordedStatement | undefined; ddl: boolean }
  | { k: 'function-call' }
  /** Our error for a refused message of an extended batch: sent when it becomes due, unless the server already failed the batch. */
  | { k: 'refused'; error: ErrorSpec; rec: RecordedStatement | undefined }
  /**
   * An internal simple Query that raises an error (or, for a refused extended batch, a failing
   * Parse before the client's Sync), sent so that the server's transaction state becomes what
   * PostgreSQL's would be after a failed statement. Its ErrorResponse is replaced by `error` (or
   * swallowed when undefined); its ReadyForQuery reaches the client, unless `silent` (sent of
   * warden's own accord, not in place of a client's message).
   */
  | { k: 'fail-query'; error: ErrorSpec | undefined; rec: RecordedStatement | undefined; silent?: true };

/** Kinds that belong to an extended-protocol batch: skipped by the server after an error until Sync. */
export const EXTENDED: ReadonlySet<Expect['k']> = new Set(['parse', 'bind', 'describe-stmt', 'describe-portal', 'execute', 'close', 'refused']);
