// Runs the statement flow over a session's bytes after the fact: the chunks a relay read, in the
// order it read them, each with the time it was read. The recording thread's worker (worker.ts)
// does this for the batches the event loop hands it, and writes what the flows record to its
// transcript chain.
//
// Each session's flow sits behind a PgRelay whose sockets are stand-ins: what it would forward is
// dropped (the real relay forwarded the same bytes already), and pausing a stand-in holds its
// chunks back in order, as a paused socket would. Record times are the times the chunks were
// read (`eventTime`, for the recorders' clocks), not the times they are replayed.
import { EventEmitter } from 'node:events';
import type { Socket } from 'node:net';
import type { Recorder } from '../../audit/recorder.js';
import type { SessionEndInfo, SessionEventInfo } from '../../audit/types.js';
import type { Principal } from '../../identity/types.js';
import { createLogger } from '../../log.js';
import { SessionFlow } from '../flow/session-flow.js';
import { PgRelay } from '../relay.js';
import { ENTRY, ENTRY_HEADER, type ThreadSessionStart } from './thread.js';

/** A socket that is never written to the network: it takes writes and feeds chunks in order. */
class StandInSocket extends EventEmitter {
  destroyed = false;
  private paused = false;
  private readonly held: Buffer[] = [];

  feed(chunk: Buffer): void {
    if (this.paused || this.held.length > 0) this.held.push(chunk);
    else this.emit('data', chunk);
  }

  pause(): this {
    this.paused = true;
    return this;
  }

  resume(): this {
    this.paused = false;
    while (!this.paused && this.held.length > 0) this.emit('data', this.held.shift() as Buffer);
    return this;
  }

  write(): boolean {
    return true;
  }

  cork(): void {}
  uncork(): void {}
  end(): this {
    return this;
  }

  destroy(): this {
    this.destroyed = true;
    return this;
  }
}

interface ReplayedSession {
  client: StandInSocket;
  upstream: StandInSocket;
  flow: SessionFlow;
  recorder: Recorder;
  relay: PgRelay;
  /** The relay here ended on its own (the flow could not go on): onStopped was called. */
  stopped: boolean;
}

export interface ReplayHooks {
  /** The recorder for a session starting. */
  recorder(): Recorder;
  /** The instance the records are written by (the flow names it in what it records). */
  instanceId: string;
  /** A statement the flow let through (every statement of these sessions: no rule applies). */
  onAllowed?(): void;
  /**
   * Session `id`'s flow met something it cannot go on from (in line, that ends the session): its
   * relay ended on its own. Called once per session.
   */
  onStopped?(id: number, message: string): void;
  /** An entry could not be replayed for a reason not in the bytes (warden's own fault). */
  onError?(err: unknown): void;
  /** The bytes are a wire transcript's: rows it did not keep come as ROWS_SUMMARY messages (FlowDeps.wireReplay). */
  wireReplay?: boolean;
}

const silent = createLogger({ level: 'silent' });

/** Replays entries (thread.ts ENTRY: session start, client or server chunk, event, end) through each session's statement flow. */
export class EntryReplayer {
  /** The time of the entry being replayed (ms since the epoch, fractional); undefined between entries. */
  eventTime: number | undefined;
  private readonly sessions = new Map<number, ReplayedSession>();

  constructor(private readonly hooks: ReplayHooks) {}

  /** Sessions started and not ended. */
  get open(): number {
    return this.sessions.size;
  }

  /**
   * Replays a batch: entries of [kind u8][session u32][body length u32][time f64][body]. Returns
   * the offset of its last entry.
   */
  take(b: Buffer): number {
    let last = 0;
    let off = 0;
    while (off + ENTRY_HEADER <= b.length) {
      const n = b.readUInt32LE(off + 5);
      last = off;
      this.entry(b[off] as number, b.readUInt32LE(off + 1), b.readDoubleLE(off + 9), b.subarray(off + ENTRY_HEADER, off + ENTRY_HEADER + n));
      off += ENTRY_HEADER + n;
    }
    return last;
  }

