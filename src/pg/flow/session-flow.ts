// The statement flow of one PostgreSQL session: the gate order of the design card, applied to
// every message in both directions.
//
//   client → server:  decode → classify → verdict (allow | deny | hold) → record → forward
//   server → client:  match the response to its statement → mask → record → forward
//
// It is the DirectionHandler pair the relay runs when any policy, masking or recording applies
// to the session. Extended-protocol batches are tracked exactly (a queue of expected responses),
// so pipelined clients get their results masked and recorded against the right statement, and a
// refused or held statement keeps every later message in order behind it.
import type { Logger } from '../../log.js';
import { ProtocolError } from '../../../protocols/errors.js';
import { Backend, Frontend, TransactionStatus } from '../../../protocols/postgres/codes.js';
import { decodeRowsSummary, ROWS_SUMMARY } from '../recording/wire-encoder.js';
import {
  commandTagRows,
  decodeCommandComplete,
  decodeCopyResponse,
  decodeParameterDescription,
  type CopyResponse,
  type FieldDescription,
} from '../../../protocols/postgres/backend-messages.js';
import { decodeNotice, encodeErrorResponse, encodeNoticeResponse, type ErrorSpec } from '../../../protocols/postgres/error-response.js';
import {
  decodeBind,
  decodeClose,
  decodeDescribe,
  decodeExecute,
  decodeParse,
  decodeQuery,
  encodeDescribe,
  formatAt,
} from '../../../protocols/postgres/frontend-messages.js';
import { cutForApprovers } from '../../approvals/fingerprint.js';
import { decisionRecord, heldText, outcomeText, PendingHold, seekApproval, unheldText, type HoldResult } from '../../approvals/holding.js';
import type { ApprovalService, HoldOutcome, HoldRequest, PolicyContext, StatementPolicy, StatementVerdict } from '../../approvals/types.js';
import type { CapturePolicy } from '../../audit/config.js';
import { STORE_UNWRITABLE, unrecordedReason } from '../../audit/errors.js';
import { recordStatement, RowCapture, type Recorder } from '../../audit/recorder.js';
import { MAX_RESULT_NOTICES, type ResultInfo, type ResultNotice, type StatementParam, type StatementInfo as RecordedStatementInfo } from '../../audit/types.js';
import type { Principal } from '../../identity/types.js';
import { MaskingError, type CopyMaskPlan, type RowMaskPlan, type SessionMasker } from '../../masking/types.js';
import { unwrap } from '../../sql/ast.js';
import { classifyStatement } from '../../sql/fast.js';
import { decodeParameterStatus, encodeReadyForQuery } from '../../../protocols/postgres/session-messages.js';
import { RUN } from '../../../protocols/postgres/scanner.js';
import type { Classification, StatementInfo } from '../../sql/types.js';
import { OutputBatch } from '../output-batch.js';
import type { DirectionHandler } from '../relay.js';
import { displayParams } from './params.js';
import { cancelled, denied, FAIL_BATCH_PARSE, FAIL_TRANSACTION_QUERY, FAST_PATH_REFUSED } from './refusal.js';
import { EXTENDED, type Expect, type Portal, type Prepared, type RecordedStatement } from './state.js';
import { resultColumns, RowDescriptions } from './result-columns.js';
import { typeName } from './types.js';
import { ALLOW, changesCatalog, decide, mayChangeLexing, stricter, summarize } from './verdicts.js';

export interface FlowDeps {
  sessionId: string;
  principal: Principal;
  target: string;
  clientAddress: string;
  instanceId: string;
  logger: Logger;
  policy: StatementPolicy | undefined;
  approvals: ApprovalService | undefined;
  masker: SessionMasker | undefined;
  recorder: Recorder | undefined;
  capture: CapturePolicy;
  /** fsync `each`: a statement's record must be durable before the statement is forwarded. */
  durableBeforeForward: boolean;
  /** False while transcripts cannot be written and the policy says to refuse statements then. */
  recordingHealthy(): boolean;
  /** Why statements are refused while recordingHealthy() is false (default: the store cannot be written). */
  unrecordedReason?: string;
  /**
   * `on_write_error: continue`: called once when a record fails because the store cannot be
   * written; the session then goes on unrecorded (the flow records nothing more and refuses
   * nothing because of the store). Absent (`refuse`): such a statement is refused.
   */
  continueUnrecorded?(err: unknown): void;
  /** Sends a message of warden's own to the client at the next message boundary. */
  inject(msg: Buffer): void;
  /** Warden sends a simple Query of its own upstream: one more ReadyForQuery is due. */
  expectReady(): void;
  onQuery(): void;
  onVerdict(action: 'allow' | 'deny' | 'hold' | 'grant'): void;
  /**
   * Replaying a wire transcript (src/pg/recording/wire-decoder.ts): the server's bytes may hold
   * ROWS_SUMMARY messages for the rows the transcript did not keep. Never set on a live session,
   * where a server's bytes are forwarded as they are.
   */
  wireReplay?: boolean;
}

/** The result set being streamed to the client. */
interface ResultSet {
  rec: RecordedStatement | undefined;
  fields: readonly FieldDescription[];
  plan: RowMaskPlan | undefined;
  copy: CopyMaskPlan | undefined;
  capture: RowCapture | undefined;
  set: number;
  /** A masking failure: swallow the rest of the response until ReadyForQuery. */
  aborted: boolean;
}

/** Client-only encodings whose multi-byte characters can contain a backslash byte. */
const UNSAFE_CLIENT_ENCODINGS = new Set(['SJIS', 'SHIFT_JIS_2004', 'BIG5', 'GBK', 'UHC', 'GB18030', 'JOHAB']);

const CLIENT_WHOLE = new Uint8Array(256);
for (const c of [
  Frontend.query, Frontend.parse, Frontend.bind, Frontend.describe, Frontend.execute, Frontend.close,
  Frontend.sync, Frontend.flush, Frontend.terminate, Frontend.functionCall,
]) CLIENT_WHOLE[c] = 1;

const SERVER_WHOLE = new Uint8Array(256);
for (const c of [
  Backend.parseComplete, Backend.bindComplete, Backend.closeComplete, Backend.noData, Backend.parameterDescription,
  Backend.rowDescription, Backend.commandComplete, Backend.emptyQueryResponse, Backend.portalSuspended,
  Backend.errorResponse, Backend.noticeResponse, Backend.notificationResponse, Backend.copyOutResponse,
  Backend.copyInResponse, Backend.copyBothResponse, Backend.copyDone, Backend.functionCallResponse,
  Backend.parameterStatus,
]) SERVER_WHOLE[c] = 1;

const NONE_EXECUTED: readonly never[] = [];

export class SessionFlow {
  readonly client: DirectionHandler;
  readonly server: DirectionHandler;
  private readonly statements = new Map<string, Prepared>();
  private readonly portals = new Map<string, Portal>();
  private readonly queue: Expect[] = [];
  /** Extended batch refused by warden: drop client messages until Sync. */
  private refusing: { error: ErrorSpec; rec: RecordedStatement | undefined; reported?: boolean } | undefined;
  /** The current result set on the server → client side. */
  private result: ResultSet | undefined;
  /**
   * Warden ended a response with its own error (abortResult): PostgreSQL sends nothing after an
   * error until ReadyForQuery, so what the server still answers is tracked but not sent.
   */
  private failedUntilReady = false;
  /** That ReadyForQuery closed a transaction block the client was told failed: fail it upstream before the client's next message. */
  private failBlock = false;
  private readonly sink = new OutputBatch();
  /** Which statement of the current simple Query the next response belongs to. */
  private stmtIndex = 0;
  /** Result sets so far of `setsOf`, the statement the current response answers (transcripts number them). */
  private resultSets = 0;
  private setsOf: RecordedStatement | undefined;
  /** A statement currently held for approval, withdrawn on cancel. */
  private holding: PendingHold | undefined;
  private readonly ctx: PolicyContext;
  private readonly logWriteFailure = (err: unknown): void => {
    if (!this.goesOnUnrecorded(err)) this.log.error({ err: (err as Error).message }, 'transcript write failed');
  };
  /** The session's recorder; dropped when the store fails under `on_write_error: continue`. */
  private recorder: Recorder | undefined;
  /** Notices of the statement `noticesOf` not recorded yet (noteNotice), and how many more came. */
  private notices: ResultNotice[] | undefined;
  private noticesOf: RecordedStatement | undefined;
  private noticesDropped = 0;
  /** Statements recorded so far (their ids in the transcript). */
  private recorded = 0;
  /** SQL-level PREPARE and DECLARE CURSOR statements, by name. */
  private readonly sqlPrepared = new Map<string, StatementInfo>();
  private readonly cursors = new Map<string, StatementInfo>();
  /** Set after DDL while the masking catalog reloads. */
  private catalogPending: Promise<unknown> | undefined;
  /**
   * DDL completed since the session was last idle: the catalog is read again once it is idle
   * (ReadyForQuery 'I'), when the change is committed and visible to the catalog's connection —
   * DDL inside BEGIN … COMMIT, or through the extended protocol (committed at Sync).
   */
  private catalogDirty = false;
  /** The last ReadyForQuery said: not in a transaction block. */
  private txIdle = true;
  private readonly rowDescriptions = new RowDescriptions();
  private readonly log: Logger;

