// The statement flow of one TDS session, in the gate order of the design card:
//
//   client → target:  decode → classify → verdict (allow | deny | hold) → record → forward
//   target → client:  match each token to its request and statement → record → forward
//
// It is the TdsFlowHandler the relay calls. TDS answers one request at a time, so responses are
// matched to requests with a FIFO of forwarded requests; within an RPC request of several calls,
// each DONEPROC ends one call. Result sets (COLMETADATA … DONE), row counts and errors are
// recorded per statement.
//
// A `hold` verdict goes through the approval service as on PostgreSQL (src/approvals/holding.ts):
// a grant lets it run at once; otherwise the client gets, at once, the start of the response — an
// INFO (50000, class 10) naming the request and where to decide — and waits. Approved: the
// request is forwarded and the target's response continues that message. Denied, expired or
// withdrawn: an ERROR 229 (class 14) with the request id and reason ends it, and the session goes
// on. Nothing reached the target, so an open transaction stays as it was — what SQL Server does
// with a permission error when XACT_ABORT is off (see docs/sqlserver.md). ATTENTION while held
// withdraws the request (the relay acknowledges it); a disconnect withdraws it too (close()).
import {
  decodeToken,
  DONE_STATUS,
  TOKEN,
  type ColumnMetadata,
  type DoneToken,
  type ParsedToken,
  type ReturnValueToken,
  type Value,
} from '../../protocols/tds/index.js';
import { buildHoldRequest } from '../approvals/fingerprint.js';
import { decisionRecord, heldText, oneLine, outcomeText, PendingHold, seekApproval, unheldText, type HoldResult } from '../approvals/holding.js';
import type { ApprovalService, Hold, HoldOutcome, PolicyContext, StatementPolicy, StatementVerdict } from '../approvals/types.js';
import type { CapturePolicy } from '../audit/config.js';
import { STORE_UNWRITABLE, unrecordedReason } from '../audit/errors.js';
import { recordStatement, RowCapture, type Recorder, type StatementGate } from '../audit/recorder.js';
import { MAX_RESULT_NOTICES, type ResultColumn, type ResultNotice } from '../audit/types.js';
import type { Principal } from '../identity/types.js';
import type { Logger } from '../log.js';
import { ALLOW, decide, summarize } from '../pg/flow/verdicts.js';
import type { Classification } from '../sql/types.js';
import { displayValue, sqlTypeName } from './display.js';
import { errorMessage, messageEnd, messageStart, notice, statementDenied, statementRefused, type TdsErrorSpec } from './errors.js';
import type { RequestOutcome, TdsFlowHandler, TdsRequest } from './relay.js';
import { describeRequest, handleKey, validateRequest, type PreparedStatement, type RequestStatement } from './requests.js';

export interface TdsFlowDeps {
  sessionId: string;
  principal: Principal;
  target: string;
  clientAddress: string;
  instanceId: string;
  logger: Logger;
  policy: StatementPolicy | undefined;
  approvals: ApprovalService | undefined;
  recorder: Recorder | undefined;
  capture: CapturePolicy;
  /** fsync `each`: a statement's record must be durable before the statement is forwarded. */
  durableBeforeForward: boolean;
  /** False while transcripts cannot be written and the policy says to refuse statements then. */
  recordingHealthy(): boolean;
  /**
   * `on_write_error: continue`: called once when a record fails because the store cannot be
   * written; the session then goes on unrecorded (the flow records nothing more and refuses
   * nothing because of the store). Absent (`refuse`): such a request is refused.
   */
  continueUnrecorded?(err: unknown): void;
  /** The negotiated TDS version (from LOGINACK). */
  tdsVersion: number;
  /** Packet size and SPID for warden's own answers. */
  answerOptions(requestType: number): { tdsVersion: number; packetSize: number; spid: number; done: 'DONE' | 'DONEPROC' };
  maxValueLength: number;
  onQuery(): void;
  onVerdict(action: 'allow' | 'deny' | 'hold' | 'grant'): void;
  onAttention(): void;
}

/** A statement's transcript id, and what forwarding it waits on (see StatementGate). */
interface Recorded extends StatementGate {
  id: number;
}

