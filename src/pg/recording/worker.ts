// The recording thread's worker (see thread.ts): takes batches of the chunks relays read, runs
// each session's statement flow over them as it would have run on the event loop, and records
// what the flow reports to the thread's own transcript chain.
//
// The flow sits behind a PgRelay whose sockets are stand-ins: what it would forward is dropped
// (the real relay forwarded the same bytes already), and pausing a stand-in holds its chunks back
// in order, as a paused socket would. Record times are the times the main thread read the chunks,
// not the times the worker got to them.
import { EventEmitter } from 'node:events';
import type { Socket } from 'node:net';
import { parentPort, workerData } from 'node:worker_threads';
import { TranscriptStore, type Recorder } from '../../audit/recorder.js';
import type { TranscriptWriteError } from '../../audit/errors.js';
import type { SessionEndInfo, SessionEventInfo } from '../../audit/types.js';
import type { Principal } from '../../identity/types.js';
import { createLogger, type Logger } from '../../log.js';
import { initSqlParser } from '../../sql/parser.js';
import { SessionFlow } from '../flow/session-flow.js';
import { PgRelay } from '../relay.js';
import { ThreadPriority } from './priority.js';
// TIME_ORIGIN is evaluated in this thread (its own timeOrigin): with it, now is epoch milliseconds, as entry times are.
import { ENTRY, ENTRY_HEADER, TIME_ORIGIN, type FromWorker, type ThreadSessionStart, type ToWorker, type WorkerInit } from './thread.js';

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

interface ThreadSession {
  client: StandInSocket;
  upstream: StandInSocket;
  flow: SessionFlow;
  recorder: Recorder;
  relay: PgRelay;
  /** The relay here ended on its own (the flow could not go on): the event loop was told. */
  stopped: boolean;
}

const port = parentPort;
if (!port) throw new Error('worker.ts runs as the recording thread only');
const init = workerData as WorkerInit;
const post = (m: FromWorker): void => port.postMessage(m);

/** The main thread's time of the entry being processed (ms since the epoch, fractional). */
let eventTime: number | undefined;
const clock = (): number => (eventTime === undefined ? Date.now() : Math.floor(eventTime));
const now = (): number => (eventTime === undefined ? performance.now() : eventTime - performance.timeOrigin);

let log: Logger;
/** The lowest seq retention must leave on disk: nothing goes until the main thread says what is shipped. */
let keepFrom: number | undefined = init.keepUnshipped ? 0 : undefined;
let store: TranscriptStore;
let priority: ThreadPriority;
try {
  log = createLogger({ level: init.logLevel }).child({ component: 'transcripts', thread: 'recording' });
  await initSqlParser();
  store = await TranscriptStore.open(init.transcript, {
    logger: log,
    clock,
    now,
    oversizedParams: 'digest',
    keepFromSeq: () => keepFrom,
    onUnhealthy: (err: TranscriptWriteError) => post({ t: 'unhealthy', message: err.message, code: err.code }),
  });
  // Raised back while it is half the lag limit behind; lowered again within a tenth of it.
  priority = ThreadPriority.lower({ raiseAtMs: init.maxLagMs / 2, lowerAtMs: init.maxLagMs / 10 });
  post({ t: 'ready', health: store.health(), keyId: store.keyId, publicKeyFile: store.publicKeyFile, priority: priority.state() });
} catch (err) {
  // The main thread stops the worker on this; the rethrow ends it anyway (an 'error' there).
  post({ t: 'failed', message: err instanceof Error ? err.message : String(err) });
  throw err;
}

const sessions = new Map<number, ThreadSession>();
/** Statements the flows let through since the last acknowledgement (the event loop counts them in its metrics). */
let allowed = 0;
const silent = createLogger({ level: 'silent' });

function open(id: number, s: ThreadSessionStart): void {
  const recorder = store.recorder();
  recorder.sessionStart(s.start).catch(() => undefined); // a failure makes the store unhealthy: reported by onUnhealthy
  const client = new StandInSocket();
  const upstream = new StandInSocket();
  let relay: PgRelay | undefined;
  const flow = new SessionFlow({
    sessionId: s.start.sessionId,
    principal: s.start.principal as unknown as Principal,
    target: s.start.target,
    clientAddress: s.start.client.address,
    instanceId: store.writer.instance,
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
      if (v === 'allow') allowed++;
    },
  });
  for (const [name, value] of s.parameters) flow.noteParameter(name, value);
  relay = new PgRelay(client as unknown as Socket, upstream as unknown as Socket, flow.client, flow.server, {
    maxMessageBytes: s.maxMessageBytes,
    onEnd: () => undefined,
  });
  relay.start(s.transactionStatus);
  sessions.set(id, { client, upstream, flow, recorder, relay, stopped: false });
}