  constructor(private readonly deps: FlowDeps) {
    this.ctx = { principal: deps.principal, target: deps.target, protocol: 'postgres' };
    this.log = deps.logger;
    this.recorder = deps.recorder;
    const self = this;
    this.client = {
      whole: (code) => CLIENT_WHOLE[code] === 1,
      onMessage: (code, buf, start, end, out) => self.fromClient(code, buf, start, end, out),
      onBytes: (buf, start, end, out) => {
        if (!self.refusing) out.add(buf, start, end);
      },
    };
    this.server = {
      whole: (code, length) => {
        if (SERVER_WHOLE[code] === 1) return true;
        if (code === ROWS_SUMMARY && self.deps.wireReplay === true) return true;
        if (code === Backend.dataRow) {
          if (self.wantsRows()) return true;
          // A row the capture no longer keeps streams through: it is still one of the result's rows.
          self.result?.capture?.passed(length);
          return false;
        }
        return code === Backend.copyData && (self.result?.copy?.active === true || self.result?.aborted === true) ? RUN : false;
      },
      onMessage: (code, buf, start, end, out) => self.fromServer(code, buf, start, end, out),
      // whole() asks for runs of CopyData only.
      onRun: (_code, buf, start, end, out) => self.onCopyRun(buf, start, end, out),
      onBytes: (buf, start, end, out) => {
        if (!self.result?.aborted && !self.failedUntilReady) out.add(buf, start, end);
      },
    };
  }

  /** True when a statement is held: a CancelRequest then withdraws it instead of reaching the server. */
  cancelHeld(): boolean {
    if (!this.holding) return false;
    this.holding.cancelled = true;
    this.holding.withdraw('cancelled');
    return true;
  }

  /** The session is ending: withdraw a held statement. */
  /** Withdraws a held statement, if any; true when one was held (so nothing of it runs upstream). */
  close(reason: 'disconnected' | 'session-ended' | 'token-expired'): boolean {
    if (!this.holding) return false;
    this.holding.withdraw(reason);
    return true;
  }

  // ---------------------------------------------------------------------------------------------
  // client → server

  private fromClient(code: number, buf: Buffer, start: number, end: number, out: OutputBatch): void | Promise<unknown> {
    const msg = start === 0 && end === buf.length ? buf : buf.subarray(start, end);
    // Forwarding adds the original range, so consecutive messages of one chunk go out as one write.
    const fwd = (): void => out.add(buf, start, end);
    if (this.failBlock && code !== Frontend.terminate) {
      // The client was told its block failed (warden's error mid-result): so it does, upstream.
      this.failBlock = false;
      out.push(FAIL_TRANSACTION_QUERY);
      this.queue.push({ k: 'fail-query', error: undefined, rec: undefined, silent: true });
      this.deps.expectReady();
    }
    if (this.refusing && code !== Frontend.sync && code !== Frontend.terminate) {
      // PostgreSQL skips to Sync after an error; but a Flush makes it send the error at once, and
      // clients that Parse + Describe + Flush before they Bind (postgres.js) wait for it.
      if (code === Frontend.flush) this.reportRefusal(this.refusing, fwd);
      return;
    }
    if (!this.catalogPending && (code === Frontend.query || code === Frontend.parse) && this.deps.masker?.catalogReloading?.()) {
      // Another session's DDL: its re-read of the catalog is under way.
      this.catalogPending = this.deps.masker.ready?.().catch((err: unknown) => this.log.warn({ err: (err as Error).message }, 'catalog reload failed'));
    }
    if (this.catalogPending && (code === Frontend.query || code === Frontend.parse)) {
      // DDL changed the catalog: judge the next statement against the current one, not the old.
      const pending = this.catalogPending;
      return pending.then(() => {
        if (this.catalogPending === pending) this.catalogPending = undefined;
        return this.fromClient(code, buf, start, end, out);
      });
    }
    switch (code) {
      case Frontend.query:
        return this.onQuery(msg, fwd, out);
      case Frontend.parse:
        return this.onParse(msg, fwd);
      case Frontend.bind:
        return this.onBind(msg, fwd);
      case Frontend.describe: {
        const t = decodeDescribe(msg);
        fwd();
        if (t.kind === 'statement') {
          const stmt = this.statements.get(t.name);
          if (stmt) stmt.describing = true;
          this.queue.push({ k: 'describe-stmt', stmt });
        } else {
          const portal = this.portals.get(t.name);
          if (portal) portal.describing = true;
          this.queue.push({ k: 'describe-portal', portal });
        }
        return;
      }
      case Frontend.execute:
        return this.onExecute(msg, fwd, out);
      case Frontend.close: {
        const t = decodeClose(msg);
        if (t.kind === 'statement') {
          this.statements.delete(t.name);
          this.sqlPrepared.delete(t.name);
        } else {
          this.portals.delete(t.name);
          this.cursors.delete(t.name);
        }
        fwd();
        this.queue.push({ k: 'close' });
        return;
      }
      case Frontend.sync:
        return this.onSync(fwd, out);
      case Frontend.functionCall: {
        // The fast-path function call names a function by OID, out of reach of classification.
        // Recorded as refused (libpq's large-object functions are such calls), so a reviewer sees it.
        this.deps.onVerdict('deny');
        const oid = end - start >= 9 ? buf.readUInt32BE(start + 5) : 0;
        const rec = this.record(`fast-path call of function ${oid}`, FAST_PATH_UNCLASSIFIED, { action: 'deny', rule: 'fast-path', reason: FAST_PATH_REFUSED.message }, 'fast-path');
        this.failWith(out, FAST_PATH_REFUSED, rec);
        return;
      }
      default:
        fwd();
    }
  }

  private classifyText(sql: string): Classification {
    if (this.lexingMismatch) return { ok: false, error: this.lexingMismatch };
    if (this.lexingUnsettled) return { ok: false, error: 'a statement that may change how the server reads statement text (standard_conforming_strings, client_encoding) has not been answered yet: wait for its answer before sending more' };
    return classifyStatement(sql);
  }

  /**
   * Set when the server would read statement text differently from warden's parser: with
   * standard_conforming_strings off a backslash escapes a quote (so a string could hide a
   * statement), and some client encodings put backslashes inside characters. Every statement is
   * then treated as not understood (fail closed).
   */
  private lexingMismatch: string | undefined;
  /**
   * A forwarded statement may change those settings (mayChangeLexing) and the server has not
   * answered it yet: it reports the change only with its ReadyForQuery (`until`, once known: the
   * simple Query's or the Sync's), so statements pipelined behind it are not understood either.
   * Without this, `SET standard_conforming_strings = off` followed at once by a statement whose
   * backslash-quote hides `upper(ssn) AS x` inside what warden reads as a string sent clear values.
   */
  private lexingUnsettled: { until: Expect | undefined } | undefined;

  /** Tracks the server parameters that change how statement text is read. */
  noteParameter(name: string, value: string): void {
    if (name === 'standard_conforming_strings') {
      this.lexingMismatch = value === 'on' ? undefined : 'standard_conforming_strings is off: warden cannot read statements reliably';
    } else if (name === 'client_encoding' && UNSAFE_CLIENT_ENCODINGS.has(value.toUpperCase())) {
      this.lexingMismatch = `client_encoding ${value} is not supported by warden's statement checks; use UTF8`;
    }
  }

  /** The verdict for a statement text: policy and masking checks, and refusal while transcripts cannot be written. */
  private verdictFor(cls: Classification): StatementVerdict {
    if (!this.deps.recordingHealthy()) {
      return { action: 'deny', rule: 'transcripts', reason: this.deps.unrecordedReason ?? STORE_UNWRITABLE };
    }
    let v = decide(this.ctx, cls, this.deps.policy, this.deps.masker);
    // EXECUTE runs a statement prepared earlier: it is judged as that statement too. A named
    // statement made by a protocol Parse is judged only when a portal of it is executed, so
    // without this, Parse + SQL EXECUTE ran a held (or denied) statement unjudged.
    const executed = this.executed(cls);
    for (const e of executed) v = stricter(v, e.verdict);
    // Approvers see what runs: the prepared texts follow the reason.
    if (v.action === 'allow' || executed.length === 0) return v;
    return { ...v, reason: `${v.reason}${executed.map((e) => ` (${e.how} ${e.name} runs: ${e.sql})`).join('')}` };
  }