/** A forwarded request whose response is coming. */
interface InFlight {
  statements: RequestStatement[];
  recs: (Recorded | undefined)[];
  /** Which statement (RPC call) the response is at. */
  at: number;
  /** Result sets recorded so far for the statement (RPC call) the response is at. */
  sets: number;
  /** The RETURNVALUEs (output parameters) of the call the response is at, recorded at its DONEPROC. */
  returns?: { token: ReturnValueToken; bytes: Buffer }[] | undefined;
}

interface OpenResult {
  columns: readonly ColumnMetadata[];
  capture: RowCapture | undefined;
  rows: number;
}

const DONE_CODES: ReadonlySet<number> = new Set([TOKEN.DONE, TOKEN.DONEPROC, TOKEN.DONEINPROC]);

export class TdsStatementFlow implements TdsFlowHandler {
  private readonly ctx: PolicyContext;
  private readonly inFlight: InFlight[] = [];
  /** Prepared handles by handleKey(): what each sp_execute / sp_cursorexecute runs. */
  private readonly prepared = new Map<string, PreparedStatement>();
  private result: OpenResult | undefined;
  private error: { code: string; message: string } | undefined;
  /** INFO messages (PRINT, RAISERROR below class 11) of the result being read, for its record; and how many more. */
  private notices: ResultNotice[] | undefined;
  private noticesDropped = 0;
  private recorded = 0;
  private bulkAllowed = false;
  /** The INSERT BULK whose BULK_LOAD may follow: the rows the load inserts are recorded as its result. */
  private bulkFlight: InFlight | undefined;
  /** The request held for approval, withdrawn on ATTENTION or when the session ends. */
  private holding: PendingHold | undefined;
  private holdEnded: Promise<unknown> | undefined;
  private readonly log: Logger;
  /** The session's recorder; dropped when the store fails under `on_write_error: continue`. */
  private recorder: Recorder | undefined;
  private readonly logWriteFailure = (err: unknown): void => {
    if (!this.goesOnUnrecorded(err)) this.log.error({ err: (err as Error).message }, 'transcript write failed');
  };

  constructor(private readonly deps: TdsFlowDeps) {
    this.ctx = { principal: deps.principal, target: deps.target, protocol: 'tds' };
    this.log = deps.logger;
    this.recorder = deps.recorder;
  }

  /**
   * Whether a record that failed with `err` lets its request run unrecorded: under `on_write_error:
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

  // client → target ------------------------------------------------------------------------------

  onRequest(req: TdsRequest, out: RequestOutcome): void | Promise<unknown> {
    this.deps.onQuery();
    this.bulkAllowed = false;
    this.bulkFlight = undefined;
    // RESETCONNECTION drops the connection's prepared handles before the request runs
    // ([MS-TDS] 2.2.3.1.2): an sp_execute of an old handle then names nothing warden knows.
    if (req.resetConnection) this.prepared.clear();
    const statements = describeRequest(req.type, req.payload, { tdsVersion: this.deps.tdsVersion, maxValueLength: this.deps.maxValueLength, prepared: this.prepared });
    const cls = combine(statements.map((s) => s.classification));
    let verdict = this.verdictFor(cls);
    if (verdict.action === 'hold' && statements.every((s) => s.preparesOnly)) {
      // Preparing runs nothing: as a PostgreSQL Parse, the statement is held each time its handle
      // is executed (sp_execute is judged as the prepared text), so approvers decide once, on what runs.
      verdict = ALLOW;
    }
    if (verdict.action === 'allow') {
      this.deps.onVerdict('allow');
      return this.forward(statements, statements.map((s) => this.record(s, verdict)), cls, req.type, out);
    }
    if (verdict.action === 'hold') {
      const held = this.hold(req.type, statements, cls, verdict, out);
      this.holdEnded = held.catch(() => undefined);
      return held;
    }
    this.deps.onVerdict('deny');
    const spec = verdict.rule === 'transcripts' ? statementRefused(verdict.reason) : statementDenied(`statement refused by warden policy rule "${verdict.rule}": ${verdict.reason}`);
    this.refuse(statements.map((s) => this.record(s, verdict)), spec, req.type, out);
  }

  /**
   * Forwards the request once its records are durable where they must be (gate order: record →
   * forward). A request whose records cannot be written is refused (fail closed); the session goes on.
   * Under `on_write_error: continue`, a store that cannot be written lets it run unrecorded instead.
   */
  private forward(statements: RequestStatement[], recs: (Recorded | undefined)[], cls: Classification, requestType: number, out: RequestOutcome): void | Promise<unknown> {
    for (const s of statements) if (s.unprepares !== undefined) this.prepared.delete(s.unprepares);
    const forward = (): void => {
      out.forward();
      const flight: InFlight = { statements, recs, at: 0, sets: 0 };
      this.inFlight.push(flight);
      // INSERT BULK: the client's BULK_LOAD message follows the response.
      this.bulkAllowed = cls.ok && cls.statements.some((s) => s.commandTag === 'INSERT BULK');
      this.bulkFlight = this.bulkAllowed ? flight : undefined;
    };
    const unrecorded = (err: unknown): void => (this.goesOnUnrecorded(err) ? forward() : this.refuse([], statementRefused(unrecordedReason(err)), requestType, out));
    const failed = recs.find((r) => r?.failed !== undefined);
    if (failed) return unrecorded(failed.failed);
    const durable = recs.map((r) => r?.durable).filter((p): p is Promise<unknown> => p !== undefined);
    if (!this.deps.durableBeforeForward || durable.length === 0) {
      forward();
      return;
    }
    return Promise.all(durable).then(forward, unrecorded);
  }