function end(id: number, info: SessionEndInfo): void {
  const s = sessions.get(id);
  if (!s) return;
  sessions.delete(id);
  s.flow.close('disconnected');
  s.recorder.sessionEnd(info).catch(() => undefined);
}

/**
 * Feeds a chunk to the session's relay. Its sockets never close, so a relay that ends here ended
 * on its own: the statement flow met something it cannot go on from (in line that ends the
 * session). The relay on the event loop, which forwarded the same bytes, may not have: it is
 * told, so that the session does not go on unrecorded (fail closed).
 */
function feed(id: number, fromClient: boolean, chunk: Buffer): void {
  const s = sessions.get(id);
  if (!s) return;
  (fromClient ? s.client : s.upstream).feed(chunk);
  const ended = s.relay.endReason;
  if (!ended || ended.kind === 'client-terminate' || s.stopped) return;
  s.stopped = true;
  post({ t: 'stopped', id, message: 'message' in ended ? ended.message : 'reason' in ended ? ended.reason : ended.kind });
}

/** A raised thread given no batch for this long is lowered again (batches come every 20 ms while there is traffic). */
const IDLE_LOWER_MS = 100;

/** Lowers a raised thread that has had nothing to take for a while (it is not behind). */
let idle: NodeJS.Timeout | undefined;

/** Tells the priority how far behind the thread is: how long ago the chunk at `off` was read. */
function observeLag(b: Buffer, off: number): void {
  if (off + ENTRY_HEADER > b.length) return;
  if (!priority.observe(TIME_ORIGIN + performance.now() - b.readDoubleLE(off + 9))) {
    log.warn({ reason: priority.state().reason }, 'the recording thread keeps the priority it has');
  }
}

function take(b: Buffer): void {
  if (idle) clearTimeout(idle);
  // Behind by the age of the batch's first chunk: raised if that is too old.
  observeLag(b, 0);
  let last = 0;
  let off = 0;
  while (off + ENTRY_HEADER <= b.length) {
    const kind = b[off] as number;
    const id = b.readUInt32LE(off + 1);
    const n = b.readUInt32LE(off + 5);
    eventTime = b.readDoubleLE(off + 9);
    const body = b.subarray(off + ENTRY_HEADER, off + ENTRY_HEADER + n);
    last = off;
    off += ENTRY_HEADER + n;
    try {
      // A copy: the flow may keep part of a chunk (a message split across reads, rows awaiting
      // their digest), and the batch's buffer goes back to the main thread.
      if (kind === ENTRY.client || kind === ENTRY.server) feed(id, kind === ENTRY.client, Buffer.from(body));
      else if (kind === ENTRY.start) open(id, JSON.parse(body.toString('utf8')) as ThreadSessionStart);
      else if (kind === ENTRY.end) end(id, JSON.parse(body.toString('utf8')) as SessionEndInfo);
      else if (kind === ENTRY.event) sessions.get(id)?.recorder.event(JSON.parse(body.toString('utf8')) as SessionEventInfo).catch(() => undefined);
    } catch (err) {
      // Not a message the flow cannot read (that ends its relay: feed()): warden's own fault.
      // Stop recording rather than record a wrong transcript.
      post({ t: 'unhealthy', message: `the recording thread failed: ${err instanceof Error ? err.message : String(err)}`, code: 'ETHREAD' });
    }
  }
  eventTime = undefined;
  // Caught up if the batch's last chunk is recent: lowered again. A thread still raised with no
  // batch to take is caught up too.
  observeLag(b, last);
  if (priority.current === 'raised') {
    idle = setTimeout(() => {
      priority.observe(0);
      post({ t: 'priority', priority: priority.state() });
    }, IDLE_LOWER_MS);
    idle.unref();
  }
}

port.on('message', (m: ToWorker) => {
  if (!('buf' in m) && 'keepFrom' in m) {
    keepFrom = m.keepFrom;
    return;
  }
  if ('close' in m) {
    for (const id of [...sessions.keys()]) end(id, { reason: 'shutdown' });
    store.close().finally(() => post({ t: 'closed' }));
    return;
  }
  if (m.keepFrom !== undefined) keepFrom = m.keepFrom;
  take(Buffer.from(m.buf, m.offset, m.len));
  port.postMessage({ t: 'ack', bytes: m.len, health: store.health(), allowed, priority: priority.state(), buf: m.buf } satisfies FromWorker, [m.buf]);
  allowed = 0;
});
