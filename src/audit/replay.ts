// One session as a timeline: what ran, with which parameters, what policy and the approvers
// decided, what came back (masked). `followSession` tails the store for a live session.

import { setTimeout as sleep } from 'node:timers/promises';
import { join } from 'node:path';
import { DEFAULT_LIMITS } from './config.js';
import { TranscriptReadError, TranscriptTooLargeError } from './errors.js';
import { parseLine, RECORD_KIND, type TranscriptRecord } from './frame.js';
import { readLines } from './line-reader.js';
import { readerRecords, SessionIndex, sourceOf, type RecordSource, type SessionSummary } from './reader.js';
import { WireDecoder } from '../pg/recording/wire-decoder.js';
import { listTranscriptDir, parseSegmentFileName, segmentsOf } from './segment-files.js';
import { countText, formatBytes, formatMs, formatOffset, indent, printable, shorten, terminalJson, textTable } from './text.js';
import { EVENT_KIND, type DecisionData, type EventData, type ResultData, type SessionEndData, type SessionStartData, type StatementData, type StatementParam } from './types.js';

export type TimelineKind = 'session-start' | 'statement' | 'decision' | 'result' | 'event' | 'session-end';

export type TimelineEntry =
  | { kind: 'session-start'; seq: number; at: string; offsetMs: number; data: SessionStartData }
  | { kind: 'statement'; seq: number; at: string; offsetMs: number; statementId: number; data: StatementData }
  | { kind: 'decision'; seq: number; at: string; offsetMs: number; statementId: number; data: DecisionData }
  | { kind: 'result'; seq: number; at: string; offsetMs: number; statementId: number; data: ResultData }
  | { kind: 'event'; seq: number; at: string; offsetMs: number; data: EventData }
  | { kind: 'session-end'; seq: number; at: string; offsetMs: number; data: SessionEndData };

export interface SessionReplay {
  sessionId: string;
  instance: string;
  summary: SessionSummary;
  entries: TimelineEntry[];
  ended: boolean;
  /** Where the session's newest record is (follow starts there). */
  position: { segment: number; seq: number };
}

const TIMELINE_KINDS: ReadonlySet<string> = new Set<TimelineKind>(['session-start', 'statement', 'decision', 'result', 'event', 'session-end']);

export function toEntry(r: TranscriptRecord, startMs: number): TimelineEntry | undefined {
  if (!TIMELINE_KINDS.has(r.k)) return undefined;
  const base = { seq: r.seq, at: r.ts, offsetMs: Date.parse(r.ts) - startMs };
  const st = (r.d as { st?: unknown }).st;
  const statementId = typeof st === 'number' ? st : 0;
  switch (r.k) {
    case RECORD_KIND.sessionStart:
      return { ...base, kind: 'session-start', data: r.d as SessionStartData };
    case RECORD_KIND.statement:
      return { ...base, kind: 'statement', statementId, data: r.d as StatementData };
    case RECORD_KIND.decision:
      return { ...base, kind: 'decision', statementId, data: r.d as DecisionData };
    case RECORD_KIND.result:
      return { ...base, kind: 'result', statementId, data: r.d as ResultData };
    case RECORD_KIND.event:
      // The store's own copy of the session's start at a segment boundary: nothing the session
      // did (the summary takes the start from it when retention removed the original).
      if ((r.d as EventData).kind === EVENT_KIND.sessionContinued) return undefined;
      return { ...base, kind: 'event', data: r.d as EventData };
    default:
      return { ...base, kind: 'session-end', data: r.d as SessionEndData };
  }
}

/** Loads a session by id, or by a prefix of its id that names exactly one session. */
export interface LoadSessionOptions {
  /** Refuse (TranscriptTooLargeError) rather than hold more than this many records in memory. */
  maxRecords?: number;
}

/** A session found by id or prefix: everything a replay says about it except its timeline. */
export type LocatedSession = Omit<SessionReplay, 'entries'>;

/**
 * First pass: which session `idOrPrefix` names, and its summary. Only per-session summaries are
 * kept, not records, so this costs the same for a session of ten records or of a million.
 */