  /** Answers the request with warden's error instead of forwarding it; each statement's result records it. */
  private refuse(recs: (Recorded | undefined)[], spec: TdsErrorSpec, requestType: number, out: RequestOutcome): void {
    for (const r of recs) if (r) this.recordResult(r, [], 0, { mode: 'none' }, undefined, { code: String(spec.number), message: spec.message }, 1);
    out.respond(errorMessage([spec], this.deps.answerOptions(requestType)));
  }

  /** A request a rule holds for approval: a grant, or the approvers' decision, lets it through. */
  private async hold(requestType: number, statements: RequestStatement[], cls: Classification, verdict: Exclude<StatementVerdict, { action: 'allow' }>, out: RequestOutcome): Promise<unknown> {
    const params = statements.flatMap((s) => s.heldParams ?? (s.params ?? []).map((p) => p.value));
    const request = buildHoldRequest({
      ctx: this.ctx,
      sessionId: this.deps.sessionId,
      instanceId: this.deps.instanceId,
      clientAddress: this.deps.clientAddress,
      sql: statements.map((s) => s.text).join('\n'),
      classification: cls,
      verdict,
      ...(params.length > 0 ? { params } : {}),
    });
    const answer = this.deps.answerOptions(requestType);
    let recs: (Recorded | undefined)[] = [];
    // From here on a disconnect withdraws the request, even one that arrives before it is stored.
    const holding = new PendingHold();
    this.holding = holding;
    let result: HoldResult;
    try {
      result = await seekApproval(this.deps.approvals, request, this.log, (hold) => {
        this.deps.onVerdict('hold');
        recs = statements.map((s) => this.record(s, verdict, { requestId: hold.id }));
        out.begin(messageStart([notice(oneLine(heldText(hold, verdict)))], answer));
        holding.stored(hold);
      });
    } finally {
      this.holding = undefined;
    }
    switch (result.kind) {
      case 'refused':
        // Holding needs the approval service and its store: without them the request is refused (fail closed).
        this.deps.onVerdict('deny');
        this.refuse(statements.map((s) => this.record(s, verdict)), statementRefused(oneLine(unheldText(verdict.rule, result.why))), requestType, out);
        return;
      case 'grant': {
        this.deps.onVerdict('grant');
        const allowed: StatementVerdict = { action: 'allow', rule: verdict.rule };
        return this.forward(statements, statements.map((s) => this.record(s, allowed, { requestId: `grant:${result.grant.id}` })), cls, requestType, out);
      }
      case 'decided': {
        const { hold, outcome } = result;
        const decisionFailed = await this.recordDecision(recs, hold.id, outcome);
        if (holding.cancelled) {
          // ATTENTION while held: the response ends here; the relay acknowledges the attention.
          for (const r of recs) if (r) this.recordResult(r, [], 0, { mode: 'none' }, 'DONE ATTN', undefined, 1);
          out.respond(messageEnd(answer));
          return;
        }
        if (outcome.decision === 'approved') {
          // The decision's record must exist before the request runs, and the store must still be writable.
          const failed = decisionFailed ?? (this.deps.recordingHealthy() ? undefined : { err: undefined });
          if (failed) this.refuse([], statementRefused(unrecordedReason(failed.err)), requestType, out);
          else return this.forward(statements, recs, cls, requestType, out);
          return;
        }
        const words = oneLine(outcomeText(hold.id, outcome));
        this.refuse(recs, outcome.decision === 'error' ? statementRefused(words) : statementDenied(words), requestType, out);
        return;
      }
    }
  }

