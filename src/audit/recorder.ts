// The interface a relay (PostgreSQL or TDS) records a session through, and its implementation
// over the segment writer.
//
// Order of calls for one session: sessionStart → (statement → [statementDecision] → result* |
// event)* → sessionEnd. Every call returns a promise that resolves when the record is durable per
// the fsync policy and rejects with TranscriptWriteError when it cannot be: the relay then refuses
// the statement or ends the session (fail closed). Gate order: record the statement before it is
// forwarded upstream; record the (masked) result before it is released to the client.
//
// Under fsync `interval` nobody waits for a record, so the relays use statementNoWait/resultNoWait:
// no promise per record; a record that cannot be taken throws, and a write that fails later makes
// the store unhealthy (the relays then refuse statements). A statement's first result that comes
// back before the statement's record is written joins that record (see frame.ts, expandRecord):
// one line, one hash, for the common statement that runs within the write window.

import type { Logger } from '../log.js';
import type { CapturePolicy, TranscriptConfig, TranscriptLimits } from './config.js';
import { TranscriptWriteError } from './errors.js';
import { MERGED_RESULT_MEMBER, RECORD_KIND, sha256Hex } from './frame.js';
import type { SignedMark } from './jws.js';
import { loadSigningKey } from './keys.js';
import { resultJson, statementMembers } from './record-json.js';
import { SegmentWriter, type CarriedRecord, type PendingRecord, type WriterHealth } from './segment-writer.js';
import { clip } from './text.js';
import type {
  ApprovalInfo,
  CapturedRows,
  DecisionData,
  EventData,
  PrincipalLike,
  ResultData,
  ResultColumn,
  ResultInfo,
  SessionEndData,
  SessionEndInfo,
  SessionEventInfo,
  SessionStartData,
  SessionStartInfo,
  StatementData,
  StatementDecisionInfo,
  StatementId,
  StatementInfo,
  StatementParam,
  TranscriptPrincipal,
} from './types.js';
import { EVENT_KIND, MAX_RESULT_NOTICES, type JsonValue, type SessionContinuedDetail } from './types.js';

export { RowCapture } from './row-capture.js';

export interface Recorder {
  /** Set by sessionStart. */
  readonly sessionId: string | undefined;
  sessionStart(info: SessionStartInfo): Promise<void>;
  /** Records a statement (before it is forwarded, or refused); resolves to its id in the session. */
  statement(info: StatementInfo): Promise<StatementId>;
  /**
   * statement() for callers that do not wait for the write (fsync `interval`): returns the id.
   * Throws TranscriptWriteError when the record cannot be taken (store unhealthy, record too large).
   */
  statementNoWait(info: StatementInfo): StatementId;
  /** The approver's decision on a held statement. */
  statementDecision(info: StatementDecisionInfo): Promise<void>;
  /** A statement's result (once per result set), before the result is released to the client. */
  result(info: ResultInfo): Promise<void>;
  /** result() for callers that do not wait for the write; throws like statementNoWait. */
  resultNoWait(info: ResultInfo): void;
  /** Cancel, notice, protocol error, token expiry, … */
  event(info: SessionEventInfo): Promise<void>;
  sessionEnd(reason: string | SessionEndInfo): Promise<void>;
  /**
   * The session's end is recorded in its `wire` records (src/pg/recording/wire-recording.ts),
   * where readers find it: this recorder writes nothing more, and the session is no longer
   * carried over into new segments.
   */
  endedElsewhere?(): void;
  /**
   * The session's statements are recorded elsewhere in the chain (wire records) and not counted
   * here: the `session-continued` events that carry it into new segments say their number is not known.
   */
  statementsElsewhere?(): void;
}

/** What a listener holds: one Recorder per session. */
export interface RecorderFactory {
  recorder(): Recorder;
  /** False once the store cannot write: refuse new sessions and statements. */
  readonly healthy: boolean;
  /** Default row capture for results. */
  readonly capture: CapturePolicy;
}

const MAX_SESSION_ID_CHARS = 128;

function monotonicNow(): number {
  return performance.now();
}
/** Statement start times kept for durations; older ones are dropped (their results get no `ms`). */
const MAX_OPEN_STATEMENTS = 4096;

