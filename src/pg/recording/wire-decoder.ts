// Wire transcripts, the reading side: turns a session's `wire` records (wire-recording.ts) into the
// records the statement flow would have written had it run as the session ran — statement,
// result, event, session-end — by running it now over the same bytes, with the same times, as the
// recording thread's worker does (replayer.ts), into memory instead of a chain.
//
// What it gives back is what the statement flow of the reading warden makes of the bytes: the
// classification (class, tables) is that of the reading warden's parser. A session's records are
// read from its first `wire` record on (which carries what the flow must know before the first
// byte); a session whose first `wire` record is not in what is read (retention removed it, or
// the read began later in the chain) gets one `event` saying its statements there cannot be read,
// and is read from its next resume point on (wire-recording.ts: a record that carries `ctx` again).
import { setImmediate as nextTurn } from 'node:timers/promises';
import { DEFAULT_LIMITS } from '../../audit/config.js';
import { expandRecord, recordTime, RECORD_KIND, type RecordKind, type TranscriptRecord } from '../../audit/frame.js';
import { recorderOver, type RecordSink } from '../../audit/recorder.js';
import type { PendingRecord } from '../../audit/segment-writer.js';
import { initSqlParser } from '../../sql/parser.js';
import { EntryReplayer } from './replayer.js';
import { ENTRY, type ThreadSessionStart } from './thread.js';
import { WIRE_ENTRY_HEADER } from './wire-recording.js';

/** The data of a `wire` record. */
export interface WireData {
  /** On a session's first: what its statement flow must know before the first byte. */
  ctx?: ThreadSessionStart;
  /** The entries, base64: [kind u8][length u32 LE][time f64 LE][bytes]. */
  e: string;
}

/** Records a replaying flow writes, kept in memory until the decoder hands them out. */
class MemorySink implements RecordSink {
  private pending: PendingRecord[] = [];
  private seq = 0;

  constructor(
    readonly instance: string,
    private readonly clock: () => number,
  ) {}

  time(): number {
    return this.clock();
  }

  append(kind: RecordKind, sid: string | undefined, data: unknown): Promise<void> {
    this.add(kind, sid === undefined ? undefined : JSON.stringify(sid), JSON.stringify(data), false);
    return Promise.resolve();
  }

  appendJson(kind: RecordKind, sidJson: string | undefined, dJson: string, wait = false): PendingRecord {
    return this.add(kind, sidJson, dJson, false, wait);
  }

  appendOpen(kind: RecordKind, sidJson: string | undefined, members: string, wait = false): PendingRecord {
    return this.add(kind, sidJson, members, true, wait);
  }

  extend(record: PendingRecord, member: string, json: string, wait = false): boolean | Promise<void> {
    if (record.chained || !record.open) return false;
    record.d = `${record.d},"${member}":${json}`;
    record.open = false;
    return wait ? Promise.resolve() : true;
  }

  settle(record: PendingRecord): void {
    record.open = false;
  }

  private add(kind: RecordKind, sidJson: string | undefined, d: string, open: boolean, wait = false): PendingRecord {
    const r: PendingRecord = { seq: ++this.seq, ts: recordTime(this.clock()), kind, sidJson, d, unclosed: open, size: 0, chained: false, open };
    if (wait) r.done = Promise.resolve();
    this.pending.push(r);
    return r;
  }

  /** The records written since the last call, as readers see them, but for the `session-start` (the chain has it). */
  drain(seq: number): TranscriptRecord[] {
    const out: TranscriptRecord[] = [];
    for (const r of this.pending) {
      r.chained = true;
      if (r.kind === RECORD_KIND.sessionStart) continue;
      const record: TranscriptRecord = {
        seq,
        ts: typeof r.ts === 'number' ? new Date(r.ts).toISOString() : r.ts,
        prev: '',
        k: r.kind,
        ...(r.sidJson === undefined ? {} : { sid: JSON.parse(r.sidJson) as string }),
        d: JSON.parse(r.unclosed ? `${r.d}}` : r.d) as unknown,
        hash: '',
      };
      out.push(...expandRecord(record));
    }
    this.pending = [];
    return out;
  }
}