  /** Records the approvers' decision; under fsync `each`, what failed when it could not be written. */
  private async recordDecision(recs: (Recorded | undefined)[], requestId: string, outcome: HoldOutcome): Promise<{ err: unknown } | undefined> {
    const r = this.recorder;
    if (!r) return undefined;
    // Appended now, so the transcript reads statement → decision → result whatever comes next.
    const all = Promise.all(recs.map((rec) => (rec ? r.statementDecision(decisionRecord(rec.id, requestId, outcome)) : undefined)));
    const failed = all.then(
      () => undefined,
      (err: unknown) => {
        if (this.goesOnUnrecorded(err)) return undefined;
        this.log.error({ err: (err as Error).message }, 'transcript write failed');
        return { err };
      },
    );
    return this.deps.durableBeforeForward ? failed : undefined;
  }

  onAttention(): void {
    this.deps.onAttention();
    const holding = this.holding;
    if (holding) {
      holding.cancelled = true;
      holding.withdraw('cancelled');
    }
    this.recorder?.event({ kind: 'cancel', message: holding?.hold ? `ATTENTION while held (request ${holding.hold.id})` : 'ATTENTION' }).catch(this.logWriteFailure);
  }

  /** The session is ending: a held request is withdrawn (it never ran). True when one was held. */
  close(reason: 'disconnected' | 'session-ended' | 'token-expired'): boolean {
    if (!this.holding) return false;
    this.holding.withdraw(reason);
    return true;
  }

  /** Resolves once the last held request has ended and its decision and result are recorded. */
  holdSettled(): Promise<unknown> {
    return this.holdEnded ?? Promise.resolve();
  }

  bulkLoadAllowed(): boolean {
    if (!this.bulkAllowed) return false;
    this.bulkAllowed = false;
    // The load's answer (DONE with the count) is one more result of the INSERT BULK's statement.
    this.inFlight.push(this.bulkFlight ?? { statements: [], recs: [], at: 0, sets: 0 });
    this.bulkFlight = undefined;
    return true;
  }

  private verdictFor(cls: Classification): StatementVerdict {
    if (!this.deps.recordingHealthy()) {
      return { action: 'deny', rule: 'transcripts', reason: STORE_UNWRITABLE };
    }
    return decide(this.ctx, cls, this.deps.policy, undefined);
  }

  private record(s: RequestStatement, verdict: StatementVerdict, approval?: { requestId: string }): Recorded | undefined {
    const r = this.recorder;
    if (!r) return undefined;
    const info = {
      text: s.text,
      classification: summarize(s.classification),
      verdict: verdict.action,
      ...(verdict.action !== 'allow' ? { rule: verdict.rule, reason: verdict.reason } : verdict.rule ? { rule: verdict.rule } : {}),
      via: s.via,
      ...(s.name ? { name: s.name } : {}),
      ...(s.params && s.params.length > 0 ? { params: s.params } : {}),
      ...(approval ? { approval } : {}),
    };
    // The recorder numbers statements from 1 in call order; this flow is its only caller.
    const rec: Recorded = { id: ++this.recorded, durable: undefined };
    recordStatement(rec, r, info, this.deps.durableBeforeForward, this.logWriteFailure);
    return rec;
  }