  /**
   * What the EXECUTEs and FETCHes (MOVEs) of a text run, with their verdicts: prepared statements
   * (SQL PREPARE or protocol Parse, one namespace), and protocol portals bound but not executed
   * with approval (FETCH runs a portal's statement as Execute would; a portal Bound to a held
   * statement is judged only at its Execute). Cursors of DECLARE were judged when declared.
   */
  private executed(cls: Classification): readonly { how: string; name: string; sql: string; verdict: StatementVerdict }[] {
    if (!cls.ok) return NONE_EXECUTED;
    // Allocated only for a text that runs something prepared (every statement is judged here).
    let out: { how: string; name: string; sql: string; verdict: StatementVerdict }[] | undefined;
    for (const st of cls.statements) {
      if (st.kind === 'fetch' && st.targetName) {
        const portal = this.portals.get(st.targetName);
        const judged = portal?.stmt ?? portal?.judgedAs;
        if (judged && !portal?.approved) (out ??= []).push({ how: 'FETCH from', name: st.targetName, sql: judged.sql, verdict: judged.verdict });
        continue;
      }
      const name = executedName(st);
      if (name === undefined) continue;
      const parsed = this.statements.get(name);
      const prepared = parsed ? undefined : this.sqlPrepared.get(name);
      if (parsed) (out ??= []).push({ how: 'EXECUTE', name, sql: parsed.sql, verdict: parsed.verdict });
      else if (prepared) (out ??= []).push({ how: 'EXECUTE', name, sql: prepared.text, verdict: decide(this.ctx, { ok: true, statements: [prepared] }, this.deps.policy, this.deps.masker) });
    }
    return out ?? NONE_EXECUTED;
  }

  private onQuery(msg: Buffer, fwd: () => void, out: OutputBatch): void | Promise<unknown> {
    this.deps.onQuery();
    const sql = decodeOrNull(decodeQuery, msg);
    if (sql === null) {
      this.failWith(out, INVALID_MESSAGE, undefined);
      return;
    }
    const cls = this.classifyText(sql);
    const verdict = this.verdictFor(cls);
    const statements = cls.ok ? cls.statements : undefined;
    const ddl = changesCatalog(cls);
    if (verdict.action === 'allow') {
      this.deps.onVerdict('allow');
      const rec = this.record(sql, cls, verdict, 'simple');
      return this.afterDurable(
        rec,
        () => {
          fwd();
          this.pushQuery({ k: 'query', statements, rec, ddl }, cls);
        },
        (error) => this.failWith(out, error, undefined),
      );
    }
    if (verdict.action === 'deny') {
      this.deps.onVerdict('deny');
      const rec = this.record(sql, cls, verdict, 'simple');
      this.failWith(out, this.refusal(verdict), rec);
      return;
    }
    return this.hold(sql, cls, verdict, 'simple', undefined, (rec, approved) => {
      if (approved) {
        fwd();
        this.pushQuery({ k: 'query', statements, rec, ddl }, cls);
      } else {
        this.failWith(out, this.lastRefusal, rec);
      }
    });
  }

  /**
   * A statement the session prepared before this flow began (a wire session replayed from a resume
   * point, replayer.ts): its Executes are then recorded with its text, as they would have been.
   */
  seedPrepared(name: string, sql: string, paramTypes: readonly number[]): void {
    this.statements.set(name, this.prepared(name, sql, paramTypes));
  }

  private prepared(name: string, sql: string, paramTypes: readonly number[]): Prepared {
    const cls = this.classifyText(sql);
    return {
      name,
      sql,
      classification: cls,
      info: cls.ok && cls.statements.length === 1 ? cls.statements[0] : undefined,
      verdict: this.verdictFor(cls),
      paramTypes: [...paramTypes],
      fields: undefined,
    };
  }

  /** Expects the answer to a forwarded simple Query. */
  private pushQuery(entry: Expect, cls: Classification): void {
    this.queue.push(entry);
    if (mayChangeLexing(cls)) this.lexingUnsettled = { until: entry };
  }

  private onParse(msg: Buffer, fwd: () => void): void {
    const p = decodeOrNull(decodeParse, msg);
    if (p === null) {
      this.refuseBatch(INVALID_MESSAGE, undefined);
      return;
    }
    const stmt = this.prepared(p.name, p.sql, p.paramTypes);
    const { classification: cls, verdict } = stmt;
    const previous = this.statements.get(p.name);
    this.statements.set(p.name, stmt);
    if (verdict.action === 'deny') {
      // Refused at Parse, as PostgreSQL would report a statement it cannot prepare.
      this.deps.onVerdict('deny');
      const rec = this.record(p.sql, cls, verdict, 'extended', p.name || undefined);
      this.refuseBatch(this.refusal(verdict), rec);
      return;
    }
    fwd();
    this.queue.push({ k: 'parse', stmt, previous });
    if (mayChangeLexing(cls)) this.lexingUnsettled = { until: undefined }; // until this batch's Sync
  }

  private onBind(msg: Buffer, fwd: () => void): void {
    const b = decodeBind(msg);
    const stmt = this.statements.get(b.statement);
    const shown = this.recorder || this.deps.approvals ? displayParams(b.params, b.paramFormats, stmt?.paramTypes ?? []) : undefined;
    const portal: Portal = {
      name: b.portal,
      stmt,
      resultFormats: b.resultFormats,
      params: shown?.values ?? [],
      fields: stmt?.fields ? withFormats(stmt.fields, b.resultFormats) : stmt?.fields,
    };
    if (shown?.fullBytes) {
      portal.paramBytes = shown.fullBytes;
      if (this.deps.approvals) portal.heldParams = heldParams(shown.values, shown.fullBytes, b.params);
    }
    if (!stmt) {
      // A statement prepared with SQL PREPARE, bound through the protocol: judged as that statement.
      const prepared = this.sqlPrepared.get(b.statement);
      if (prepared) {
        const classification: Classification = { ok: true, statements: [prepared] };
        portal.judgedAs = { sql: prepared.text, classification, verdict: this.verdictFor(classification) };
      }
    }
    const previous = this.portals.get(b.portal);
    this.portals.set(b.portal, portal);
    fwd();
    this.queue.push({ k: 'bind', portal, previous });
  }

  private onExecute(msg: Buffer, forward: () => void, out: OutputBatch): void | Promise<unknown> {
    this.deps.onQuery();
    const e = decodeExecute(msg);
    const portal = this.portals.get(e.portal) ?? this.cursorPortal(e.portal);
    const fwd = (): void => {
      this.describeFirst(portal, out);
      forward();
    };
    const stmt = portal?.stmt;
    const judged = stmt ?? portal?.judgedAs;
    // Unknown portal: the server will report the error; nothing of ours runs.
    let verdict: StatementVerdict = judged && !portal?.approved ? judged.verdict : ALLOW;
    if (!this.deps.recordingHealthy()) verdict = this.verdictFor(judged?.classification ?? { ok: false, error: 'unknown portal' });
    const sql = judged?.sql ?? '';
    const cls = judged?.classification ?? { ok: false as const, error: 'unknown portal' };
    const params = portal ? this.transcriptParams(portal) : undefined;
    if (verdict.action === 'allow') {
      this.deps.onVerdict('allow');
      const rec = stmt ? this.record(sql, cls, verdict, 'extended', stmt.name || undefined, params) : undefined;
      return this.afterDurable(
        rec,
        () => {
          fwd();
          this.queue.push({ k: 'execute', portal, rec });
        },
        (error) => this.refuseBatch(error, undefined),
      );
    }
    if (verdict.action === 'deny') {
      this.deps.onVerdict('deny');
      const rec = this.record(sql, cls, verdict, 'extended', stmt?.name || undefined, params);
      this.refuseBatch(this.refusal(verdict), rec);
      return;
    }
    return this.hold(sql, cls, verdict, 'extended', portal, (rec, approved) => {
      if (approved) {
        if (portal) portal.approved = true;
        fwd();
        this.queue.push({ k: 'execute', portal, rec });
      } else {
        this.refuseBatch(this.lastRefusal, rec);
      }
    });
  }