export async function locateSession(from: string | RecordSource, idOrPrefix: string): Promise<LocatedSession> {
  if (idOrPrefix.length === 0) throw new TranscriptReadError('a session id is required');
  const source = sourceOf(from);
  const index = new SessionIndex({ partial: true, source });
  const where = new Map<string, { instance: string; segment: number; seq: number }>();
  for await (const stored of source.records({ sessionPrefix: idOrPrefix, withOpens: true })) {
    const { record, instance, file } = stored;
    if (record.sid === undefined) {
      // A segment's open record: which writer wrote it (the summary says whether that writer stopped).
      index.add(stored);
      continue;
    }
    const sid = record.sid as string;
    if (!sid.startsWith(idOrPrefix)) continue;
    index.add(stored);
    const segment = parseSegmentFileName(file)?.index ?? 0;
    where.set(sid, { instance: where.get(sid)?.instance ?? instance, segment, seq: record.seq });
  }
  const sessionId = where.has(idOrPrefix) ? idOrPrefix : where.size === 1 ? [...where.keys()][0] : undefined;
  if (sessionId === undefined) {
    if (where.size === 0) throw new TranscriptReadError(`no session '${idOrPrefix}' in ${source.name}`);
    const ids = [...where.keys()].slice(0, 10).join(', ');
    throw new TranscriptReadError(`'${idOrPrefix}' names ${where.size} sessions (${ids}${where.size > 10 ? ', …' : ''}); give more of the id`);
  }
  const at = where.get(sessionId) as { instance: string; segment: number; seq: number };
  const summary = index.summaries().find((s) => s.sessionId === sessionId) as SessionSummary;
  return { sessionId, instance: at.instance, summary, ended: summary.endedAt !== undefined, position: { segment: at.segment, seq: at.seq } };
}

/** Second pass: the session's timeline, one entry at a time, in store order. */
export async function* sessionEntries(from: string | RecordSource, session: LocatedSession): AsyncGenerator<TimelineEntry> {
  const startMs = Date.parse(session.summary.startedAt);
  for await (const { record } of sourceOf(from).records({ sessionPrefix: session.sessionId })) {
    if (record.sid !== session.sessionId) continue;
    const entry = toEntry(record, startMs);
    if (entry) yield entry;
  }
}

/** The whole replay in memory (the admin API, tests); `maxRecords` bounds what it may hold. */
export async function loadSession(from: string | RecordSource, idOrPrefix: string, options: LoadSessionOptions = {}): Promise<SessionReplay> {
  const located = await locateSession(from, idOrPrefix);
  const max = options.maxRecords ?? Number.POSITIVE_INFINITY;
  const entries: TimelineEntry[] = [];
  for await (const entry of sessionEntries(from, located)) {
    if (entries.length >= max) throw new TranscriptTooLargeError(`more than ${max} records of '${located.sessionId}'`, max);
    entries.push(entry);
  }
  return { ...located, entries };
}

export interface FollowOptions {
  onEntry: (entry: TimelineEntry) => void;
  signal?: AbortSignal;
  /** How often to look for new records; default 200 ms. */
  pollMs?: number;
}

/**
 * Tails the session's instance from where `replay` ended, calling `onEntry` for each new record of
 * the session, across segment rotations and writer restarts. Returns when the session ends or
 * `signal` aborts.
 */
