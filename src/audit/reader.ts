// Reads transcript records back for listing, replay and review. Reading does not verify: records
// are parsed without recomputing hashes, and unreadable lines are skipped (run `warden audit
// verify` for integrity). Files are streamed; memory grows with the number of sessions listed,
// not with the size of the store.
//
// Listing, replay and review take a RecordSource: a transcript directory (a path is read as one),
// or the shared PostgreSQL store the instances ship to (store-postgres.ts), which yields the same
// records for every instance.

import { existsSync, statSync } from 'node:fs';
import { DEFAULT_LIMITS } from './config.js';
import { errnoCode, TranscriptReadError } from './errors.js';
import { expandRecord, parseLine, RECORD_KIND, type TranscriptRecord } from './frame.js';
import { readLines } from './line-reader.js';
import { WireDecoder } from '../pg/recording/wire-decoder.js';
import { writerStopped } from './instance-lock.js';
import type { OpenData } from './segment-writer.js';
import { listTranscriptDir, segmentsOf } from './segment-files.js';
import {
  EVENT_KIND,
  VERDICTS,
  type ClientInfo,
  type DecisionData,
  type EventData,
  type Protocol,
  type ResultData,
  type SessionContinuedDetail,
  type SessionEndData,
  type SessionStartData,
  type StatementData,
  type TranscriptPrincipal,
  type Verdict,
} from './types.js';

export interface StoredRecord {
  record: TranscriptRecord;
  instance: string;
  file: string;
  line: number;
}

export interface ReadOptions {
  /** Only records of sessions whose id starts with this (a cheap byte match before parsing). */
  sessionPrefix?: string;
  /** Only these instances. */
  instance?: string;
  /** Start at this segment file of `instance` (by segment number). */
  fromSegment?: number;
  /**
   * Only session records (those with a `sid`), and each segment's `open` record (which writer
   * started it: listing tells a session still open from one whose writer stopped). The store's
   * other records (checkpoints, seals) are skipped.
   */
  sessionsOnly?: boolean;
  /** With `sessionPrefix`: each segment's `open` record too (SessionIndex tells writer runs apart by them). */
  withOpens?: boolean;
}

/** The bytes of an `open` record's kind: inside a JSON string a quote is escaped, so only a record's own `k` matches. */
const OPEN_KIND = Buffer.from(`"k":"${RECORD_KIND.open}"`);

/** Where listing, replay and review read records from. */
export interface RecordSource {
  /** Names the source in messages: a directory, or the shared store. */
  readonly name: string;
  /** The records, instance by instance, each instance's in chain order. */
  records(options?: ReadOptions): AsyncIterable<StoredRecord>;
  /**
   * True when the instance's newest writer is known to have stopped (a directory can tell from
   * its lock files; the shared store cannot, and has none of this).
   */
  writerStopped?(instance: string): boolean;
}

/** A transcript directory as a record source. */
export function directorySource(dir: string): RecordSource {
  return { name: dir, records: (options) => readStore(dir, options), writerStopped: (instance) => writerStopped(dir, instance) };
}

/** A path is a transcript directory. */
export function sourceOf(from: string | RecordSource): RecordSource {
  return typeof from === 'string' ? directorySource(from) : from;
}

/** Every record of the store, instance by instance, in chain order. */
export async function* readStore(dir: string, options: ReadOptions = {}): AsyncGenerator<StoredRecord> {
  if (!existsSync(dir)) throw new TranscriptReadError(`no transcript directory at ${dir}`);
  if (!statSync(dir).isDirectory()) throw new TranscriptReadError(`${dir} is not a transcript directory (it is a file)`);
  const needle = options.sessionPrefix === undefined ? undefined : Buffer.from(`"sid":${JSON.stringify(options.sessionPrefix).slice(0, -1)}`);
  const wire = new WireDecoder();
  for (const seg of segmentsOf(listTranscriptDir(dir))) {
    if (options.instance !== undefined && seg.instance !== options.instance) continue;
    if (options.fromSegment !== undefined && seg.index < options.fromSegment) continue;
    let read = false;
    try {
      for await (const raw of readLines(seg.path, { maxLineBytes: DEFAULT_LIMITS.recordBytes + 1 })) {
        read = true;
        if (!raw.complete || raw.oversized) continue;
        if (needle && !raw.bytes.includes(needle) && !(options.withOpens && raw.bytes.includes(OPEN_KIND))) continue;
        const parsed = parseLine(raw.bytes, false);
        if (!parsed.ok || (options.sessionsOnly && parsed.record.sid === undefined && parsed.record.k !== RECORD_KIND.open)) continue;
        // A statement written with its first result is read as the two records it stands for; a
        // wire record as the records its bytes stand for.
        for (const record of await readerRecords(parsed.record, seg.instance, wire)) yield { record, instance: seg.instance, file: seg.name, line: raw.lineNo };
      }
    } catch (err) {
      // Removed by retention (transcripts.retention) between the listing and the read: its
      // records are gone, as if the listing had come a moment later.
      if (read || errnoCode(err) !== 'ENOENT') throw err;
    }
  }
}