  /**
   * Masking must know an Execute's columns before its rows arrive, and a client may execute a
   * portal nobody described (libpq's pipeline of Parse/Bind/Execute, asyncpg, hand-written
   * clients): PostgreSQL sends its rows with no RowDescription. Warden then describes the portal
   * itself just before the Execute, and keeps the answer from the client, who did not ask for it.
   */
  /**
   * A cursor declared with SQL DECLARE is a portal the client may run with a protocol Execute:
   * under masking it gets a Portal of its own (no statement, no parameters), so that warden can
   * describe it first and mask its rows by the lineage of the declared query.
   */
  private cursorPortal(name: string): Portal | undefined {
    const cursor = this.masking ? this.cursors.get(name) : undefined;
    if (!cursor) return undefined;
    const portal: Portal = { name, stmt: undefined, resultFormats: [], params: [], fields: undefined, cursor };
    this.portals.set(name, portal);
    return portal;
  }

  private describeFirst(portal: Portal | undefined, out: OutputBatch): void {
    if (!portal || !this.masking || portal.describing || portal.fields !== undefined) return;
    const stmt = portal.stmt;
    if (stmt && (stmt.describing || stmt.fields !== undefined)) return;
    portal.describing = true;
    out.push(encodeDescribe({ kind: 'portal', name: portal.name }));
    this.queue.push({ k: 'describe-portal', portal, hidden: true });
  }

  private onSync(fwd: () => void, out: OutputBatch): void {
    const refusing = this.refusing;
    if (!refusing) {
      fwd();
      this.pushSync({ k: 'sync' });
      return;
    }
    this.refusing = undefined;
    // Our error takes the refused message's place (unless a Flush sent it already). The server
    // fails the batch on a Parse of ours, as it would have on the refused message: the batch's
    // implicit transaction is rolled back, so what its earlier statements did is undone (a Sync
    // alone would have committed it), and a transaction block is aborted. The server's error is
    // swallowed; the Sync's ReadyForQuery ends the entry. (An earlier error of the server's
    // already failed the batch: the server then skips the Parse, and our error is dropped with
    // the rest of the batch's expectations.)
    if (!refusing.reported) this.queue.push({ k: 'refused', error: refusing.error, rec: refusing.rec });
    out.push(FAIL_BATCH_PARSE);
    fwd();
    this.pushSync({ k: 'fail-query', error: undefined, rec: undefined });
  }

  private pushSync(entry: Expect): void {
    this.queue.push(entry);
    if (this.lexingUnsettled && !this.lexingUnsettled.until) this.lexingUnsettled.until = entry;
  }

  /** A Flush during a refused batch: our error goes out once what was forwarded before it has been answered. */
  private reportRefusal(refusing: NonNullable<SessionFlow['refusing']>, fwd: () => void): void {
    if (refusing.reported) return;
    refusing.reported = true;
    if (this.queue.length === 0) {
      this.deps.inject(encodeErrorResponse(refusing.error));
      if (refusing.rec) this.recordResult(this.resultFor(refusing.rec, [], undefined), undefined, { code: refusing.error.code, message: refusing.error.message });
      return;
    }
    this.queue.push({ k: 'refused', error: refusing.error, rec: refusing.rec });
    fwd();
  }

  /** Simple-protocol refusal: the Query is replaced by one that fails the transaction; our error replaces the server's. */
  private failWith(out: OutputBatch, error: ErrorSpec, rec: RecordedStatement | undefined): void {
    out.push(FAIL_TRANSACTION_QUERY);
    this.queue.push({ k: 'fail-query', error, rec });
  }

  /** Extended-protocol refusal: drop everything until Sync (as the server does after an error). */
  private refuseBatch(error: ErrorSpec, rec: RecordedStatement | undefined): void {
    this.refusing ??= { error, rec };
  }

  private lastRefusal: ErrorSpec = denied('statement refused');

  private refusal(v: StatementVerdict): ErrorSpec {
    if (v.action === 'allow') return denied('statement refused');
    return denied(`statement refused by warden policy rule "${v.rule}": ${v.reason}`);
  }

  private transcriptParams(portal: Portal): StatementParam[] | undefined {
    if (!this.recorder || portal.params.length === 0) return undefined;
    const types = portal.stmt?.paramTypes ?? [];
    return portal.params.map((value, i) => {
      const p: StatementParam = { type: typeName(types[i] ?? 0), value };
      const full = portal.paramBytes?.[i];
      if (full !== undefined) p.fullBytes = full;
      return p;
    });
  }

  private record(
    sql: string,
    cls: Classification,
    verdict: StatementVerdict,
    via: string,
    name?: string,
    params?: StatementParam[],
    approval?: { requestId: string },
  ): RecordedStatement | undefined {
    const r = this.recorder;
    if (!r) return undefined;
    // Built by assignment: this runs for every statement.
    const info: RecordedStatementInfo = { text: sql, classification: summarize(cls), verdict: verdict.action, via };
    if (verdict.action !== 'allow') {
      info.rule = verdict.rule;
      info.reason = verdict.reason;
    } else if (verdict.rule) info.rule = verdict.rule;
    if (name) info.name = name;
    if (params) info.params = params;
    if (approval) info.approval = approval;
    // The recorder numbers statements from 1 in call order; this flow is its only caller.
    const rec: RecordedStatement = { id: ++this.recorded };
    // fsync `each`: the statement waits for its record; `interval`: the record is in the writer's
    // batch before the statement is forwarded.
    recordStatement(rec, r, info, this.deps.durableBeforeForward, this.logWriteFailure);
    return rec;
  }

  /**
   * Under fsync `each`, waits for the statement's record before forwarding (gate order: record →
   * forward). A statement whose record cannot be written is refused (fail closed); the session
   * goes on, refusing what follows while the store cannot be written. Under `on_write_error:
   * continue`, a store that cannot be written lets it run unrecorded instead.
   */
  private afterDurable(rec: RecordedStatement | undefined, forward: () => void, refuse: (error: ErrorSpec) => void): void | Promise<unknown> {
    const unrecorded = (err: unknown): void => (this.goesOnUnrecorded(err) ? forward() : refuse(unrecordedRefusal(err)));
    if (rec?.failed !== undefined) {
      unrecorded(rec.failed);
      return;
    }
    if (!rec?.durable || !this.deps.durableBeforeForward) {
      forward();
      return;
    }
    return rec.durable.then(forward, unrecorded);
  }

  private hold(
    sql: string,
    cls: Classification,
    verdict: Exclude<StatementVerdict, { action: 'allow' }>,
    via: string,
    portal: Portal | undefined,
    then: (rec: RecordedStatement | undefined, approved: boolean) => void,
  ): Promise<unknown> {
    const approvals = this.deps.approvals;
    const params = portal ? this.transcriptParams(portal) : undefined;
    const runs = this.executed(cls).map((e) => e.sql);
    const request: HoldRequest = {
      sessionId: this.deps.sessionId,
      instanceId: this.deps.instanceId,
      protocol: 'postgres',
      target: this.deps.target,
      principal: this.deps.principal,
      clientAddress: this.deps.clientAddress,
      sql,
      fingerprint: cls.ok ? cls.statements.map((s) => s.fingerprint).join(';') : `unparsed:${sql.length}`,
      normalized: cls.ok ? cls.statements.map((s) => s.normalized).join('; ') : sql,
      ...(portal && portal.params.length ? { params: portal.heldParams ?? portal.params } : {}),
      rule: verdict.rule,
      reason: verdict.reason,
      // The approval service derives the grant fingerprint from the classification (exact text
      // for statements where the literal is the point: DO blocks, SET ROLE, file access, …).
      classification: cls,
      ...(runs.length > 0 ? { runs } : {}),
    };
    const refuse = (error: ErrorSpec, rec: RecordedStatement | undefined): void => {
      this.lastRefusal = error;
      then(rec, false);
    };
    return (async () => {
      const name = portal?.stmt?.name || undefined;
      // Set once the request exists: the statement's record.
      const held: { rec?: RecordedStatement | undefined } = {};
      const state = new PendingHold();
      this.holding = state;
      let result: HoldResult;
      try {
        result = await seekApproval(approvals, request, this.log, (hold) => {
          this.deps.onVerdict('hold');
          held.rec = this.record(sql, cls, verdict, via, name, params, { requestId: hold.id });
          this.deps.inject(encodeNoticeResponse({ severity: 'NOTICE', code: '01000', ...heldText(hold, verdict) }));
          state.stored(hold);
        });
      } finally {
        this.holding = undefined;
      }
      if (result.kind === 'grant' && state.early) {
        // Cancelled (or gone) while the grant was looked up: it does not run.
        refuse(cancelled(), this.record(sql, cls, verdict, via, name, params));
        return;
      }
      switch (result.kind) {
        case 'refused': {
          // Holding needs an approval service that can store the request; without one a held
          // statement is refused (fail closed).
          this.deps.onVerdict(result.why === 'unconfigured' ? 'deny' : 'hold');
          const t = unheldText(verdict.rule, result.why);
          refuse(denied(t.message, t.detail, t.hint), this.record(sql, cls, verdict, via, name, params));
          return;
        }
        case 'grant': {
          this.deps.onVerdict('grant');
          const granted = this.record(sql, cls, { action: 'allow', rule: verdict.rule }, via, name, params, { requestId: `grant:${result.grant.id}` });
          const failed = await this.recordFailure(granted);
          if (failed) refuse(unrecordedRefusal(failed.err), undefined);
          else then(granted, true);
          return;
        }
        case 'decided': {
          const { hold, outcome } = result;
          const rec = held.rec;
          const decisionFailed = await this.recordDecision(rec, hold.id, outcome);
          if (outcome.decision === 'approved') {
            // Its records (statement and decision) must exist before it runs.
            const failed = decisionFailed ?? (await this.recordFailure(rec)) ?? (this.deps.recordingHealthy() ? undefined : { err: undefined });
            if (failed) refuse(unrecordedRefusal(failed.err), undefined);
            else then(rec, true);
            return;
          }
          if (outcome.decision === 'withdrawn' && state.cancelled) {
            refuse(cancelled(), rec);
            return;
          }
          const t = outcomeText(hold.id, outcome);
          refuse(denied(t.message, t.detail, t.hint), rec);
        }
      }
    })();
  }