export async function followSession(dir: string, replay: SessionReplay, options: FollowOptions): Promise<'ended' | 'aborted'> {
  if (replay.ended) return 'ended';
  const pollMs = options.pollMs ?? 200;
  const needle = Buffer.from(`"sid":${JSON.stringify(replay.sessionId)}`);
  const startMs = Date.parse(replay.summary.startedAt);
  let segment = replay.position.segment;
  let lastSeq = replay.position.seq;
  const wire = await wireDecoderUpTo(dir, replay);
  let offset = 0;
  let lineNo = 1;
  let drainBeforeSwitch: number | undefined;
  while (!options.signal?.aborted) {
    const current = segmentsOf(listTranscriptDir(dir)).find((s) => s.instance === replay.instance && s.index === segment);
    let progressed = false;
    if (current) {
      for await (const raw of readLines(join(dir, current.name), { start: offset, firstLineNo: lineNo, maxLineBytes: DEFAULT_LIMITS.recordBytes + 1 })) {
        if (!raw.complete) break;
        offset = raw.offset + raw.length + 1;
        lineNo = raw.lineNo + 1;
        progressed = true;
        if (raw.oversized || !raw.bytes.includes(needle)) continue;
        const parsed = parseLine(raw.bytes, false);
        if (!parsed.ok || parsed.record.seq <= lastSeq || parsed.record.sid !== replay.sessionId) continue;
        lastSeq = parsed.record.seq;
        for (const record of await readerRecords(parsed.record, replay.instance, wire)) {
          const entry = toEntry(record, startMs);
          if (!entry) continue;
          options.onEntry(entry);
          if (entry.kind === 'session-end') return 'ended';
        }
      }
    }
    if (!progressed) {
      if (drainBeforeSwitch !== undefined) {
        segment = drainBeforeSwitch;
        drainBeforeSwitch = undefined;
        offset = 0;
        lineNo = 1;
        continue;
      }
      const newer = segmentsOf(listTranscriptDir(dir))
        .filter((s) => s.instance === replay.instance && s.index > segment)
        .sort((a, b) => a.index - b.index)[0];
      if (newer) {
        drainBeforeSwitch = newer.index; // read the current file once more, then move on
        continue;
      }
      try {
        await sleep(pollMs, undefined, options.signal ? { signal: options.signal } : {});
      } catch {
        return 'aborted';
      }
    }
  }
  return 'aborted';
}

/**
 * A decoder that has replayed the session's `wire` records up to where `replay` ended, so that
 * following it decodes what comes next as a reading from the start would.
 */
async function wireDecoderUpTo(dir: string, replay: SessionReplay): Promise<WireDecoder> {
  const wire = new WireDecoder();
  const needle = Buffer.from(`"sid":${JSON.stringify(replay.sessionId)}`);
  for (const seg of segmentsOf(listTranscriptDir(dir))) {
    if (seg.instance !== replay.instance || seg.index > replay.position.segment) continue;
    for await (const raw of readLines(join(dir, seg.name), { maxLineBytes: DEFAULT_LIMITS.recordBytes + 1 })) {
      if (!raw.complete || raw.oversized || !raw.bytes.includes(needle)) continue;
      const parsed = parseLine(raw.bytes, false);
      if (!parsed.ok || parsed.record.k !== RECORD_KIND.wire || parsed.record.sid !== replay.sessionId || parsed.record.seq > replay.position.seq) continue;
      await wire.expand(parsed.record, replay.instance);
    }
  }
  return wire;
}

// ---- text ----------------------------------------------------------------------------------------

export function renderSessionHeader(s: SessionSummary): string {
  const p = s.principal;
  const lines = [`session ${printable(s.sessionId, true)}  ${s.protocol}  target ${printable(s.target, true)}  (instance ${s.instance})`];
  if (p) {
    const parts = [
      printable(p.name, true),
      `subject ${printable(p.subject, true)}`,
      `issuer ${printable(p.issuer, true)}`,
      ...(p.appId ? [`app ${printable(p.appId, true)}`] : []),
      ...(p.objectId ? [`object ${printable(p.objectId, true)}`] : []),
      `roles ${p.roles.length > 0 ? printable(p.roles.join(', '), true) : '-'}`,
      `groups ${p.groupsOverage ? '(overage)' : p.groups.length > 0 ? printable(p.groups.join(', '), true) : '-'}`,
      ...(p.tokenExpiresAt ? [`token expires ${p.tokenExpiresAt}`] : []),
    ];
    lines.push(`principal  ${parts.join('  ')}`);
  } else {
    lines.push('principal  (the session start record is not in the store)');
  }
  const c = s.client;
  if (c) {
    const tls = c.tls ? `TLS ${printable(c.tls.version, true)} ${printable(c.tls.cipher, true)}` : 'no TLS';
    const app = c.application ? `  application ${printable(c.application, true)}` : '';
    lines.push(`client     ${printable(c.address, true)}:${c.port}  ${tls}${app}`);
  }
  const end = s.endedAt
    ? `ended ${s.endedAt} (${printable(s.endReason ?? '', true)}), ${formatMs(Date.parse(s.endedAt) - Date.parse(s.startedAt))}`
    : s.open
      ? 'not ended'
      : `end not recorded: the warden that recorded it has stopped${s.endedBy ? ` (by ${s.endedBy})` : ''}`;
  lines.push(`started    ${s.startedAt}  ${end}`);
  if (s.removedStatements !== undefined) {
    const removed = s.removedStatements === null ? 'how many statements is not known' : countText(s.removedStatements, 'statement');
    lines.push(`           the records before ${s.keptFrom ?? '?'} were removed by retention (${removed}); the counts below are of the rest`);
  }
  const v = s.verdicts;
  lines.push(
    `statements ${s.statements}: ${v.allow} allow, ${v.mask} mask, ${v.hold} hold, ${v.deny} deny  approved ${s.approved}  refused ${s.refused}  errors ${s.errors}  rows ${s.rows}  ${formatBytes(s.bytes)}`,
  );
  return lines.join('\n');
}