export interface TranscriptStoreOptions {
  logger?: Logger;
  onCheckpoint?: (mark: SignedMark, jws: string) => void;
  onUnhealthy?: (error: TranscriptWriteError) => void;
  /** Wall clock for record times (Date.now by default). */
  clock?: () => number;
  /** Monotonic clock for statement durations, as performance.now() (the default) counts. */
  now?: () => number;
  /**
   * A statement record over the size limit: `refuse` (the default) throws, and the caller refuses
   * the statement; `digest` records it without its parameters, with a digest of their values (the
   * recording thread, where the statement has run already).
   */
  oversizedParams?: 'refuse' | 'digest';
  /** The lowest seq retention must leave on disk (records not yet shipped), if any (SegmentWriterOptions.keepFromSeq). */
  keepFromSeq?: () => number | undefined;
}

/** The process's transcript store: one segment writer, recorders for sessions. */
export class TranscriptStore implements RecorderFactory {
  private constructor(
    readonly config: TranscriptConfig,
    readonly writer: SegmentWriter,
    readonly keyId: string,
    readonly publicKeyFile: string,
    private readonly now: () => number,
    private readonly digestOversized: boolean,
    private readonly openSessions: Set<SessionRecorder>,
  ) {}

  static async open(config: TranscriptConfig, options: TranscriptStoreOptions = {}): Promise<TranscriptStore> {
    const key = await loadSigningKey(config.keyFile, { create: config.createKey });
    // The sessions still open, carried over into every new segment (SessionRecorder.carried).
    const openSessions = new Set<SessionRecorder>();
    const writer = await SegmentWriter.open({
      carryOver: () => {
        const out: CarriedRecord[] = [];
        for (const r of openSessions) {
          const c = r.carried();
          if (c) out.push(c);
        }
        return out;
      },
      dir: config.dir,
      instanceId: config.instanceId,
      key,
      fsync: config.fsync,
      fsyncIntervalMs: config.fsyncIntervalMs,
      syncStallMs: config.syncStallMs,
      segmentMaxBytes: config.segmentMaxBytes,
      segmentMaxAgeMs: config.segmentMaxAgeMs,
      checkpointEveryRecords: config.checkpointEveryRecords,
      checkpointIntervalMs: config.checkpointIntervalMs,
      recordBytes: config.limits.recordBytes,
      ...(config.retentionMs !== undefined ? { retentionMs: config.retentionMs } : {}),
      ...(options.keepFromSeq ? { keepFromSeq: options.keepFromSeq } : {}),
      ...(options.logger ? { logger: options.logger } : {}),
      ...(options.onCheckpoint ? { onCheckpoint: options.onCheckpoint } : {}),
      ...(options.onUnhealthy ? { onUnhealthy: options.onUnhealthy } : {}),
      ...(options.clock ? { clock: options.clock } : {}),
    });
    return new TranscriptStore(config, writer, key.kid, key.publicKeyFile, options.now ?? monotonicNow, options.oversizedParams === 'digest', openSessions);
  }

  recorder(): Recorder {
    return new SessionRecorder(this.writer, this.config.limits, this.now, this.digestOversized, this.openSessions);
  }

  get healthy(): boolean {
    return this.writer.healthy;
  }

  get capture(): CapturePolicy {
    return this.config.capture;
  }

  health(): WriterHealth {
    return this.writer.health();
  }

  close(): Promise<void> {
    return this.writer.close();
  }
}

/** What a session recorder writes through: the segment writer, or a reader's sink (wire-decoder.ts). */
export type RecordSink = Pick<SegmentWriter, 'instance' | 'append' | 'appendJson' | 'appendOpen' | 'extend' | 'settle' | 'time'>;

/**
 * A session recorder over any sink: readers of wire transcripts replay the statement flow into
 * one, to get the records it would have written (src/pg/recording/wire-decoder.ts).
 */
export function recorderOver(sink: RecordSink, limits: TranscriptLimits, now: () => number): Recorder {
  return new SessionRecorder(sink, limits, now, true, new Set());
}

type Phase = 'new' | 'open' | 'ended';

class SessionRecorder implements Recorder {
  sessionId: string | undefined;
  private sidJson: string | undefined;
  private phase: Phase = 'new';
  private statements = 0;
  /**
   * The session's last record when it is a statement (its first result may join it), and its id.
   * The writer holds it open (see SegmentWriter.settle) until its result comes or anything else
   * of the session is recorded.
   */
  private lastStatement: PendingRecord | undefined;
  private lastStatementId = 0;
  private readonly started = new StartTimes();
  /** The session's start record's data and time, carried over into every later segment (carried()). */
  private startData: SessionStartData | undefined;
  private startedAt = '';
  /** statementsElsewhere(): the session's statements are not counted here. */
  private statementsUncounted = false;