  /** Records the approvers' decision; under fsync `each`, what failed when it could not be written. */
  private async recordDecision(rec: RecordedStatement | undefined, requestId: string, outcome: HoldOutcome): Promise<{ err: unknown } | undefined> {
    const r = this.recorder;
    if (!r || !rec) return undefined;
    await rec.durable?.catch(() => undefined);
    const p = r.statementDecision(decisionRecord(rec.id, requestId, outcome));
    if (this.deps.durableBeforeForward) return p.then(() => undefined, (err: unknown) => (this.goesOnUnrecorded(err) ? undefined : { err }));
    p.catch(() => undefined);
    return undefined;
  }

  /** Waits for the statement's record where it must be durable; what failed when it cannot be (then it cannot run). */
  private async recordFailure(rec: RecordedStatement | undefined): Promise<{ err: unknown } | undefined> {
    if (rec?.failed !== undefined) return this.goesOnUnrecorded(rec.failed) ? undefined : { err: rec.failed };
    if (rec?.durable && this.deps.durableBeforeForward) return rec.durable.then(() => undefined, (err: unknown) => (this.goesOnUnrecorded(err) ? undefined : { err }));
    return undefined;
  }

  /**
   * Whether a record that failed with `err` lets its statement run unrecorded: under `on_write_error:
   * continue`, when the store cannot be written (not a record refused on its own: too large, or
   * that cannot be encoded). The first time, the flow stops recording and the session logs it once.
   * Runs only when a record failed.
   */
  private goesOnUnrecorded(err: unknown): boolean {
    const onward = this.deps.continueUnrecorded;
    if (!onward || unrecordedReason(err) !== STORE_UNWRITABLE) return false;
    if (this.recorder) {
      this.recorder = undefined;
      onward(err);
    }
    return true;
  }

  // ---------------------------------------------------------------------------------------------
  // server → client

  private get masking(): boolean {
    const m = this.deps.masker;
    return m !== undefined && !m.inert;
  }

  /** Whether a DataRow must be seen whole (masked, captured, or the first row of an Execute). */
  private wantsRows(): boolean {
    const r = this.result;
    if (r) return r.aborted || r.plan?.active === true || r.capture?.wantsValues === true || r.capture?.wantsWire === true;
    return this.queue[0]?.k === 'execute' && (this.masking || this.recorder !== undefined);
  }

  private fromServer(code: number, buf: Buffer, start: number, end: number, out: OutputBatch): void | Promise<unknown> {
    if (this.failedUntilReady && code !== Backend.readyForQuery && code !== Backend.parameterStatus && code !== Backend.notificationResponse) {
      // After warden's error: the rest of the batch or Query is followed (names, DDL, transcript) but not sent.
      const sink = this.sink;
      const pending = this.dispatch(code, buf, start, end, sink);
      if (pending) return pending.then(() => sink.clear());
      sink.clear();
      return;
    }
    return this.dispatch(code, buf, start, end, out);
  }

  private dispatch(code: number, buf: Buffer, start: number, end: number, out: OutputBatch): void | Promise<unknown> {
    if (code === ROWS_SUMMARY && this.deps.wireReplay === true) return this.onRowsSummary(buf.subarray(start, end), out);
    switch (code) {
      case Backend.dataRow:
        if (!this.result && this.queue[0]?.k === 'execute') {
          // An Execute's rows come without a RowDescription: its result set starts here.
          const started = this.startExecuteResult(this.queue[0], out);
          if (started) return started.then(() => this.onDataRow(buf, start, end, out));
        }
        this.onDataRow(buf, start, end, out);
        return;
      case Backend.copyData:
        this.onCopyData(buf, start, end, out);
        return;
      case Backend.noticeResponse:
        if (!this.result?.aborted) {
          const sent = this.forwardScrubbed(buf, start, end, out);
          if (this.recorder) this.noteNotice(sent ?? (start === 0 && end === buf.length ? buf : buf.subarray(start, end)));
        }
        return;
      case Backend.notificationResponse:
        this.forwardScrubbed(buf, start, end, out, null);
        return;
      case Backend.parameterStatus: {
        const p = decodeParameterStatus(start === 0 && end === buf.length ? buf : buf.subarray(start, end));
        this.noteParameter(p.name, p.value);
        out.add(buf, start, end);
        return;
      }
      default: {
        const pending = this.onResponse(code, buf, start, end, out);
        // A refusal reported at a Flush is due as soon as what came before it is answered.
        if (pending) return pending.then(() => this.runSynthetic(out));
        this.runSynthetic(out);
        return;
      }
    }
  }

  /** Statement the current response answers (for scrubbing errors and notices), null for none. */
  private forwardScrubbed(buf: Buffer, start: number, end: number, out: OutputBatch, stmt: StatementInfo | null | undefined = this.currentStatement()): Buffer | undefined {
    const scrubbed = this.masking ? (this.deps.masker as SessionMasker).scrubMessage(buf, start, end, stmt) : undefined;
    if (scrubbed) out.push(scrubbed);
    else out.add(buf, start, end);
    return scrubbed;
  }

  /**
   * Keeps a notice (`msg`: as the client got it) for the result record of the statement it came
   * with: the one the server is answering. A notice between statements (none is running) belongs
   * to none, and is not recorded.
   */
  private noteNotice(msg: Buffer): void {
    const head = this.queue[0];
    const rec = head && (head.k === 'query' || head.k === 'execute') ? head.rec : undefined;
    if (!rec) return;
    if (this.noticesOf !== rec) {
      this.noticesOf = rec;
      this.notices = [];
      this.noticesDropped = 0;
    }
    const notices = this.notices as ResultNotice[];
    if (notices.length >= MAX_RESULT_NOTICES) {
      this.noticesDropped++;
      return;
    }
    try {
      const n = decodeNotice(msg);
      notices.push({ severity: n.severity, code: n.code, message: n.message });
    } catch {
      this.noticesDropped++; // forwarded as it came; the client decides what it makes of it
    }
  }

  /** The statement the response at the head of the queue belongs to, as masking should see it. */
  private currentStatement(): StatementInfo | undefined {
    const head = this.queue[0];
    if (!head) return undefined;
    switch (head.k) {
      case 'query':
        return this.resolved(head.statements?.[this.stmtIndex]);
      case 'execute':
        return this.resolved(head.portal?.stmt?.info ?? head.portal?.cursor);
      case 'parse':
        return head.stmt.info;
      case 'bind':
        return head.portal.stmt?.info;
      default:
        return undefined;
    }
  }

  /**
   * EXECUTE and FETCH return rows of a statement prepared or declared earlier in the session:
   * masking must see that statement (its lineage), not the EXECUTE.
   */
  private resolved(info: StatementInfo | undefined): StatementInfo | undefined {
    if (!info?.targetName) return info;
    if (info.kind === 'execute') return this.sqlPrepared.get(info.targetName) ?? info;
    if (info.kind === 'fetch') return this.cursors.get(info.targetName) ?? info;
    return info;
  }

