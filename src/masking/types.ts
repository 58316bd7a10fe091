// The contract between the PostgreSQL relay and the masking engine. The relay owns the wire
// (framing, the order of messages, holding a result while a plan is built, aborting a result);
// the masking engine owns the decisions and the byte rewriting of values.
//
// Flow per session:
//   const masker = engine.session({ principal, target })            // once, after login
//   masker.checkStatement(stmt)                                      // at Query / Parse, before forwarding
//   plan = await masker.plan(fields, stmt)                           // at each result set's RowDescription
//   plan.rewriteDataRow(buf, start, end)                             // every DataRow of that result set
//     (or plan.forwardDataRow(buf, start, end, out): the same, added to the relay's output)
//   masker.copyPlan(copyResponse, stmt) / plan.rewriteCopyData(...)  // COPY … TO STDOUT
//   masker.scrubMessage(buf, start, end)                             // ErrorResponse / NoticeResponse / NotificationResponse
//   masker.invalidate()                                              // after DDL ran on the target
import type { FieldDescription } from '../../protocols/postgres/backend-messages.js';
import type { CopyResponse } from '../../protocols/postgres/backend-messages.js';
import type { Principal } from '../identity/types.js';
import type { StatementInfo } from '../sql/types.js';

/** A statement-level decision about protected data (inference through predicates, laundering). */
export type MaskVerdict =
  | { action: 'allow' }
  | { action: 'deny' | 'hold'; rule: string; reason: string };

/** What was applied to one output column, for transcripts and explain-mask. */
export interface AppliedMask {
  /** Rule name from the policy. */
  rule: string;
  /** Strategy name, e.g. "partial", "hash", "redact". */
  strategy: string;
  /** Why the column is covered: "customers.ssn (table column)", "derived from customers.ssn via concat", "content: card number". */
  because: string;
  /** Content classifiers: only values in which a classifier finds something are masked (the matches, in place). */
  conditional?: boolean;
  /** The table the masked value comes from, when every protected column behind it is of one table. */
  table?: string;
}

/** Thrown when a value cannot be masked and the rule says the query must fail. The relay turns it into SQLSTATE 42501. */
export class MaskingError extends Error {
  override readonly name = 'MaskingError';
  constructor(
    readonly rule: string,
    message: string,
  ) {
    super(message);
  }
}

/** How to mask the rows of one result set. */
export interface RowMaskPlan {
  /** False when no column needs any work: the relay then forwards DataRows untouched (fast path). */
  readonly active: boolean;
  /** Per output column: the mask applied, or null. Same length as the RowDescription. */
  readonly columns: readonly (AppliedMask | null)[];
  /**
   * The whole result must not be sent (e.g. a binary-format column whose rule cannot mask binary
   * and says `fail`): the relay replaces the result with an ErrorResponse 42501 carrying this message.
   */
  readonly refuse?: { rule: string; message: string };
  /**
   * Rewrites one DataRow message `buf[start, end)` (type byte and length included). Returns the new
   * message (all lengths recomputed), or undefined when the row is unchanged. Throws MaskingError
   * when a value cannot be masked safely. Must be fast: this is the hot path for masked results.
   */
  rewriteDataRow(buf: Buffer, start: number, end: number): Buffer | undefined;
  /**
   * Like rewriteDataRow, but adds what is to be sent — the rewritten row, or the original when
   * unchanged — to `sink`. No buffer is allocated per row, and consecutive rewritten rows lie next
   * to each other in one buffer, so the relay's output merges them into one write. The relay uses
   * it when it does not need the row's bytes itself (no transcript capture). Active plans have it.
   */
  forwardDataRow?(buf: Buffer, start: number, end: number, sink: MessageSink): void;
}

/** Where a plan adds the messages to send, in order (the relay's OutputBatch). */
export interface MessageSink {
  add(buf: Buffer, start: number, end: number): void;
}

/** How to mask COPY … TO STDOUT data (text, CSV or binary COPY format). */
export interface CopyMaskPlan {
  readonly active: boolean;
  readonly columns: readonly (AppliedMask | null)[];
  readonly refuse?: { rule: string; message: string };
  /**
   * Rewrites one CopyData message `buf[start, end)`. PostgreSQL sends one row per CopyData in COPY
   * TO STDOUT (binary format: the header arrives with the first row, the trailer alone); the plan
   * keeps whatever state the format needs, including a row split across messages. Returns the new
   * message or undefined when unchanged.
   */
  rewriteCopyData(buf: Buffer, start: number, end: number): Buffer | undefined;
  /** Like rewriteCopyData, but adds what is to be sent to `sink` (see RowMaskPlan.forwardDataRow). Active plans have it. */
  forwardCopyData?(buf: Buffer, start: number, end: number, sink: MessageSink): void;
  /**
   * Like forwardCopyData for the complete CopyData messages `buf[start, end)`, back to back (one
   * socket read's worth): one call for the run, what forwardCopyData would add message by message.
   * When it throws MaskingError, the messages before the one that failed have been added.
   */
  forwardCopyRun?(buf: Buffer, start: number, end: number, sink: MessageSink): void;
}

export interface SessionMasker {
  /** True when no masking rule applies to this principal at all (the relay skips every other call). */
  readonly inert: boolean;
  /**
   * Statement-level checks before the statement is forwarded: predicates over protected columns
   * (inference) and copying protected values elsewhere (laundering). `stmt` undefined means the
   * statement could not be parsed: treat it as touching every protected column.
   */
  checkStatement(stmt: StatementInfo | undefined): MaskVerdict;
  /**
   * Builds the plan for a result set from its RowDescription fields (format codes already final:
   * the relay fills them from Bind for extended-protocol portals) and the statement that produced
   * it (undefined when unknown or unparseable: then every column that is not a plain, known table
   * column is treated as possibly protected). May be async (catalog lookups by table OID).
   */
  plan(fields: readonly FieldDescription[], stmt: StatementInfo | undefined): RowMaskPlan | Promise<RowMaskPlan>;
  /** Plan for COPY … TO STDOUT; `stmt` is the COPY statement (table and column list, or query). */
  copyPlan(copy: CopyResponse, stmt: StatementInfo | undefined): CopyMaskPlan | Promise<CopyMaskPlan>;
  /**
   * Side channels: returns a rewritten ErrorResponse / NoticeResponse / NotificationResponse with
   * protected values removed from its fields (DETAIL of a unique violation, a failed cast quoting
   * a value, a notification payload), or undefined when unchanged.
   *
   * `stmt` (optional, added by the masking engine): the statement the message answers, or null
   * when it answers none (a notification). With it, quoted values are redacted only when that
   * statement touched protected data; without it, whenever any statement of the session did.
   */
  scrubMessage(buf: Buffer, start: number, end: number, stmt?: StatementInfo | null): Buffer | undefined;
  /** DDL ran on the target: drop cached catalog knowledge. */
  invalidate(): void;
  /**
   * (Added by the masking engine.) Resolves when the catalog is current again after invalidate().
   * Until then checkStatement() denies rather than judge against a catalog from before the DDL,
   * so the relay should await this before checking the next statement.
   */
  ready?(): Promise<void>;
  /**
   * (Added by the masking engine.) True while the target's catalog is being read again after DDL
   * (of any session): checkStatement() would deny, so the relay awaits ready() first.
   */
  catalogReloading?(): boolean;
}

export interface MaskingEngine {
  /** A masker for one session; resolves once the catalog snapshot it needs is loaded. */
  session(ctx: { principal: Principal; target: string }): Promise<SessionMasker>;
  close(): Promise<void>;
}

export type { FieldDescription, CopyResponse };