  constructor(
    private readonly writer: RecordSink,
    private readonly limits: TranscriptLimits,
    private readonly now: () => number,
    private readonly digestOversized: boolean,
    /** The store's open sessions (TranscriptStore.open's carryOver). */
    private readonly openSessions: Set<SessionRecorder>,
  ) {}

  /**
   * The `session-continued` event that opens a new segment for this session while it is open:
   * its start again, so the segment says whose the session is (and review and listing can count
   * it) once retention has removed the segment holding the `session-start`.
   */
  carried(): CarriedRecord | undefined {
    if (this.phase !== 'open' || !this.startData || !this.sidJson) return undefined;
    const detail: SessionContinuedDetail = { start: this.startData, startedAt: this.startedAt, statements: this.statementsUncounted ? null : this.statements };
    const data: EventData = { kind: EVENT_KIND.sessionContinued, detail: detail as unknown as { [key: string]: JsonValue } };
    return { kind: RECORD_KIND.event, sidJson: this.sidJson, dJson: JSON.stringify(data) };
  }

  sessionStart(info: SessionStartInfo): Promise<void> {
    if (this.phase !== 'new') return misuse('sessionStart called twice');
    if (typeof info.sessionId !== 'string' || info.sessionId.length === 0 || info.sessionId.length > MAX_SESSION_ID_CHARS) {
      return misuse(`a session id must be 1 to ${MAX_SESSION_ID_CHARS} characters`);
    }
    this.sessionId = info.sessionId;
    this.sidJson = JSON.stringify(info.sessionId);
    this.phase = 'open';
    const data: SessionStartData = {
      protocol: info.protocol,
      target: info.target,
      principal: transcriptPrincipal(info.principal),
      client: {
        address: info.client.address,
        port: info.client.port,
        tls: info.client.tls ? { version: info.client.tls.version, cipher: info.client.tls.cipher } : null,
        ...optional('application', info.client.application, this.limits.messageBytes),
        ...optional('user', info.client.user, this.limits.messageBytes),
        ...optional('database', info.client.database, this.limits.messageBytes),
      },
      instance: this.writer.instance,
    };
    this.startData = data;
    this.startedAt = new Date(this.writer.time()).toISOString();
    // Open before its record is taken: a start that fills the segment is carried into the next.
    this.openSessions.add(this);
    const written = this.writer.append(RECORD_KIND.sessionStart, this.sessionId, data);
    // A start that was not taken leaves no session to carry over.
    written.catch(() => this.openSessions.delete(this));
    return written;
  }

  statement(info: StatementInfo): Promise<StatementId> {
    if (this.phase !== 'open') return misuse(`statement recorded ${this.phase === 'new' ? 'before sessionStart' : 'after sessionEnd'}`);
    let record: PendingRecord;
    try {
      record = this.recordStatement(info, true);
    } catch (err) {
      return Promise.reject(err);
    }
    const st = this.statements;
    return (record.done as Promise<void>).then(() => st);
  }

  statementNoWait(info: StatementInfo): StatementId {
    if (this.phase !== 'open') throw misuseError(`statement recorded ${this.phase === 'new' ? 'before sessionStart' : 'after sessionEnd'}`);
    this.recordStatement(info, false);
    return this.statements;
  }

  /** The last statement's record will gain no result: the writer may chain it. */
  private settleLast(): void {
    const last = this.lastStatement;
    if (last) {
      this.lastStatement = undefined;
      this.writer.settle(last);
    }
  }

