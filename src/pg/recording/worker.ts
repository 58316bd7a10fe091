// The recording thread's worker (see thread.ts): takes batches of the chunks relays read, runs
// each session's statement flow over them as it would have run on the event loop (replayer.ts),
// and records what the flows report to the thread's own transcript chain. Record times are the
// times the main thread read the chunks, not the times the worker got to them.
import { parentPort, workerData } from 'node:worker_threads';
import { TranscriptStore } from '../../audit/recorder.js';
import type { TranscriptWriteError } from '../../audit/errors.js';
import { createLogger, type Logger } from '../../log.js';
import { initSqlParser } from '../../sql/parser.js';
import { ThreadPriority } from './priority.js';
import { EntryReplayer } from './replayer.js';
// TIME_ORIGIN is evaluated in this thread (its own timeOrigin): with it, now is epoch milliseconds, as entry times are.
import { ENTRY_HEADER, TIME_ORIGIN, type FromWorker, type ToWorker, type WorkerInit } from './thread.js';

const port = parentPort;
if (!port) throw new Error('worker.ts runs as the recording thread only');
const init = workerData as WorkerInit;
const post = (m: FromWorker): void => port.postMessage(m);

// The main thread's time of the entry being replayed (ms since the epoch, fractional), once the replayer exists.
let replaying: EntryReplayer | undefined;
const clock = (): number => (replaying?.eventTime === undefined ? Date.now() : Math.floor(replaying.eventTime));
const now = (): number => (replaying?.eventTime === undefined ? performance.now() : replaying.eventTime - performance.timeOrigin);

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

/** Statements the flows let through since the last acknowledgement (the event loop counts them in its metrics). */
let allowed = 0;
const replayer = new EntryReplayer({
  recorder: () => store.recorder(),
  instanceId: store.writer.instance,
  onAllowed: () => allowed++,
  onStopped: (id, message) => post({ t: 'stopped', id, message }),
  // Stop recording rather than record a wrong transcript.
  onError: (err) => post({ t: 'unhealthy', message: `the recording thread failed: ${err instanceof Error ? err.message : String(err)}`, code: 'ETHREAD' }),
});
replaying = replayer;

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
  const last = replayer.take(b);
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
    replayer.endAll({ reason: 'shutdown' });
    store.close().finally(() => post({ t: 'closed' }));
    return;
  }
  if (m.keepFrom !== undefined) keepFrom = m.keepFrom;
  take(Buffer.from(m.buf, m.offset, m.len));
  port.postMessage({ t: 'ack', bytes: m.len, health: store.health(), allowed, priority: priority.state(), buf: m.buf } satisfies FromWorker, [m.buf]);
  allowed = 0;
});