/** A record as readers see it: a statement with its first result as the two; a `wire` record as the records its bytes stand for. */
export async function readerRecords(r: TranscriptRecord, instance: string, wire: WireDecoder): Promise<TranscriptRecord[]> {
  return r.k === RECORD_KIND.wire ? wire.expand(r, instance) : expandRecord(r);
}

export interface SessionSummary {
  sessionId: string;
  instance: string;
  protocol: Protocol | 'unknown';
  target: string;
  /** Absent when the session's start record is not in the store. */
  principal?: TranscriptPrincipal;
  client?: ClientInfo;
  startedAt: string;
  endedAt?: string;
  endReason?: string;
  /**
   * No end is recorded, and the writer that recorded the session has not been seen to stop: the
   * session may still be connected (or warden stopped without recording its end, and has not
   * started again since). Such a session counts as active in every window after its start.
   */
  open: boolean;
  /**
   * No end is recorded, but the writer that recorded the session stopped (the instance's chain
   * goes on in a later run): the session ended at the latest at that writer's last record.
   * Listing gives it; replay, which reads only the session's own records, does not (`open` is
   * false there all the same).
   */
  endedBy?: string;
  /** Time of the session's newest record. */
  lastAt: string;
  /**
   * The session's `session-start` is not in the store, but a later segment carried it over
   * (retention removed the older records): how many statements it had run before that segment,
   * whose records are gone (null: not known, for a session recorded as `wire` records), and the
   * time of the oldest record still kept. `statements` and the other counts are of the records kept.
   */
  removedStatements?: number | null;
  keptFrom?: string;
  statements: number;
  verdicts: Record<Verdict, number>;
  classes: Record<string, number>;
  /** Tables touched, from the classifier's `relations`. */
  relations: string[];
  /** Masked columns seen in results, as "column (rule)". */
  maskedColumns: string[];
  /** Held statements approved / denied (by an approver, or timed out). */
  approved: number;
  refused: number;
  errors: number;
  rows: number;
  bytes: number;
}

export interface SessionFilter {
  /** Policy principal name, or the token's subject, app id or object id. */
  principal?: string;
  target?: string;
  /** Sessions active at some point in [since, until]. */
  since?: Date;
  until?: Date;
  /** A table the session touched: "customers" and "public.customers" match each other. */
  table?: string;
  /** Sessions with at least one statement of this verdict. */
  verdict?: Verdict;
}

export function principalMatches(p: TranscriptPrincipal | undefined, wanted: string): boolean {
  if (!p) return false;
  return p.name === wanted || p.subject === wanted || p.appId === wanted || p.objectId === wanted;
}