  private recordStatement(info: StatementInfo, wait: boolean): PendingRecord {
    this.settleLast();
    const st = ++this.statements;
    this.started.open(st, this.now());
    // Built by assignment, in the order the members are written: this runs for every statement.
    const limit = this.limits.messageBytes;
    const data: StatementData = { st, text: info.text, cls: info.classification, verdict: info.verdict };
    if (info.text.length * 3 > this.limits.textBytes) {
      const text = clip(info.text, this.limits.textBytes);
      if (text.cut) {
        data.text = text.value;
        data.textBytes = text.bytes;
        data.textSha256 = sha256Hex(info.text);
      }
    }
    const given = info.params;
    if (given && given.length > 0) {
      const n = Math.min(given.length, this.limits.params);
      const params = new Array<StatementParam>(n);
      for (let i = 0; i < n; i++) params[i] = this.param(given[i] as StatementParam);
      data.params = params;
      if (given.length > n) data.paramsDropped = given.length - n;
    }
    if (info.rule !== undefined) data.rule = clipped(info.rule, limit);
    if (info.reason !== undefined) data.reason = clipped(info.reason, limit);
    if (info.approval) data.approval = approvalInfo(info.approval, limit);
    if (info.via !== undefined) data.via = clipped(info.via, limit);
    if (info.name !== undefined) data.name = clipped(info.name, limit);
    let record: PendingRecord;
    try {
      record = this.writer.appendOpen(RECORD_KIND.statement, this.sidJson, encoded(RECORD_KIND.statement, statementMembers, data), wait);
    } catch (err) {
      const kept = data.params;
      if (!(this.digestOversized && given && kept && err instanceof TranscriptWriteError && err.code === 'ERECORDTOOLARGE')) throw err;
      // The digest of the values the record would have held (each cut to the value limit).
      delete data.params;
      data.paramsDropped = given.length;
      data.paramsSha256 = sha256Hex(JSON.stringify(kept.map((p) => p.value)));
      record = this.writer.appendOpen(RECORD_KIND.statement, this.sidJson, encoded(RECORD_KIND.statement, statementMembers, data), wait);
    }
    this.lastStatement = record;
    this.lastStatementId = st;
    return record;
  }

  statementDecision(info: StatementDecisionInfo): Promise<void> {
    if (this.phase !== 'open') return misuse('statementDecision outside a session');
    this.settleLast();
    const data: DecisionData = {
      st: info.statementId,
      decision: info.decision,
      ...optional('requestId', info.requestId, this.limits.messageBytes),
      ...optional('approver', info.approver, this.limits.messageBytes),
      ...optional('reason', info.reason, this.limits.messageBytes),
    };
    return this.writer.append(RECORD_KIND.decision, this.sessionId, data);
  }

  result(info: ResultInfo): Promise<void> {
    if (this.phase !== 'open') return misuse('result outside a session');
    try {
      return this.recordResult(info, true) as Promise<void>;
    } catch (err) {
      return Promise.reject(err);
    }
  }

  resultNoWait(info: ResultInfo): void {
    if (this.phase !== 'open') throw misuseError('result outside a session');
    this.recordResult(info, false);
  }

  /** With `wait`, returns the promise of the record's batch. */
  private recordResult(info: ResultInfo, wait: boolean): Promise<void> | undefined {
    // The columns and the capture are written member by member (record-json.ts): whatever else a
    // caller's objects carry stays out without copying them.
    const st = info.statementId;
    const data: ResultData = { st, columns: info.columns as ResultColumn[], rows: info.rows, bytes: info.bytes, capture: boundCapture(info.capture, this.limits) };
    if (info.set !== undefined && info.set !== 1) data.set = info.set;
    const started = this.started.close(st);
    if (started !== undefined) {
      const end = info.endedAt ? info.endedAt.getTime() - performance.timeOrigin : this.now();
      data.ms = Math.round((end - started) * 1000) / 1000;
    }
    if (info.error) data.error = { code: info.error.code, message: clipped(info.error.message, this.limits.messageBytes) };
    if (info.tag !== undefined) data.tag = clipped(info.tag, this.limits.messageBytes);
    if (info.notices && info.notices.length > 0) {
      const kept = info.notices.slice(0, MAX_RESULT_NOTICES);
      data.notices = kept.map((n) => ({ severity: clipped(n.severity, 64), code: clipped(n.code, 64), message: clipped(n.message, this.limits.messageBytes) }));
      const dropped = info.notices.length - kept.length + (info.noticesDropped ?? 0);
      if (dropped > 0) data.noticesDropped = dropped;
    }
    const last = this.lastStatement;
    if (last && this.lastStatementId === st && data.set === undefined && !last.chained) {
      // The statement's record is still in the batch: the result joins it.
      const json = encoded(RECORD_KIND.result, resultWithoutSt, data);
      this.lastStatement = undefined;
      const merged = this.writer.extend(last, MERGED_RESULT_MEMBER, json, wait);
      if (merged !== false) return wait ? (merged as Promise<void>) : undefined;
    }
    this.settleLast();
    return this.writer.appendJson(RECORD_KIND.result, this.sidJson, encoded(RECORD_KIND.result, resultJson, data), wait).done;
  }