  /** Replays one entry. The body is copied where the flow may keep it: the caller may reuse its memory. */
  entry(kind: number, id: number, time: number, body: Buffer): void {
    this.eventTime = time;
    try {
      // A copy: the flow may keep part of a chunk (a message split across reads, rows awaiting
      // their digest), and the batch's buffer goes back to the main thread.
      if (kind === ENTRY.client || kind === ENTRY.server) this.feed(id, kind === ENTRY.client, Buffer.from(body));
      else if (kind === ENTRY.start) this.start(id, JSON.parse(body.toString('utf8')) as ThreadSessionStart);
      else if (kind === ENTRY.end) this.end(id, JSON.parse(body.toString('utf8')) as SessionEndInfo);
      else if (kind === ENTRY.event) this.sessions.get(id)?.recorder.event(JSON.parse(body.toString('utf8')) as SessionEventInfo).catch(() => undefined);
    } catch (err) {
      // Not a message the flow cannot read (that ends its relay: feed()): warden's own fault.
      this.hooks.onError?.(err);
    } finally {
      this.eventTime = undefined;
    }
  }

  /** Ends every open session (the store is closing). */
  endAll(info: SessionEndInfo): void {
    for (const id of [...this.sessions.keys()]) this.end(id, info);
  }

  private start(id: number, s: ThreadSessionStart): void {
    const recorder = this.hooks.recorder();
    recorder.sessionStart(s.start).catch(() => undefined); // a failure makes the store unhealthy: its owner is told
    const client = new StandInSocket();
    const upstream = new StandInSocket();
    let relay: PgRelay | undefined;
    const flow = new SessionFlow({
      sessionId: s.start.sessionId,
      principal: s.start.principal as unknown as Principal,
      target: s.start.target,
      clientAddress: s.start.client.address,
      instanceId: this.hooks.instanceId,
      logger: silent,
      policy: undefined,
      approvals: undefined,
      masker: undefined,
      recorder,
      capture: s.capture,
      durableBeforeForward: false,
      recordingHealthy: () => true,
      inject: () => undefined,
      expectReady: () => relay?.expectReady(),
      onQuery: () => undefined,
      // Only allows: the relay counts the fast-path calls it refuses (handlers.ts).
      onVerdict: (v) => {
        if (v === 'allow') this.hooks.onAllowed?.();
      },
      ...(this.hooks.wireReplay ? { wireReplay: true } : {}),
    });
    for (const [name, value] of s.parameters) flow.noteParameter(name, value);
    // A wire session's resume point: the statements it had prepared by then.
    for (const p of s.prepared ?? []) flow.seedPrepared(p.name, p.sql, p.paramTypes);
    relay = new PgRelay(client as unknown as Socket, upstream as unknown as Socket, flow.client, flow.server, {
      maxMessageBytes: s.maxMessageBytes,
      onEnd: () => undefined,
    });
    relay.start(s.transactionStatus);
    this.sessions.set(id, { client, upstream, flow, recorder, relay, stopped: false });
  }

  private end(id: number, info: SessionEndInfo): void {
    const s = this.sessions.get(id);
    if (!s) return;
    this.sessions.delete(id);
    s.flow.close('disconnected');
    s.recorder.sessionEnd(info).catch(() => undefined);
  }

  /**
   * Feeds a chunk to the session's relay. Its sockets never close, so a relay that ends here ended
   * on its own: the statement flow met something it cannot go on from. The relay that forwarded
   * the same bytes may not have: onStopped tells its owner, so that the session does not go on
   * unrecorded (fail closed).
   */
  private feed(id: number, fromClient: boolean, chunk: Buffer): void {
    const s = this.sessions.get(id);
    if (!s) return;
    (fromClient ? s.client : s.upstream).feed(chunk);
    const ended = s.relay.endReason;
    if (!ended || ended.kind === 'client-terminate' || s.stopped) return;
    s.stopped = true;
    this.hooks.onStopped?.(id, 'message' in ended ? ended.message : 'reason' in ended ? ended.reason : ended.kind);
  }
}