function normalizeRelation(r: string): string {
  return r.replace(/"/g, '').toLowerCase();
}

/** Relations are recorded as the statement wrote them (`customers`, `public.customers`): a name
 *  without a schema matches the same table with one, in either direction. */
export function relationMatches(relation: string, table: string): boolean {
  const r = normalizeRelation(relation);
  const t = normalizeRelation(table);
  return r === t || r.endsWith(`.${t}`) || (!r.includes('.') && t.endsWith(`.${r}`));
}

/**
 * One writer's stretch of an instance's chain: from the segment it opened on starting to the last
 * record it wrote. A segment it opens on rotation is the same run; a writer started again is a new
 * one, and ends the run before it.
 */
interface WriterRun {
  /** The writer's identity, from its segments' `open` records. */
  readonly key: string;
  lastAt: string;
  /** A later run of the instance exists: this writer stopped. */
  ended: boolean;
}

/** Tells one writer from another: its host and pid, and when it started (recorded since format 2's `writer.started`). */
function writerKey(d: OpenData): string {
  const w = (d.writer ?? {}) as Partial<OpenData['writer']>;
  return `${String(w.host)}\u0000${String(w.pid)}\u0000${w.started ?? ''}`;
}

/** Folds records into per-session summaries. */
export class SessionIndex {
  readonly sessions = new Map<
    string,
    SessionSummary & { relationSet: Set<string>; maskedSet: Set<string>; maskedStatements: Set<number>; allowedStatements: Set<number>; run: WriterRun | undefined }
  >();
  /** Each instance's newest writer run seen so far (records come instance by instance, in chain order). */
  private readonly runs = new Map<string, WriterRun>();
  /** Whether each instance's newest writer is known to have stopped (RecordSource.writerStopped), once asked. */
  private readonly stoppedWriters = new Map<string, boolean>();

  /**
   * `partial`: the index is given one session's records (and the segments' `open` records), not
   * every session's: it tells whether a session's writer stopped, but not when its last record
   * was, so it gives no `endedBy`. `source`: where the records come from, asked whether an
   * instance's writer has stopped (RecordSource.writerStopped).
   */
  constructor(private readonly options: { partial?: boolean; source?: RecordSource } = {}) {}

  add({ record: r, instance }: StoredRecord): void {
    const run = this.runOf(r, instance);
    if (r.sid === undefined) return;
    let s = this.sessions.get(r.sid);
    if (!s) {
      s = {
        sessionId: r.sid,
        instance,
        protocol: 'unknown',
        target: '',
        startedAt: r.ts,
        open: true,
        lastAt: r.ts,
        statements: 0,
        verdicts: Object.fromEntries(VERDICTS.map((v) => [v, 0])) as Record<Verdict, number>,
        classes: {},
        relations: [],
        maskedColumns: [],
        approved: 0,
        refused: 0,
        errors: 0,
        rows: 0,
        bytes: 0,
        relationSet: new Set(),
        maskedSet: new Set(),
        maskedStatements: new Set(),
        allowedStatements: new Set(),
        run,
      };
      this.sessions.set(r.sid, s);
    }
    if (r.ts > s.lastAt) s.lastAt = r.ts;
    // A session is recorded by one writer: its run is the one its newest record came from.
    s.run = run;
    switch (r.k) {
      case RECORD_KIND.sessionStart: {
        const d = r.d as SessionStartData;
        s.protocol = d.protocol;
        s.target = d.target;
        s.principal = d.principal;
        s.client = d.client;
        s.startedAt = r.ts;
        break;
      }
      case RECORD_KIND.statement: {
        const d = r.d as StatementData;
        s.statements += 1;
        if (d.verdict in s.verdicts) s.verdicts[d.verdict] += 1;
        if (d.verdict === 'mask') s.maskedStatements.add(d.st);
        if (d.verdict === 'allow') rememberAllowed(s.allowedStatements, d.st);
        const cls = d.cls?.class ?? 'unknown';
        s.classes[cls] = (s.classes[cls] ?? 0) + 1;
        for (const rel of Array.isArray(d.cls?.relations) ? d.cls.relations : []) s.relationSet.add(rel);
        if (d.approval?.decision === 'approved') s.approved += 1;
        else if (d.approval?.decision !== undefined) s.refused += 1;
        break;
      }
      case RECORD_KIND.decision: {
        const d = r.d as DecisionData;
        if (d.decision === 'approved') s.approved += 1;
        else s.refused += 1;
        break;
      }
      case RECORD_KIND.result: {
        const d = r.d as ResultData;
        s.rows += d.rows;
        s.bytes += d.bytes;
        if (d.error) s.errors += 1;
        for (const c of d.columns) if (c.masked !== null) s.maskedSet.add(`${c.name} (${c.masked})`);
        // A statement's verdict is written before its results exist. The relays record `allow` for
        // a statement whose rows are then masked: it moves to `mask`. A held one stays under `hold`
        // and counts under `mask` too (docs/cli.md).
        if (d.columns.some((c) => c.masked !== null) && !s.maskedStatements.has(d.st)) {
          s.maskedStatements.add(d.st);
          s.verdicts.mask += 1;
          if (s.allowedStatements.delete(d.st)) s.verdicts.allow -= 1;
        }
        break;
      }
      case RECORD_KIND.sessionEnd: {
        const d = r.d as SessionEndData;
        s.endedAt = r.ts;
        s.endReason = d.reason;
        break;
      }
      case RECORD_KIND.event: {
        // The session's start carried into a later segment: what the session is when retention
        // removed the segment of its `session-start`.
        const carried = continuedStart(r);
        if (carried && s.principal === undefined) {
          s.protocol = carried.start.protocol;
          s.target = carried.start.target;
          s.principal = carried.start.principal;
          s.client = carried.start.client;
          s.keptFrom = s.startedAt; // the session's oldest record still kept
          s.startedAt = carried.startedAt;
          s.removedStatements = carried.statements;
        }
        break;
      }
      default:
        break;
    }
  }

  /** Whether the instance's newest writer is known to have stopped (asked once per instance). */
  private stopped(instance: string): boolean {
    let known = this.stoppedWriters.get(instance);
    if (known === undefined) {
      known = this.options.source?.writerStopped?.(instance) ?? false;
      this.stoppedWriters.set(instance, known);
    }
    return known;
  }

  /** The writer run `r` belongs to: an `open` record of a writer other than the instance's last one starts a new run. */
  private runOf(r: TranscriptRecord, instance: string): WriterRun | undefined {
    let run = this.runs.get(instance);
    if (r.k === RECORD_KIND.open) {
      const d = r.d as OpenData;
      const key = writerKey(d);
      if (!run || run.key !== key || d.after === null) {
        if (run) run.ended = true;
        run = { key, lastAt: r.ts, ended: false };
        this.runs.set(instance, run);
      }
    }
    if (run && r.ts > run.lastAt) run.lastAt = r.ts;
    return run;
  }

  summaries(): SessionSummary[] {
    return [...this.sessions.values()]
      .map(({ relationSet, maskedSet, maskedStatements: _masked, allowedStatements: _allowed, run, ...s }) => {
        const summary: SessionSummary = { ...s, relations: [...relationSet].sort(), maskedColumns: [...maskedSet].sort() };
        if (s.endedAt !== undefined) summary.open = false;
        else if (run && (run.ended || this.stopped(s.instance))) {
          summary.open = false;
          if (!this.options.partial) summary.endedBy = run.lastAt;
        }
        return summary;
      })
      .sort((a, b) => (a.startedAt < b.startedAt ? -1 : a.startedAt > b.startedAt ? 1 : a.sessionId.localeCompare(b.sessionId)));
  }
}

/**
 * The start a `session-continued` event carries (EVENT_KIND.sessionContinued), when `r` is one
 * whose detail has the shape the store writes.
 */
export function continuedStart(r: TranscriptRecord): SessionContinuedDetail | undefined {
  if (r.k !== RECORD_KIND.event) return undefined;
  const d = r.d as EventData;
  if (d.kind !== EVENT_KIND.sessionContinued || typeof d.detail !== 'object' || d.detail === null) return undefined;
  const c = d.detail as unknown as Partial<SessionContinuedDetail>;
  const start = c.start;
  if (typeof start !== 'object' || start === null || typeof start.target !== 'string' || typeof start.principal !== 'object' || start.principal === null) return undefined;
  if (typeof c.startedAt !== 'string' || (typeof c.statements !== 'number' && c.statements !== null)) return undefined;
  return c as SessionContinuedDetail;
}

export function sessionMatches(s: SessionSummary, f: SessionFilter): boolean {
  if (f.principal !== undefined && !principalMatches(s.principal, f.principal)) return false;
  if (f.target !== undefined && s.target !== f.target) return false;
  if (f.until !== undefined && Date.parse(s.startedAt) > f.until.getTime()) return false;
  // A session with no recorded end is active until its writer stopped, or (still open) until now.
  const end = s.endedAt ?? s.endedBy ?? (s.open ? undefined : s.lastAt);
  if (f.since !== undefined && end !== undefined && Date.parse(end) < f.since.getTime()) return false;
  if (f.table !== undefined && !s.relations.some((r) => relationMatches(r, f.table as string))) return false;
  if (f.verdict !== undefined && s.verdicts[f.verdict] === 0) return false;
  return true;
}

/** Sessions in a transcript directory or another source matching `filter`, oldest first. */
export async function listSessions(from: string | RecordSource, filter: SessionFilter = {}): Promise<SessionSummary[]> {
  const source = sourceOf(from);
  const index = new SessionIndex({ source });
  for await (const rec of source.records({ sessionsOnly: true })) index.add(rec);
  return index.summaries().filter((s) => sessionMatches(s, filter));
}

/**
 * The allowed statements whose results may still come: results follow their statement closely
 * (at most 4096 pipelined), so the oldest are forgotten past 8192 and a long session costs no more.
 */
function rememberAllowed(allowed: Set<number>, st: number): void {
  allowed.add(st);
  if (allowed.size > 8192) allowed.delete(allowed.values().next().value as number);
}