  // target → client ------------------------------------------------------------------------------

  /** No row is rewritten on TDS sessions yet (masking rules do not apply to them). */
  rewriting(): boolean {
    return false;
  }

  onToken(t: ParsedToken): void {
    const cur = this.inFlight[0];
    if (!cur) return; // an attention's answer, or nothing warden forwarded
    switch (t.code) {
      case TOKEN.COLMETADATA:
        if (t.token?.kind === 'COLMETADATA' && t.token.columns !== null) {
          this.endResult(cur, undefined);
          this.result = { columns: t.token.columns, capture: this.recorder ? new RowCapture(this.deps.capture) : undefined, rows: 0 };
        }
        return;
      case TOKEN.ROW:
      case TOKEN.NBCROW: {
        const r = this.result;
        if (!r) return;
        r.rows++;
        const cap = r.capture;
        if (cap) cap.add(t.bytes, cap.wantsValues ? this.rowValues(t) : undefined);
        return;
      }
      case TOKEN.ERROR:
        if (t.token?.kind === 'ERROR' && t.token.class > 10) this.error ??= { code: String(t.token.number), message: t.token.message };
        return;
      case TOKEN.INFO:
        if (this.recorder && t.token?.kind === 'INFO') {
          const notices = (this.notices ??= []);
          if (notices.length < MAX_RESULT_NOTICES) notices.push({ severity: 'INFO', code: String(t.token.number), message: t.token.message });
          else this.noticesDropped++;
        }
        return;
      case TOKEN.RETURNVALUE: {
        if (t.token?.kind === 'RETURNVALUE') (cur.returns ??= []).push({ token: t.token, bytes: t.bytes });
        // Only the handle parameter (ordinal 0 of sp_prepare, sp_prepexec, sp_cursorprepare and
        // sp_cursorprepexec) names a prepared statement: the statement's own OUTPUT parameters
        // come back in RETURNVALUEs too, and their values are whatever the client chose.
        const s = cur.statements[cur.at];
        const v = t.token?.kind === 'RETURNVALUE' ? t.token : undefined;
        if (s?.prepares && v && v.ordinal === 0 && (typeof v.value === 'number' || typeof v.value === 'bigint')) {
          this.prepared.set(handleKey(s.prepares, Number(v.value)), { text: s.text, classification: s.classification });
        }
        return;
      }
      default:
        if (DONE_CODES.has(t.code) && t.token && (t.token.kind === 'DONE' || t.token.kind === 'DONEPROC' || t.token.kind === 'DONEINPROC')) this.onDone(cur, t.token);
    }
  }

  private onDone(cur: InFlight, done: DoneToken): void {
    if (done.kind === 'DONEPROC') this.recordReturns(cur);
    if (this.result || (done.status & (DONE_STATUS.COUNT | DONE_STATUS.ATTN)) !== 0 || this.error || this.notices) this.endResult(cur, done);
    // Each call of an RPC request ends with its DONEPROC; the next call's result sets count from 1.
    if (done.kind === 'DONEPROC' && cur.at < cur.statements.length - 1) {
      cur.at++;
      cur.sets = 0;
    }
  }

  /**
   * The call's output parameters reach the agent like a row: they are recorded as a result of the
   * call of their own (tag RETURNVALUE), one column per parameter, under the capture policy.
   */
  private recordReturns(cur: InFlight): void {
    const returns = cur.returns;
    cur.returns = undefined;
    const rec = cur.recs[cur.at];
    if (!returns || !rec) return;
    const capture = new RowCapture(this.deps.capture);
    const bytes = Buffer.concat(returns.map((r) => r.bytes));
    capture.add(bytes, capture.wantsValues ? returns.map((r) => displayValue(r.token.value, r.token.typeInfo)) : undefined);
    const columns: ResultColumn[] = returns.map((r) => ({ name: r.token.name, type: sqlTypeName(r.token.typeInfo), masked: null }));
    cur.sets++;
    this.recordResult(rec, columns, 1, capture.finish(), 'RETURNVALUE', undefined, cur.sets, bytes.length);
  }