/** InstanceReplay.ids: a session that ended, and one whose records are read from a resume point yet to come. */
const ENDED = 0;
const UNREAD = -1;

/** One instance's sessions being replayed. */
class InstanceReplay {
  readonly replayer: EntryReplayer;
  readonly sink: MemorySink;
  /** Sessions by id: the replayer's number for each; ENDED, or UNREAD until a record with `ctx` comes. */
  readonly ids = new Map<string, number>();
  private nextId = 1;
  /** The time of the entry last replayed: records written between entries (promise continuations) take it. */
  private lastTime = 0;

  constructor(instance: string) {
    this.replayer = new EntryReplayer({
      recorder: () => recorderOver(this.sink, DEFAULT_LIMITS, () => this.now() - performance.timeOrigin),
      instanceId: instance,
      wireReplay: true,
    });
    this.sink = new MemorySink(instance, () => Math.floor(this.now()));
  }

  private now(): number {
    const t = this.replayer.eventTime;
    if (t !== undefined) this.lastTime = t;
    return this.lastTime;
  }

  newId(): number {
    return this.nextId++;
  }
}

/** Turns `wire` records into the records they stand for; one per reading of a store (it keeps each session's flow between records). */
export class WireDecoder {
  private readonly instances = new Map<string, InstanceReplay>();
  private parserReady: Promise<void> | undefined;

  /** The records `r` (a `wire` record of `instance`) stands for, in order. */
  async expand(r: TranscriptRecord, instance: string): Promise<TranscriptRecord[]> {
    await (this.parserReady ??= initSqlParser());
    let inst = this.instances.get(instance);
    if (!inst) {
      inst = new InstanceReplay(instance);
      this.instances.set(instance, inst);
    }
    const sid = r.sid;
    const d = r.d as Partial<WireData>;
    if (sid === undefined || typeof d.e !== 'string') return [unreadable(r, 'a wire record without a session or entries')];
    let id = inst.ids.get(sid);
    const entries = Buffer.from(d.e, 'base64');
    if (id === undefined || id === UNREAD) {
      if (!d.ctx || typeof d.ctx !== 'object') {
        if (id === UNREAD) return [];
        inst.ids.set(sid, UNREAD);
        return [unreadable(r, "the beginning of this session's wire records is not in what was read: its statements up to its next resume point cannot be shown")];
      }
      // The session's first record, or a resume point (its state then in `ctx`).
      id = inst.newId();
      inst.ids.set(sid, id);
      const time = entries.length >= WIRE_ENTRY_HEADER ? entries.readDoubleLE(5) : Date.parse(r.ts);
      inst.replayer.entry(ENTRY.start, id, time, Buffer.from(JSON.stringify(d.ctx)));
    }
    if (id === ENDED) return [];
    let off = 0;
    while (off + WIRE_ENTRY_HEADER <= entries.length) {
      const kind = entries[off] as number;
      const n = entries.readUInt32LE(off + 1);
      const time = entries.readDoubleLE(off + 5);
      const body = entries.subarray(off + WIRE_ENTRY_HEADER, off + WIRE_ENTRY_HEADER + n);
      off += WIRE_ENTRY_HEADER + n;
      inst.replayer.entry(kind, id, time, body);
      if (kind === ENTRY.end) inst.ids.set(sid, ENDED);
    }
    // What the flow does after a promise (a catalog look-up never happens here, but the flow may
    // still go through one) is written before the records are handed out.
    await nextTurn();
    return inst.sink.drain(r.seq);
  }
}

function unreadable(r: TranscriptRecord, message: string): TranscriptRecord {
  return { ...r, k: RECORD_KIND.event, d: { kind: 'unreadable', message } };
}