function paramLabel(p: StatementParam, i: number): string {
  return p.name ?? `$${i + 1}`;
}

function quoteValue(v: string | null, fullBytes?: number): string {
  if (v === null) return 'NULL';
  const q = `'${printable(shorten(v, 200), true).replace(/'/g, "''")}'`;
  return fullBytes === undefined ? q : `${q}… (${formatBytes(fullBytes)})`;
}

/** Text for one timeline entry (several lines for statements and results). */
export function renderEntry(e: TimelineEntry): string {
  const t = formatOffset(e.offsetMs).padStart(10);
  switch (e.kind) {
    case 'session-start':
      return `${t}  session start`;
    case 'statement': {
      const d = e.data;
      const head = [`#${e.statementId}`, d.verdict.toUpperCase().padEnd(5), printable(d.cls?.class ?? 'unknown', true)];
      if (d.cls?.relations?.length) head.push(printable(d.cls.relations.join(', '), true));
      if (d.via) head.push(`(${printable(d.via, true)})`);
      const lines = [`${t}  ${head.join('  ')}`, indent(printable(d.text), '            ')];
      if (d.textBytes !== undefined) lines.push(`            … statement cut at the limit; full text ${formatBytes(d.textBytes)}, sha256 ${d.textSha256 ?? '?'}`);
      d.params?.forEach((p, i) => lines.push(`            ${printable(paramLabel(p, i), true)} ${printable(p.type, true)} = ${quoteValue(p.value, p.fullBytes)}`));
      if (d.paramsSha256 !== undefined) lines.push(`            … ${d.paramsDropped ?? '?'} parameter(s) not recorded (the record would have exceeded the size limit); sha256 of their values ${printable(d.paramsSha256, true)}`);
      else if (d.paramsDropped) lines.push(`            … ${d.paramsDropped} more parameter(s) not recorded`);
      if (d.rule || d.reason) lines.push(`            rule ${printable(d.rule ?? '-', true)}${d.reason ? `: ${printable(d.reason, true)}` : ''}`);
      if (d.approval) {
        const a = d.approval;
        const decided = a.decision ? ` — ${a.decision.toUpperCase()}${a.approver ? ` by ${printable(a.approver, true)}` : ''}${a.reason ? `: "${printable(a.reason, true)}"` : ''}` : '';
        lines.push(`            approval request ${printable(a.requestId, true)}${decided}`);
      }
      return lines.join('\n');
    }
    case 'decision': {
      const d = e.data;
      const by = d.approver ? ` by ${printable(d.approver, true)}` : '';
      const why = d.reason ? `: "${printable(d.reason, true)}"` : '';
      return `${t}  #${e.statementId}  ${d.decision.toUpperCase()}${by}${why}${d.requestId ? `  (request ${printable(d.requestId, true)})` : ''}`;
    }
    case 'result': {
      const d = e.data;
      const set = d.set ? ` set ${d.set}` : '';
      const ms = d.ms === undefined ? '' : `, ${formatMs(d.ms)}`;
      const lines: string[] = [];
      if (d.error) {
        lines.push(`${t}  #${e.statementId}${set} → ERROR ${printable(d.error.code, true)}: ${printable(d.error.message, true)}${ms}`);
      } else {
        lines.push(`${t}  #${e.statementId}${set} → ${countText(d.rows, 'row')}, ${formatBytes(d.bytes)}${ms}${d.tag ? `  ${printable(d.tag, true)}` : ''}`);
      }
      // Read defensively: a record is only as well-formed as whoever wrote the file.
      const notices: unknown[] = Array.isArray(d.notices) ? d.notices : [];
      for (const n of notices) {
        const { severity, code, message } = (n ?? {}) as Partial<Record<'severity' | 'code' | 'message', unknown>>;
        lines.push(`            ${printable(String(severity ?? 'NOTICE'), true)} ${printable(String(code ?? ''), true)}: ${printable(String(message ?? ''), true)}`);
      }
      if (typeof d.noticesDropped === 'number' && d.noticesDropped > 0) lines.push(`            … ${countText(d.noticesDropped, 'more notice')}`);
      if (d.columns.length > 0) {
        const cols = d.columns.map((c) => `${printable(c.name, true)} ${printable(c.type, true)}${c.masked ? ` [masked: ${printable(c.masked, true)}]` : ''}`);
        lines.push(`            columns: ${cols.join(', ')}`);
      }
      const cap = d.capture;
      if (cap.mode === 'digest') lines.push(`            rows sha256 ${cap.sha256} (${countText(cap.rows, 'row')})`);
      else if ((cap.mode === 'first' || cap.mode === 'all') && cap.rows.length > 0) {
        const header = d.columns.map((c) => printable(shorten(c.name, 40), true));
        const rows = cap.rows.map((r) => r.map((v) => (v === null ? 'NULL' : printable(shorten(v, 60), true))));
        lines.push(indent(textTable(header.length > 0 ? header : (rows[0] ?? []).map((_, i) => `col${i + 1}`), rows), '            '));
        if (cap.truncated) lines.push(`            … ${d.rows - cap.rows.length > 0 ? `${d.rows - cap.rows.length} more row(s)` : 'more'} not captured`);
      }
      return lines.join('\n');
    }
    case 'event': {
      const d = e.data;
      const st = d.st === undefined ? '' : `  #${d.st}`;
      return `${t}  event ${printable(d.kind, true)}${st}${d.code ? `  ${printable(d.code, true)}` : ''}${d.message ? `  ${printable(d.message, true)}` : ''}`;
    }
    case 'session-end':
      return `${t}  session end (${printable(e.data.reason, true)}) after ${countText(e.data.statements, 'statement')}`;
  }
}