  /**
   * Remembers a PREPARE or DECLARE CURSOR of a simple query once the server has completed it: one
   * it refused (the name in use: 42P05, 42P03) leaves the name meaning the statement the server
   * still holds. Noting it when sent let `PREPARE p AS SELECT 'a' AS x` after
   * `PREPARE p AS SELECT upper(ssn) AS x …` make `EXECUTE p` send SSNs in clear.
   */
  private notePrepared(st: StatementInfo | undefined): void {
    if (!st) return;
    // Forgetting is safe (EXECUTE or FETCH of an unknown name is fully redacted); keeping a name
    // the server has dropped and redefined (through the extended protocol) is not.
    // SQL and protocol-level prepared statements share one namespace (EXECUTE runs a Parse'd
    // statement, DEALLOCATE drops one, Bind uses a PREPAREd one).
    if (st.kind === 'deallocate') {
      forget(this.sqlPrepared, st.targetName);
      forget(this.statements, st.targetName);
    } else if (st.kind === 'close_cursor') {
      forget(this.cursors, st.targetName);
      forget(this.portals, st.targetName);
    } else if (st.nodeType === 'DiscardStmt') {
      for (const m of [this.sqlPrepared, this.cursors, this.statements, this.portals]) m.clear();
    }
    if (!st.targetName) return;
    if (st.kind === 'prepare') {
      this.sqlPrepared.set(st.targetName, st);
      this.statements.delete(st.targetName);
    } else if (st.kind === 'declare_cursor') {
      this.cursors.set(st.targetName, st);
      this.portals.delete(st.targetName); // a cursor is a portal
    }
  }

  private catalogChanged(): void {
    const m = this.deps.masker;
    if (!m) return;
    m.invalidate();
    this.catalogPending = m.ready?.().catch((err: unknown) => this.log.warn({ err: (err as Error).message }, 'catalog reload failed'));
  }

  private onDataRow(buf: Buffer, start: number, end: number, out: OutputBatch): void {
    const r = this.result;
    if (!r) {
      out.add(buf, start, end);
      return;
    }
    if (r.aborted) return;
    let wire: Buffer | undefined;
    if (r.plan?.active) {
      try {
        // Nothing here needs the row's bytes: the plan adds them to the output itself, without
        // a buffer per rewritten row.
        if (!r.capture && r.plan.forwardDataRow) return r.plan.forwardDataRow(buf, start, end, out);
        wire = r.plan.rewriteDataRow(buf, start, end);
      } catch (err) {
        this.maskingFailed(r, out, err);
        return;
      }
    }
    if (wire) out.push(wire);
    else out.add(buf, start, end);
    const cap = r.capture;
    if (cap) {
      const bytes = wire ?? buf.subarray(start, end);
      cap.add(bytes, cap.wantsValues ? rowValues(bytes, r.fields) : undefined);
    }
  }

  /** Rows a wire transcript did not keep (wire-encoder.ts): counted, and digested, as the DataRows they stand for. */
  private onRowsSummary(msg: Buffer, out: OutputBatch): void | Promise<unknown> {
    const summary = decodeRowsSummary(msg);
    if (!summary) throw new ProtocolError('invalid rows summary in a wire transcript', 0);
    if (!this.result && this.queue[0]?.k === 'execute') {
      // An Execute's rows come without a RowDescription: its result set starts with them.
      const started = this.startExecuteResult(this.queue[0], out);
      if (started) return started.then(() => this.result?.capture?.absorb(summary));
    }
    const r = this.result;
    if (r && !r.aborted) r.capture?.absorb(summary);
  }

  private onCopyData(buf: Buffer, start: number, end: number, out: OutputBatch): void {
    const r = this.result;
    if (r?.aborted) return;
    let wire: Buffer | undefined;
    if (r?.copy?.active) {
      try {
        if (r.copy.forwardCopyData) return r.copy.forwardCopyData(buf, start, end, out);
        wire = r.copy.rewriteCopyData(buf, start, end);
      } catch (err) {
        this.maskingFailed(r, out, err);
        return;
      }
    }
    if (wire) out.push(wire);
    else out.add(buf, start, end);
  }

  /** CopyData messages `buf[start, end)` back to back, from one socket read: masked in one call when the plan can. */
  private onCopyRun(buf: Buffer, start: number, end: number, out: OutputBatch): void {
    if (this.failedUntilReady) {
      // After warden's error: followed, not sent (as fromServer does for every other message).
      this.copyRun(buf, start, end, this.sink);
      this.sink.clear();
      return;
    }
    this.copyRun(buf, start, end, out);
  }

  private copyRun(buf: Buffer, start: number, end: number, out: OutputBatch): void {
    const r = this.result;
    if (r?.aborted) return;
    const run = r?.copy?.active ? r.copy.forwardCopyRun : undefined;
    if (r && run) {
      try {
        run(buf, start, end, out);
      } catch (err) {
        this.maskingFailed(r, out, err);
      }
      return;
    }
    for (let p = start; p < end; ) {
      const next = p + 1 + buf.readInt32BE(p + 1);
      this.onCopyData(buf, p, next, out);
      p = next;
    }
  }

  /** A value could not be masked safely (MaskingError): the result ends with an error. Anything else is rethrown. */
  private maskingFailed(r: ResultSet, out: OutputBatch, err: unknown): void {
    if (!(err instanceof MaskingError)) throw err;
    this.abortResult(r, out, denied(`masking rule "${err.rule}" could not mask a value: ${err.message}`));
  }

  /**
   * A masking failure mid-result: the client gets an error in place of the rest of the response;
   * nothing more of it reaches the client until ReadyForQuery.
   */
  private abortResult(r: ResultSet, out: OutputBatch, error: ErrorSpec): void {
    r.aborted = true;
    this.failedUntilReady = true;
    out.push(encodeErrorResponse(error));
    this.recordResult(r, undefined, { code: error.code, message: error.message });
  }

  private onResponse(code: number, buf: Buffer, start: number, end: number, out: OutputBatch): void | Promise<unknown> {
    this.runSynthetic(out);
    const head = this.queue[0];
    if (!head) {
      // Nothing expected (a response warden did not track): pass it on.
      out.add(buf, start, end);
      return;
    }
    const msg = (): Buffer => (start === 0 && end === buf.length ? buf : buf.subarray(start, end));
    const aborted = this.result?.aborted === true;
    switch (code) {
      case Backend.parseComplete:
      case Backend.bindComplete:
      case Backend.closeComplete:
        // A named statement made by Parse is no longer what an earlier PREPARE of that name was.
        if (head.k === 'parse' && head.stmt.name !== '') this.sqlPrepared.delete(head.stmt.name);
        if (head.k === 'bind' && head.portal.name !== '') this.cursors.delete(head.portal.name);
        this.queue.shift();
        if (!aborted) out.add(buf, start, end);
        return;
      case Backend.parameterDescription:
        if (head.k === 'describe-stmt' && head.stmt) head.stmt.paramTypes = decodeParameterDescription(msg());
        if (!aborted) out.add(buf, start, end);
        return;
      case Backend.noData:
        if (head.k === 'describe-stmt' && head.stmt) head.stmt.fields = null;
        if (head.k === 'describe-portal' && head.portal) head.portal.fields = null;
        this.queue.shift();
        if (!aborted && !(head.k === 'describe-portal' && head.hidden)) out.add(buf, start, end);
        return;
      case Backend.rowDescription:
        return this.onRowDescription(head, buf, start, end, out);
      case Backend.copyOutResponse:
      case Backend.copyBothResponse:
      case Backend.copyInResponse:
        return this.onCopyResponse(head, code, msg(), out);
      case Backend.commandComplete:
      case Backend.emptyQueryResponse:
      case Backend.portalSuspended: {
        const tag = code === Backend.commandComplete ? decodeCommandComplete(msg()) : undefined;
        if (head.k === 'execute') {
          if (!this.result) this.result = this.resultFor(head.rec, executeFields(head.portal) ?? [], undefined);
          if (code === Backend.commandComplete) this.notePrepared(head.portal?.stmt?.info);
          this.queue.shift();
        } else if (head.k === 'query' && !this.result && code === Backend.commandComplete) {
          // A command without rows (INSERT, CREATE …): its result is the tag and the row count.
          this.result = this.resultFor(head.rec, [], undefined);
        }
        this.endResult(tag, undefined);
        if (head.k === 'query') {
          if (head.ddl || isDdlTag(tag)) {
            this.catalogChanged();
            // A lone statement outside a transaction block is committed before its CommandComplete.
            if (!this.txIdle || head.statements?.length !== 1) this.catalogDirty = true;
          }
          if (code === Backend.commandComplete) this.notePrepared(head.statements?.[this.stmtIndex]);
          this.stmtIndex++;
        } else if (head.k === 'execute' && (isDdlTag(tag) || (head.portal?.stmt && changesCatalog(head.portal.stmt.classification)))) {
          this.catalogDirty = true;
        }
        if (!aborted) out.add(buf, start, end);
        return;
      }
      case Backend.copyDone:
        if (!aborted) out.add(buf, start, end);
        return;
      case Backend.errorResponse:
        this.onError(head, buf, start, end, out);
        return;
      case Backend.readyForQuery:
        this.onReady(head, buf, start, end, out);
        return;
      default:
        if (!aborted) out.add(buf, start, end);
    }
  }