  event(info: SessionEventInfo): Promise<void> {
    if (this.phase !== 'open') return misuse('event outside a session');
    this.settleLast();
    const data: EventData = {
      kind: info.kind,
      ...(info.statementId === undefined ? {} : { st: info.statementId }),
      ...optional('code', info.code, this.limits.messageBytes),
      ...optional('message', info.message, this.limits.messageBytes),
      ...(info.detail ? { detail: info.detail } : {}),
    };
    return this.writer.append(RECORD_KIND.event, this.sessionId, data);
  }

  statementsElsewhere(): void {
    this.statementsUncounted = true;
  }

  endedElsewhere(): void {
    if (this.phase !== 'open') return;
    this.phase = 'ended';
    this.openSessions.delete(this);
    this.settleLast();
  }

  sessionEnd(reason: string | SessionEndInfo): Promise<void> {
    if (this.phase !== 'open') return misuse(this.phase === 'new' ? 'sessionEnd before sessionStart' : 'sessionEnd called twice');
    this.phase = 'ended';
    this.openSessions.delete(this);
    this.settleLast();
    const info = typeof reason === 'string' ? { reason } : reason;
    const data: SessionEndData = {
      reason: clip(info.reason, this.limits.messageBytes).value,
      ...optional('detail', info.detail, this.limits.messageBytes),
      statements: this.statements,
    };
    return this.writer.append(RECORD_KIND.sessionEnd, this.sessionId, data);
  }

  private param(p: StatementParam): StatementParam {
    const out: StatementParam = { type: p.type, value: p.value };
    if (p.name !== undefined) out.name = p.name;
    if (p.value !== null) {
      const v = clip(p.value, this.limits.valueBytes);
      // A caller that cut the value already (TDS display text) gives its whole size.
      if (v.cut || p.fullBytes !== undefined) {
        out.value = v.value;
        out.fullBytes = Math.max(p.fullBytes ?? 0, v.cut ? v.bytes : 0);
      }
    }
    return out;
  }
}

/**
 * The statement start times a recorder keeps for result durations: performance.now() of each
 * open statement, from `oldest` to the newest. Results come back in statement order, so a result
 * of statement N closes every statement before N. A ring indexed by statement number, grown while
 * more statements are open (a pipelining client) up to MAX_OPEN_STATEMENTS; beyond that the
 * oldest are dropped (their results get no `ms`). Most sessions never have more than one open.
 */
class StartTimes {
  private times = new Float64Array(4);
  private oldest = 1;
  private newest = 0;

  open(st: number, now: number): void {
    if (st - this.oldest >= this.times.length) {
      if (this.times.length < MAX_OPEN_STATEMENTS) this.grow();
      else this.oldest = st - this.times.length + 1;
    }
    this.times[st % this.times.length] = now;
    this.newest = st;
  }

  /** The start of statement `st` (undefined once dropped), closing every statement before it. */
  close(st: number): number | undefined {
    if (st > this.newest || st < this.oldest) return undefined;
    this.oldest = st;
    return this.times[st % this.times.length];
  }

  private grow(): void {
    const times = new Float64Array(this.times.length * 2);
    for (let st = this.oldest; st <= this.newest; st++) times[st % times.length] = this.times[st % this.times.length] as number;
    this.times = times;
  }
}

/** `s` cut to `maxBytes` of UTF-8; the common short string is returned as it is, without counting. */
function clipped(s: string, maxBytes: number): string {
  return s.length * 3 <= maxBytes ? s : clip(s, maxBytes).value;
}

function approvalInfo(a: ApprovalInfo, limit: number): ApprovalInfo {
  const out: ApprovalInfo = { requestId: clip(a.requestId, limit).value };
  if (a.decision !== undefined) out.decision = a.decision;
  if (a.approver !== undefined) out.approver = clip(a.approver, limit).value;
  if (a.reason !== undefined) out.reason = clip(a.reason, limit).value;
  return out;
}

function misuseError(message: string): TranscriptWriteError {
  return new TranscriptWriteError(`recorder misuse: ${message}`, { code: 'EMISUSE' });
}

function misuse(message: string): Promise<never> {
  return Promise.reject(misuseError(message));
}

function resultWithoutSt(d: ResultData): string {
  return resultJson(d, false);
}