const NOT_ENDED = '(the session has not ended; use --follow to watch it)';

/** Text of `warden replay`, a piece at a time (each to be written with a newline after it). */
export async function* replayTextPieces(located: LocatedSession, entries: AsyncIterable<TimelineEntry>): AsyncGenerator<string> {
  yield renderSessionHeader(located.summary);
  yield '';
  for await (const e of entries) yield renderEntry(e);
  if (!located.ended && located.summary.open) {
    yield '';
    yield NOT_ENDED;
  }
}

/** `JSON.stringify(replayJson(…), null, 2)`, a piece at a time, so the entries need not all be held. */
export async function* replayJsonPieces(located: LocatedSession, entries: AsyncIterable<TimelineEntry>): AsyncGenerator<string> {
  const nested = (value: unknown, depth: number): string => terminalJson(value, 2).replaceAll('\n', `\n${'  '.repeat(depth)}`);
  yield `{\n  "session": ${nested(located.summary, 1)},\n  "entries": [`;
  let first = true;
  for await (const e of entries) {
    yield `${first ? '' : ','}\n    ${nested(e, 2)}`;
    first = false;
  }
  yield `${first ? ']' : '\n  ]'},\n  "ended": ${located.ended}\n}`;
}

export function renderReplayText(replay: SessionReplay): string {
  return [renderSessionHeader(replay.summary), '', ...replay.entries.map(renderEntry), ...(replay.ended || !replay.summary.open ? [] : ['', NOT_ENDED])].join('\n');
}

/** The JSON document of `warden replay --format json`. */
export function replayJson(replay: SessionReplay): { session: SessionSummary; entries: TimelineEntry[]; ended: boolean } {
  return { session: replay.summary, entries: replay.entries, ended: replay.ended };
}