  /** Emits refusal errors that have become due (every response before them has been relayed). */
  private runSynthetic(out: OutputBatch): void {
    for (;;) {
      const head = this.queue[0];
      if (!head || head.k !== 'refused') return;
      this.queue.shift();
      out.push(encodeErrorResponse(head.error));
      if (head.rec) this.recordResult(this.resultFor(head.rec, [], undefined), undefined, { code: head.error.code, message: head.error.message });
    }
  }

  private resultFor(rec: RecordedStatement | undefined, fields: readonly FieldDescription[], plan: RowMaskPlan | undefined): ResultSet {
    // Per statement: one extended batch may answer several (pgJDBC sends BEGIN with the query).
    if (rec !== this.setsOf) {
      this.setsOf = rec;
      this.resultSets = 0;
    }
    this.resultSets++;
    const capture = this.recorder && rec ? new RowCapture(this.deps.capture) : undefined;
    return { rec, fields, plan, copy: undefined, capture, set: this.resultSets, aborted: false };
  }

  private onRowDescription(head: Expect, buf: Buffer, start: number, end: number, out: OutputBatch): void | Promise<unknown> {
    // Columns matter to masking and transcripts only; statement rules alone never read them.
    const fields = this.masking || this.recorder ? this.rowDescriptions.decode(buf, start, end) : NO_FIELDS;
    if (head.k === 'describe-stmt') {
      if (head.stmt) head.stmt.fields = fields;
      this.queue.shift();
      out.add(buf, start, end);
      return;
    }
    if (head.k === 'describe-portal') {
      if (head.portal) {
        head.portal.fields = fields;
        // Clients that describe a portal once and then re-execute the statement without
        // describing again (pgJDBC) rely on this description: keep it on the statement too
        // (later portals apply their own Bind formats to it).
        if (head.portal.stmt && head.portal.stmt.fields === undefined) head.portal.stmt.fields = fields;
      }
      this.queue.shift();
      if (!head.hidden) out.add(buf, start, end);
      return;
    }
    if (head.k !== 'query') {
      out.add(buf, start, end);
      return;
    }
    if (this.result?.aborted) return;
    if (!this.masking) {
      // Nothing to plan: what beginResult does, without its callbacks, for every result.
      this.result = this.resultFor(head.rec, fields, undefined);
      out.add(buf, start, end);
      return;
    }
    return this.beginResult(head.rec, fields, this.resolved(head.statements?.[this.stmtIndex]), out, () => out.add(buf, start, end));
  }

  /** Starts a result set: builds the masking plan (maybe async), then forwards `first` (its RowDescription). */
  private beginResult(
    rec: RecordedStatement | undefined,
    fields: readonly FieldDescription[],
    stmt: StatementInfo | undefined,
    out: OutputBatch,
    first: (() => void) | undefined,
  ): void | Promise<unknown> {
    const start = (plan: RowMaskPlan | undefined): void => {
      const r = this.resultFor(rec, fields, plan);
      this.result = r;
      if (plan?.refuse) {
        this.abortResult(r, out, denied(`masking rule "${plan.refuse.rule}": ${plan.refuse.message}`));
        return;
      }
      first?.();
    };
    if (!this.masking) {
      start(undefined);
      return;
    }
    let planned: RowMaskPlan | Promise<RowMaskPlan>;
    try {
      planned = (this.deps.masker as SessionMasker).plan(fields, stmt);
    } catch (err) {
      planned = Promise.reject(err);
    }
    if (!(planned instanceof Promise)) {
      start(planned);
      return;
    }
    return planned.then(start, (err: unknown) => {
      this.log.warn({ err: (err as Error).message }, 'masking plan failed; refusing the result');
      start(refusedPlan(fields, 'cannot resolve where the result columns come from'));
    });
  }

  /** The first DataRow of an Execute starts its result set, described by the portal. */
  private startExecuteResult(head: Extract<Expect, { k: 'execute' }>, out: OutputBatch): Promise<unknown> | undefined {
    const fields = executeFields(head.portal);
    if (!fields) {
      const r = this.resultFor(head.rec, [], undefined);
      this.result = r;
      // Rows whose columns warden cannot identify are not sent when masking applies (fail closed).
      if (this.masking) this.abortResult(r, out, denied('warden cannot identify the columns of this result; describe the statement before executing it'));
      return undefined;
    }
    const p = this.beginResult(head.rec, fields, this.resolved(head.portal?.stmt?.info ?? head.portal?.cursor), out, undefined);
    return p instanceof Promise ? p : undefined;
  }

  private onCopyResponse(head: Expect, code: number, msg: Buffer, out: OutputBatch): void | Promise<unknown> {
    if (this.result?.aborted) return;
    const rec = head.k === 'query' || head.k === 'execute' ? head.rec : undefined;
    const stmt = this.resolved(head.k === 'query' ? head.statements?.[this.stmtIndex] : head.k === 'execute' ? head.portal?.stmt?.info : undefined);
    const copy = decodeCopyResponse(msg);
    const r = this.resultFor(rec, copyColumns(copy), undefined);
    this.result = r;
    if (code !== Backend.copyOutResponse || !this.masking) {
      out.push(msg);
      return;
    }
    const start = (plan: CopyMaskPlan): void => {
      r.copy = plan;
      if (plan.refuse) {
        this.abortResult(r, out, denied(`masking rule "${plan.refuse.rule}": ${plan.refuse.message}`));
        return;
      }
      out.push(msg);
    };
    let planned: CopyMaskPlan | Promise<CopyMaskPlan>;
    try {
      planned = (this.deps.masker as SessionMasker).copyPlan(copy, stmt);
    } catch (err) {
      planned = Promise.reject(err);
    }
    if (!(planned instanceof Promise)) {
      start(planned);
      return;
    }
    return planned.then(start, (err: unknown) => {
      this.log.warn({ err: (err as Error).message }, 'COPY masking plan failed; refusing the data');
      start({ active: false, columns: [], refuse: { rule: 'catalog', message: 'cannot resolve where the copied columns come from' }, rewriteCopyData: () => undefined });
    });
  }

  private endResult(tag: string | undefined, error: { code: string; message: string } | undefined): void {
    const r = this.result;
    this.result = undefined;
    if (!r || r.aborted) return;
    this.recordResult(r, tag, error);
  }

  private recordResult(r: ResultSet, tag: string | undefined, error: { code: string; message: string } | undefined): void {
    const rec = r.rec;
    const recorder = this.recorder;
    if (!recorder || !rec) return;
    const columns = resultColumns(r.fields, r.plan, r.copy);
    const capture = r.capture?.finish() ?? { mode: 'none' as const };
    const rows = r.capture && r.capture.rows > 0 ? r.capture.rows : tag ? (commandTagRows(tag) ?? 0) : 0;
    const info: ResultInfo = { statementId: rec.id, columns, rows, bytes: r.capture?.bytes ?? 0, capture };
    if (tag) info.tag = tag;
    if (error) info.error = error;
    if (r.set > 1) info.set = r.set;
    if (this.noticesOf !== undefined) {
      // Notices of this statement so far go with this result; any others were of a statement
      // whose result was not recorded.
      if (this.noticesOf === rec) {
        info.notices = this.notices as ResultNotice[];
        if (this.noticesDropped > 0) info.noticesDropped = this.noticesDropped;
      }
      this.noticesOf = undefined;
      this.notices = undefined;
      this.noticesDropped = 0;
    }
    // Nobody waits for a result's record: a write that fails makes the store unhealthy.
    try {
      recorder.resultNoWait(info);
    } catch (err) {
      this.logWriteFailure(err);
    }
  }