/** Serializes a record's data; a value JSON cannot hold (a BigInt, a cycle) is EENCODE. */
function encoded<D>(kind: string, json: (d: D) => string, data: D): string {
  try {
    return json(data);
  } catch (err) {
    throw new TranscriptWriteError(`a ${kind} record cannot be encoded: ${err instanceof Error ? err.message : String(err)}`, { code: 'EENCODE', cause: err });
  }
}

/** Copies only the fields a transcript may hold; whatever else a principal object carries stays out. */
export function transcriptPrincipal(p: PrincipalLike): TranscriptPrincipal {
  const exp = p.expiresAt instanceof Date ? p.expiresAt.toISOString() : p.expiresAt;
  return {
    name: p.name,
    issuer: p.issuer,
    ...(p.issuerName === undefined ? {} : { issuerName: p.issuerName }),
    subject: p.subject,
    ...(p.subjectClaim === undefined ? {} : { subjectClaim: p.subjectClaim }),
    ...(p.appId === undefined ? {} : { appId: p.appId }),
    ...(p.objectId === undefined ? {} : { objectId: p.objectId }),
    ...(p.tenantId === undefined ? {} : { tenantId: p.tenantId }),
    roles: [...p.roles],
    groups: [...p.groups],
    ...(p.groupsOverage ? { groupsOverage: true } : {}),
    ...(exp === undefined ? {} : { tokenExpiresAt: exp }),
  };
}

function optional<K extends string>(key: K, value: string | undefined, maxBytes: number): { [P in K]?: string } {
  return value === undefined ? {} : ({ [key]: clip(value, maxBytes).value } as { [P in K]?: string });
}

function boundCapture(c: CapturedRows, limits: Pick<TranscriptLimits, 'valueBytes' | 'captureBytes'>): CapturedRows {
  if (c.mode === 'none' || c.mode === 'digest') return c; // written member by member
  const kept: Array<Array<string | null>> = [];
  let budget = limits.captureBytes;
  let truncated = c.truncated;
  for (const row of c.rows) {
    const cells = row.map((v) => (v === null ? null : clip(v, limits.valueBytes).value));
    const size = cells.reduce((n, v) => n + (v === null ? 4 : Buffer.byteLength(v)), 0);
    if (size > budget) {
      truncated = true;
      break;
    }
    budget -= size;
    kept.push(cells);
  }
  return c.mode === 'first' ? { mode: 'first', limit: c.limit, rows: kept, truncated } : { mode: 'all', rows: kept, truncated };
}

/** Recording turned off: every call succeeds at once and nothing is kept. */
export const disabledRecorders: RecorderFactory = {
  healthy: true,
  capture: { mode: 'none', firstRows: 0 },
  recorder(): Recorder {
    let statements = 0;
    const rec: Recorder = {
      sessionId: undefined,
      sessionStart: (info) => {
        (rec as { sessionId: string | undefined }).sessionId = info.sessionId;
        return Promise.resolve();
      },
      statement: () => Promise.resolve(++statements),
      statementNoWait: () => ++statements,
      statementDecision: () => Promise.resolve(),
      result: () => Promise.resolve(),
      resultNoWait: () => undefined,
      event: () => Promise.resolve(),
      sessionEnd: () => Promise.resolve(),
    };
    return rec;
  },
};

/**
 * A statement's record as a relay gates forwarding on it (record → forward). Under fsync `each`,
 * `durable` is pending until the record is durable and rejects when it cannot be; under
 * `interval`, nobody waits, and `failed` is set when the record could not even be taken (over the
 * size limit, store unhealthy). The statement runs only once `durable` settled well and nothing failed.
 */
export interface StatementGate {
  durable?: Promise<unknown> | undefined;
  failed?: unknown;
}

/** Records a statement into `gate` (see StatementGate); `onError` hears of a record that failed. */
export function recordStatement(gate: StatementGate, recorder: Recorder, info: StatementInfo, durableBeforeForward: boolean, onError: (err: unknown) => void): void {
  if (durableBeforeForward) {
    gate.durable = recorder.statement(info).then(
      () => {
        gate.durable = undefined;
      },
      (err: unknown) => {
        onError(err);
        throw err;
      },
    );
    // Logged above; a caller that does not wait for it (a refused statement's record) must not
    // leave a rejection nobody handles, which would end the process.
    gate.durable.catch(() => undefined);
    return;
  }
  // A write that fails later makes the store unhealthy, which refuses later statements.
  try {
    recorder.statementNoWait(info);
  } catch (err) {
    onError(err);
    gate.failed = err;
  }
}