  private endResult(cur: InFlight, done: DoneToken | undefined): void {
    const r = this.result;
    const error = this.error;
    const notices = this.notices;
    const dropped = this.noticesDropped;
    this.result = undefined;
    this.error = undefined;
    this.notices = undefined;
    this.noticesDropped = 0;
    const rec = cur.recs[cur.at];
    if (!rec || (!r && !done && !error && !notices)) return;
    const counted = done && (done.status & DONE_STATUS.COUNT) !== 0 ? Number(done.rowCount) : undefined;
    const columns: ResultColumn[] = (r?.columns ?? []).map((c) => ({ name: c.name, type: sqlTypeName(c.typeInfo), masked: null, ...(c.tableName ? { table: c.tableName.join('.') } : {}) }));
    const tag = done ? doneTag(done) : undefined;
    cur.sets++;
    this.recordResult(rec, columns, r ? r.rows : (counted ?? 0), r?.capture?.finish() ?? { mode: 'none' }, tag, error, cur.sets, r?.capture?.bytes ?? 0, notices && { notices, dropped });
  }

  private recordResult(
    rec: Recorded,
    columns: ResultColumn[],
    rows: number,
    capture: ReturnType<RowCapture['finish']>,
    tag: string | undefined,
    error: { code: string; message: string } | undefined,
    set: number,
    bytes = 0,
    notices?: { notices: ResultNotice[]; dropped: number },
  ): void {
    this.recorder
      ?.result({
        statementId: rec.id,
        columns,
        rows,
        bytes,
        capture,
        ...(tag ? { tag } : {}),
        ...(error ? { error } : {}),
        ...(set > 1 ? { set } : {}),
        ...(notices ? { notices: notices.notices, ...(notices.dropped > 0 ? { noticesDropped: notices.dropped } : {}) } : {}),
      })
      .catch(this.logWriteFailure);
  }

  onResponseEnd(): void {
    const cur = this.inFlight.shift();
    if (cur && (this.result || this.error || this.notices)) this.endResult(cur, undefined);
    this.result = undefined;
    this.error = undefined;
    this.notices = undefined;
    this.noticesDropped = 0;
  }

  /** A row's values as text for the transcript (decoded only when the capture keeps values). */
  private rowValues(t: ParsedToken): (string | null)[] | undefined {
    const cols = t.columns;
    if (!cols) return undefined;
    try {
      const row = decodeToken(t.bytes, { tdsVersion: this.deps.tdsVersion }, cols);
      if (row.kind !== 'ROW' && row.kind !== 'NBCROW') return undefined;
      return row.values.map((v: Value, i) => displayValue(v, cols[i]?.typeInfo));
    } catch {
      return undefined;
    }
  }
}

/** When no policy or transcript applies: every well-formed request goes on as it came. */
export class PassThroughFlow implements TdsFlowHandler {
  constructor(
    private readonly opts: { tdsVersion: number; maxValueLength: number },
    private readonly onQuery: () => void,
    private readonly attention: () => void,
  ) {}
  onRequest(req: TdsRequest, out: RequestOutcome): void {
    this.onQuery();
    validateRequest(req.type, req.payload, this.opts);
    out.forward();
  }
  onAttention(): void {
    this.attention();
  }
  bulkLoadAllowed(): boolean {
    return true;
  }
  onToken(): void {}
  rewriting(): boolean {
    return false;
  }
  onResponseEnd(): void {}
}

function doneTag(d: DoneToken): string {
  const parts: string[] = [d.kind];
  if (d.status & DONE_STATUS.COUNT) parts.push(String(d.rowCount));
  if (d.status & DONE_STATUS.ERROR) parts.push('ERROR');
  if (d.status & DONE_STATUS.ATTN) parts.push('ATTN');
  return parts.join(' ');
}

/** One classification for a request of several statements (RPC calls): not understood if any part is not. */
function combine(list: readonly Classification[]): Classification {
  if (list.length === 1) return list[0] as Classification;
  const bad = list.find((c) => !c.ok);
  if (bad) return bad;
  return { ok: true, statements: list.flatMap((c) => (c.ok ? c.statements : [])) };
}