  private onError(head: Expect, buf: Buffer, start: number, end: number, out: OutputBatch): void {
    if (head.k === 'fail-query') {
      // The server's error for warden's internal statement: replaced by warden's, or swallowed.
      if (head.error) {
        out.push(encodeErrorResponse(head.error));
        if (head.rec) this.recordResult(this.resultFor(head.rec, [], undefined), undefined, { code: head.error.code, message: head.error.message });
      }
      return;
    }
    const stmt = this.currentStatement();
    const r = this.result;
    this.result = undefined;
    // The transcript records the error the agent gets: scrubbed of protected values.
    const scrubbed = this.masking ? (this.deps.masker as SessionMasker).scrubMessage(buf, start, end, stmt) : undefined;
    const notice = decodeNotice(scrubbed ?? (start === 0 && end === buf.length ? buf : buf.subarray(start, end)));
    const err = { code: notice.code, message: notice.message };
    if (r && !r.aborted) this.recordResult(r, undefined, err);
    else if (!r && (head.k === 'query' || head.k === 'execute') && head.rec) this.recordResult(this.resultFor(head.rec, [], undefined), undefined, err);
    if (EXTENDED.has(head.k)) {
      // PostgreSQL skips the rest of the batch until Sync: so do the expectations.
      const dropped: Expect[] = [];
      while (this.queue[0] && EXTENDED.has(this.queue[0].k)) dropped.push(this.queue.shift()!);
      if (head.k === 'parse' || head.k === 'bind' || head.k === 'describe-stmt' || head.k === 'describe-portal') {
        // The error came before the batch's next Execute ran (a parameter the server cannot read,
        // 1/0 folded when planned at Bind): that statement failed with it, as its record says.
        const next = dropped.find((e) => e.k === 'execute');
        if (next?.k === 'execute' && next.rec) this.recordResult(this.resultFor(next.rec, [], undefined), undefined, err);
      }
      for (let i = dropped.length - 1; i >= 0; i--) this.undo(dropped[i]!, i === 0);
    }
    if (r?.aborted) return;
    if (scrubbed) out.push(scrubbed);
    else out.add(buf, start, end);
  }

  /**
   * A Parse or Bind the server failed (`failed`, the head of the batch) or skipped created
   * nothing: its name means what it meant before. Without this, a second Parse of a name the
   * server still holds (42P05 "prepared statement already exists") would leave warden judging
   * and masking the server's first statement (`upper(ssn)`) as the rejected second one
   * (`'a' AS x`), and a named portal likewise. A failed unnamed one is dropped by the server.
   */
  private undo(e: Expect, failed: boolean): void {
    if (e.k === 'parse') restore(this.statements, e.stmt.name, e.stmt, failed && e.stmt.name === '' ? undefined : e.previous);
    else if (e.k === 'bind') restore(this.portals, e.portal.name, e.portal, failed && e.portal.name === '' ? undefined : e.previous);
  }

  private onReady(head: Expect, buf: Buffer, start: number, end: number, out: OutputBatch): void {
    if (head.k === 'fail-query' && head.silent) {
      // warden's own statement failing a block (failBlock): the client did not ask, nor hears of it.
      this.queue.shift();
      return;
    }
    if (this.failedUntilReady) {
      this.failedUntilReady = false;
      if (end - start >= 6 && buf[start + 5] === TransactionStatus.inTransaction) {
        // PostgreSQL fails the block after an error: the client hears 'E', and the block is failed
        // upstream before its next message goes there (COMMIT then rolls back, as it would have).
        this.failBlock = true;
        this.txIdle = false;
        this.result = undefined;
        this.stmtIndex = 0;
        this.resultSets = 0;
        this.queue.shift();
        out.push(FAILED_BLOCK_READY);
        this.runSynthetic(out);
        return;
      }
    }
    // Any change of standard_conforming_strings or client_encoding came just before (noteParameter).
    if (this.lexingUnsettled?.until === head) this.lexingUnsettled = undefined;
    this.txIdle = end - start >= 6 && buf[start + 5] === TX_IDLE;
    if (this.catalogDirty && this.txIdle) {
      this.catalogDirty = false;
      this.catalogChanged();
    }
    this.result = undefined;
    this.stmtIndex = 0;
    this.resultSets = 0;
    this.queue.shift();
    out.add(buf, start, end);
    this.runSynthetic(out);
  }
}

/** The columns of an Execute's rows: the portal's description, or its statement's with the Bind formats. */
function executeFields(portal: Portal | undefined): readonly FieldDescription[] | undefined {
  if (!portal) return undefined;
  if (portal.fields) return portal.fields;
  if (portal.fields === null || portal.stmt?.fields === null) return [];
  return portal.stmt?.fields ? withFormats(portal.stmt.fields, portal.resultFormats) : undefined;
}

/**
 * The columns of a COPY for its result record. The protocol names no columns and no types, only
 * how many there are: they are listed by position, so each can carry the masking rule applied to it.
 */
function copyColumns(copy: CopyResponse): FieldDescription[] {
  return copy.columnFormats.map((format, i) => ({ name: `column ${i + 1}`, tableOid: 0, columnAttr: 0, typeOid: 0, typeSize: -1, typeModifier: -1, format }));
}

function refusedPlan(fields: readonly FieldDescription[], message: string): RowMaskPlan {
  return { active: false, columns: fields.map(() => null), refuse: { rule: 'catalog', message }, rewriteDataRow: () => undefined };
}

const NO_FIELDS: readonly FieldDescription[] = Object.freeze([]);

/**
 * A Query or Parse whose content is malformed (a NUL inside the statement text, as a client sends
 * for a string holding \u0000): PostgreSQL answers ERROR 08P01 and the session goes on; so does warden.
 */
const FAST_PATH_UNCLASSIFIED: Classification = { ok: false, error: 'a fast-path function call names its function by OID' };
const INVALID_MESSAGE: ErrorSpec = { severity: 'ERROR', code: '08P01', message: 'invalid message format' };

function decodeOrNull<T>(decode: (msg: Buffer) => T, msg: Buffer): T | null {
  try {
    return decode(msg);
  } catch (err) {
    if (err instanceof ProtocolError) return null;
    throw err;
  }
}

/** A command tag of DDL: the masking catalog must be read again. */
function isDdlTag(tag: string | undefined): boolean {
  return tag !== undefined && /^(CREATE|ALTER|DROP)/.test(tag);
}

/** ReadyForQuery's transaction status 'I': not in a transaction block. */
const TX_IDLE = 0x49;
const FAILED_BLOCK_READY = encodeReadyForQuery(TransactionStatus.failed);

/** RowDescription fields with the formats a Bind asked for. */
export function withFormats(fields: readonly FieldDescription[], resultFormats: readonly number[]): FieldDescription[] {
  return fields.map((f, i) => ({ ...f, format: formatAt(resultFormats, i) }));
}

/** A DataRow's values as text for the transcript (binary values as hex). */
function rowValues(msg: Buffer, fields: readonly FieldDescription[]): (string | null)[] {
  const n = msg.readInt16BE(5);
  const out: (string | null)[] = [];
  let p = 7;
  for (let i = 0; i < n; i++) {
    const len = msg.readInt32BE(p);
    p += 4;
    if (len < 0) {
      out.push(null);
      continue;
    }
    out.push(fields[i]?.format === 1 ? `\\x${msg.toString('hex', p, p + len)}` : msg.toString('utf8', p, p + len));
    p += len;
  }
  return out;
}

/** Bind parameters for an approval request: those cut for display are marked, with their whole size and a digest. */
function heldParams(values: readonly (string | null)[], fullBytes: readonly (number | undefined)[], raw: readonly (Buffer | null)[]): (string | null)[] {
  return values.map((v, i) => {
    const full = fullBytes[i];
    const whole = raw[i];
    return v === null || full === undefined || !whole ? v : cutForApprovers(v, whole, full);
  });
}

/**
 * The prepared statement a statement runs: EXECUTE name, and EXPLAIN [ANALYZE] EXECUTE name or
 * CREATE TABLE … AS EXECUTE name, which run it too (EXPLAIN without ANALYZE does not, but is
 * judged alike: fail closed).
 */
function executedName(st: StatementInfo): string | undefined {
  if (st.kind === 'execute') return st.targetName;
  if (st.nodeType !== 'ExplainStmt' && st.nodeType !== 'CreateTableAsStmt') return undefined;
  const query = unwrap(unwrap(st.tree)?.body.query);
  return query?.tag === 'ExecuteStmt' && typeof query.body.name === 'string' ? query.body.name : undefined;
}

/** Puts `previous` back under `name` (or removes the name) if `current` is still what it holds. */
function restore<T>(map: Map<string, T>, name: string, current: T, previous: T | undefined): void {
  if (map.get(name) !== current) return;
  if (previous) map.set(name, previous);
  else map.delete(name);
}

/** Drops `name` from the map, or every name when there is none (DEALLOCATE ALL, CLOSE ALL). */
function forget(map: Map<string, unknown>, name: string | undefined): void {
  if (name) map.delete(name);
  else map.clear();
}

/** The refusal of a statement whose record could not be written (fail closed). */
function unrecordedRefusal(err: unknown): ErrorSpec {
  return denied(`statement refused by warden policy rule "transcripts": ${unrecordedReason(err)}`);
}
